package signal

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// PresenceUpdate is one reading of a watched peer's presence. Err wraps
// ErrNotFound when the peer has never published one, ErrInvalid when what
// it published is malformed, and otherwise says why the reading failed.
type PresenceUpdate struct {
	Presence Presence
	Err      error
}

// watchRetry bounds the pause before a broken presence watch is set up
// again: short at first, doubling to the cap while it keeps breaking.
const (
	watchRetryMin = 250 * time.Millisecond
	watchRetryMax = 30 * time.Second
)

// localWatchPoll is how often a local presence watch reads the peer's
// presence file: a file of a few hundred bytes, read while someone waits
// for that peer, at a pace below what a person notices.
const localWatchPoll = 100 * time.Millisecond

// memoryWatchPoll is the memory hub's safety net; a publish wakes its
// watches at once.
const memoryWatchPoll = time.Second

// startWatch checks id and runs watch in a goroutine that Close waits for,
// handing it the channel it reports on; the channel closes when watch
// returns, which it must when its context ends.
func (l *lifetime) startWatch(ctx context.Context, id string, watch func(ctx context.Context, out chan<- PresenceUpdate)) (<-chan PresenceUpdate, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	if err := ValidID(id); err != nil {
		return nil, err
	}
	out := make(chan PresenceUpdate, 1)
	runCtx, release := l.startShort(ctx)
	l.goWait(func() {
		defer close(out)
		defer release()
		watch(runCtx, out)
	})
	return out, nil
}

// sendUpdate hands u to the watcher unless ctx ends first.
func sendUpdate(ctx context.Context, out chan<- PresenceUpdate, u PresenceUpdate) bool {
	select {
	case out <- u:
		return true
	case <-ctx.Done():
		return false
	}
}

// pollPresence is WatchPresence for a backend that cannot push: it reads
// the presence at once, then every period and whenever wake fires, and
// reports each reading that differs from the one before.
func pollPresence(ctx context.Context, out chan<- PresenceUpdate, period time.Duration, wake func() <-chan struct{}, lookup func(context.Context) (Presence, error)) {
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	var last PresenceUpdate
	first := true
	for {
		var woken <-chan struct{}
		if wake != nil {
			woken = wake() // taken before the read, so no publish slips between
		}
		p, err := lookup(ctx)
		if ctx.Err() != nil {
			return
		}
		u := PresenceUpdate{Presence: p, Err: err}
		if first || !sameReading(u, last) {
			if !sendUpdate(ctx, out, u) {
				return
			}
			first, last = false, u
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-woken:
		}
	}
}

// sameReading reports whether two readings say the same thing.
func sameReading(a, b PresenceUpdate) bool {
	if (a.Err == nil) != (b.Err == nil) {
		return false
	}
	if a.Err != nil {
		return errors.Is(a.Err, ErrNotFound) == errors.Is(b.Err, ErrNotFound) &&
			errors.Is(a.Err, ErrInvalid) == errors.Is(b.Err, ErrInvalid)
	}
	p, q := a.Presence, b.Presence
	return p.ID == q.ID && p.DisplayName == q.DisplayName && bytes.Equal(p.PublicKey, q.PublicKey) &&
		p.Version == q.Version && p.LastSeen.Equal(q.LastSeen) && p.Instance == q.Instance && p.Offline == q.Offline
}
