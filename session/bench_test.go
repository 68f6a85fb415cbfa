package session

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks over two real UDP sockets on 127.0.0.1, session machines
// against a raw-UDP baseline that does the same hops (socket reader
// goroutine → owning loop goroutine → benchmark) without encryption,
// fragmentation, acks or receipts.
//
//	go test -run '^$' -bench . -benchtime 2000x ./session/

// udpEnd is one side of a loopback benchmark: a socket, its reader
// goroutine, and a loop goroutine that owns the machine (nil for raw UDP).
type udpEnd struct {
	conn *net.UDPConn
	peer netip.AddrPort
	m    *Machine
	in   chan []byte
	send chan OutMessage
	// recv gets one value per message received, from the loop goroutine.
	recv chan struct{}
	// delivered counts Delivered events.
	delivered atomic.Int64
	est       chan struct{}
}

// udpPair owns two ends and every goroutine they run.
type udpPair struct {
	ends   [2]*udpEnd
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func listenLoopback(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c
}

// newUDPPair starts two ends; with session true they run machines and
// complete the handshake before returning.
func newUDPPair(tb testing.TB, session bool) *udpPair {
	tb.Helper()
	p := &udpPair{}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for i := range p.ends {
		p.ends[i] = &udpEnd{
			conn: listenLoopback(tb),
			in:   make(chan []byte, 1024),
			send: make(chan OutMessage, 1024),
			recv: make(chan struct{}, 1<<16),
			est:  make(chan struct{}, 1),
		}
	}
	for i, e := range p.ends {
		e.peer = p.ends[1-i].conn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	if session {
		a, b := simPair(tb, 1, Timers{})
		p.ends[0].m, p.ends[1].m = a, b
	}
	for _, e := range p.ends {
		p.wg.Add(2)
		go func() { defer p.wg.Done(); e.read() }()
		go func() { defer p.wg.Done(); e.loop(ctx) }()
	}
	if session {
		for _, e := range p.ends {
			select {
			case <-e.est:
			case <-time.After(5 * time.Second):
				p.close()
				tb.Fatal("handshake over loopback did not complete")
			}
		}
	}
	return p
}

// close stops the loops, closes the sockets (ending the readers) and waits.
func (p *udpPair) close() {
	p.cancel()
	for _, e := range p.ends {
		e.conn.Close()
	}
	p.wg.Wait()
}

func (e *udpEnd) read() {
	buf := make([]byte, 64<<10)
	for {
		n, _, err := e.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		e.in <- bytes.Clone(buf[:n])
	}
}

func (e *udpEnd) loop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	if e.m != nil {
		e.m.Start(time.Now())
	}
	for {
		if e.m != nil {
			e.flush()
			timer.Reset(time.Hour)
			if d := e.m.Deadline(); !d.IsZero() {
				timer.Reset(time.Until(d))
			}
		}
		select {
		case <-ctx.Done():
			return
		case b := <-e.in:
			e.handle(b)
			for more := true; more; {
				select {
				case b := <-e.in:
					e.handle(b)
				default:
					more = false
				}
			}
		case msg := <-e.send:
			e.sendMsg(msg)
			for more := true; more; {
				select {
				case msg := <-e.send:
					e.sendMsg(msg)
				default:
					more = false
				}
			}
		case <-timer.C:
			if e.m != nil {
				e.m.HandleTimeout(time.Now())
			}
		}
	}
}

func (e *udpEnd) handle(b []byte) {
	if e.m == nil {
		e.recv <- struct{}{}
		return
	}
	now := time.Now()
	e.m.HandleDatagram(now, b)
	for _, ev := range e.m.Events() {
		switch ev := ev.(type) {
		case Established:
			e.est <- struct{}{}
		case Received:
			_ = e.m.Commit(now, ev.ID)
			e.recv <- struct{}{}
		case Delivered:
			e.delivered.Add(1)
		}
	}
}

func (e *udpEnd) sendMsg(msg OutMessage) {
	if e.m == nil {
		// Raw baseline: the body plus the ID, as one datagram.
		b := append(msg.ID[:8:8], msg.Body...)
		_, _ = e.conn.WriteToUDPAddrPort(b, e.peer)
		return
	}
	_ = e.m.Send(time.Now(), msg)
}

func (e *udpEnd) flush() {
	for _, b := range e.m.Transmits() {
		_, _ = e.conn.WriteToUDPAddrPort(b, e.peer)
	}
	for _, ev := range e.m.Events() {
		switch ev.(type) {
		case Established:
			e.est <- struct{}{}
		case Delivered:
			e.delivered.Add(1)
		}
	}
}

func benchID(n int) MessageID {
	var id MessageID
	binary.BigEndian.PutUint64(id[:], uint64(n))
	return id
}

// BenchmarkLatency sends one message at a time and measures the time from
// Send to the message's arrival at the other end's loop.
func BenchmarkLatency(b *testing.B) {
	for _, mode := range []string{"raw-udp", "session"} {
		b.Run(mode+"/100B", func(b *testing.B) {
			p := newUDPPair(b, mode == "session")
			defer p.close()
			body := bytes.Repeat([]byte{'x'}, 100)
			lat := make([]time.Duration, 0, b.N)
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				p.ends[0].send <- OutMessage{ID: benchID(i), Body: body, SentAt: t0}
				timer.Reset(5 * time.Second)
				select {
				case <-p.ends[1].recv:
				case <-timer.C:
					b.Fatalf("message %d not received within 5 s", i)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
		})
	}
}

// BenchmarkThroughput sends b.N messages as fast as the sender accepts them
// and stops the clock when the last one arrived. The raw baseline has no
// flow control, so datagrams the receiver's socket buffer could not hold
// are lost and counted (lost-%); its msgs/s and MB/s count what arrived.
func BenchmarkThroughput(b *testing.B) {
	for _, size := range []int{100, 16 << 10} {
		for _, mode := range []string{"raw-udp", "session"} {
			name := mode + "/100B"
			if size > 100 {
				name = mode + "/16KiB"
			}
			b.Run(name, func(b *testing.B) {
				p := newUDPPair(b, mode == "session")
				defer p.close()
				body := bytes.Repeat([]byte{'x'}, size)
				quiet := 5 * time.Second
				if mode == "raw-udp" {
					quiet = 200 * time.Millisecond // what is lost stays lost
				}
				timer := time.NewTimer(quiet)
				defer timer.Stop()
				done := make(chan struct{})
				var sender sync.WaitGroup
				defer func() { close(done); sender.Wait() }()
				b.ReportAllocs()
				b.ResetTimer()
				start := time.Now()
				sender.Add(1)
				go func() {
					defer sender.Done()
					for i := range b.N {
						select {
						case p.ends[0].send <- OutMessage{ID: benchID(i), Body: body, SentAt: time.Now()}:
						case <-done:
							return
						}
					}
				}()
				arrived, last := 0, start
			wait:
				for arrived < b.N {
					timer.Reset(quiet)
					select {
					case <-p.ends[1].recv:
						arrived++
						last = time.Now()
					case <-timer.C:
						if mode == "session" {
							b.Fatalf("session stalled after %d of %d messages", arrived, b.N)
						}
						break wait
					}
				}
				b.StopTimer()
				elapsed := last.Sub(start).Seconds()
				b.ReportMetric(float64(arrived)/elapsed, "msgs/s")
				b.ReportMetric(float64(arrived*size)/elapsed/1e6, "MB/s")
				b.ReportMetric(100*float64(b.N-arrived)/float64(b.N), "lost-%")
				if mode == "session" {
					deadline := time.Now().Add(5 * time.Second)
					for p.ends[0].delivered.Load() < int64(b.N) {
						if time.Now().After(deadline) {
							b.Fatalf("%d of %d receipts", p.ends[0].delivered.Load(), b.N)
						}
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
	}
}

// TestLoopbackUDP runs the benchmark harness as a test: real sockets on
// 127.0.0.1, 2,000 messages of mixed sizes, every one received and
// delivered, and every goroutine gone afterwards.
func TestLoopbackUDP(t *testing.T) {
	before := runtime.NumGoroutine()
	p := newUDPPair(t, true)
	const n = 2000
	done := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		for i := range n {
			select {
			case p.ends[0].send <- OutMessage{ID: benchID(i), Body: simMsgBody(0, i), SentAt: time.Now()}:
			case <-done:
				return
			}
		}
	}()
	defer func() { close(done); sender.Wait() }()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for i := range n {
		select {
		case <-p.ends[1].recv:
		case <-timer.C:
			p.close()
			t.Fatalf("received %d of %d messages over loopback", i, n)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.ends[0].delivered.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := p.ends[0].delivered.Load(); got != n {
		t.Errorf("%d of %d receipts", got, n)
	}
	p.close()
	for time.Now().Before(deadline) && runtime.NumGoroutine() > before {
		time.Sleep(time.Millisecond)
	}
	if got := runtime.NumGoroutine(); got > before {
		t.Errorf("%d goroutines left running after close (had %d)", got, before)
	}
}

// BenchmarkMachineInMemory is the machines' own cost per message, without
// sockets or goroutines: A sends, B receives and commits, A gets the
// receipt, datagrams handed over directly.
func BenchmarkMachineInMemory(b *testing.B) {
	for _, size := range []int{100, 16 << 10} {
		name := "100B"
		if size > 100 {
			name = "16KiB"
		}
		b.Run(name, func(b *testing.B) {
			a, r := simPair(b, 1, Timers{})
			now := simEpoch
			a.Start(now)
			r.Start(now)
			exchange := func() (received, delivered int) {
				for moved := true; moved; {
					moved = false
					for _, d := range a.Transmits() {
						r.HandleDatagram(now, d)
						moved = true
					}
					for _, ev := range r.Events() {
						if rcv, ok := ev.(Received); ok {
							received++
							_ = r.Commit(now, rcv.ID)
						}
					}
					for _, d := range r.Transmits() {
						a.HandleDatagram(now, d)
						moved = true
					}
					for _, ev := range a.Events() {
						if _, ok := ev.(Delivered); ok {
							delivered++
						}
					}
				}
				return received, delivered
			}
			exchange()
			body := bytes.Repeat([]byte{'x'}, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				now = now.Add(time.Microsecond)
				if err := a.Send(now, OutMessage{ID: benchID(i), Body: body, SentAt: now}); err != nil {
					b.Fatal(err)
				}
				if rc, dl := exchange(); rc != 1 || dl != 1 {
					b.Fatalf("message %d: %d received, %d delivered", i, rc, dl)
				}
			}
		})
	}
}
