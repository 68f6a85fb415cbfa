package transfer

import (
	"sync"
)

// Worker runs a Machine's effects off the event loop: one goroutine per
// transfer with work queued, so effects of one transfer run in order and
// a slow disk or a long hash holds up nobody else. Do never blocks; results
// come out of Results, which the owner must keep reading (the UI with a
// tea.Cmd that waits on it and is issued again after each result).
type Worker struct {
	files   *Files
	results chan Result
	done    chan struct{}

	mu     sync.Mutex
	queues map[Key]*workQueue
	closed bool
	wg     sync.WaitGroup
}

type workQueue struct {
	effects []Effect
}

// resultBuffer lets the workers run a little ahead of the event loop.
const resultBuffer = 256

// NewWorker returns a worker performing effects with files.
func NewWorker(files *Files) *Worker {
	return &Worker{files: files, results: make(chan Result, resultBuffer), done: make(chan struct{}),
		queues: map[Key]*workQueue{}}
}

// Do queues effects; after Close it drops them.
func (w *Worker) Do(effects ...Effect) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	for _, e := range effects {
		k := e.Key()
		q := w.queues[k]
		if q == nil {
			q = &workQueue{}
			w.queues[k] = q
			w.wg.Add(1)
			go w.run(k, q)
		}
		q.effects = append(q.effects, e)
	}
}

// Results delivers the result of every effect that has one, per transfer
// in the order of the effects.
func (w *Worker) Results() <-chan Result { return w.results }

// run works through one transfer's queue and ends when it is empty.
func (w *Worker) run(k Key, q *workQueue) {
	defer w.wg.Done()
	for {
		w.mu.Lock()
		if len(q.effects) == 0 {
			delete(w.queues, k)
			w.mu.Unlock()
			return
		}
		e := q.effects[0]
		q.effects[0] = nil
		q.effects = q.effects[1:]
		w.mu.Unlock()
		r := w.files.Run(e)
		if r == nil {
			continue
		}
		select {
		case w.results <- r:
		case <-w.done:
			// Nobody reads any more; the work itself (a checkpoint, a
			// record) still gets done.
		}
	}
}

// Close finishes the work already queued without delivering its results,
// then closes every file. The owner calls it after Machine.Close's effects
// were handed over, when the program exits.
func (w *Worker) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	close(w.done)
	w.mu.Unlock()
	w.wg.Wait()
	return w.files.Close()
}
