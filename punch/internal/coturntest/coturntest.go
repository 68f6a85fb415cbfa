// Package coturntest runs coturn (Debian's "turnserver") for a test: a
// real STUN and TURN server on loopback, started with the test's options,
// killed when the test ends. Without turnserver the test is skipped,
// except under CI=true, where that is a failure.
package coturntest

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/stun/v2"
)

// Server is a coturn process a test started.
type Server struct {
	dir    string
	exited chan error
}

// Start runs turnserver with args after the options every test wants:
// -n (ignore /etc/turnserver.conf, whose Debian copy sets options the
// tests must not have), no CLI, TLS or DTLS listeners, and its database,
// pid file and log in a temporary directory.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("turnserver not found (apt-get install coturn); CI must have it")
		}
		t.Skip("turnserver not found (apt-get install coturn)")
	}
	s := &Server{dir: t.TempDir(), exited: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	all := append([]string{"-n", "--no-cli", "--no-tls", "--no-dtls",
		"--userdb=" + filepath.Join(s.dir, "turndb"), "--pidfile=" + filepath.Join(s.dir, "pid"),
		"--log-file=" + filepath.Join(s.dir, "log"), "--simple-log", "--no-stdout-log"}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start turnserver: %v", err)
	}
	go func() { s.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel() // SIGKILL: coturn has nothing to flush
		<-s.exited
	})
	return s
}

// Log is coturn's log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "log"))
	return string(b)
}

// WaitAnswering returns once every address answers a Binding request,
// and fails the test if coturn exits or stays silent for 10 s.
func (s *Server) WaitAnswering(t testing.TB, addrs ...netip.AddrPort) {
	t.Helper()
	probe, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1500)
	for _, a := range addrs {
		for answered := false; !answered; {
			req := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
			if _, err := probe.WriteTo(req.Raw, net.UDPAddrFromAddrPort(a)); err != nil {
				t.Fatal(err)
			}
			probe.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, from, err := probe.ReadFrom(buf); err == nil && stun.IsMessage(buf[:n]) {
				answered = from.(*net.UDPAddr).AddrPort() == a
			}
			select {
			case err := <-s.exited:
				s.exited <- err
				t.Fatalf("turnserver exited (%v):\n%s", err, s.Log())
			default:
			}
			if !answered && time.Now().After(deadline) {
				t.Fatalf("turnserver not answering on %v within 10 s; log:\n%s", a, s.Log())
			}
		}
	}
}
