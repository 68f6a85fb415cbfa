package transfer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/session/transfer"
	"golang.org/x/crypto/curve25519"
)

// The figures of file transfer over loopback, in one run:
//
//	go test -run '^$' -bench Loopback -benchtime 1x ./session/transfer/
//
// moves one file (1 GiB; -transfer.size to change) from disk to disk three
// ways: a plain TCP copy (Go's io.Copy, sendfile and splice on Linux), raw
// UDP datagrams without any reliability, and a p2ptui transfer (two
// session machines on real UDP sockets, each owned by one loop goroutine
// as the UI will own it, with transfer machines, Workers and bbolt
// stores). During the transfer a chat message goes the same way every
// 5 ms; its latency is compared with an idle session's. The heap is
// sampled throughout, for the file and for one 16 times smaller, to show
// what a transfer holds does not grow with the file.

var (
	benchSize = flag.Int64("transfer.size", 1<<30, "bytes of the file BenchmarkLoopback moves")
)

// benchFiles creates the source file once per run.
var benchFiles struct {
	once sync.Once
	dir  string
	src  map[int64]string
	err  error
}

func benchSource(b *testing.B, size int64) string {
	b.Helper()
	benchFiles.once.Do(func() {
		benchFiles.dir, benchFiles.err = os.MkdirTemp("", "p2ptui-bench-")
		benchFiles.src = map[int64]string{}
	})
	if benchFiles.err != nil {
		b.Fatal(benchFiles.err)
	}
	if p, ok := benchFiles.src[size]; ok {
		return p
	}
	p := filepath.Join(benchFiles.dir, fmt.Sprintf("source-%d.bin", size))
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	var seed [32]byte
	if _, err := io.CopyN(f, rand.NewChaCha8(seed), size); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	benchFiles.src[size] = p
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchFiles.dir != "" {
		os.RemoveAll(benchFiles.dir)
	}
	os.Exit(code)
}

func BenchmarkLoopback(b *testing.B) {
	size := *benchSize
	b.Run("tcp-copy", func(b *testing.B) {
		src := benchSource(b, size)
		for range b.N {
			d := tcpCopy(b, src, b.TempDir())
			b.ReportMetric(float64(size)/d.Seconds()/1e6, "MB/s")
		}
	})
	b.Run("raw-udp", func(b *testing.B) {
		src := benchSource(b, size)
		for range b.N {
			d, got := udpBlast(b, src, b.TempDir())
			b.ReportMetric(float64(got)/d.Seconds()/1e6, "MB/s")
			b.ReportMetric(100*(1-float64(got)/float64(size)), "lost-%")
		}
	})
	b.Run("transfer", func(b *testing.B) {
		for range b.N {
			r := runTransfer(b, benchSource(b, size), true)
			b.ReportMetric(float64(size)/r.total.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(size)/r.streaming.Seconds()/1e6, "stream-MB/s")
			b.ReportMetric(r.hashing.Seconds(), "hash-s")
			b.ReportMetric(r.verify.Seconds(), "verify-s")
			b.ReportMetric(micros(r.idle, 50), "idle-chat-p50-µs")
			b.ReportMetric(micros(r.busy, 50), "chat-p50-µs")
			b.ReportMetric(micros(r.busy, 99), "chat-p99-µs")
			b.ReportMetric(micros(r.busy, 100), "chat-max-µs")
			small := runTransfer(b, benchSource(b, size/16), false)
			mib := func(a, b uint64) float64 { return float64(a-b) / (1 << 20) }
			b.ReportMetric(mib(r.peakLive, r.baseLive), "live-heap-MiB")
			b.ReportMetric(mib(small.peakLive, small.baseLive), "live-heap-1/16-MiB")
			b.ReportMetric(mib(r.peakInUse, r.baseInUse), "heap-in-use-MiB")
			b.Logf("%d bytes: %v end to end (hashing %v, streaming %v, verifying %v); %d chat messages during it: p50 %v p99 %v max %v (idle p50 %v); heap held above idle %.1f MiB live, %.1f MiB with garbage (for a file 1/16 the size: %.1f / %.1f MiB)",
				size, r.total.Round(time.Millisecond), r.hashing.Round(time.Millisecond), r.streaming.Round(time.Millisecond),
				r.verify.Round(time.Millisecond), len(r.busy), pct(r.busy, 50), pct(r.busy, 99), pct(r.busy, 100), pct(r.idle, 50),
				mib(r.peakLive, r.baseLive), mib(r.peakInUse, r.baseInUse), mib(small.peakLive, small.baseLive), mib(small.peakInUse, small.baseInUse))
		}
	})
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func micros(d []time.Duration, p int) float64 { return float64(pct(d, p).Nanoseconds()) / 1e3 }

// tcpCopy copies src to a new file in dir over one loopback TCP
// connection and returns the time until the copy is synced to disk.
func tcpCopy(b *testing.B, src, dir string) time.Duration {
	ln, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.AcceptTCP()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		f, err := os.Create(filepath.Join(dir, "copy.bin"))
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, c); err != nil {
			done <- err
			return
		}
		done <- f.Sync()
	}()
	start := time.Now()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	c, err := net.DialTCP("tcp4", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(c, in); err != nil {
		b.Fatal(err)
	}
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// udpBlast sends src as fast as one goroutine can in datagrams the size
// of a session's (an offset and 1,192 bytes), with no acknowledgement,
// retransmission or flow control; the receiver writes what arrives at its
// offset. It returns the time until the last datagram arrived and the
// bytes that did.
func udpBlast(b *testing.B, src, dir string) (time.Duration, int64) {
	rc, sc := listenUDP(b), listenUDP(b)
	defer sc.Close()
	out, err := os.Create(filepath.Join(dir, "udp.bin"))
	if err != nil {
		b.Fatal(err)
	}
	defer out.Close()
	var got atomic.Int64
	var last atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, _, err := rc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if n < 8 {
				continue
			}
			off := int64(binary.BigEndian.Uint64(buf))
			if _, err := out.WriteAt(buf[8:n], off); err == nil {
				got.Add(int64(n - 8))
				last.Store(time.Now().UnixNano())
			}
		}
	}()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	to := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	const payload = session.MaxDatagramSize - 8
	buf := make([]byte, 8+payload)
	start := time.Now()
	for off := int64(0); ; off += payload {
		n, err := in.ReadAt(buf[8:], off)
		if n > 0 {
			binary.BigEndian.PutUint64(buf, uint64(off))
			_, _ = sc.WriteToUDPAddrPort(buf[:8+n], to)
		}
		if err != nil {
			break
		}
	}
	// What is lost stays lost: wait for a quiet 200 ms.
	for prev := int64(-1); got.Load() != prev; {
		prev = got.Load()
		time.Sleep(200 * time.Millisecond)
	}
	rc.Close()
	<-done
	return time.Unix(0, last.Load()).Sub(start), got.Load()
}

func listenUDP(tb testing.TB) *net.UDPConn {
	tb.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatalf("listen on loopback: %v", err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	return c
}

// peerEnd is one side of a loopback transfer: a socket, its reader
// goroutine, and a loop goroutine that owns the session machine, the
// transfer machine and the worker's results, as the UI's event loop will.
type peerEnd struct {
	conn   *net.UDPConn
	peer   netip.AddrPort
	sess   *session.Machine
	tm     *transfer.Machine
	worker *transfer.Worker
	store  *store.Store
	in     chan []byte
	calls  chan func(now time.Time)
	// onEvent and onChat run on the loop goroutine.
	onEvent func(transfer.Event)
	onChat  func(session.Received)
}

type benchResult struct {
	total, hashing, streaming, verify time.Duration
	idle, busy                        []time.Duration
	// The live heap (as of the last GC: what is really held) and the heap
	// in use (garbage not yet collected included), before and at most
	// during the transfer.
	baseLive, peakLive   uint64
	baseInUse, peakInUse uint64
}

// heapNow reads the live heap as of the last GC and the heap in use.
func heapNow() (live, inUse uint64) {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

func benchKey(seed byte) (priv, pub [32]byte) {
	for i := range priv {
		priv[i] = seed + byte(i)*11
	}
	p, _ := curve25519.X25519(priv[:], curve25519.Basepoint)
	copy(pub[:], p)
	return priv, pub
}

// runTransfer sends src from one end to the other over loopback UDP and
// measures it; with chat set it also measures chat latency, idle and
// during the transfer.
func runTransfer(b *testing.B, src string, chat bool) benchResult {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ends [2]*peerEnd
	keys := [2][2][32]byte{}
	for i := range ends {
		keys[i][0], keys[i][1] = benchKey(byte(i + 1))
	}
	for i := range ends {
		dir := b.TempDir()
		st, err := store.OpenStore(filepath.Join(dir, "profile"))
		if err != nil {
			b.Fatal(err)
		}
		files, err := transfer.NewFiles(transfer.FilesConfig{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		sess, err := session.NewMachine(session.Config{Initiator: i == 0, LocalPrivate: keys[i][0], LocalPublic: keys[i][1],
			RemoteStatic: keys[1-i][1], SessionID: "benchsession01"})
		if err != nil {
			b.Fatal(err)
		}
		tm, err := transfer.NewMachine(transfer.Config{Peer: keys[1-i][1]})
		if err != nil {
			b.Fatal(err)
		}
		ends[i] = &peerEnd{conn: listenUDP(b), sess: sess, tm: tm, worker: transfer.NewWorker(files), store: st,
			in: make(chan []byte, 4096), calls: make(chan func(time.Time), 64)}
	}
	for i, e := range ends {
		e.peer = ends[1-i].conn.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	up := make(chan struct{}, 2)
	done := make(chan string, 1)
	var started, finishing time.Time
	var mu sync.Mutex
	var lat []time.Duration
	ends[0].onEvent = func(ev transfer.Event) {
		switch ev := ev.(type) {
		case transfer.Started:
			started = time.Now()
		case transfer.Progress:
			if ev.Done == ev.Size && finishing.IsZero() {
				finishing = time.Now() // all stored; the receiver verifies
			}
		case transfer.Failed:
			b.Errorf("sender: %v (%s)", ev.Reason, ev.Detail)
		}
	}
	downloads := b.TempDir()
	ends[1].onEvent = func(ev transfer.Event) {
		switch ev := ev.(type) {
		case transfer.OfferReceived:
			if err := ends[1].tm.Accept(time.Now(), ev.ID, downloads); err != nil {
				b.Error(err)
			}
		case transfer.Completed:
			done <- ev.Path
		case transfer.Failed:
			b.Errorf("receiver: %v (%s)", ev.Reason, ev.Detail)
			done <- ""
		}
	}
	ends[1].onChat = func(r session.Received) {
		mu.Lock()
		lat = append(lat, time.Since(r.SentAt))
		mu.Unlock()
	}
	for _, e := range ends {
		wg.Add(2)
		go func() { defer wg.Done(); e.read() }()
		go func() { defer wg.Done(); e.loop(ctx, up) }()
	}
	defer func() {
		cancel()
		for _, e := range ends {
			e.conn.Close()
		}
		wg.Wait()
		for _, e := range ends {
			e.worker.Close()
			e.store.Close()
		}
	}()
	for range 2 {
		select {
		case <-up:
		case <-time.After(10 * time.Second):
			b.Fatal("no session over loopback within 10 s")
		}
	}

	var res benchResult
	sendChat := func(n int) {
		var id session.MessageID
		binary.BigEndian.PutUint64(id[:], uint64(n))
		ends[0].calls <- func(now time.Time) {
			_ = ends[0].sess.Send(now, session.OutMessage{ID: id, Body: []byte("how is it going?"), SentAt: time.Now()})
		}
	}
	if chat {
		for n := range 500 {
			sendChat(n)
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		res.idle, lat = lat, nil
		mu.Unlock()
	}
	runtime.GC()
	res.baseLive, res.baseInUse = heapNow()
	var peakLive, peakInUse atomic.Uint64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-t.C:
				live, inUse := heapNow()
				peakLive.Store(max(peakLive.Load(), live))
				peakInUse.Store(max(peakInUse.Load(), inUse))
			}
		}
	}()

	start := time.Now()
	offered := make(chan error, 1)
	ends[0].calls <- func(now time.Time) {
		_, err := ends[0].tm.Offer(now, src)
		offered <- err
	}
	if err := <-offered; err != nil {
		b.Fatal(err)
	}
	stopChat := make(chan struct{})
	var chatter sync.WaitGroup
	if chat {
		chatter.Add(1)
		go func() {
			defer chatter.Done()
			t := time.NewTicker(5 * time.Millisecond)
			defer t.Stop()
			for n := 1000; ; n++ {
				select {
				case <-stopChat:
					return
				case <-t.C:
					sendChat(n)
				}
			}
		}()
	}
	var path string
	select {
	case path = <-done:
	case <-time.After(10 * time.Minute):
		b.Fatal("transfer not done within 10 minutes")
	}
	res.total = time.Since(start)
	close(stopChat)
	chatter.Wait()
	close(sampling)
	sampler.Wait()
	res.peakLive, res.peakInUse = max(peakLive.Load(), res.baseLive), max(peakInUse.Load(), res.baseInUse)
	if path == "" {
		b.FailNow()
	}
	done2 := make(chan struct{})
	ends[0].calls <- func(time.Time) { res.hashing, res.streaming = started.Sub(start), finishing.Sub(started); close(done2) }
	<-done2
	res.verify = res.total - res.hashing - res.streaming
	mu.Lock()
	res.busy = lat
	mu.Unlock()
	if !sameContent(b, src, path) {
		b.Fatalf("%s differs from %s", path, src)
	}
	os.Remove(path)
	return res
}

func sameContent(b *testing.B, x, y string) bool {
	h := func(p string) [32]byte {
		f, err := os.Open(p)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		s := sha256.New()
		if _, err := io.Copy(s, f); err != nil {
			b.Fatal(err)
		}
		var out [32]byte
		s.Sum(out[:0])
		return out
	}
	return h(x) == h(y)
}

func (e *peerEnd) read() {
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

func (e *peerEnd) loop(ctx context.Context, up chan<- struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	e.sess.Start(time.Now())
	e.tm.Start(time.Now())
	for {
		e.flush(up)
		timer.Reset(time.Hour)
		if d := sansio.Earliest(e.sess.Deadline(), e.tm.Deadline()); !d.IsZero() {
			timer.Reset(time.Until(d))
		}
		select {
		case <-ctx.Done():
			return
		case b := <-e.in:
			now := time.Now()
			e.sess.HandleDatagram(now, b)
			for more := true; more; {
				select {
				case b := <-e.in:
					e.sess.HandleDatagram(now, b)
				default:
					more = false
				}
			}
		case r := <-e.worker.Results():
			e.tm.HandleResult(time.Now(), r)
		case f := <-e.calls:
			f(time.Now())
		case <-timer.C:
			now := time.Now()
			e.sess.HandleTimeout(now)
			e.tm.HandleTimeout(now)
		}
	}
}

// flush does what the UI adapter will: datagrams to the socket, session
// events to the transfer machine (or the chat), effects to the worker,
// transfer events to the screen, until nothing more comes out.
func (e *peerEnd) flush(up chan<- struct{}) {
	for busy := true; busy; {
		busy = false
		for _, b := range e.sess.Transmits() {
			busy = true
			_, _ = e.conn.WriteToUDPAddrPort(b, e.peer)
		}
		now := time.Now()
		for _, ev := range e.sess.Events() {
			busy = true
			switch ev := ev.(type) {
			case session.Established:
				e.tm.SessionUp(now, e.sess)
				up <- struct{}{}
			case session.Received:
				_ = e.sess.Commit(now, ev.ID)
				if e.onChat != nil {
					e.onChat(ev)
				}
			default:
				e.tm.HandleSessionEvent(now, ev)
			}
		}
		if effs := e.tm.Effects(); len(effs) > 0 {
			busy = true
			e.worker.Do(effs...)
		}
		for _, ev := range e.tm.Events() {
			busy = true
			if e.onEvent != nil {
				e.onEvent(ev)
			}
		}
	}
}
