package session

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"
)

// streamBody is the deterministic body of message n on a stream: mostly
// 64 KiB (a file chunk), some small, some empty, some the maximum.
func streamBody(peer int, id StreamID, n int) []byte {
	size := 64 << 10
	switch {
	case n%17 == 3:
		size = n % 1500
	case n%29 == 5:
		size = MaxStreamMessageSize
	case n%31 == 7:
		size = 0
	}
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(peer*131 + int(id)*17 + n*7 + i)
	}
	return b
}

// streamCheck follows one stream from sender to receiver: every message
// arrives once, in order, intact, and StreamDelivered only ever covers
// messages that arrived.
type streamCheck struct {
	t         testing.TB
	from      int
	id        StreamID
	n         int // messages sent
	received  int
	delivered int // messages covered by StreamDelivered
}

func (c *streamCheck) onReceived(ev StreamReceived) {
	c.t.Helper()
	if ev.Seq != uint64(c.received) {
		c.t.Fatalf("stream %d of peer %d: message %d arrived as seq %d", c.id, c.from, c.received, ev.Seq)
	}
	if !bytes.Equal(ev.Body, streamBody(c.from, c.id, c.received)) {
		c.t.Fatalf("stream %d of peer %d: message %d differs (%d bytes)", c.id, c.from, c.received, len(ev.Body))
	}
	c.received++
}

func (c *streamCheck) onDelivered(ev StreamDelivered) {
	c.t.Helper()
	if ev.Seq+1 <= uint64(c.delivered) || ev.Seq >= uint64(c.received) {
		c.t.Fatalf("stream %d of peer %d: StreamDelivered(%d) after %d delivered, %d received", c.id, c.from, ev.Seq, c.delivered, c.received)
	}
	c.delivered = int(ev.Seq) + 1
}

func (c *streamCheck) done() bool { return c.received == c.n && c.delivered == c.n }

// streamSim runs chat and numbered streams both ways over a sim, committing
// everything at once, and checks every stream.
type streamSim struct {
	*sim
	checks map[[2]int]*streamCheck // (sender peer, stream) →
	chat   [2]*simStream
}

func newStreamSim(t *testing.T, seed uint64, loss float64) *streamSim {
	s := &streamSim{sim: newSim(t, seed, loss, Timers{DeadPeerTimeout: time.Hour, HandshakeTimeout: 10 * time.Minute}),
		checks: map[[2]int]*streamCheck{}}
	s.chat = [2]*simStream{{t: t, dir: 0}, {t: t, dir: 1}}
	s.onEv = func(peer int, ev Event) {
		switch ev := ev.(type) {
		case Received:
			s.chat[1-peer].onReceived(ev)
			if err := s.m[peer].Commit(s.now, ev.ID); err != nil {
				t.Fatal(err)
			}
		case Delivered:
			s.chat[peer].onDelivered(ev)
		case StreamReceived:
			s.check(1-peer, ev.Stream).onReceived(ev)
			if err := s.m[peer].CommitStream(s.now, ev.Stream, ev.Seq); err != nil {
				t.Fatal(err)
			}
		case StreamDelivered:
			s.check(peer, ev.Stream).onDelivered(ev)
		case StreamStopped:
			t.Fatalf("peer %d: stream %d stopped", peer, ev.Stream)
		case Failed:
			t.Fatalf("peer %d failed: %v", peer, ev)
		}
	}
	return s
}

func (s *streamSim) check(from int, id StreamID) *streamCheck {
	c := s.checks[[2]int{from, int(id)}]
	if c == nil {
		s.t.Fatalf("message on stream %d of peer %d, which the test never opened", id, from)
	}
	return c
}

func (s *streamSim) open(peer int) StreamID {
	id, err := s.m[peer].OpenStream(s.now)
	if err != nil {
		s.t.Fatal(err)
	}
	s.checks[[2]int{peer, int(id)}] = &streamCheck{t: s.t, from: peer, id: id}
	return id
}

func (s *streamSim) send(peer int, id StreamID, n int) {
	c := s.checks[[2]int{peer, int(id)}]
	for range n {
		seq, err := s.m[peer].SendStream(s.now, id, streamBody(peer, id, c.n))
		if err != nil {
			s.t.Fatal(err)
		}
		if seq != uint64(c.n) {
			s.t.Fatalf("SendStream returned seq %d for message %d", seq, c.n)
		}
		c.n++
	}
}

func (s *streamSim) chatSend(peer, n int) {
	st := s.chat[peer]
	for range n {
		if err := s.m[peer].Send(s.now, OutMessage{ID: simMsgID(peer, st.n), Body: simMsgBody(peer, st.n), SentAt: s.now}); err != nil {
			s.t.Fatal(err)
		}
		st.n++
	}
}

func (s *streamSim) allDone() bool {
	for _, c := range s.checks {
		if !c.done() {
			return false
		}
	}
	return s.chat[0].done() && s.chat[1].done()
}

// Chat and several numbered streams each way, over links with loss,
// duplication and reordering: every message of every stream arrives once,
// in order, and is reported delivered.
func TestStreamsExactlyOnceInOrder(t *testing.T) {
	for _, loss := range []float64{0, 0.10, 0.30} {
		for _, seed := range []uint64{1, 2} {
			t.Run(fmt.Sprintf("loss=%.0f%%/seed=%d", loss*100, seed), func(t *testing.T) {
				s := newStreamSim(t, seed, loss)
				for peer := range 2 {
					for range 3 {
						s.send(peer, s.open(peer), 12)
					}
				}
				s.chatSend(0, 200)
				s.chatSend(1, 100)
				s.run(s.allDone, 24*time.Hour)
			})
		}
	}
}

// A receiver that does not commit one stream stops that stream at its
// window; the chat and the other stream keep going, and commits reopen it.
func TestStreamFlowControlIsPerStream(t *testing.T) {
	s := newStreamSim(t, 3, 0)
	slow, fast := s.open(0), s.open(0)
	var held []uint64
	inner := s.onEv
	s.onEv = func(peer int, ev Event) {
		if r, ok := ev.(StreamReceived); ok && r.Stream == slow {
			s.check(0, slow).onReceived(r)
			held = append(held, r.Seq)
			return
		}
		inner(peer, ev)
	}
	s.send(0, slow, 40) // 40 × ~64 KiB: far more than one window
	s.send(0, fast, 40)
	s.chatSend(0, 50)
	s.run(func() bool { return s.check(0, fast).done() && s.chat[0].done() }, time.Hour)
	got := s.check(0, slow).received
	// The window is RecvWindowFragments fragments past the last commit.
	if maxMsgs := RecvWindowFragments*streamFragmentSize/(60<<10) + 1; got == 0 || got > maxMsgs {
		t.Fatalf("uncommitted stream delivered %d messages; want 1..%d (one window)", got, maxMsgs)
	}
	before := s.m[0].outStream(slow).sendNext
	s.run(func() bool { return !s.now.Before(simEpoch.Add(10 * time.Minute)) }, time.Hour)
	if after := s.m[0].outStream(slow).sendNext; after != before {
		t.Fatalf("sender went on from fragment %d to %d into a closed window", before, after)
	}
	if s.check(0, slow).received != got {
		t.Fatal("more messages arrived while nothing was committed")
	}
	for _, seq := range held {
		if err := s.m[1].CommitStream(s.now, slow, seq); err != nil {
			t.Fatal(err)
		}
	}
	s.onEv = inner
	s.run(s.allDone, time.Hour)
}

// Two streams with big backlogs share the path: neither waits for the
// other to finish.
func TestStreamsShareFairly(t *testing.T) {
	s := newStreamSim(t, 4, 0)
	s.quiet()
	s.link.rate = 1 << 20 // 1 MiB/s, so the streams compete for something
	a, b := s.open(0), s.open(0)
	s.send(0, a, 60)
	s.send(0, b, 60)
	s.run(func() bool { return s.check(0, a).delivered >= 30 || s.check(0, b).delivered >= 30 }, time.Hour)
	da, db := s.check(0, a).delivered, s.check(0, b).delivered
	if da < 20 || db < 20 {
		t.Fatalf("unfair: when one stream had 30 messages delivered the other had %d/%d", da, db)
	}
	s.run(s.allDone, time.Hour)
}

// While a file stream keeps a bottleneck busy, a chat message gets through
// in about the path's delay plus StreamQueueTarget: it never waits for file
// data to be acknowledged first, and the streams do not fill the
// bottleneck's queue; the file still gets most of what its in-flight
// budget allows on the path.
func TestChatIsNotStuckBehindStreams(t *testing.T) {
	for _, rate := range []int64{10 << 20, 1 << 20, 256 << 10} {
		t.Run(fmt.Sprintf("%dKiB/s", rate>>10), func(t *testing.T) {
			s := newStreamSim(t, 5, 0)
			s.quiet()
			s.link.rate = float64(rate)
			// Chat message 0 is 64 KiB; it goes first, alone, so the
			// timed ones are of ordinary sizes.
			s.chatSend(0, 1)
			s.run(func() bool { return s.chat[0].done() }, time.Minute)
			id := s.open(0)
			msgs := int(4 * rate / (64 << 10)) // about 4 seconds of the link
			s.send(0, id, msgs)
			var sentAt []time.Time
			var worst time.Duration
			inner := s.onEv
			s.onEv = func(peer int, ev Event) {
				if r, ok := ev.(Received); ok && peer == 1 {
					// Not counting the time the message itself takes on
					// the link (some are 64 KiB).
					own := time.Duration(float64(len(r.Body)) / float64(rate) * float64(time.Second))
					worst = max(worst, s.now.Sub(sentAt[s.chat[0].received-1])-own)
				}
				inner(peer, ev)
			}
			// A chat message every 100 ms while the file streams, after
			// a second to settle.
			var tick func()
			tick = func() {
				if s.check(0, id).delivered < msgs*9/10 {
					sentAt = append(sentAt, s.now)
					s.chatSend(0, 1)
					s.after(100*time.Millisecond, tick)
				}
			}
			s.after(time.Second, tick)
			start := s.now
			s.run(s.allDone, time.Hour)
			var bytes int
			for n := range msgs {
				bytes += len(streamBody(0, id, n))
			}
			use := float64(bytes) / s.now.Sub(start).Seconds() / float64(rate)
			bound := s.link.delay + 2*StreamQueueTarget
			t.Logf("%d chat messages during the transfer, worst latency besides their own size %v (bound %v); the file used %.0f%% of the link, stream window %d",
				len(sentAt), worst, bound, 100*use, s.m[0].swin.window())
			if len(sentAt) < 10 {
				t.Fatalf("only %d chat messages were sent during the transfer", len(sentAt))
			}
			if worst > bound {
				t.Errorf("a chat message took %v during the transfer, more than %v", worst, bound)
			}
			// At most the streams' budget per round trip.
			possible := min(1, maxStreamWindow*streamFragmentSize/(2*s.link.delay.Seconds())/float64(rate))
			if use < 0.75*possible {
				t.Errorf("the file used %.0f%% of the link, want at least 75%% of the %.0f%% its budget allows", 100*use, 100*possible)
			}
		})
	}
}

// A path with a longer delay is not taken for a queue once the owner says
// the path changed: the file keeps most of the link.
func TestStreamWindowAfterPathChange(t *testing.T) {
	s := newStreamSim(t, 9, 0)
	s.quiet()
	const rate = 1 << 20
	s.link.rate = rate
	id := s.open(0)
	s.send(0, id, 160) // 10 MiB
	s.run(func() bool { return s.check(0, id).delivered >= 20 }, time.Hour)
	s.link.delay = 100 * time.Millisecond // a relay far away
	s.m[0].PathChanged(s.now)
	start, from := s.now, s.check(0, id).delivered
	s.run(func() bool { return s.check(0, id).delivered >= 150 }, time.Hour)
	var bytes int
	for n := from; n < 150; n++ {
		bytes += len(streamBody(0, id, n))
	}
	use := float64(bytes) / s.now.Sub(start).Seconds() / rate
	t.Logf("after the change the file used %.0f%% of the link, window %d", 100*use, s.m[0].swin.window())
	if use < 0.7 {
		t.Fatalf("after the path change the file used %.0f%% of the link", 100*use)
	}
}

// StopStream on the receiver closes the sender's stream (StreamStopped);
// CloseStream on the sender stops its data; neither disturbs the chat or
// the other streams, and nothing more arrives for a stopped stream.
func TestStreamStopAndClose(t *testing.T) {
	s := newStreamSim(t, 6, 0)
	stopped, closed, kept := s.open(0), s.open(0), s.open(0)
	s.send(0, stopped, 30)
	s.send(0, closed, 30)
	s.send(0, kept, 5)
	inner := s.onEv
	var stoppedEv []StreamID
	var stopAt time.Time
	var afterStop, sentBeforeClose int
	s.onEv = func(peer int, ev Event) {
		switch ev := ev.(type) {
		case StreamStopped:
			stoppedEv = append(stoppedEv, ev.Stream)
			return
		case StreamReceived:
			if ev.Stream == stopped && !stopAt.IsZero() {
				// Messages completed by the datagram that made the
				// owner stop may come in the same batch of events.
				if s.now.After(stopAt) {
					afterStop++
				}
				return
			}
			inner(peer, ev)
			switch {
			case ev.Stream == stopped && s.check(0, stopped).received == 3:
				s.m[1].StopStream(s.now, stopped)
				stopAt = s.now
			case ev.Stream == closed && s.check(0, closed).received == 3:
				sentBeforeClose = completeMessages(0, closed, s.m[0].outStream(closed).sendNext)
				s.m[0].CloseStream(s.now, closed)
			}
			return
		}
		inner(peer, ev)
	}
	s.chatSend(1, 20)
	s.run(func() bool {
		return len(stoppedEv) == 1 && s.check(0, kept).done() && s.chat[1].done()
	}, time.Hour)
	end := s.now.Add(time.Minute)
	s.after(time.Minute, func() {})
	s.run(func() bool { return !s.now.Before(end) }, time.Hour)
	if afterStop != 0 {
		t.Errorf("%d messages of the stopped stream were reported after StopStream", afterStop)
	}
	if stoppedEv[0] != stopped {
		t.Errorf("StreamStopped for %d, want %d", stoppedEv[0], stopped)
	}
	if _, err := s.m[0].SendStream(s.now, stopped, nil); !errors.Is(err, ErrNoStream) {
		t.Errorf("SendStream on a stopped stream: %v, want ErrNoStream", err)
	}
	if _, err := s.m[0].SendStream(s.now, closed, nil); !errors.Is(err, ErrNoStream) {
		t.Errorf("SendStream on a closed stream: %v, want ErrNoStream", err)
	}
	if n := len(s.m[0].sout); n != 1 {
		t.Errorf("sender keeps %d streams, want 1", n)
	}
	if s.m[0].inflight != 0 {
		t.Errorf("in-flight count %d after everything settled, want 0", s.m[0].inflight)
	}
	if got := s.check(0, closed).received; got < 3 || got > sentBeforeClose {
		t.Errorf("closed stream delivered %d messages, want 3 to %d (those wholly sent before CloseStream)", got, sentBeforeClose)
	}
}

// completeMessages is how many of a streamSim stream's messages lie wholly
// below fragment seq.
func completeMessages(peer int, id StreamID, seq uint64) int {
	var frags uint64
	for n := 0; ; n++ {
		frags += max(1, uint64((len(streamBody(peer, id, n))+streamFragmentSize-1)/streamFragmentSize))
		if frags > seq {
			return n
		}
	}
}

// A peer that opens more than MaxStreams streams has the extra ones
// refused; they are reported as stopped, and the others work.
func TestStreamLimit(t *testing.T) {
	s := newStreamSim(t, 7, 0)
	var ids []StreamID
	for range MaxStreams {
		ids = append(ids, s.open(0))
	}
	if _, err := s.m[0].OpenStream(s.now); !errors.Is(err, ErrTooManyStreams) {
		t.Fatalf("OpenStream beyond the limit: %v, want ErrTooManyStreams", err)
	}
	for _, id := range ids {
		s.send(0, id, 1)
	}
	s.run(s.allDone, time.Hour)
	// The receiver never stopped them, so a 17th stream from a peer that
	// closed its own side is refused.
	s.m[0].CloseStream(s.now, ids[0])
	extra := s.open(0)
	s.send(0, extra, 1)
	var stopped []StreamID
	inner := s.onEv
	s.onEv = func(peer int, ev Event) {
		if st, ok := ev.(StreamStopped); ok {
			stopped = append(stopped, st.Stream)
			return
		}
		inner(peer, ev)
	}
	s.run(func() bool { return len(stopped) > 0 }, time.Hour)
	if stopped[0] != extra {
		t.Fatalf("stopped %v, want %d", stopped, extra)
	}
	// Once the receiver stops one, a new stream is welcome.
	s.m[1].StopStream(s.now, ids[1])
	s.m[0].CloseStream(s.now, ids[1])
	next := s.open(0)
	s.send(0, next, 2)
	s.run(func() bool { return s.check(0, next).done() }, time.Hour)
}

func TestStreamErrors(t *testing.T) {
	s := newStreamSim(t, 8, 0)
	id := s.open(0)
	if _, err := s.m[0].SendStream(s.now, id, make([]byte, MaxStreamMessageSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized stream message: %v, want ErrTooLarge", err)
	}
	if _, err := s.m[0].SendStream(s.now, id+1, nil); !errors.Is(err, ErrNoStream) {
		t.Errorf("send on a stream never opened: %v, want ErrNoStream", err)
	}
	if err := s.m[1].CommitStream(s.now, id, 0); !errors.Is(err, ErrNoStream) {
		t.Errorf("commit on a stream never seen: %v, want ErrNoStream", err)
	}
	s.send(0, id, 2)
	var got []StreamReceived
	s.onEv = func(peer int, ev Event) {
		if r, ok := ev.(StreamReceived); ok {
			got = append(got, r)
		}
	}
	s.run(func() bool { return len(got) == 2 }, time.Minute)
	if err := s.m[1].CommitStream(s.now, id, 2); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("commit of a message not received: %v, want ErrUnknownMessage", err)
	}
	if err := s.m[1].CommitStream(s.now, id, 1); err != nil {
		t.Errorf("commit out of order: %v", err)
	}
	if err := s.m[1].CommitStream(s.now, id, 1); !errors.Is(err, ErrUnknownMessage) {
		t.Errorf("second commit of a message: %v, want ErrUnknownMessage", err)
	}
	s.m[0].Close(s.now)
	if _, err := s.m[0].OpenStream(s.now); !errors.Is(err, ErrClosed) {
		t.Errorf("OpenStream after Close: %v, want ErrClosed", err)
	}
}
