package punch

import (
	"bytes"
	"context"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// checkNoLeak fails the test if goroutines started during it are still
// running when it ends.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

func listenLoopback(t *testing.T, ctx context.Context) *Socket {
	t.Helper()
	s, err := ListenUDP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func recv(t *testing.T, s *Socket) Datagram {
	t.Helper()
	select {
	case d, ok := <-s.Datagrams():
		if !ok {
			t.Fatal("Datagrams closed while a datagram was expected")
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no datagram within 5 s")
	}
	return Datagram{}
}

func TestSocketRoundTrip(t *testing.T) {
	checkNoLeak(t)
	a := listenLoopback(t, context.Background())
	b := listenLoopback(t, context.Background())
	if !a.LocalAddr().Addr().Is4() || a.LocalAddr().Port() == 0 {
		t.Fatalf("LocalAddr %v: want an IPv4 address with a port", a.LocalAddr())
	}
	msg := []byte("hello over loopback")
	before := time.Now()
	if err := a.WriteTo(msg, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	d := recv(t, b)
	if !bytes.Equal(d.Data, msg) {
		t.Errorf("got %q, want %q", d.Data, msg)
	}
	if d.From != a.LocalAddr() {
		t.Errorf("From %v, want %v", d.From, a.LocalAddr())
	}
	if d.At.Before(before) {
		t.Errorf("At %v is before the send at %v", d.At, before)
	}

	// Each datagram gets its own copy: a later read must not overwrite an
	// earlier one the consumer still holds.
	if err := a.WriteTo([]byte("second datagram"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	d2 := recv(t, b)
	if string(d.Data) != string(msg) || string(d2.Data) != "second datagram" {
		t.Errorf("datagrams share a buffer: %q then %q", d.Data, d2.Data)
	}

	// A mapped IPv4 destination works on the udp4 socket.
	mapped := netip.AddrPortFrom(netip.AddrFrom16(b.LocalAddr().Addr().As16()), b.LocalAddr().Port())
	if err := a.WriteTo([]byte("mapped"), mapped); err != nil {
		t.Fatalf("write to %v: %v", mapped, err)
	}
	if d := recv(t, b); string(d.Data) != "mapped" {
		t.Errorf("got %q", d.Data)
	}
}

func TestSocketLargeDatagram(t *testing.T) {
	checkNoLeak(t)
	a := listenLoopback(t, context.Background())
	b := listenLoopback(t, context.Background())
	msg := bytes.Repeat([]byte{0x63}, 60000)
	if err := a.WriteTo(msg, b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if d := recv(t, b); len(d.Data) != len(msg) {
		t.Errorf("got %d bytes, want %d", len(d.Data), len(msg))
	}
}

func TestSocketCloseStopsReader(t *testing.T) {
	checkNoLeak(t)
	s, err := ListenUDP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Fill the queue so the reader is blocked handing a datagram on: Close
	// must still stop it.
	w := listenLoopback(t, context.Background())
	for range socketQueue + 8 {
		if err := w.WriteTo([]byte("x"), s.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for range s.Datagrams() { // drains, then must end: the channel is closed
	}
	if err := s.WriteTo([]byte("x"), w.LocalAddr()); err == nil {
		t.Error("WriteTo on a closed socket succeeded")
	}
}

func TestSocketContextEndCloses(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := ListenUDP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	select {
	case _, ok := <-s.Datagrams():
		if ok {
			t.Fatal("got a datagram nobody sent")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Datagrams not closed 5 s after the context ended")
	}
}

func TestSocketListenError(t *testing.T) {
	if _, err := ListenUDP(context.Background(), "not an address"); err == nil {
		t.Error("ListenUDP on a bad address succeeded")
	}
}

func TestHostCandidates(t *testing.T) {
	checkNoLeak(t)
	s, err := ListenUDP(context.Background(), "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cands := s.HostCandidates()
	if len(cands) == 0 {
		t.Fatal("no host candidates (loopback at least is expected)")
	}
	usable, loop := interfaceAddrs()
	for i, c := range cands {
		if c.Type != CandidateHost {
			t.Errorf("%v: type %v, want host", c, c.Type)
		}
		if c.Addr.Port() != s.LocalAddr().Port() || !c.Addr.Addr().Is4() {
			t.Errorf("%v: want an IPv4 address with the socket's port %d", c, s.LocalAddr().Port())
		}
		if c.Addr.Addr().IsLoopback() && len(usable) > 0 {
			t.Errorf("%v: loopback listed although %v exist", c, usable)
		}
		if i > 0 && c.Priority >= cands[i-1].Priority {
			t.Errorf("priorities not decreasing: %v after %v", c.Priority, cands[i-1].Priority)
		}
		if c.Priority <= srflxCandidatePriority() {
			t.Errorf("host priority %d not above server-reflexive %d", c.Priority, srflxCandidatePriority())
		}
	}
	if len(usable) == 0 && len(cands) != len(loop) {
		t.Errorf("only loopback exists: got %v, want %v", cands, loop)
	}

	// A socket bound to one address offers just that.
	b := listenLoopback(t, context.Background())
	if got := b.HostCandidates(); len(got) != 1 || got[0].Addr != b.LocalAddr() {
		t.Errorf("bound to %v: candidates %v", b.LocalAddr(), got)
	}
}
