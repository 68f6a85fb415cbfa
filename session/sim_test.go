package session

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
	"golang.org/x/crypto/curve25519"
)

// simKey derives a deterministic X25519 key pair from a seed byte.
func simKey(t testing.TB, seed byte) (priv, pub [32]byte) {
	t.Helper()
	for i := range priv {
		priv[i] = seed + byte(i)*7
	}
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], p)
	return priv, pub
}

// simPair returns an initiator and a responder machine that expect each
// other, with seeded randomness.
func simPair(t testing.TB, seed uint64, timers Timers) (a, b *Machine) {
	t.Helper()
	aPriv, aPub := simKey(t, 1)
	bPriv, bPub := simKey(t, 2)
	var err error
	a, err = NewMachine(Config{Initiator: true, LocalPrivate: aPriv, LocalPublic: aPub, RemoteStatic: bPub,
		SessionID: "testsession0001", Rand: simReader(seed), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewMachine(Config{Initiator: false, LocalPrivate: bPriv, LocalPublic: bPub, RemoteStatic: aPub,
		SessionID: "testsession0001", Rand: simReader(seed + 1), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// simReader is a deterministic io.Reader for ephemeral keys.
func simReader(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// simPacket is a datagram in flight on the simulated link.
type simPacket struct {
	at  time.Time
	ord int // tie-break so equal times keep a deterministic order
	to  int
	b   []byte
}

type simQueue []simPacket

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].ord < q[j].ord
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simPacket)) }
func (q *simQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

// simLink is a lossy, duplicating, reordering link between two machines,
// driven by a fake clock: a priority queue of datagrams by delivery time.
type simLink struct {
	t       testing.TB
	rng     *rand.Rand
	loss    float64       // probability a datagram is dropped
	dup     float64       // probability a datagram is delivered twice
	delay   time.Duration // base one-way delay
	reorder float64       // probability a datagram is held back by up to jitter
	jitter  time.Duration // the extra delay, which reorders datagrams
	q       simQueue
	ord     int
	// rate, if set, is the link's capacity in bytes per second each way:
	// datagrams queue behind each other (busy) before their delay starts,
	// as at a real bottleneck.
	rate float64
	busy [2]time.Time
	// tamper, if set, may rewrite or drop (return nil) a datagram.
	tamper func(from int, b []byte) []byte
}

func (l *simLink) send(now time.Time, from int, b []byte) {
	if len(b) > MaxDatagramSize {
		l.t.Fatalf("datagram of %d bytes exceeds %d", len(b), MaxDatagramSize)
	}
	if b[0] < 0x60 || b[0] > 0x6f {
		l.t.Fatalf("datagram starts with 0x%02x, outside the session range", b[0])
	}
	if l.tamper != nil {
		if b = l.tamper(from, b); b == nil {
			return
		}
	}
	copies := 1
	if l.rng.Float64() < l.dup {
		copies = 2
	}
	var queued time.Duration
	if l.rate > 0 {
		start := l.busy[from]
		if start.Before(now) {
			start = now
		}
		l.busy[from] = start.Add(time.Duration(float64(len(b)) / l.rate * float64(time.Second)))
		queued = l.busy[from].Sub(now)
	}
	for range copies {
		if l.rng.Float64() < l.loss {
			continue
		}
		d := l.delay + queued
		if l.jitter > 0 && l.rng.Float64() < l.reorder {
			d += time.Duration(l.rng.Int64N(int64(l.jitter)))
		}
		l.ord++
		heap.Push(&l.q, simPacket{at: now.Add(d), ord: l.ord, to: 1 - from, b: bytes.Clone(b)})
	}
}

// simEpoch is the fake clock's start.
var simEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// sim runs two machines over a simLink.
type sim struct {
	t     testing.TB
	link  *simLink
	m     [2]*Machine
	now   time.Time
	onEv  func(peer int, ev Event)
	steps int
	// later holds callbacks the test scheduled at a simulated time (a
	// store write finishing, say), run in time order by run.
	later []simTask
}

type simTask struct {
	at time.Time
	fn func()
}

// after schedules fn at now+d.
func (s *sim) after(d time.Duration, fn func()) {
	s.later = append(s.later, simTask{at: s.now.Add(d), fn: fn})
}

func newSim(t testing.TB, seed uint64, loss float64, timers Timers) *sim {
	a, b := simPair(t, seed, timers)
	s := &sim{
		t: t,
		link: &simLink{t: t, rng: simRand(seed), loss: loss, dup: 0.05,
			delay: 20 * time.Millisecond, reorder: 0.1, jitter: 30 * time.Millisecond},
		m:   [2]*Machine{a, b},
		now: simEpoch,
	}
	a.Start(s.now)
	b.Start(s.now)
	return s
}

// quiet turns off duplication and reordering for exact assertions.
func (s *sim) quiet() { s.link.dup, s.link.reorder = 0, 0 }

// pump moves transmits onto the link and hands events to onEv until both
// machines are quiet at the current time.
func (s *sim) pump() {
	for {
		busy := false
		for i, m := range s.m {
			for _, b := range m.Transmits() {
				busy = true
				s.link.send(s.now, i, b)
			}
			for _, ev := range m.Events() {
				busy = true
				if s.onEv != nil {
					s.onEv(i, ev)
				}
			}
		}
		if !busy {
			return
		}
	}
}

// run advances the fake clock from event to event until done or limit.
func (s *sim) run(done func() bool, limit time.Duration) {
	s.t.Helper()
	end := s.now.Add(limit)
	for {
		s.pump()
		if done() {
			return
		}
		next := time.Time{}
		if len(s.link.q) > 0 {
			next = s.link.q[0].at
		}
		for _, m := range s.m {
			next = sansio.Earliest(next, m.Deadline())
		}
		for _, task := range s.later {
			next = sansio.Earliest(next, task.at)
		}
		if next.IsZero() {
			s.t.Fatalf("simulation stalled at %v: nothing in flight, no timer", s.now)
		}
		if next.After(end) {
			s.t.Fatalf("simulation passed its limit of %v", limit)
		}
		if next.After(s.now) {
			s.now = next
		}
		s.steps++
		for len(s.link.q) > 0 && !s.link.q[0].at.After(s.now) {
			p := heap.Pop(&s.link.q).(simPacket)
			s.m[p.to].HandleDatagram(s.now, p.b)
		}
		for _, m := range s.m {
			if d := m.Deadline(); !d.IsZero() && !d.After(s.now) {
				m.HandleTimeout(s.now)
			}
		}
		due := s.later[:0:0]
		rest := s.later[:0]
		for _, task := range s.later {
			if task.at.After(s.now) {
				rest = append(rest, task)
			} else {
				due = append(due, task)
			}
		}
		s.later = rest
		for _, task := range due {
			task.fn()
		}
	}
}

// simMsgBody is a deterministic body for message n of a stream, mostly small
// with some multi-fragment and some maximum-size ones.
func simMsgBody(dir, n int) []byte {
	size := 1 + (n*37)%300
	switch {
	case n%997 == 0:
		size = MaxMessageSize
	case n%50 == 0:
		size = 3000 + n%2000
	case n%333 == 0:
		size = 0
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(dir*31 + n + i*13)
	}
	return b
}

func simMsgID(dir, n int) MessageID {
	var id MessageID
	id[0] = byte(dir)
	binary.BigEndian.PutUint64(id[8:], uint64(n))
	return id
}

// simStream tracks one direction of a transfer and checks exactly-once,
// in-order delivery and receipts.
type simStream struct {
	t         testing.TB
	dir       int // sender index
	n         int
	received  int
	delivered int
}

func (st *simStream) onReceived(ev Received) {
	st.t.Helper()
	if st.received >= st.n {
		st.t.Fatalf("stream %d: extra message %s", st.dir, ev.ID)
	}
	if want := simMsgID(st.dir, st.received); ev.ID != want {
		st.t.Fatalf("stream %d: message %d has id %s, want %s (lost, duplicated or reordered)", st.dir, st.received, ev.ID, want)
	}
	if !bytes.Equal(ev.Body, simMsgBody(st.dir, st.received)) {
		st.t.Fatalf("stream %d: message %d body differs (%d bytes)", st.dir, st.received, len(ev.Body))
	}
	st.received++
}

func (st *simStream) onDelivered(ev Delivered) {
	st.t.Helper()
	if want := simMsgID(st.dir, st.delivered); ev.ID != want {
		st.t.Fatalf("stream %d: receipt %d for %s, want %s", st.dir, st.delivered, ev.ID, want)
	}
	if st.delivered >= st.received {
		st.t.Fatalf("stream %d: receipt for message %d before it was received", st.dir, st.delivered)
	}
	st.delivered++
}

func (st *simStream) done() bool { return st.received == st.n && st.delivered == st.n }

// transfer sends n messages from A to B and back messages from B to A over
// a link with the given loss and checks every message arrives exactly once,
// in order, with its receipt.
func transfer(t *testing.T, seed uint64, loss float64, n, back int, tune func(*simLink)) *sim {
	return transferCommitting(t, seed, loss, n, back, tune, 0)
}

// transferCommitting is transfer with each Commit delayed by a random time
// up to maxDelay, as a store write would be, so commits complete out of
// order.
func transferCommitting(t *testing.T, seed uint64, loss float64, n, back int, tune func(*simLink), maxDelay time.Duration) *sim {
	t.Helper()
	// The give-up timers are stretched: at 50% loss a round trip fails 75%
	// of the time, so the default 20 s handshake and 60 s dead-peer limits
	// ended several of 30 seeded runs early (tried), as they should on
	// a path that bad. This test is about delivery, not giving up.
	s := newSim(t, seed, loss, Timers{DeadPeerTimeout: time.Hour, HandshakeTimeout: 10 * time.Minute})
	if tune != nil {
		tune(s.link)
	}
	streams := [2]*simStream{{t: t, dir: 0, n: n}, {t: t, dir: 1, n: back}}
	established := 0
	s.onEv = func(peer int, ev Event) {
		switch ev := ev.(type) {
		case Established:
			established++
		case Received:
			streams[1-peer].onReceived(ev)
			commit := func() {
				if err := s.m[peer].Commit(s.now, ev.ID); err != nil {
					t.Fatal(err)
				}
			}
			if maxDelay == 0 {
				commit()
			} else {
				s.after(time.Duration(s.link.rng.Int64N(int64(maxDelay))), commit)
			}
		case Delivered:
			streams[peer].onDelivered(ev)
		case Failed:
			t.Fatalf("peer %d failed: %v", peer, ev)
		}
	}
	for i := range n {
		if err := s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, i), Body: simMsgBody(0, i), SentAt: s.now}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range back {
		if err := s.m[1].Send(s.now, OutMessage{ID: simMsgID(1, i), Body: simMsgBody(1, i), SentAt: s.now}); err != nil {
			t.Fatal(err)
		}
	}
	s.run(func() bool { return streams[0].done() && streams[1].done() }, 24*time.Hour)
	if established != 2 {
		t.Fatalf("%d Established events, want 2", established)
	}
	return s
}

func TestSimulatedLinkExactlyOnceInOrder(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, loss := range []float64{0, 0.10, 0.30, 0.50} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("loss=%.0f%%/seed=%d", loss*100, seed), func(t *testing.T) {
				s := transfer(t, seed, loss, 10000, 500, nil)
				a, b := s.m[0].Stats(), s.m[1].Stats()
				t.Logf("simulated %v in %d steps; A sent %d datagrams, %d retransmits, srtt %v rto %v; B dups %d",
					s.now.Sub(simEpoch).Round(time.Millisecond), s.steps,
					a.DatagramsSent, a.Retransmits, a.SRTT, a.RTO, b.DuplicateFragments)
			})
		}
	}
}

// Commits that finish late and out of order (store writes in tea.Cmds)
// still produce every receipt, in order.
func TestSimulatedOutOfOrderCommits(t *testing.T) {
	for _, seed := range []uint64{1, 2} {
		transferCommitting(t, seed, 0.1, 3000, 300, nil, 50*time.Millisecond)
	}
}

// On a clean link (no loss, duplication or reordering) nothing is ever
// retransmitted: the timers and the loss detector don't fire spuriously.
func TestSimulatedCleanLinkNoRetransmits(t *testing.T) {
	s := transfer(t, 7, 0, 10000, 500, func(l *simLink) { l.dup, l.reorder = 0, 0 })
	for i, m := range s.m {
		st := m.Stats()
		if st.Retransmits != 0 || st.DuplicateFragments != 0 || st.HandshakeRetransmits != 0 {
			t.Errorf("peer %d: %+v, want no retransmits or duplicates", i, st)
		}
	}
}

func simRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 99)) }
