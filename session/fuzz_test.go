package session

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Fuzz targets for every decoder of the session wire format. Seed corpora
// live in testdata/fuzz/<Target>/; regenerate them from a real session with
//
//	SESSION_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus ./session/

// FuzzHandshakePacket feeds arbitrary datagrams to a responder waiting for
// message 1 and to an initiator waiting for message 2: nothing may panic
// and nothing forged may establish a session.
func FuzzHandshakePacket(f *testing.F) {
	for _, s := range fuzzSeeds(f).handshake {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The seeds come from a session with another ID, so not even a
		// genuine handshake message from the fuzzCorpus may establish here.
		a, r := simPair(t, 1, Timers{})
		a.cfg.SessionID, r.cfg.SessionID = "fuzzsession01", "fuzzsession01"
		a.Start(simEpoch)
		r.Start(simEpoch)
		a.Transmits()
		for _, m := range []*Machine{a, r} {
			m.HandleDatagram(simEpoch, b)
			m.Transmits()
			for _, ev := range m.Events() {
				if _, ok := ev.(Established); ok {
					t.Fatalf("fuzzed datagram %x established a session", b)
				}
			}
		}
		if typ, err := packetType(b); err == nil && typ != typeTransport {
			want := map[byte]int{typeHandshakeInit: handshakeInitLen, typeHandshakeResp: handshakeRespLen}[typ]
			if len(b) != want {
				t.Fatalf("packetType accepted %d bytes of type %x", len(b), typ)
			}
		}
	})
}

// FuzzTransportHeader checks the transport header parser against its
// encoder.
func FuzzTransportHeader(f *testing.F) {
	for _, s := range fuzzSeeds(f).transport {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		counter, header, ct, err := parseTransportHeader(b)
		if err != nil {
			return
		}
		if len(b) > MaxDatagramSize || len(ct) < aeadTagLen {
			t.Fatalf("accepted a %d-byte datagram with %d bytes of ciphertext", len(b), len(ct))
		}
		again := append(appendTransportHeader(nil, counter), ct...)
		if !bytes.Equal(again, b) || !bytes.Equal(header, b[:transportHeaderLen]) {
			t.Fatalf("header round trip: %x became %x", b, again)
		}
	})
}

// FuzzAckFrame checks the ack parser: what it accepts is well-formed and
// encodes back to the same bytes.
func FuzzAckFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f).ack {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAckParse(t, b, parseAckFrame) })
}

// checkAckParse runs one ack parser on b: what it accepts must be
// well-formed and encode back to the same bytes.
func checkAckParse(t *testing.T, b []byte, parse func([]byte, *ackFrame) ([]byte, error)) {
	var a ackFrame
	rest, err := parse(b, &a)
	if err != nil {
		return
	}
	if (b[0] == frameSAck) != (a.stream != chatStream) || a.committed > a.cum || a.cum > a.window || len(a.ranges) > MaxAckRanges {
		t.Fatalf("accepted inconsistent ack %+v", a)
	}
	prev := a.cum
	for _, r := range a.ranges {
		if r.start <= prev || r.end <= r.start || r.end > a.window {
			t.Fatalf("accepted bad range %+v in %+v", r, a)
		}
		prev = r.end
	}
	used := b[:len(b)-len(rest)]
	if again := appendAnyAckFrame(nil, &a); !bytes.Equal(again, used) {
		t.Fatalf("ack round trip: %x became %x", used, again)
	}
}

// FuzzDataFrame checks the fragment parser the same way.
func FuzzDataFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f).data {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d dataFrame
		rest, err := parseDataFrame(b, &d)
		if err != nil {
			return
		}
		if len(d.data) > fragmentSize || (d.first && (d.total > MaxMessageSize || uint32(len(d.data)) > d.total)) {
			t.Fatalf("accepted bad fragment %+v", d)
		}
		used := b[:len(b)-len(rest)]
		if again := appendDataFrame(nil, &d); !bytes.Equal(again, used) {
			t.Fatalf("fragment round trip: %x became %x", used, again)
		}
	})
}

// FuzzStreamDataFrame checks the numbered streams' fragment parser: what it
// accepts is within the limits and encodes back to the same bytes.
func FuzzStreamDataFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f).sdata {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d dataFrame
		rest, err := parseStreamDataFrame(b, &d)
		if err != nil {
			return
		}
		if d.stream == chatStream || len(d.data) > streamFragmentSize ||
			(d.first && (d.total > MaxStreamMessageSize || uint32(len(d.data)) > d.total)) {
			t.Fatalf("accepted bad stream fragment %+v", d)
		}
		used := b[:len(b)-len(rest)]
		if d.encodedLen() != len(used) {
			t.Fatalf("encodedLen %d for a %d-byte frame", d.encodedLen(), len(used))
		}
		if again := appendAnyDataFrame(nil, &d); !bytes.Equal(again, used) {
			t.Fatalf("stream fragment round trip: %x became %x", used, again)
		}
	})
}

// FuzzStreamAckFrame checks the numbered streams' ack parser like the chat
// one.
func FuzzStreamAckFrame(f *testing.F) {
	for _, s := range fuzzSeeds(f).sack {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkAckParse(t, b, parseStreamAckFrame) })
}

// FuzzTransportPayload hands arbitrary plaintext, sealed with the right
// key, to an established machine: the frame decoders and the reliable
// layer behind them must survive anything an authenticated but hostile
// peer sends, ending at worst in Failed{ReasonProtocolError} (or
// ReasonPeerClosed for a CLOSE frame).
func FuzzTransportPayload(f *testing.F) {
	for _, s := range fuzzSeeds(f).payload {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		if len(plain) > maxPayload {
			return
		}
		s := newSim(t, 1, 0, Timers{})
		s.quiet()
		s.run(func() bool { return s.m[0].Established() && s.m[1].Established() }, time.Second)
		a, b := s.m[0], s.m[1]
		_ = b.Send(s.now, OutMessage{ID: simMsgID(1, 0), Body: make([]byte, 3000)})
		// A numbered stream with something in flight, for SACK and STOP.
		id, _ := b.OpenStream(s.now)
		_, _ = b.SendStream(s.now, id, make([]byte, 3000))
		b.Transmits()
		// Seal as A would, with A's next counter, and deliver twice.
		a.seal(plain)
		for _, d := range a.Transmits() {
			b.HandleDatagram(s.now, d)
			b.HandleDatagram(s.now, d)
		}
		b.HandleTimeout(s.now.Add(10 * time.Second))
		for _, d := range b.Transmits() {
			if len(d) > MaxDatagramSize {
				t.Fatalf("answer of %d bytes", len(d))
			}
		}
		failed := false
		for _, ev := range b.Events() {
			if f, ok := ev.(Failed); ok {
				failed = true
				if f.Reason != ReasonProtocolError && f.Reason != ReasonPeerClosed {
					t.Fatalf("fuzzed payload ended the session with %v", f)
				}
			}
		}
		if !failed && b.inflight < 0 {
			t.Fatalf("in-flight count went negative: %d", b.inflight)
		}
		if st := b.Stats(); !failed && validateFrames(plain, &frame{}) == nil && st.Replays != 1 {
			t.Fatalf("second copy not refused as a replay: %+v", st)
		}
	})
}

// fuzzCorpus holds seed inputs per target.
type fuzzCorpus struct{ handshake, transport, ack, data, sdata, sack, payload [][]byte }

// fuzzSeeds records the datagrams and frames of a short real session with
// loss, plus a few hand-made edge cases.
func fuzzSeeds(tb testing.TB) fuzzCorpus {
	var c fuzzCorpus
	s := newSim(tb, 9, 0.2, Timers{DeadPeerTimeout: time.Hour})
	s.link.tamper = func(from int, b []byte) []byte {
		switch b[0] {
		case typeHandshakeInit, typeHandshakeResp:
			c.handshake = append(c.handshake, bytes.Clone(b))
		case typeTransport:
			if len(c.transport) < 8 {
				c.transport = append(c.transport, bytes.Clone(b))
			}
		}
		return b
	}
	received := 0
	s.onEv = func(peer int, ev Event) {
		if r, ok := ev.(Received); ok {
			received++
			_ = s.m[peer].Commit(s.now, r.ID)
		}
	}
	for i := range 40 {
		_ = s.m[0].Send(s.now, OutMessage{ID: simMsgID(0, i), Body: simMsgBody(0, i*25), SentAt: s.now})
	}
	s.m[1].SetTyping(s.now, true)
	s.run(func() bool { return received == 40 }, time.Hour)

	// Frames, as the receiver-side payloads would contain them.
	ack := &ackFrame{cum: 10, committed: 7, window: 7 + RecvWindowFragments,
		ranges: []ackRange{{12, 14}, {20, 21}}}
	first := &dataFrame{seq: 3, first: true, id: simMsgID(0, 1), sentAt: 1, total: 2000, data: bytes.Repeat([]byte{'x'}, fragmentSize)}
	last := &dataFrame{seq: 4, last: true, data: bytes.Repeat([]byte{'y'}, 2000-fragmentSize)}
	single := &dataFrame{seq: 0, first: true, last: true, id: simMsgID(0, 0), total: 5, data: []byte("hello")}
	c.ack = [][]byte{appendAckFrame(nil, ack), appendAckFrame(nil, &ackFrame{}), {frameAck}}
	c.data = [][]byte{appendDataFrame(nil, first), appendDataFrame(nil, last), appendDataFrame(nil, single), {frameData}}
	// Numbered streams, with hostile lengths and counts beside real frames.
	sfirst := &dataFrame{stream: 1, seq: 0, first: true, total: 3000, data: bytes.Repeat([]byte{'s'}, streamFragmentSize)}
	slast := &dataFrame{stream: 1, seq: 2, last: true, data: bytes.Repeat([]byte{'t'}, 3000-2*streamFragmentSize)}
	ssingle := &dataFrame{stream: 7, seq: 0, first: true, last: true, total: 2, data: []byte("ok")}
	sack := &ackFrame{stream: 1, cum: 1, committed: 0, window: RecvWindowFragments, ranges: []ackRange{{2, 3}}}
	maxLen := func(b []byte, at int) []byte { b = bytes.Clone(b); b[at], b[at+1] = 0xff, 0xff; return b }
	c.sdata = [][]byte{
		appendStreamDataFrame(nil, sfirst), appendStreamDataFrame(nil, slast), appendStreamDataFrame(nil, ssingle),
		maxLen(appendStreamDataFrame(nil, ssingle), 14),                                    // len 65535
		append(appendStreamDataFrame(nil, ssingle)[:16], 0xff, 0xff, 0xff, 0xff, 'o', 'k'), // total 4 GiB
		{frameSData, 0, 0, 0, 0}, // stream 0
		{frameSData},
	}
	manyRanges := appendStreamAckFrame(nil, &ackFrame{stream: 1, window: 1 << 20})
	manyRanges[len(manyRanges)-1] = 255 // 255 ranges announced, none present
	c.sack = [][]byte{
		appendStreamAckFrame(nil, sack), manyRanges,
		appendStreamAckFrame(nil, &ackFrame{stream: 1, cum: 5, committed: 9, window: 9}), // committed > cum
		{frameSAck, 0, 0, 0, 0},
	}
	c.payload = [][]byte{
		appendDataFrame(appendAckFrame(nil, &ackFrame{window: RecvWindowFragments}), single),
		appendStreamDataFrame(appendStreamAckFrame(nil, sack), ssingle),
		appendStreamAckFrame(nil, &ackFrame{stream: 1, cum: 3, window: RecvWindowFragments}), // acks what was sent
		appendStreamAckFrame(nil, &ackFrame{stream: 1, cum: 9, window: RecvWindowFragments}), // acks what was not
		appendStopFrame(nil, 1),
		appendStopFrame(appendStreamDataFrame(nil, ssingle), 7),
		appendStreamDataFrame(nil, slast), // continues nothing
		appendStreamDataFrame(nil, &dataFrame{stream: 0xffffffff, first: true, last: true}),
		append(appendDataFrame(nil, first), appendDataFrame([]byte{framePing, frameTyping, 1}, last)...),
		appendDataFrame(nil, last), // continues nothing: protocol error
		{framePing},
		{frameTyping, 0},
		{frameClose},
	}
	return c
}

// TestWriteFuzzCorpus writes the seeds as go-fuzz fuzzCorpus files under
// testdata/fuzz when SESSION_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SESSION_WRITE_CORPUS") != "1" {
		t.Skip("set SESSION_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	c := fuzzSeeds(t)
	for target, seeds := range map[string][][]byte{
		"FuzzHandshakePacket":  c.handshake,
		"FuzzTransportHeader":  c.transport,
		"FuzzAckFrame":         c.ack,
		"FuzzDataFrame":        c.data,
		"FuzzStreamDataFrame":  c.sdata,
		"FuzzStreamAckFrame":   c.sack,
		"FuzzTransportPayload": c.payload,
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
