package signal

import (
	"context"
	"sync"
)

// stream decouples producers (a sender in another goroutine, a poll loop, a
// snapshot iterator) from the consumer's pace: producers never block, and
// one goroutine owned by the stream hands events out in order.
type stream struct {
	out  chan Event
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending []Event
}

func newStream() *stream {
	return &stream{out: make(chan Event), wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// push queues an event; it never blocks.
func (s *stream) push(ev Event) {
	s.mu.Lock()
	s.pending = append(s.pending, ev)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run delivers queued events until ctx ends, then closes out. It is the one
// goroutine of the stream; done closes when it has returned.
func (s *stream) run(ctx context.Context) {
	defer close(s.done)
	defer close(s.out)
	for {
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, ev := range batch {
			select {
			case s.out <- ev:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return
		}
	}
}
