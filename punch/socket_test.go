package punch

import (
	"bytes"
	"context"
	"errors"
	"net"
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
	if s.Family() != FamilyIPv4 {
		t.Errorf("0.0.0.0:0 socket is %v, want IPv4", s.Family())
	}
	cands := s.HostCandidates()
	if len(cands) == 0 {
		t.Fatal("no host candidates (loopback at least is expected)")
	}
	_, v4, _, loop := interfaceAddrs()
	for i, c := range cands {
		if c.Type != CandidateHost {
			t.Errorf("%v: type %v, want host", c, c.Type)
		}
		if c.Addr.Port() != s.LocalAddr().Port() || !c.Addr.Addr().Is4() {
			t.Errorf("%v: want an IPv4 address with the socket's port %d", c, s.LocalAddr().Port())
		}
		if c.Addr.Addr().IsLoopback() && len(v4) > 0 {
			t.Errorf("%v: loopback listed although %v exist", c, v4)
		}
		if i > 0 && c.Priority >= cands[i-1].Priority {
			t.Errorf("priorities not decreasing: %v after %v", c.Priority, cands[i-1].Priority)
		}
		if c.Priority <= srflxCandidatePriority() {
			t.Errorf("host priority %d not above server-reflexive %d", c.Priority, srflxCandidatePriority())
		}
	}
	if len(v4) == 0 && len(cands) == 0 {
		t.Errorf("only loopback exists: got %v, want %v", cands, loop)
	}

	// A socket bound to one address offers just that.
	b := listenLoopback(t, context.Background())
	if got := b.HostCandidates(); len(got) != 1 || got[0].Addr != b.LocalAddr() {
		t.Errorf("bound to %v: candidates %v", b.LocalAddr(), got)
	}
}

// needIPv6 skips a test on a host without IPv6 loopback.
func needIPv6(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	c.Close()
}

// TestDualStackSocket: one "[::]:0" socket talks to IPv4 and IPv6 peers,
// reports their addresses unmapped, and offers its global IPv6 addresses
// (never link-local ones) before its IPv4 ones.
func TestDualStackSocket(t *testing.T) {
	needIPv6(t)
	checkNoLeak(t)
	s, err := ListenUDP(context.Background(), "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Family() != FamilyAny {
		t.Fatalf("[::]:0 socket is %v, want dual-stack", s.Family())
	}
	v4 := listenLoopback(t, context.Background())
	v6, err := ListenUDP(context.Background(), "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer v6.Close()
	if v6.Family() != FamilyIPv6 {
		t.Errorf("[::1]:0 socket is %v, want IPv6", v6.Family())
	}
	port := s.LocalAddr().Port()
	for _, peer := range []*Socket{v4, v6} {
		to := netip.AddrPortFrom(peer.LocalAddr().Addr(), peer.LocalAddr().Port())
		if err := s.WriteTo([]byte("out"), to); err != nil {
			t.Fatalf("dual-stack write to %v: %v", to, err)
		}
		d := recv(t, peer)
		if d.From.Port() != port || d.From.Addr() != peer.LocalAddr().Addr() {
			t.Errorf("%v got it from %v", to, d.From)
		}
		back := netip.AddrPortFrom(peer.LocalAddr().Addr(), port)
		if err := peer.WriteTo([]byte("back"), back); err != nil {
			t.Fatal(err)
		}
		d = recv(t, s)
		if d.From != peer.LocalAddr() {
			t.Errorf("dual-stack socket got %q from %v, want %v (unmapped)", d.Data, d.From, peer.LocalAddr())
		}
	}
	prevV6 := true
	for _, c := range s.HostCandidates() {
		a := c.Addr.Addr()
		if a.IsLinkLocalUnicast() || a.Zone() != "" {
			t.Errorf("link-local candidate %v", c)
		}
		global6 := a.Is6() && !a.IsPrivate() && !a.IsLoopback()
		if global6 && !prevV6 {
			t.Errorf("global IPv6 %v listed after another family", c)
		}
		prevV6 = global6
	}
	if got := v4.Family().Allows(netip.MustParseAddr("::1")); got {
		t.Error("an IPv4 socket allows IPv6")
	}
	if !FamilyAny.Allows(netip.MustParseAddr("::1")) || !FamilyAny.Allows(netip.MustParseAddr("10.0.0.1")) ||
		FamilyIPv6.Allows(netip.MustParseAddr("10.0.0.1")) {
		t.Error("Family.Allows is wrong")
	}
}

// TestSocketSet: one channel carries every socket's datagrams stamped
// with its ID; Send routes by Transmit.Socket; a closed socket is gone.
func TestSocketSet(t *testing.T) {
	checkNoLeak(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set := NewSocketSet(ctx)
	defer set.CloseAll()
	main, err := set.Listen("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	if main.ID() != MainSocket || main.Datagrams() != nil {
		t.Fatalf("first socket: ID %d, own channel %v", main.ID(), main.Datagrams() != nil)
	}
	extra, err := set.ListenMany("127.0.0.1:0", 3, 2048)
	if err != nil || len(extra) != 3 || extra[0] != 1 || extra[2] != 3 {
		t.Fatalf("ListenMany: %v %v", extra, err)
	}
	peer := listenLoopback(t, context.Background())
	for _, id := range append([]SocketID{MainSocket}, extra...) {
		if err := set.Send(Transmit{Socket: id, To: peer.LocalAddr(), Data: []byte{byte(id)}}); err != nil {
			t.Fatal(err)
		}
		d := recv(t, peer)
		if d.Data[0] != byte(id) || d.From.Port() != set.Get(id).LocalAddr().Port() {
			t.Errorf("socket %d: datagram %v from %v", id, d.Data, d.From)
		}
		if err := peer.WriteTo([]byte("hi"), set.Get(id).LocalAddr()); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-set.Datagrams():
			if d.Socket != id || d.From != peer.LocalAddr() {
				t.Errorf("datagram for socket %d arrived as %d from %v", id, d.Socket, d.From)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing on socket %d within 5 s", id)
		}
	}
	// A datagram bigger than a small buffer is cut, never spilled.
	big := bytes.Repeat([]byte{0x60}, 3000)
	if err := peer.WriteTo(big, set.Get(extra[0]).LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if d := <-set.Datagrams(); len(d.Data) != 2048 {
		t.Errorf("a 3000-byte datagram on a 2048-byte socket read as %d bytes", len(d.Data))
	}
	if err := set.Close(extra[1], 99); err != nil {
		t.Fatal(err)
	}
	if set.Get(extra[1]) != nil || set.Len() != 3 {
		t.Fatalf("closed socket still there (%d sockets)", set.Len())
	}
	if err := set.Send(Transmit{Socket: extra[1], To: peer.LocalAddr()}); !errors.Is(err, ErrUnknownSocket) {
		t.Errorf("send from a closed socket: %v", err)
	}
	if err := set.CloseAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := set.Listen("127.0.0.1:0", 0); err == nil {
		t.Error("Listen on a closed set succeeded")
	}
	if _, err := (ListenConfig{BufferSize: -1}).Listen(ctx, "127.0.0.1:0"); err == nil {
		t.Error("negative buffer size accepted")
	}
}
