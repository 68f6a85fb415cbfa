package signal

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Hub is an in-memory signalling service for fast tests of other packages:
// every Signaller opened on one Hub shares its inboxes and presence.
type Hub struct {
	now func() time.Time

	mu        sync.Mutex
	seq       int
	inboxes   map[string]map[string]Signal
	presence  map[string]Presence
	listeners map[string]*memorySignaller
	// published is closed, and replaced, by every presence write: it
	// wakes the presence watches.
	published chan struct{}
}

// NewMemoryHub returns an empty hub on the real clock.
func NewMemoryHub() *Hub { return NewMemoryHubClock(time.Now) }

// NewMemoryHubClock returns an empty hub whose expiry checks use now.
func NewMemoryHubClock(now func() time.Time) *Hub {
	return &Hub{
		now:       now,
		inboxes:   map[string]map[string]Signal{},
		presence:  map[string]Presence{},
		listeners: map[string]*memorySignaller{},
		published: make(chan struct{}),
	}
}

// Inbox returns the unexpired signals waiting in me's inbox, oldest first,
// without a listener: deterministic simulations read it at the instants
// they choose instead of receiving from a goroutine.
func (h *Hub) Inbox(me string) []Signal {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	var out []Signal
	for _, s := range h.inboxes[me] {
		if s.ExpiresAt.After(now) {
			s.Payload = append([]byte(nil), s.Payload...)
			out = append(out, s)
		}
	}
	sortByCreated(out)
	return out
}

// Open returns a Signaller for identity me on this hub.
func (h *Hub) Open(me string) Signaller {
	return &memorySignaller{hub: h, me: me, lifetime: newLifetime()}
}

type memorySignaller struct {
	hub *Hub
	me  string
	*lifetime

	stream *stream // guarded by hub.mu once listening
}

func (m *memorySignaller) Name() string { return "in-memory hub" }

func (m *memorySignaller) PublishPresence(ctx context.Context, p Presence) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := validPresence(p); err != nil {
		return err
	}
	if p.Version == 0 {
		p.Version = ProtocolVersion
	}
	p.LastSeen = m.hub.now()
	m.hub.mu.Lock()
	m.hub.presence[p.ID] = p
	close(m.hub.published)
	m.hub.published = make(chan struct{})
	m.hub.mu.Unlock()
	return nil
}

func (m *memorySignaller) WatchPresence(ctx context.Context, id string) (<-chan PresenceUpdate, error) {
	wake := func() <-chan struct{} {
		m.hub.mu.Lock()
		defer m.hub.mu.Unlock()
		return m.hub.published
	}
	return m.startWatch(ctx, id, func(ctx context.Context, out chan<- PresenceUpdate) {
		pollPresence(ctx, out, memoryWatchPoll, wake, func(ctx context.Context) (Presence, error) { return m.LookupPresence(ctx, id) })
	})
}

func (m *memorySignaller) LookupPresence(ctx context.Context, id string) (Presence, error) {
	if err := m.usable(); err != nil {
		return Presence{}, err
	}
	if err := ValidID(id); err != nil {
		return Presence{}, err
	}
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	p, ok := m.hub.presence[id]
	if !ok {
		return Presence{}, fmt.Errorf("presence of %s: %w", id, ErrNotFound)
	}
	return p, nil
}

func (m *memorySignaller) Send(ctx context.Context, s Signal) (string, error) {
	if err := m.usable(); err != nil {
		return "", err
	}
	if s.From == "" {
		s.From = m.me
	}
	s, err := prepare(s, m.hub.now())
	if err != nil {
		return "", err
	}
	s.Payload = append([]byte(nil), s.Payload...)
	h := m.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	s.ID = fmt.Sprintf("m%09d", h.seq)
	box := h.inboxes[s.To]
	if box == nil {
		box = map[string]Signal{}
		h.inboxes[s.To] = box
	}
	box[s.ID] = s
	if l := h.listeners[s.To]; l != nil {
		l.stream.push(SignalEvent{Signal: s})
	}
	return s.ID, nil
}

func (m *memorySignaller) Listen(ctx context.Context) (<-chan Event, error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	h := m.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if m.stream != nil {
		return nil, ErrAlreadyListening
	}
	if other := h.listeners[m.me]; other != nil {
		return nil, fmt.Errorf("%w: another signaller listens for %s", ErrAlreadyListening, m.me)
	}
	m.stream = newStream()
	m.stream.push(ListeningEvent{})
	h.listeners[m.me] = m
	now := h.now()
	var pending []Signal
	for id, s := range h.inboxes[m.me] {
		if !s.ExpiresAt.After(now) {
			delete(h.inboxes[m.me], id)
			continue
		}
		pending = append(pending, s)
	}
	sortByCreated(pending)
	for _, s := range pending {
		m.stream.push(SignalEvent{Signal: s})
	}
	runCtx := m.start(ctx)
	st := m.stream
	m.goWait(func() {
		st.run(runCtx)
		h.mu.Lock()
		if h.listeners[m.me] == m {
			delete(h.listeners, m.me)
		}
		h.mu.Unlock()
	})
	return st.out, nil
}

func (m *memorySignaller) Ack(ctx context.Context, signalID string) error {
	if err := m.usable(); err != nil {
		return err
	}
	m.hub.mu.Lock()
	defer m.hub.mu.Unlock()
	box := m.hub.inboxes[m.me]
	if _, ok := box[signalID]; !ok {
		return fmt.Errorf("ack %s: %w", signalID, ErrNotFound)
	}
	delete(box, signalID)
	return nil
}

func (m *memorySignaller) Close() error { return m.close() }
