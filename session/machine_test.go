package session

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// eventLog gathers every event of both peers of a sim.
type eventLog struct{ ev [2][]Event }

func (c *eventLog) on(peer int, ev Event) { c.ev[peer] = append(c.ev[peer], ev) }

func (c *eventLog) count(peer int, match func(Event) bool) int {
	n := 0
	for _, ev := range c.ev[peer] {
		if match(ev) {
			n++
		}
	}
	return n
}

func isEstablished(ev Event) bool { _, ok := ev.(Established); return ok }
func isReceived(ev Event) bool    { _, ok := ev.(Received); return ok }

func failedWith(c *eventLog, peer int) (Failed, bool) {
	for _, ev := range c.ev[peer] {
		if f, ok := ev.(Failed); ok {
			return f, true
		}
	}
	return Failed{}, false
}

func TestHandshakeEstablishes(t *testing.T) {
	s := newSim(t, 1, 0, Timers{})
	var c eventLog
	s.onEv = c.on
	s.run(func() bool { return s.m[0].Established() && s.m[1].Established() }, time.Second)
	for peer := range 2 {
		if n := c.count(peer, isEstablished); n != 1 {
			t.Errorf("peer %d: %d Established events, want 1", peer, n)
		}
	}
	_, bPub := simKey(t, 2)
	if got := c.ev[0][0].(Established).RemoteStatic; got != bPub {
		t.Errorf("initiator established with %x, want %x", got, bPub)
	}
}

// A lost message 2 makes the initiator resend message 1; the responder
// answers with the same message 2 and keeps its one handshake.
func TestHandshakeRetransmitIsIdempotent(t *testing.T) {
	s := newSim(t, 1, 0, Timers{})
	s.quiet()
	var c eventLog
	s.onEv = c.on
	var msg2s [][]byte
	s.link.tamper = func(from int, b []byte) []byte {
		if b[0] == typeHandshakeResp {
			msg2s = append(msg2s, bytes.Clone(b))
			if len(msg2s) <= 2 {
				return nil // lose the first two answers
			}
		}
		return b
	}
	s.run(func() bool { return s.m[0].Established() }, 10*time.Second)
	if len(msg2s) != 3 {
		t.Fatalf("%d message 2 sent, want 3", len(msg2s))
	}
	for _, m := range msg2s[1:] {
		if !bytes.Equal(m, msg2s[0]) {
			t.Fatal("responder answered a resent message 1 with a different message 2")
		}
	}
	if got := s.m[0].Stats().HandshakeRetransmits; got != 2 {
		t.Errorf("initiator resent message 1 %d times, want 2", got)
	}
	// 500 ms, then 1 s later: established after the third message 1.
	if got, want := s.now.Sub(simEpoch), 1500*time.Millisecond+40*time.Millisecond; got != want {
		t.Errorf("established after %v, want %v (500 ms then doubling)", got, want)
	}
	if n := c.count(1, isEstablished); n != 1 {
		t.Errorf("responder: %d Established events, want 1", n)
	}
	// Both ends really share keys: a message goes through.
	if err := s.m[1].Send(s.now, OutMessage{ID: simMsgID(1, 0), Body: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	s.run(func() bool { return c.count(0, isReceived) == 1 }, time.Second)
}

func TestHandshakeDropsImpostorAndStillCompletes(t *testing.T) {
	aPriv, aPub := simKey(t, 1)
	bPriv, bPub := simKey(t, 2)
	cPriv, cPub := simKey(t, 3)
	// B accepted A's offer; C knows the session ID and B's public key and
	// races A with a message 1 of its own.
	a, err := NewMachine(Config{Initiator: true, LocalPrivate: aPriv, LocalPublic: aPub, RemoteStatic: bPub, SessionID: "s12345678"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewMachine(Config{Initiator: true, LocalPrivate: cPriv, LocalPublic: cPub, RemoteStatic: bPub, SessionID: "s12345678"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMachine(Config{LocalPrivate: bPriv, LocalPublic: bPub, RemoteStatic: aPub, SessionID: "s12345678"})
	if err != nil {
		t.Fatal(err)
	}
	now := simEpoch
	c.Start(now)
	a.Start(now)
	b.Start(now)
	for _, d := range c.Transmits() {
		b.HandleDatagram(now, d)
	}
	if out := b.Transmits(); len(out) != 0 {
		t.Errorf("responder answered an impostor with %d datagrams", len(out))
	}
	if evs := b.Events(); len(evs) != 0 {
		t.Fatalf("the impostor's message 1 produced events %v; want none (dropped)", evs)
	}
	if st := b.Stats(); st.WrongKey != 1 {
		t.Fatalf("WrongKey = %d, want 1", st.WrongKey)
	}
	for _, d := range a.Transmits() {
		b.HandleDatagram(now, d)
	}
	for _, d := range b.Transmits() {
		a.HandleDatagram(now, d)
	}
	if !a.Established() || !b.Established() {
		t.Fatalf("the real handshake did not complete after the impostor's: a %v, b %v", a.Established(), b.Established())
	}
}

// The first retransmission of message 1 follows the RTT punch measured,
// with the floor and the cap of the constants; without an RTT it is
// HandshakeInitialRTO.
func TestHandshakeRetransmitFollowsPathRTT(t *testing.T) {
	aPriv, aPub := simKey(t, 1)
	_, bPub := simKey(t, 2)
	for _, c := range []struct {
		rtt, want time.Duration
	}{
		{0, HandshakeInitialRTO},
		{time.Millisecond, HandshakeMinRTO},
		{40 * time.Millisecond, 120 * time.Millisecond},
		{time.Second, HandshakeInitialRTO},
	} {
		a, err := NewMachine(Config{Initiator: true, LocalPrivate: aPriv, LocalPublic: aPub, RemoteStatic: bPub, SessionID: "rtt", PathRTT: c.rtt})
		if err != nil {
			t.Fatal(err)
		}
		a.Start(simEpoch)
		if n := len(a.Transmits()); n != 1 {
			t.Fatalf("rtt %v: %d datagrams at start, want message 1", c.rtt, n)
		}
		a.HandleTimeout(simEpoch.Add(c.want - time.Microsecond))
		if n := len(a.Transmits()); n != 0 {
			t.Fatalf("rtt %v: resent before %v", c.rtt, c.want)
		}
		if d := a.Deadline(); !d.Equal(simEpoch.Add(c.want)) {
			t.Fatalf("rtt %v: deadline %v after start, want %v", c.rtt, d.Sub(simEpoch), c.want)
		}
		a.HandleTimeout(simEpoch.Add(c.want))
		if n := len(a.Transmits()); n != 1 {
			t.Fatalf("rtt %v: %d datagrams at %v, want message 1 again", c.rtt, n, c.want)
		}
		// Then it doubles.
		if d := a.Deadline(); !d.Equal(simEpoch.Add(3 * c.want)) {
			t.Fatalf("rtt %v: second deadline %v after start, want %v", c.rtt, d.Sub(simEpoch), 3*c.want)
		}
	}
}

// Different session IDs change the prologue: the handshake can't complete
// and ends with a timeout, never with a session.
func TestHandshakeBindsSessionID(t *testing.T) {
	aPriv, aPub := simKey(t, 1)
	bPriv, bPub := simKey(t, 2)
	a, _ := NewMachine(Config{Initiator: true, LocalPrivate: aPriv, LocalPublic: aPub, RemoteStatic: bPub, SessionID: "sessionone"})
	b, _ := NewMachine(Config{LocalPrivate: bPriv, LocalPublic: bPub, RemoteStatic: aPub, SessionID: "sessiontwo"})
	s := &sim{t: t, link: &simLink{t: t, rng: simRand(1), delay: 10 * time.Millisecond}, m: [2]*Machine{a, b}, now: simEpoch}
	var c eventLog
	s.onEv = c.on
	a.Start(s.now)
	b.Start(s.now)
	s.run(func() bool { _, ok := failedWith(&c, 0); return ok }, time.Minute)
	f, _ := failedWith(&c, 0)
	if f.Reason != ReasonHandshakeTimeout {
		t.Errorf("initiator failed with %v, want handshake timeout", f)
	}
	if got := s.now.Sub(simEpoch); got != HandshakeTimeout {
		t.Errorf("gave up after %v, want %v", got, HandshakeTimeout)
	}
	if b.Stats().DroppedUnauthenticated == 0 {
		t.Error("responder did not count the foreign message 1 as unauthenticated")
	}
	// Eight sends: at 0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5 and 19.5 s.
	if got := a.Stats().HandshakeRetransmits; got != 7 {
		t.Errorf("%d retransmissions of message 1, want 7 (500 ms doubling to 4 s, for 20 s)", got)
	}
}

// Replayed datagrams are refused by the window, tampered ones by the AEAD,
// garbage by the parser; the counters say so and the session carries on.
func TestReplayAndForgeryAreDroppedAndCounted(t *testing.T) {
	s := newSim(t, 3, 0, Timers{})
	s.quiet()
	var c eventLog
	s.onEv = func(peer int, ev Event) {
		c.on(peer, ev)
		if r, ok := ev.(Received); ok {
			if err := s.m[peer].Commit(s.now, r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	var captured [][]byte
	s.link.tamper = func(from int, b []byte) []byte {
		if from == 0 && b[0] == typeTransport {
			captured = append(captured, bytes.Clone(b))
		}
		return b
	}
	for i := range 20 {
		if err := s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, i), Body: simMsgBody(0, i)}); err != nil {
			t.Fatal(err)
		}
	}
	s.run(func() bool { return c.count(1, isReceived) == 20 && len(s.link.q) == 0 }, time.Minute)
	b := s.m[1]
	stats0 := b.Stats()

	// Replays of everything A sent.
	for _, d := range captured {
		b.HandleDatagram(s.now, d)
	}
	stats1 := b.Stats()
	if got := stats1.Replays - stats0.Replays; got != uint64(len(captured)) {
		t.Errorf("replays counted %d, want %d", got, len(captured))
	}

	// A fresh datagram, held back from the link, tampered with one bit at
	// every position, truncated at every length, then delivered intact.
	var fresh []byte
	s.link.tamper = func(from int, d []byte) []byte {
		if from == 0 && fresh == nil {
			fresh = bytes.Clone(d)
			return nil
		}
		return d
	}
	_ = s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, 20), Body: simMsgBody(0, 20)})
	s.pump()
	if fresh == nil {
		t.Fatal("no datagram captured")
	}
	attacks := 0
	for i := range fresh {
		for bit := range 8 {
			d := bytes.Clone(fresh)
			d[i] ^= 1 << bit
			b.HandleDatagram(s.now, d)
			attacks++
		}
	}
	for n := range fresh {
		b.HandleDatagram(s.now, fresh[:n])
		attacks++
	}
	for _, d := range [][]byte{nil, bytes.Repeat([]byte{typeTransport}, MaxDatagramSize+1), make([]byte, handshakeInitLen)} {
		b.HandleDatagram(s.now, d)
		attacks++
	}
	stats2 := b.Stats()
	dropped := (stats2.Replays - stats1.Replays) + (stats2.DroppedUnauthenticated - stats1.DroppedUnauthenticated) + (stats2.DroppedMalformed - stats1.DroppedMalformed)
	if dropped != uint64(attacks) {
		t.Errorf("dropped %d datagrams, want all %d", dropped, attacks)
	}
	if got, min := stats2.DroppedUnauthenticated-stats1.DroppedUnauthenticated, uint64(8*(len(fresh)-transportHeaderLen)); got < min {
		t.Errorf("%d tampered datagrams counted as unauthenticated, want at least %d", got, min)
	}
	if stats2.DatagramsReceived != stats0.DatagramsReceived {
		t.Errorf("%d forged or replayed datagrams accepted", stats2.DatagramsReceived-stats0.DatagramsReceived)
	}
	if evs := b.Events(); len(evs) != 0 {
		t.Fatalf("attack produced events %v", evs)
	}
	t.Logf("receiver after %d replays and %d forgeries: %+v", len(captured), attacks, stats2)
	b.HandleDatagram(s.now, fresh)
	if got := b.Stats().DatagramsReceived; got != stats0.DatagramsReceived+1 {
		t.Error("the intact datagram was not accepted after the forgeries")
	}
	// The session survives: more messages in both directions.
	for i := 21; i < 30; i++ {
		_ = s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, i), Body: simMsgBody(0, i)})
	}
	_ = s.m[1].Send(s.now, OutMessage{ID: simMsgID(1, 0), Body: []byte("still here")})
	s.run(func() bool { return c.count(1, isReceived) == 30 && c.count(0, isReceived) == 1 }, time.Minute)
}

// A receiver that stops committing stops the sender at the window; commits
// reopen it.
func TestFlowControlStopsSenderAtWindow(t *testing.T) {
	s := newSim(t, 4, 0, Timers{DeadPeerTimeout: time.Hour})
	var held []MessageID
	received := 0
	s.onEv = func(peer int, ev Event) {
		if r, ok := ev.(Received); ok {
			received++
			held = append(held, r.ID)
		}
		if d, ok := ev.(Delivered); ok {
			t.Fatalf("Delivered(%s) before the receiver committed anything", d.ID)
		}
	}
	const n = 3000
	for i := range n {
		body := bytes.Repeat([]byte{byte(i)}, 1000) // one fragment each
		if err := s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, i), Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	// Run for a simulated minute without committing.
	deadline := s.now.Add(time.Minute)
	s.run(func() bool { return !s.now.Before(deadline) }, 2*time.Minute)
	if received != RecvWindowFragments {
		t.Fatalf("receiver got %d messages without committing, want exactly the window of %d", received, RecvWindowFragments)
	}
	sent := s.m[0].Stats()
	t.Logf("sender while blocked: %+v", sent)
	if s.m[0].snd.sendNext != RecvWindowFragments {
		t.Errorf("sender sent %d fragments past a closed window of %d", s.m[0].snd.sendNext, RecvWindowFragments)
	}
	// Commit everything as it comes from now on.
	s.onEv = func(peer int, ev Event) {
		if r, ok := ev.(Received); ok {
			received++
			held = append(held, r.ID)
		}
		if _, ok := ev.(Failed); ok {
			t.Fatal(ev)
		}
	}
	commitHeld := func() {
		for _, id := range held {
			if err := s.m[1].Commit(s.now, id); err != nil {
				t.Fatal(err)
			}
		}
		held = held[:0]
	}
	commitHeld()
	s.run(func() bool { commitHeld(); return received == n && len(s.m[0].snd.deliveries) == 0 }, 10*time.Minute)
}

func TestTypingIndicator(t *testing.T) {
	s := newSim(t, 5, 0, Timers{})
	var c eventLog
	s.onEv = c.on
	s.run(func() bool { return s.m[0].Established() && s.m[1].Established() }, time.Second)
	typing := func() []bool {
		var out []bool
		for _, ev := range c.ev[1] {
			if ty, ok := ev.(Typing); ok {
				out = append(out, ty.Active)
			}
		}
		return out
	}
	s.m[0].SetTyping(s.now, true)
	sentBefore := s.m[0].Stats().DatagramsSent
	s.m[0].Transmits()
	s.m[0].SetTyping(s.now, true)
	if out := s.m[0].Transmits(); len(out) != 0 {
		t.Errorf("repeated SetTyping(true) sent %d datagrams at once", len(out))
	}
	if got := s.m[0].Stats().DatagramsSent - sentBefore; got != 1 {
		t.Errorf("typing sent %d datagrams, want 1", got)
	}
	// That one was taken from the machine above without going on the link;
	// say it again after the refresh interval.
	s.now = s.now.Add(TypingRefresh)
	s.m[0].SetTyping(s.now, true)
	s.run(func() bool { return len(typing()) == 1 }, time.Second)
	// No refresh: the indicator expires.
	s.run(func() bool { return len(typing()) == 2 }, 2*TypingExpiry)
	if got := typing(); got[0] != true || got[1] != false {
		t.Errorf("typing events %v, want [true false]", got)
	}
	s.m[0].SetTyping(s.now, true)
	s.run(func() bool { return len(typing()) == 3 }, time.Second)
	s.m[0].SetTyping(s.now, false)
	s.run(func() bool { return len(typing()) == 4 }, time.Second)
	if got := typing(); got[3] != false {
		t.Errorf("typing events %v, want the last false", got)
	}
}

func TestSendBeforeHandshakeIsQueued(t *testing.T) {
	s := newSim(t, 6, 0, Timers{})
	var c eventLog
	s.onEv = c.on
	if err := s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, 0), Body: []byte("early")}); err != nil {
		t.Fatal(err)
	}
	s.run(func() bool { return c.count(1, isReceived) == 1 }, time.Second)
}

func TestSendAndCommitErrors(t *testing.T) {
	a, _ := simPair(t, 1, Timers{})
	err := a.Send(simEpoch, OutMessage{Body: make([]byte, MaxMessageSize+1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Send of 64 KiB + 1: %v, want ErrTooLarge", err)
	}
	if err := a.Send(simEpoch, OutMessage{Body: make([]byte, MaxMessageSize)}); err != nil {
		t.Errorf("Send of 64 KiB: %v", err)
	}
	if err := a.Commit(simEpoch, MessageID{1}); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("Commit of an unknown id: %v, want ErrUnknownMessage", err)
	}
	if _, err := NewMachine(Config{SessionID: "x"}); err == nil {
		t.Error("NewMachine accepted missing keys")
	}
}

// A peer that vanishes while a message is outstanding ends the session
// after DeadPeerTimeout, with a reason the UI can show.
func TestDeadPeerFails(t *testing.T) {
	s := newSim(t, 8, 0, Timers{})
	var c eventLog
	s.onEv = c.on
	s.run(func() bool { return s.m[0].Established() && s.m[1].Established() }, time.Second)
	s.link.loss = 1
	start := s.now
	_ = s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, 0), Body: []byte("anyone?")})
	s.run(func() bool { _, ok := failedWith(&c, 0); return ok }, 2*DeadPeerTimeout)
	f, _ := failedWith(&c, 0)
	if f.Reason != ReasonPeerUnresponsive {
		t.Fatalf("failed with %v, want peer unresponsive", f)
	}
	if got := s.now.Sub(start); got != DeadPeerTimeout {
		t.Errorf("gave up after %v, want %v", got, DeadPeerTimeout)
	}
	if err := s.m[0].Send(s.now, OutMessage{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after failure: %v, want ErrClosed", err)
	}
	if !s.m[0].Deadline().IsZero() {
		t.Error("failed machine still has a deadline")
	}
}

func TestMessageIDRoundTrip(t *testing.T) {
	id, err := NewMessageID(simReader(1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseMessageID(id.String())
	if err != nil || got != id {
		t.Fatalf("ParseMessageID(%q) = %v, %v", id.String(), got, err)
	}
	if _, err := ParseMessageID("xyz"); err == nil {
		t.Error("ParseMessageID accepted garbage")
	}
}

// The responder's punch may not have selected the path yet when message 1
// arrives: the datagram starts the machine instead of being lost.
func TestResponderStartsOnFirstDatagram(t *testing.T) {
	a, b := simPair(t, 1, Timers{})
	a.Start(simEpoch)
	for _, d := range a.Transmits() {
		b.HandleDatagram(simEpoch, d)
	}
	out := b.Transmits()
	if !b.Established() || len(out) != 1 || out[0][0] != typeHandshakeResp {
		t.Fatalf("responder before Start: established %v, sent %d datagrams", b.Established(), len(out))
	}
	a.HandleDatagram(simEpoch, out[0])
	if !a.Established() {
		t.Fatal("initiator did not accept message 2")
	}
}

func TestCloseTellsPeer(t *testing.T) {
	s := newSim(t, 10, 0, Timers{})
	s.quiet()
	var c eventLog
	s.onEv = c.on
	s.run(func() bool { return s.m[0].Established() && s.m[1].Established() }, time.Second)
	s.m[0].Close(s.now)
	s.run(func() bool { _, ok := failedWith(&c, 1); return ok }, time.Second)
	if f, _ := failedWith(&c, 1); f.Reason != ReasonPeerClosed {
		t.Errorf("peer saw %v, want ReasonPeerClosed", f)
	}
	if _, ok := failedWith(&c, 0); ok {
		t.Error("Close reported a failure to its own caller")
	}
	if err := s.m[0].Send(s.now, OutMessage{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
}

// A long quiet spell is not a dead peer: the dead-peer clock starts when
// there is something to wait for.
func TestIdleSessionStillSends(t *testing.T) {
	s := newSim(t, 11, 0, Timers{})
	s.quiet()
	var c eventLog
	s.onEv = c.on
	s.run(func() bool { return s.m[0].Established() && s.m[1].Established() }, time.Second)
	if d := s.m[0].Deadline(); !d.IsZero() {
		t.Fatalf("idle session has a deadline at %v", d)
	}
	s.now = s.now.Add(10 * time.Minute)
	if err := s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, 0), Body: []byte("after a coffee")}); err != nil {
		t.Fatal(err)
	}
	s.run(func() bool { return c.count(1, isReceived) == 1 }, time.Second)
	if _, failed := failedWith(&c, 0); failed {
		t.Fatal("the sender gave up after an idle spell")
	}
}

// Timer overrides follow the shared contract: zero keeps the default, a
// negative DeadPeerTimeout is off, any other negative timer is refused.
func TestTimerOverrides(t *testing.T) {
	aPriv, aPub := simKey(t, 1)
	_, bPub := simKey(t, 2)
	cfg := Config{Initiator: true, LocalPrivate: aPriv, LocalPublic: aPub, RemoteStatic: bPub, SessionID: "timers"}
	for _, bad := range []Timers{{HandshakeTimeout: -1}, {MinRTO: -1}, {TypingExpiry: -1}} {
		c := cfg
		c.Timers = bad
		if _, err := NewMachine(c); err == nil {
			t.Errorf("timers %+v accepted", bad)
		}
	}
	c := cfg
	c.Timers = Timers{DeadPeerTimeout: -1}
	m, err := NewMachine(c)
	if err != nil {
		t.Fatal(err)
	}
	if m.timers.DeadPeerTimeout != 0 || m.timers.HandshakeTimeout != HandshakeTimeout {
		t.Fatalf("timers %+v: want dead-peer off and the default handshake timeout", m.timers)
	}
	// Off means no dead-peer deadline even with data outstanding for ever.
	now := time.Unix(1000, 0)
	a, b := simPair(t, 9, Timers{DeadPeerTimeout: -1})
	a.Start(now)
	b.Start(now)
	for _, d := range a.Transmits() {
		b.HandleDatagram(now, d)
	}
	for _, d := range b.Transmits() {
		a.HandleDatagram(now, d)
	}
	if !a.Established() {
		t.Fatal("not established")
	}
	if err := a.Send(now, OutMessage{ID: MessageID{1}, Body: []byte("x"), SentAt: now}); err != nil {
		t.Fatal(err)
	}
	a.Transmits() // lost
	for i := 0; i < 200; i++ {
		now = now.Add(10 * time.Second)
		a.HandleTimeout(now)
		a.Transmits()
	}
	for _, ev := range a.Events() {
		if f, ok := ev.(Failed); ok {
			t.Fatalf("session failed with the dead-peer timer off: %v", f)
		}
	}
}

// A round trip learnt after the handshake started (the path was chosen on
// the peer's probe) brings the pending message 1 retransmission forward;
// one learnt later changes nothing.
func TestHandshakeLearnsRTTLate(t *testing.T) {
	aPriv, aPub := simKey(t, 1)
	_, bPub := simKey(t, 2)
	a, err := NewMachine(Config{Initiator: true, LocalPrivate: aPriv, LocalPublic: aPub, RemoteStatic: bPub, SessionID: "late"})
	if err != nil {
		t.Fatal(err)
	}
	a.Start(simEpoch)
	a.Transmits()
	if d := a.Deadline(); !d.Equal(simEpoch.Add(HandshakeInitialRTO)) {
		t.Fatalf("deadline %v after start, want the unmeasured default", d.Sub(simEpoch))
	}
	a.SetPathRTT(simEpoch.Add(5*time.Millisecond), 10*time.Millisecond)
	if d, want := a.Deadline(), simEpoch.Add(30*time.Millisecond); !d.Equal(want) {
		t.Fatalf("deadline %v after start, want %v (3 RTT after message 1)", d.Sub(simEpoch), want.Sub(simEpoch))
	}
	a.HandleTimeout(simEpoch.Add(30 * time.Millisecond))
	if n := len(a.Transmits()); n != 1 {
		t.Fatalf("%d datagrams at 3 RTT, want message 1 again", n)
	}
	// A second RTT does not reset the doubling.
	a.SetPathRTT(simEpoch.Add(31*time.Millisecond), time.Millisecond)
	if d, want := a.Deadline(), simEpoch.Add(90*time.Millisecond); !d.Equal(want) {
		t.Fatalf("deadline %v after start, want %v (doubled)", d.Sub(simEpoch), want.Sub(simEpoch))
	}
	if st := a.Stats(); st.SRTT != 10*time.Millisecond {
		t.Fatalf("SRTT %v, want the first sample 10ms", st.SRTT)
	}
}
