package signal

import (
	"context"
	"sync"
)

// lifetime is the close/stop bookkeeping every backend shares: one cancel
// for all its goroutines, and Close waits for them.
type lifetime struct {
	mu     sync.Mutex
	closed bool
	cancel []context.CancelFunc
	wg     sync.WaitGroup

	// short holds the cancels of contexts that end before Close (presence
	// watches come and go), removed when they end so none piles up.
	short   map[int]context.CancelFunc
	shortID int
}

func newLifetime() *lifetime { return &lifetime{} }

func (l *lifetime) usable() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return nil
}

// start derives a context that ends with parent or with Close.
func (l *lifetime) start(parent context.Context) context.Context {
	ctx, cancel := context.WithCancel(parent)
	l.mu.Lock()
	l.cancel = append(l.cancel, cancel)
	l.mu.Unlock()
	return ctx
}

// startShort derives a context that ends with parent, with Close or with
// release, which the caller must call when it is done with it.
func (l *lifetime) startShort(parent context.Context) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(parent)
	l.mu.Lock()
	if l.short == nil {
		l.short = map[int]context.CancelFunc{}
	}
	l.shortID++
	id := l.shortID
	l.short[id] = cancel
	l.mu.Unlock()
	return ctx, func() {
		cancel()
		l.mu.Lock()
		delete(l.short, id)
		l.mu.Unlock()
	}
}

// goWait runs f in a goroutine that Close waits for.
func (l *lifetime) goWait(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

func (l *lifetime) close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	cancels := l.cancel
	l.cancel = nil
	for _, c := range l.short {
		cancels = append(cancels, c)
	}
	l.short = nil
	l.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	l.wg.Wait()
	return nil
}
