package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/internal/coturntest"
)

// Tests against a real TURN server: coturn ("turnserver", Debian's coturn
// package) on loopback, started per test on a free port and killed in
// cleanup. Without it they skip, except under CI=true, where they fail.

const (
	testUser     = "alice"
	testPassword = "wonderland-7"
	testSecret   = "north-wind-secret"
	testRealm    = "p2ptui.test"
)

// checkNoLeak fails the test if goroutines started during it outlive it.
func checkNoLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// freePort is a UDP port nothing listens on at 127.0.0.1 right now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

// startTURN runs coturn as a TURN server on 127.0.0.1 with the given auth
// flags and returns its Server once it answers a Binding request.
func startTURN(t *testing.T, auth ...string) Server {
	t.Helper()
	port := freePort(t)
	args := append([]string{"--no-tcp", "-L", "127.0.0.1", "--relay-ip=127.0.0.1",
		"--listening-port=" + strconv.Itoa(int(port)), "--realm=" + testRealm, "--allow-loopback-peers",
		"--relay-threads=1"}, auth...)
	coturntest.Start(t, args...).WaitAnswering(t, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port))
	return Server{Host: "127.0.0.1", Port: port}
}

func longTerm(t *testing.T, user, password string) Credentials {
	t.Helper()
	c, err := NewCredentials(user, password, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func allocate(t *testing.T, cfg Config) *Relay {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := Allocate(ctx, cfg)
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// recvFrom waits for a datagram on a plain UDP socket.
func recvFrom(t *testing.T, c net.PacketConn) ([]byte, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no datagram within 10 s: %v", err)
		}
		if n == 0 {
			continue // the empty datagram that made the permission
		}
		return append([]byte(nil), buf[:n]...), from.(*net.UDPAddr).AddrPort()
	}
}

// TestRelayAgainstCoturn: a long-term-credential allocation relays
// datagrams both ways between the relay's owner and a permitted peer,
// stamped with the owner's socket ID; writes to anyone else are refused;
// the requests it took are counted, and Close releases the allocation.
func TestRelayAgainstCoturn(t *testing.T) {
	srv := startTURN(t, "--lt-cred-mech", "--user="+testUser+":"+testPassword)
	checkNoLeak(t)
	r := allocate(t, Config{Server: srv, Credentials: longTerm(t, testUser, testPassword), Socket: 7})
	if !r.Addr().Addr().IsLoopback() || r.Addr().Port() == 0 || r.LocalAddr() != r.Addr() {
		t.Fatalf("relayed address %v", r.Addr())
	}
	if c := r.Candidate(); c.Type != punch.CandidateRelayed || c.Addr != r.Addr() || c.Priority != punch.RelayedCandidatePriority() {
		t.Errorf("candidate %+v", c)
	}
	if ls := r.LocalSocket(); ls != (punch.LocalSocket{ID: 7, Family: punch.FamilyIPv4, Relayed: r.Addr()}) {
		t.Errorf("local socket %+v", ls)
	}
	st := r.Stats()
	if st.Allocate != 2 || st.Errors != 1 || st.Successes != 1 {
		t.Errorf("allocation took %+v; want the unauthenticated request, its 401 challenge, and the authenticated one", st)
	}

	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := r.WriteTo([]byte("early"), peerAddr); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("write before Permit: %v, want ErrNotPermitted", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Permit(ctx, []netip.AddrPort{peerAddr, netip.MustParseAddrPort("[::1]:9")}); err != nil {
		t.Fatalf("permit: %v", err)
	}
	if got := r.Stats().CreatePermission; got != 1 {
		t.Errorf("%d CreatePermission requests for one address, want 1", got)
	}

	// Peer to owner: the peer sends to the relayed address.
	if _, err := peer.WriteTo([]byte("to the owner"), net.UDPAddrFromAddrPort(r.Addr())); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-r.Datagrams():
		if string(d.Data) != "to the owner" || d.From != peerAddr || d.Socket != 7 {
			t.Fatalf("relayed datagram %q from %v on socket %d", d.Data, d.From, d.Socket)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing relayed to the owner within 10 s")
	}
	// Owner to peer, several times (the channel binding comes into use).
	for i := range 5 {
		msg := fmt.Sprintf("to the peer %d", i)
		if err := r.WriteTo([]byte(msg), peerAddr); err != nil {
			t.Fatal(err)
		}
		got, from := recvFrom(t, peer)
		if string(got) != msg || from != r.Addr() {
			t.Fatalf("peer got %q from %v, want %q from %v", got, from, msg, r.Addr())
		}
	}
	other := netip.MustParseAddrPort("127.0.0.2:9")
	if err := r.WriteTo([]byte("x"), other); !errors.Is(err, ErrNotPermitted) {
		t.Errorf("write to an address never permitted: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if st := r.Stats(); st.Refresh != 1 || st.DataOut != 5 || st.DataIn != 1 {
		t.Errorf("after close: %+v; want one Refresh (the release), 5 datagrams out, 1 in", st)
	}
	t.Logf("requests for one allocation, one permission, data both ways and the release: %d (%+v)", r.Stats().Requests(), r.Stats())
	if err := r.WriteTo([]byte("x"), peerAddr); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := r.Permit(ctx, []netip.AddrPort{other}); !errors.Is(err, ErrClosed) {
		t.Errorf("permit after close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

// TestRelayRESTCredentials: time-limited credentials made from coturn's
// static auth secret allocate; a wrong secret is refused, and the error
// names the server and the time-limited user, never the secret.
func TestRelayRESTCredentials(t *testing.T) {
	srv := startTURN(t, "--use-auth-secret", "--static-auth-secret="+testSecret)
	checkNoLeak(t)
	creds, err := NewCredentials(testUser, "", testSecret, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r := allocate(t, Config{Server: srv, Credentials: creds})
	if !r.Addr().IsValid() {
		t.Fatal("no relayed address")
	}
	r.Close()

	// Without a user name the bare expiry is the user.
	bare, err := NewCredentials("", "", testSecret, 0)
	if err != nil {
		t.Fatal(err)
	}
	allocate(t, Config{Server: srv, Credentials: bare}).Close()

	wrong, err := NewCredentials(testUser, "", "not-the-secret", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	_, err = Allocate(context.Background(), Config{Server: srv, Credentials: wrong, Now: func() time.Time { return now }})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong secret: %v, want ErrUnauthorized", err)
	}
	msg := err.Error()
	for _, want := range []string{srv.String(), `"1900003600:alice"`, "shared secret", "401"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "not-the-secret") {
		t.Errorf("error %q reveals the secret", msg)
	}

	// Expired credentials are refused too.
	old := func() time.Time { return time.Now().Add(-2 * time.Hour) }
	if _, err := Allocate(context.Background(), Config{Server: srv, Credentials: creds, Now: old}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("expired credentials: %v, want ErrUnauthorized", err)
	}
}

// TestRelayWrongPassword: the error says which server refused which user,
// and never shows the password.
func TestRelayWrongPassword(t *testing.T) {
	srv := startTURN(t, "--lt-cred-mech", "--user="+testUser+":"+testPassword)
	checkNoLeak(t)
	_, err := Allocate(context.Background(), Config{Server: srv, Credentials: longTerm(t, testUser, "guessed-wrong")})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("wrong password: %v, want ErrUnauthorized", err)
	}
	msg := err.Error()
	for _, want := range []string{srv.String(), `user "alice"`, "401"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "guessed-wrong") || strings.Contains(msg, testPassword) {
		t.Errorf("error %q reveals a password", msg)
	}
	t.Logf("the user reads: %v", err)
}

// TestRelayServerDown: nothing listens at the server's address; the
// allocation gives up when the context ends and says the server did not
// answer.
func TestRelayServerDown(t *testing.T) {
	checkNoLeak(t)
	srv := Server{Host: "127.0.0.1", Port: freePort(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := Allocate(ctx, Config{Server: srv, Credentials: longTerm(t, testUser, testPassword), RTO: 100 * time.Millisecond})
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), srv.String()) {
		t.Fatalf("server down: %v, want ErrNoAnswer naming %s", err, srv)
	}
	t.Logf("the user reads: %v", err)

	// Without a deadline, pion's own schedule (seven requests) ends it.
	_, err = Allocate(context.Background(), Config{Server: srv, Credentials: longTerm(t, testUser, testPassword), RTO: 10 * time.Millisecond})
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("server down, no deadline: %v, want ErrNoAnswer", err)
	}
}

// TestRelayServerGarbage: a "server" that answers every request with
// junk (random bytes, a STUN header with a broken body, a ChannelData
// header for no channel) is reported as such, and its junk breaks
// nothing.
func TestRelayServerGarbage(t *testing.T) {
	checkNoLeak(t)
	srvConn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		buf := make([]byte, 1500)
		junk := [][]byte{
			[]byte("HTTP/1.1 400 Bad Request\r\n\r\n"),
			append([]byte{0x01, 0x13, 0x00, 0x40, 0x21, 0x12, 0xA4, 0x42}, bytes.Repeat([]byte{0xEE}, 12)...), // STUN header, body missing
			{0x40, 0x01, 0x00, 0x04, 1, 2, 3, 4},                                                              // ChannelData for an unbound channel
		}
		for i := 0; ; i++ {
			n, from, err := srvConn.ReadFrom(buf)
			if err != nil {
				return
			}
			_ = n
			srvConn.WriteTo(junk[i%len(junk)], from)
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	defer func() { close(stop); srvConn.Close(); <-served }()
	srv := Server{Host: "127.0.0.1", Port: uint16(srvConn.LocalAddr().(*net.UDPAddr).Port)}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = Allocate(ctx, Config{Server: srv, Credentials: longTerm(t, testUser, testPassword), RTO: 100 * time.Millisecond})
	if !errors.Is(err, ErrGarbage) || !strings.Contains(err.Error(), srv.String()) {
		t.Fatalf("garbage server: %v, want ErrGarbage naming %s", err, srv)
	}
	t.Logf("the user reads: %v", err)
}

// TestRelayPunchAgainstCoturn: a relayed punch machine on each side, over
// a real TURN allocation on one side only: the other side's probes reach
// the relayed address, the answers go back through the relay, both
// select the relayed pair, and it carries datagrams both ways.
func TestRelayPunchAgainstCoturn(t *testing.T) {
	srv := startTURN(t, "--lt-cred-mech", "--user="+testUser+":"+testPassword)
	checkNoLeak(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// A: main socket and a relay, in one socket set.
	setA := punch.NewSocketSet(ctx)
	defer setA.CloseAll()
	mainA, err := setA.Listen("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	relayID := setA.Reserve()
	r := allocate(t, Config{Server: srv, Credentials: longTerm(t, testUser, testPassword), Socket: relayID, Deliver: setA.Deliver()})
	if err := setA.Add(relayID, r); err != nil {
		t.Fatal(err)
	}
	// B: a main socket only.
	setB := punch.NewSocketSet(ctx)
	defer setB.CloseAll()
	mainB, err := setB.Listen("127.0.0.1:0", 0)
	if err != nil {
		t.Fatal(err)
	}
	candA := []punch.Candidate{{Type: punch.CandidateHost, Addr: mainA.LocalAddr(), Priority: 100}, r.Candidate()}
	candB := []punch.Candidate{{Type: punch.CandidateHost, Addr: mainB.LocalAddr(), Priority: 100}}
	if err := r.Permit(ctx, []netip.AddrPort{mainB.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	base := punch.Config{Kind: punch.PathRelayed, SessionID: "relay-test", Secret: [32]byte{9}, KeepaliveInterval: -1}
	cfgA, cfgB := base, base
	cfgA.Role, cfgA.Local, cfgA.Remote = punch.Controlled, candA, candB
	cfgA.Sockets = []punch.LocalSocket{{ID: punch.MainSocket, Family: punch.FamilyIPv4}, r.LocalSocket()}
	cfgB.Role, cfgB.Local, cfgB.Remote = punch.Controlling, candB, candA
	cfgB.Sockets = []punch.LocalSocket{{ID: punch.MainSocket, Family: punch.FamilyIPv4}}
	ma, err := punch.NewMachine(cfgA)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := punch.NewMachine(cfgB)
	if err != nil {
		t.Fatal(err)
	}
	sides := []*punchSide{{name: "A", m: ma, set: setA}, {name: "B", m: mb, set: setB}}
	now := time.Now()
	for _, s := range sides {
		s.m.Start(now)
	}
	limit := time.After(15 * time.Second)
	for sides[0].sel == nil || sides[1].sel == nil {
		drive(t, sides, limit)
	}
	a, b := sides[0].sel, sides[1].sel
	if a.Kind != punch.PathRelayed || a.Socket != relayID || a.Relay != r.Addr() || a.Remote != mainB.LocalAddr() {
		t.Errorf("A selected %+v; want its relay socket %d towards %v via %v", *a, relayID, mainB.LocalAddr(), r.Addr())
	}
	if b.Socket != punch.MainSocket || b.Remote != r.Addr() || b.Relay != r.Addr() {
		t.Errorf("B selected %+v; want its main socket towards A's relayed address %v", *b, r.Addr())
	}
	// The path carries session traffic both ways.
	for _, s := range sides {
		other := sides[0]
		if s == other {
			other = sides[1]
		}
		msg := []byte{0x6f, 'h', 'i', ' ', s.name[0]}
		if err := s.set.Send(punch.Transmit{Socket: s.sel.Socket, To: s.sel.Remote, Data: msg}); err != nil {
			t.Fatal(err)
		}
		for len(other.got) == 0 {
			drive(t, sides, limit)
		}
		d := other.got[0]
		if !bytes.Equal(d.Data, msg) || d.Socket != other.sel.Socket || d.From != other.sel.Remote {
			t.Errorf("%s got %q on socket %d from %v; want %q on %d from %v", other.name, d.Data, d.Socket, d.From,
				msg, other.sel.Socket, other.sel.Remote)
		}
	}
}

// punchSide is one side of TestRelayPunchAgainstCoturn: a machine, its
// sockets, what it selected and the session datagrams it got.
type punchSide struct {
	name string
	m    *punch.Machine
	set  *punch.SocketSet
	sel  *punch.PathSelected
	got  []punch.Datagram
}

// drive is one turn of the sides' event loops: sends and events out, then
// one datagram or timer in.
func drive(t *testing.T, sides []*punchSide, limit <-chan time.Time) {
	t.Helper()
	for _, s := range sides {
		for _, tx := range s.m.Transmits() {
			_ = s.set.Send(tx) // a failed write is a lost packet
		}
		for _, ev := range s.m.Events() {
			switch ev := ev.(type) {
			case punch.PathSelected:
				s.sel = &ev
			case punch.Failed:
				t.Fatalf("%s failed: %s: %s", s.name, ev.Reason.Message(), ev.Detail)
			}
		}
	}
	handle := func(s *punchSide, d punch.Datagram) {
		switch punch.Classify(d.Data) {
		case punch.ClassPunch:
			s.m.HandleDatagramOn(d.At, d.Socket, d.From, d.Data)
		case punch.ClassSession:
			s.got = append(s.got, d)
		}
	}
	select {
	case d := <-sides[0].set.Datagrams():
		handle(sides[0], d)
	case d := <-sides[1].set.Datagrams():
		handle(sides[1], d)
	case <-time.After(10 * time.Millisecond):
		for _, s := range sides {
			if sansioDue(s.m.Deadline()) {
				s.m.HandleTimeout(time.Now())
			}
		}
	case <-limit:
		t.Fatalf("no relayed path within 15 s: A %+v, B %+v", sides[0].sel, sides[1].sel)
	}
}

func sansioDue(d time.Time) bool { return !d.IsZero() && !time.Now().Before(d) }

// TestRelayRefresh: with coturn granting allocations of 4 s only, the
// client's refreshes (every half lifetime) keep the allocation relaying
// well past three lifetimes.
func TestRelayRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("holds an allocation for 12 s")
	}
	srv := startTURN(t, "--lt-cred-mech", "--user="+testUser+":"+testPassword, "--max-allocate-lifetime=4")
	checkNoLeak(t)
	r := allocate(t, Config{Server: srv, Credentials: longTerm(t, testUser, testPassword)})
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peerAddr := peer.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := r.Permit(context.Background(), []netip.AddrPort{peerAddr}); err != nil {
		t.Fatal(err)
	}
	// Wait for the refreshes themselves, not for a time span.
	deadline := time.Now().Add(30 * time.Second)
	for r.Stats().Refresh < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d refreshes of a 4 s allocation in 30 s, want 6 (three lifetimes)", r.Stats().Refresh)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := r.WriteTo([]byte("still here"), peerAddr); err != nil {
		t.Fatal(err)
	}
	if got, from := recvFrom(t, peer); string(got) != "still here" || from != r.Addr() {
		t.Fatalf("after the refreshes the peer got %q from %v", got, from)
	}
	if _, err := peer.WriteTo([]byte("back"), net.UDPAddrFromAddrPort(r.Addr())); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-r.Datagrams():
		if string(d.Data) != "back" {
			t.Fatalf("got %q", d.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the allocation stopped relaying after its refreshes")
	}
	if st := r.Stats(); st.Errors > 1 {
		t.Errorf("refreshes met errors: %+v", st)
	}
}
