package punch

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// extraSocketQueue is the shared channel's room: a burst from a few
// hundred birthday sockets at once still waits in order rather than in
// the kernel's buffers.
const extraSocketQueue = 512

// ErrUnknownSocket is returned for a SocketID the set does not hold (never
// opened, or closed already).
var ErrUnknownSocket = errors.New("punch: no such socket")

// SocketSet is an owner's local sockets: the main one (ID 0, the first
// opened), extra ones for birthday probing, a TURN relay added from
// outside. It numbers them, delivers every datagram of every socket on one
// channel stamped with the socket's ID, sends each Transmit from the
// socket it names, and closes them. It is safe for concurrent use: the
// event loop opens and closes, a writer goroutine sends.
type SocketSet struct {
	ctx context.Context
	out chan Datagram

	mu     sync.Mutex
	socks  map[SocketID]PacketSocket
	next   SocketID
	closed bool
}

// NewSocketSet makes an empty set; its sockets close when ctx ends (Close
// must still be called to wait for their readers).
func NewSocketSet(ctx context.Context) *SocketSet {
	return &SocketSet{ctx: ctx, out: make(chan Datagram, extraSocketQueue), socks: make(map[SocketID]PacketSocket)}
}

// Datagrams delivers what every socket of the set receives. It is never
// closed (sockets come and go); the consumer stops on its own signal.
func (s *SocketSet) Datagrams() <-chan Datagram { return s.out }

// Deliver is the channel a socket built elsewhere (a TURN relay) must
// deliver its datagrams to, stamped with the ID from Reserve.
func (s *SocketSet) Deliver() chan<- Datagram { return s.out }

// Reserve takes the next SocketID for a socket built elsewhere, which is
// then given to Add.
func (s *SocketSet) Reserve() SocketID {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.next
	s.next++
	return id
}

// Add puts a socket built elsewhere (with a Reserved ID, delivering to
// Deliver) into the set, which closes it from then on.
func (s *SocketSet) Add(id SocketID, p PacketSocket) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		p.Close()
		return errors.New("punch: the socket set is closed")
	}
	if _, dup := s.socks[id]; dup {
		return fmt.Errorf("punch: socket %d is already in the set", id)
	}
	s.socks[id] = p
	return nil
}

// Listen opens a UDP socket on addr (see ListenUDP) with the next ID; the
// first socket of a set is the main one. bufSize is ListenConfig's.
func (s *SocketSet) Listen(addr string, bufSize int) (*Socket, error) {
	id := s.Reserve()
	sock, err := ListenConfig{ID: id, Deliver: s.out, BufferSize: bufSize}.Listen(s.ctx, addr)
	if err != nil {
		return nil, err
	}
	if err := s.Add(id, sock); err != nil {
		return nil, err
	}
	return sock, nil
}

// ListenMany opens up to n UDP sockets on addr (extra sockets for birthday
// probing) and returns the IDs of those it opened; err says why it stopped
// short (say, out of file descriptors), and what it opened stays open.
func (s *SocketSet) ListenMany(addr string, n, bufSize int) ([]SocketID, error) {
	ids := make([]SocketID, 0, n)
	for range n {
		sock, err := s.Listen(addr, bufSize)
		if err != nil {
			return ids, fmt.Errorf("open extra socket %d of %d: %w", len(ids)+1, n, err)
		}
		ids = append(ids, sock.ID())
	}
	return ids, nil
}

// Get returns the socket with the ID, or nil.
func (s *SocketSet) Get(id SocketID) PacketSocket {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.socks[id]
}

// Len is how many sockets are open.
func (s *SocketSet) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.socks)
}

// Send writes a Transmit from the socket it names.
func (s *SocketSet) Send(t Transmit) error {
	p := s.Get(t.Socket)
	if p == nil {
		return fmt.Errorf("send to %v from socket %d: %w", t.To, t.Socket, ErrUnknownSocket)
	}
	return p.WriteTo(t.Data, t.To)
}

// Close closes the sockets with the IDs and forgets them; an ID not in the
// set is skipped. It returns the first error.
func (s *SocketSet) Close(ids ...SocketID) error {
	var socks []PacketSocket
	s.mu.Lock()
	for _, id := range ids {
		if p, ok := s.socks[id]; ok {
			socks = append(socks, p)
			delete(s.socks, id)
		}
	}
	s.mu.Unlock()
	var first error
	for _, p := range socks {
		if err := p.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// CloseAll closes every socket, waits for their readers, and refuses
// sockets added later.
func (s *SocketSet) CloseAll() error {
	s.mu.Lock()
	s.closed = true
	ids := make([]SocketID, 0, len(s.socks))
	for id := range s.socks {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	return s.Close(ids...)
}
