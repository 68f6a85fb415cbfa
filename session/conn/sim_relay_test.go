package conn

// The simulated world's TURN server: allocations with permissions, relayed
// datagrams (one more network hop each way), outages after which it has
// forgotten every allocation, and a "direct block" that drops what the
// people send each other directly while relayed datagrams pass, so that a
// relayed path wins first and the direct one comes up under it.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch"
)

const simTURN = "turn:203.0.113.50:3478"

func simRelayIP() netip.Addr { return netip.AddrFrom4([4]byte{203, 0, 113, 50}) }

// simRelayFaults are a scenario's relay conditions.
type simRelayFaults struct {
	relay         bool      // both people configure the TURN server
	directBlocked []simSpan // datagrams between the people themselves are dropped
	relayDown     []simSpan // the TURN server does not answer (and forgets its allocations)
}

// simAlloc is one allocation on the simulated TURN server.
type simAlloc struct {
	owner     *simPerson
	gen       int
	socket    punch.SocketID
	addr      netip.AddrPort
	permitted map[netip.Addr]bool
}

// simRelay is the TURN server.
type simRelay struct {
	allocs   map[netip.AddrPort]*simAlloc
	next     uint16
	sockets  map[*simPerson]punch.SocketID
	requests int // allocations, permissions and releases asked for
	relayed  int // datagrams relayed
}

// during reports whether now falls in one of the spans.
func (w *simWorld) during(spans []simSpan) bool {
	return slices.ContainsFunc(spans, func(s simSpan) bool { return s.covers(w.elapsed()) })
}

func (w *simWorld) directBlocked() bool { return w.during(w.f.directBlocked) }
func (w *simWorld) relayIsDown() bool   { return w.during(w.f.relayDown) }

// up reports whether the server answers; while it is down it loses its
// allocations, as a restarted server would.
func (r *simRelay) up(w *simWorld) bool {
	if w.relayIsDown() {
		clear(r.allocs)
		return false
	}
	return true
}

// has reports whether addr is the TURN server's (a relayed address).
func (r *simRelay) has(addr netip.AddrPort) bool { return addr.Addr() == simRelayIP() }

// find is p's allocation with the socket ID, in process gen.
func (r *simRelay) find(p *simPerson, gen int, socket punch.SocketID) *simAlloc {
	for _, a := range r.allocs {
		if a.owner == p && a.gen == gen && a.socket == socket {
			return a
		}
	}
	return nil
}

// forget drops the allocations of a process that ended (their lifetime
// would run out; nothing reaches the process any more anyway).
func (r *simRelay) forget(p *simPerson) {
	for k, a := range r.allocs {
		if a.owner == p {
			delete(r.allocs, k)
		}
	}
}

// out is where a datagram p sends from its relay socket leaves the server
// from: its relayed address, if the allocation exists and permits the
// destination.
func (r *simRelay) out(p *simPerson, socket punch.SocketID, to netip.AddrPort) (netip.AddrPort, bool) {
	a := r.find(p, p.gen, socket)
	if a == nil || !r.up(p.w) || !a.permitted[to.Addr()] {
		return netip.AddrPort{}, false
	}
	r.relayed++
	return a.addr, true
}

// in relays a datagram that reached a relayed address to its owner.
func (r *simRelay) in(src, to netip.AddrPort, data []byte) {
	a := r.allocs[to]
	owner := a.ownerIfUp()
	if owner == nil {
		return
	}
	w := owner.w
	if !r.up(w) || !a.permitted[src.Addr()] {
		return
	}
	r.relayed++
	gen, socket := a.gen, a.socket
	w.at(w.f.latency, func() {
		if w.partitioned() {
			return
		}
		dg := punch.Datagram{From: src, Data: data, At: w.now, Socket: socket}
		owner.input(gen, func(e *Engine) { e.HandleDatagram(w.now, dg) })
	})
}

func (a *simAlloc) ownerIfUp() *simPerson {
	if a == nil {
		return nil
	}
	return a.owner
}

// performRelay carries out the relay and extra-socket effects; it reports
// whether ef was one.
func (p *simPerson) performRelay(gen int, ef Effect) bool {
	w := p.w
	r := &w.relay
	if r.allocs == nil {
		r.allocs, r.sockets = map[netip.AddrPort]*simAlloc{}, map[*simPerson]punch.SocketID{}
	}
	rtt := 2 * w.f.latency
	switch ef := ef.(type) {
	case AllocateRelay:
		r.requests += 2 // the 401 challenge, then the allocation
		w.at(rtt, func() {
			if !p.running || p.gen != gen {
				return
			}
			if !r.up(w) {
				// A client gives up after its retransmissions.
				w.at(5*time.Second, func() {
					p.input(gen, func(e *Engine) {
						e.HandleRelayAllocated(w.now, RelayAllocated{Gen: ef.Gen, Err: errors.New("TURN server " + ef.URI + " did not answer")})
					})
				})
				return
			}
			r.sockets[p]++
			r.next++
			a := &simAlloc{owner: p, gen: gen, socket: 100 + r.sockets[p], addr: netip.AddrPortFrom(simRelayIP(), 40000+r.next),
				permitted: map[netip.Addr]bool{}}
			r.allocs[a.addr] = a
			w.logf("%s allocates %v (socket %d)", p.name, a.addr, a.socket)
			p.input(gen, func(e *Engine) {
				e.HandleRelayAllocated(w.now, RelayAllocated{Gen: ef.Gen, Socket: a.socket, Addr: a.addr})
			})
		})
	case PermitRelay:
		r.requests++
		w.at(rtt, func() {
			a := r.find(p, gen, ef.Socket)
			var err error
			if !r.up(w) || a == nil {
				err = errors.New("TURN server " + simTURN + " refused a permission (437 Allocation Mismatch)")
			} else {
				for _, ap := range ef.Addrs {
					a.permitted[ap.Addr()] = true
				}
			}
			p.input(gen, func(e *Engine) {
				e.HandleRelayPermitted(w.now, RelayPermitted{Peer: ef.Peer, SessionID: ef.SessionID, Socket: ef.Socket, Err: err})
			})
		})
	case ReleaseRelay:
		r.requests++
		if a := r.find(p, gen, ef.Socket); a != nil {
			delete(r.allocs, a.addr)
			w.logf("%s releases %v", p.name, a.addr)
		}
	case OpenSockets:
		w.at(0, func() {
			p.input(gen, func(e *Engine) {
				e.HandleSocketsOpened(w.now, SocketsOpened{Peer: ef.Peer, SessionID: ef.SessionID,
					Err: errors.New("the simulation has no extra sockets")})
			})
		})
	case CloseSockets:
	default:
		return false
	}
	return true
}

// simRandomRelayFaults draws a scenario's relay conditions from its seed
// (its own stream, so the other conditions stay those of the seed).
func simRandomRelayFaults(seed uint64, quiet time.Duration) simRelayFaults {
	r := rand.New(rand.NewPCG(seed, 0x7e1a))
	var f simRelayFaults
	if r.IntN(3) != 0 {
		return f
	}
	f.relay = true
	switch r.IntN(4) {
	case 0:
		f.directBlocked = []simSpan{{0, quiet + time.Hour}} // two symmetric NATs, say
	case 1, 2:
		f.directBlocked = []simSpan{{0, time.Duration(1+r.IntN(10)) * time.Second}}
	}
	if r.IntN(4) == 0 {
		from := time.Duration(r.IntN(120)) * time.Second
		f.relayDown = []simSpan{{from, from + time.Duration(5+r.IntN(55))*time.Second}}
	}
	return f
}

// simRelayPair starts alice and bob, contacts with a TURN server, and has
// both send a message every gap from start to stop.
func simRelayPair(t *testing.T, seed uint64, f simFaults, start, stop, gap time.Duration) (*simWorld, *simPerson, *simPerson) {
	w := newSimWorld(t, seed, f)
	a, b := w.addPerson("alice", 1), w.addPerson("bob", 2)
	befriend(a, b)
	w.at(0, a.start)
	w.at(time.Duration(seed%500)*time.Millisecond, b.start)
	i := 0
	for at := start; at < stop; at += gap {
		n := i
		i++
		w.at(at, func() {
			a.input(a.gen, func(e *Engine) { _, _ = e.Send(w.now, b.idStr, fmt.Sprintf("a%d", n)) })
			b.input(b.gen, func(e *Engine) { _, _ = e.Send(w.now, a.idStr, fmt.Sprintf("b%d", n)) })
		})
	}
	return w, a, b
}

// checkExactlyOnce fails unless everything each side stored arrived at the
// other once, in order, and no outbox holds anything.
func (w *simWorld) checkExactlyOnce(a, b *simPerson) {
	w.t.Helper()
	for _, pair := range [][2]*simPerson{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		if len(from.stored) == 0 {
			w.fail("%s stored nothing", from.name)
		}
		if !slices.Equal(from.stored, to.got) {
			w.fail("%s stored %d messages; %s received %d (every message once, in order)", from.name, len(from.stored), to.name, len(to.got))
		}
		if n := len(from.st.outbox[to.idStr]); n != 0 {
			w.fail("%s's outbox for %s still holds %d messages", from.name, to.name, n)
		}
	}
}

// TestSimRelayToDirect: the direct path is blocked for the first seconds,
// so the session starts over the relay; when the block lifts the session
// moves to the direct path, while both sides send a message every 50 ms
// across the move: each arrives once, in order. Later the unused
// allocation is released.
func TestSimRelayToDirect(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		f := simFaults{latency: time.Duration(5+seed%30) * time.Millisecond, jitter: 3 * time.Millisecond, sigLatency: 30 * time.Millisecond,
			simRelayFaults: simRelayFaults{relay: true, directBlocked: []simSpan{{0, time.Duration(2000+seed*97%4000) * time.Millisecond}}}}
		w, a, b := simRelayPair(t, seed, f, 500*time.Millisecond, 10*time.Second, 50*time.Millisecond)
		w.run(DefaultRelayIdle + 30*time.Second)
		if w.violation != "" {
			w.fail("%s", w.violation)
		}
		w.checkExactlyOnce(a, b)
		for _, p := range []*simPerson{a, b} {
			var first Connected
			var moved []PathMoved
			movedAt, inBefore, inAfter := -1, 0, 0
			for i, n := range p.notes {
				switch n := n.(type) {
				case Connected:
					if first.Peer == "" {
						first = n
					}
				case PathMoved:
					moved = append(moved, n)
					if movedAt < 0 {
						movedAt = i
					}
				case MessageIn:
					if movedAt < 0 {
						inBefore++
					} else {
						inAfter++
					}
				}
			}
			if first.Path.Kind != "relayed" || first.Path.Words() != "relayed via 203.0.113.50" {
				w.fail("%s first connected on %+v (%q), want the relay", p.name, first.Path, first.Path.Words())
			}
			if len(moved) != 1 || moved[0].Path.Kind != "direct" || moved[0].Path.Words() != "direct" {
				w.fail("%s moved %+v, want once, to the direct path", p.name, moved)
			}
			if inBefore == 0 || inAfter == 0 {
				w.fail("%s received %d messages before the move and %d after: want some on each path", p.name, inBefore, inAfter)
			}
			if st := p.eng.Peer(p.other(w).idStr); st.Phase != PhaseConnected || st.Path.Kind != "direct" {
				w.fail("%s ends %v on %+v, want connected directly", p.name, st.Phase, st.Path)
			}
			released := false
			for _, n := range notesSince[RelayChanged](p, 0) {
				released = released || (!n.OK && n.Words == "")
			}
			if !released || p.eng.relay.st != relayNone {
				w.fail("%s kept its allocation (%v) after %v unused", p.name, p.eng.relay.st, DefaultRelayIdle)
			}
		}
	}
}

func (p *simPerson) other(w *simWorld) *simPerson {
	for _, q := range w.people {
		if q != p {
			return q
		}
	}
	return nil
}

// TestSimRelayDies: two people with no direct path talk over the relay;
// the TURN server goes down mid-session and comes back (having forgotten
// every allocation) while both keep sending. The failure says the relay
// did not answer; nothing is lost or doubled, and they end connected over
// a fresh allocation.
func TestSimRelayDies(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		down := time.Duration(15+seed%10) * time.Second
		f := simFaults{latency: 10 * time.Millisecond, jitter: 3 * time.Millisecond, sigLatency: 30 * time.Millisecond,
			simRelayFaults: simRelayFaults{relay: true, directBlocked: []simSpan{{0, time.Hour}},
				relayDown: []simSpan{{down, down + 40*time.Second}}}}
		w, a, b := simRelayPair(t, seed, f, time.Second, down+50*time.Second, 200*time.Millisecond)
		w.run(down + 10*time.Minute)
		if w.violation != "" {
			w.fail("%s", w.violation)
		}
		w.checkExactlyOnce(a, b)
		if !connected(a, b) {
			w.fail("not connected at the end: alice sees %+v", a.eng.Peer(b.idStr))
		}
		for _, p := range []*simPerson{a, b} {
			if st := p.eng.Peer(p.other(w).idStr); st.Path.Kind != "relayed" {
				w.fail("%s ends on %+v, want the relay", p.name, st.Path)
			}
			said := false
			for _, n := range notesSince[Failed](p, 0) {
				said = said || n.Reason == ReasonPathLost || strings.Contains(n.Words, "did not answer")
			}
			if !said {
				w.fail("%s was never told the relayed path went silent or the relay did not answer", p.name)
			}
		}
	}
}

// TestSimRelayDownWords: between two people with no direct path, a TURN
// server that never answers makes the failure say so, in words.
func TestSimRelayDownWords(t *testing.T) {
	f := simFaults{latency: 10 * time.Millisecond, sigLatency: 30 * time.Millisecond,
		simRelayFaults: simRelayFaults{relay: true, directBlocked: []simSpan{{0, time.Hour}}, relayDown: []simSpan{{0, time.Hour}}}}
	w, a, b := simRelayPair(t, 1, f, time.Second, 2*time.Second, time.Second)
	w.runUntil("a failure", time.Minute, func() bool { return len(notesSince[Failed](a, 0)) > 0 })
	got := notesSince[Failed](a, 0)[0]
	want := "and no relay: TURN server " + simTURN + " did not answer"
	if !strings.Contains(got.Words, want) {
		w.fail("failure words %q, want them to say %q", got.Words, want)
	}
	var relay []RelayChanged
	for _, p := range []*simPerson{a, b} {
		relay = append(relay, notesSince[RelayChanged](p, 0)...)
	}
	if len(relay) == 0 || relay[0].OK || !strings.Contains(relay[0].Words, "did not answer") {
		w.fail("relay notifications %+v, want the failure in words", relay)
	}
}

// TestSimRelayNeverDelaysDirect: with a TURN server that does not answer,
// an offer waits for the allocation at most RelayWait, and the direct path
// comes up as it would without a relay.
func TestSimRelayNeverDelaysDirect(t *testing.T) {
	for _, down := range []bool{false, true} {
		f := simFaults{latency: 10 * time.Millisecond, sigLatency: 30 * time.Millisecond, simRelayFaults: simRelayFaults{relay: true}}
		if down {
			f.relayDown = []simSpan{{0, time.Hour}}
		}
		w, a, b := simRelayPair(t, 2, f, 10*time.Second, 11*time.Second, time.Second)
		w.run(5 * time.Second)
		var c []Connected
		for _, p := range []*simPerson{a, b} {
			c = append(c, notesSince[Connected](p, 0)...)
		}
		if len(c) < 2 {
			w.fail("relay down %v: not connected within 5 s", down)
		}
		for _, n := range c {
			if n.Path.Words() != "direct" {
				w.fail("relay down %v: connected %q, want direct", down, n.Path.Words())
			}
			// Offer out and answer back: two signalling hops, the
			// listener's delivery each, and at most RelayWait.
			if limit := DefaultRelayWait + 8*f.sigLatency; n.Measured && n.Signalling > limit {
				w.fail("relay down %v: signalling took %v, more than %v", down, n.Signalling, limit)
			}
		}
	}
}

func TestPathWords(t *testing.T) {
	v4, v6 := netip.MustParseAddrPort("198.51.100.2:4000"), netip.MustParseAddrPort("[2001:db8::2]:4000")
	for _, c := range []struct {
		p    Path
		want string
	}{
		{Path{}, ""},
		{Path{Kind: "direct", Remote: v4}, "direct"},
		{Path{Kind: "predicted", Remote: v4}, "direct"},
		{Path{Kind: "direct", Remote: v6}, "direct (IPv6)"},
		{Path{Kind: "direct", Remote: netip.MustParseAddrPort("[::ffff:198.51.100.2]:4000")}, "direct"},
		{Path{Kind: "relayed", Relay: "turn.example.org", Remote: v4}, "relayed via turn.example.org"},
		{Path{Kind: "relayed", Remote: v6}, "relayed"},
	} {
		if got := c.p.Words(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
}

// TestSimRelayReleasedWhenDirect: a pair that connects directly at once
// lets its allocation go after RelayIdle, and a later attempt makes a
// fresh one.
func TestSimRelayReleasedWhenDirect(t *testing.T) {
	f := simFaults{latency: 10 * time.Millisecond, sigLatency: 30 * time.Millisecond, simRelayFaults: simRelayFaults{relay: true}}
	w, a, b := simRelayPair(t, 3, f, time.Second, 2*time.Second, time.Second)
	w.run(DefaultRelayIdle + 10*time.Second)
	if !connected(a, b) || a.eng.Peer(b.idStr).Path.Kind != "direct" {
		w.fail("not connected directly: %+v", a.eng.Peer(b.idStr))
	}
	for _, p := range []*simPerson{a, b} {
		if p.eng.relay.st != relayNone {
			w.fail("%s still holds its allocation (%v) after %v unused", p.name, p.eng.relay.st, DefaultRelayIdle)
		}
	}
	w.checkExactlyOnce(a, b)
}
