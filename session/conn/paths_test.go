package conn

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session/identity"
)

// effectsOf returns the effects of type T among es.
func effectsOf[T Effect](es []Effect) []T {
	var out []T
	for _, e := range es {
		if x, ok := e.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// The symmetric side of birthday probing asks for its extra sockets as an
// effect, probes from each once they are opened, and has them closed when
// the attempt ends; a late batch nobody wants is closed at once.
func TestBirthdaySocketsAreAskedForAndClosed(t *testing.T) {
	me, peer := simKey(t, 1), simKey(t, 2)
	e, err := New(Config{Identity: me, Name: "me", Rand: rand.NewChaCha8([32]byte{1}),
		Host: []punch.Candidate{{Type: punch.CandidateHost, Addr: mustAddr("10.1.0.2:4000")}}})
	if err != nil {
		t.Fatal(err)
	}
	now := simEpoch
	e.Start(now)
	e.Effects()
	// Discovery found a symmetric NAT; the peer is behind a port-restricted cone.
	e.nat = punch.NATBehavior{Mapping: punch.MappingAddressAndPortDependent, Filtering: punch.FilteringAddressAndPortDependent}
	r := punch.Candidate{Type: punch.CandidateServerReflexive, Addr: mustAddr("198.51.100.11:4000")}
	e.reflexive = &r
	l := e.link(peer.ID(), peer.Public)
	l.sid, l.role = "s1", punch.Controlling
	l.startPaths(now, []punch.Candidate{
		{Type: punch.CandidateHost, Addr: mustAddr("10.2.0.2:5000"), Priority: 100},
		{Type: punch.CandidateServerReflexive, Addr: mustAddr("198.51.100.12:5000"), Priority: 50},
	}, punch.NATBehavior{Mapping: punch.MappingEndpointIndependent, Filtering: punch.FilteringAddressAndPortDependent})
	l.pump(now)
	want := effectsOf[OpenSockets](e.Effects())
	if len(want) != 1 || want[0].Count != 256 || want[0].Peer != peer.ID() || want[0].SessionID != "s1" {
		t.Fatalf("asked for %+v, want one OpenSockets of 256 for this attempt", want)
	}
	ids := make([]punch.SocketID, 40) // fewer than asked: descriptors ran out
	for i := range ids {
		ids[i] = punch.SocketID(10 + i)
	}
	e.HandleSocketsOpened(now, SocketsOpened{Peer: peer.ID(), SessionID: "s1", IDs: ids})
	from := map[punch.SocketID]bool{}
	for _, d := range effectsOf[SendDatagram](e.Effects()) {
		if d.To == mustAddr("198.51.100.12:5000") {
			from[d.Socket] = true
		}
	}
	for _, id := range ids {
		if !from[id] {
			t.Fatalf("nothing sent from extra socket %d to the peer's public address; sent from %v", id, from)
		}
	}
	// A batch for an attempt that is over goes straight back.
	e.HandleSocketsOpened(now, SocketsOpened{Peer: peer.ID(), SessionID: "old", IDs: []punch.SocketID{900}})
	if c := effectsOf[CloseSockets](e.Effects()); len(c) != 1 || !slices.Equal(c[0].IDs, []punch.SocketID{900}) {
		t.Fatalf("a stale batch: %+v, want it closed", c)
	}
	l.teardown(now.Add(time.Second))
	var closed []punch.SocketID
	for _, c := range effectsOf[CloseSockets](e.Effects()) {
		closed = append(closed, c.IDs...)
	}
	slices.Sort(closed)
	if !slices.Equal(closed, ids) {
		t.Fatalf("closed %v when the attempt ended, want every extra socket %v", closed, ids)
	}
	if len(e.byTag) != 0 || len(e.byRoute) != 0 {
		t.Fatalf("the ended attempt left %d tags and %d routes", len(e.byTag), len(e.byRoute))
	}
}

// An offer waits for an allocation under way, but only RelayWait from when
// it was asked for; its relayed candidate rides in the sealed offer when
// the allocation came in time.
func TestOfferWaitsForTheRelayBriefly(t *testing.T) {
	for _, answered := range []bool{true, false} {
		me, peer := simKey(t, 1), simKey(t, 2)
		e, err := New(Config{Identity: me, Name: "me", Rand: rand.NewChaCha8([32]byte{2}), TURN: []string{"turn:203.0.113.20:3478"},
			Host: []punch.Candidate{{Type: punch.CandidateHost, Addr: mustAddr("198.51.100.21:4000")}}})
		if err != nil {
			t.Fatal(err)
		}
		now := simEpoch
		e.Start(now)
		alloc := effectsOf[AllocateRelay](e.Effects())
		if len(alloc) != 1 || alloc[0].URI != "turn:203.0.113.20:3478" {
			t.Fatalf("start asked for %+v, want one allocation", alloc)
		}
		e.HandleContacts(now, ContactsResult{Contacts: []Contact{{ID: peer.ID(), Name: "bob", Public: peer.Public}}})
		e.HandlePresence(now, peer.ID(), Presence{Name: "bob", LastSeen: now, Instance: "x"}, true, nil)
		e.Effects()
		now = now.Add(100 * time.Millisecond)
		if err := e.Connect(now, peer.ID()); err != nil {
			t.Fatal(err)
		}
		if s := effectsOf[SendSignal](e.Effects()); len(s) != 0 {
			t.Fatalf("the offer went before the allocation answered or RelayWait passed")
		}
		if d := e.Deadline(); !d.Equal(simEpoch.Add(DefaultRelayWait)) {
			t.Fatalf("deadline %v, want RelayWait after the allocation was asked for", d.Sub(simEpoch))
		}
		if answered {
			now = now.Add(50 * time.Millisecond)
			e.HandleRelayAllocated(now, RelayAllocated{Gen: alloc[0].Gen, Socket: 1, Addr: mustAddr("203.0.113.20:50000")})
		} else {
			now = simEpoch.Add(DefaultRelayWait)
			e.HandleTimeout(now)
		}
		s := effectsOf[SendSignal](e.Effects())
		if len(s) != 1 || s[0].Signal.Kind != KindOffer {
			t.Fatalf("answered %v: signals %+v, want the offer", answered, s)
		}
		inv, err := identity.NewSealer(peer).Open(me.Public, s[0].Signal.SessionID, KindOffer.String(), s[0].Signal.Payload)
		if err != nil {
			t.Fatal(err)
		}
		cands, _, err := punch.DecodeCandidates(inv.Candidates)
		if err != nil {
			t.Fatal(err)
		}
		has := slices.ContainsFunc(cands, func(c punch.Candidate) bool {
			return c.Type == punch.CandidateRelayed && c.Addr == netip.MustParseAddrPort("203.0.113.20:50000")
		})
		if has != answered {
			t.Fatalf("answered %v: the offer's candidates %v", answered, cands)
		}
	}
}
