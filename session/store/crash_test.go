package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
)

// The crash test: sender A runs in a child process (this test binary
// re-executed with TestCrashChild selected), receiver B in the test
// process, talking through session machines over real UDP sockets on
// 127.0.0.1. A queues every message in its store before handing it to its
// machine and marks it delivered on the receipt; B stores every message
// before committing it. The parent SIGKILLs A twice in mid-stream and
// starts it again each time with a new session (new machines, new session
// ID): A resends its whole outbox with the same message IDs. At the end B
// must hold every message exactly once, in sending order, and A must have
// all of them delivered.
//
//	go test -race -run TestCrashResend -v ./session/

const (
	crashEnvChild   = "P2PTUI_CRASH_CHILD"
	crashEnvDir     = "P2PTUI_CRASH_DIR"
	crashEnvPeer    = "P2PTUI_CRASH_PEER"
	crashEnvAddr    = "P2PTUI_CRASH_ADDR"
	crashEnvSession = "P2PTUI_CRASH_SESSION"
	crashEnvTotal   = "P2PTUI_CRASH_TOTAL"

	crashTotal = 1000
	// crashHang bounds each phase; reaching it means something hangs.
	crashHang = 120 * time.Second
)

// crashBody is the text of message n, so order can be checked by content.
func crashBody(n int) string { return fmt.Sprintf("message %04d", n) }

// TestCrashChild is sender A. It does nothing unless the crash test
// started it.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashEnvChild) != "1" {
		t.Skip("runs only as the child process of TestCrashResend")
	}
	total := crashTotal
	if _, err := fmt.Sscan(os.Getenv(crashEnvTotal), &total); err != nil {
		t.Fatalf("bad %s: %v", crashEnvTotal, err)
	}
	addr, err := netip.ParseAddrPort(os.Getenv(crashEnvAddr))
	if err != nil {
		t.Fatal(err)
	}
	if err := crashSender(os.Getenv(crashEnvDir), os.Getenv(crashEnvPeer), addr, os.Getenv(crashEnvSession), total); err != nil {
		t.Fatal(err)
	}
}

// crashSender queues messages up to total (continuing after what an
// earlier run queued), resends the outbox, and returns when every message
// is delivered.
func crashSender(dir, peerID string, peerAddr netip.AddrPort, sessionID string, total int) error {
	me, err := identity.LoadOrCreateIdentity(dir)
	if err != nil {
		return err
	}
	peer, err := identity.ParseID(peerID)
	if err != nil {
		return err
	}
	st, err := OpenStore(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	in := make(chan []byte, 1024)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close() // ends the reader, then wg.Wait returns
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(in)
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				in <- bytes.Clone(buf[:n])
			}
		}
	}()

	// Whatever earlier runs did not queue is queued now, each message in
	// its own transaction, before the session exists: from here on a crash
	// can't lose it.
	queued, err := st.Count(peerID)
	if err != nil {
		return err
	}
	for n := queued; n < total; n++ {
		id, err := session.NewMessageID(nil)
		if err != nil {
			return err
		}
		if _, err := st.Queue(peerID, id, crashBody(n), time.Now()); err != nil {
			return err
		}
	}

	m, err := session.NewMachine(session.Config{Initiator: true, LocalPrivate: me.Private, LocalPublic: me.Public,
		RemoteStatic: peer, SessionID: sessionID})
	if err != nil {
		return err
	}
	now := time.Now()
	m.Start(now)
	// Everything undelivered goes out from the outbox, with its stored ID.
	outbox, err := st.Outbox(peerID)
	if err != nil {
		return err
	}
	pending := map[session.MessageID]bool{}
	for _, r := range outbox {
		if err := m.Send(now, session.OutMessage{ID: r.MsgID, Body: []byte(r.Body), SentAt: r.At}); err != nil {
			return err
		}
		pending[r.MsgID] = true
	}
	fmt.Printf("session %s: %d were queued before this run, sending %d from the outbox\n", sessionID, queued, len(outbox))

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for len(pending) > 0 {
		for _, b := range m.Transmits() {
			if _, err := conn.WriteToUDPAddrPort(b, peerAddr); err != nil {
				return err
			}
		}
		var delivered []session.MessageID
		for _, ev := range m.Events() {
			switch ev := ev.(type) {
			case session.Delivered:
				delivered = append(delivered, ev.ID)
				delete(pending, ev.ID)
			case session.Failed:
				return fmt.Errorf("session failed: %v", ev)
			}
		}
		if len(delivered) > 0 {
			// One transaction for every receipt of this batch.
			if err := st.MarkDelivered(peerID, delivered...); err != nil {
				return err
			}
			continue // the receipts may have opened the window: send more
		}
		timer.Reset(time.Hour)
		if d := m.Deadline(); !d.IsZero() {
			timer.Reset(time.Until(d))
		}
		select {
		case b, ok := <-in:
			if !ok {
				return errors.New("socket closed")
			}
			m.HandleDatagram(time.Now(), b)
		case <-timer.C:
			m.HandleTimeout(time.Now())
		}
	}
	m.Close(time.Now())
	for _, b := range m.Transmits() {
		_, _ = conn.WriteToUDPAddrPort(b, peerAddr)
	}
	fmt.Printf("session %s: all %d delivered\n", sessionID, total)
	return nil
}

// crashReceiver is B: the test process's socket, machine and store, all
// owned by one loop goroutine.
type crashReceiver struct {
	me     identity.Identity
	peerID string
	peer   [32]byte
	st     *Store
	conn   *net.UDPConn

	reset    chan string // a new session ID: drop the old machine
	resetAck chan struct{}
	stored   atomic.Int64 // distinct messages in B's store
	dupes    atomic.Int64 // resends recognised by HasReceived
	errs     chan error

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func crashStartReceiver(t *testing.T, me identity.Identity, peer identity.Identity, st *Store) *crashReceiver {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadBuffer(4 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	r := &crashReceiver{me: me, peerID: peer.ID(), peer: peer.Public, st: st, conn: conn,
		reset: make(chan string), resetAck: make(chan struct{}), errs: make(chan error, 1), cancel: cancel}
	type datagram struct {
		from netip.AddrPort
		b    []byte
	}
	in := make(chan datagram, 1024)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				select {
				case in <- datagram{from, bytes.Clone(buf[:n])}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	go func() {
		defer r.wg.Done()
		var m *session.Machine
		var peerAddr netip.AddrPort
		timer := time.NewTimer(time.Hour)
		defer timer.Stop()
		fail := func(err error) {
			select {
			case r.errs <- err:
			default:
			}
		}
		for {
			if m != nil {
				if err := r.onEvents(m, time.Now()); err != nil {
					fail(err)
					return
				}
				for _, b := range m.Transmits() {
					_, _ = conn.WriteToUDPAddrPort(b, peerAddr)
				}
				timer.Reset(time.Hour)
				if d := m.Deadline(); !d.IsZero() {
					timer.Reset(time.Until(d))
				}
			}
			select {
			case <-ctx.Done():
				return
			case sid := <-r.reset:
				m, _ = session.NewMachine(session.Config{LocalPrivate: r.me.Private, LocalPublic: r.me.Public,
					RemoteStatic: r.peer, SessionID: sid})
				r.resetAck <- struct{}{}
			case <-timer.C:
				if m != nil {
					m.HandleTimeout(time.Now())
				}
			case d := <-in:
				if m == nil {
					continue
				}
				now := time.Now()
				peerAddr = d.from
				m.HandleDatagram(now, d.b)
			}
		}
	}()
	t.Cleanup(r.stop)
	return r
}

// onEvents stores each received message, then commits it; a resend from
// an earlier session is recognised and committed without storing.
func (r *crashReceiver) onEvents(m *session.Machine, now time.Time) error {
	for _, ev := range m.Events() {
		switch ev := ev.(type) {
		case session.Received:
			has, err := r.st.HasReceived(r.peerID, ev.ID)
			if err != nil {
				return err
			}
			if has {
				r.dupes.Add(1)
			} else {
				if _, _, err := r.st.AppendReceived(r.peerID, ev.ID, string(ev.Body), now); err != nil {
					return err
				}
				r.stored.Add(1)
			}
			if err := m.Commit(now, ev.ID); err != nil {
				return err
			}
		case session.Failed:
			if ev.Reason != session.ReasonPeerClosed { // A's goodbye when it is done
				return fmt.Errorf("receiver session failed: %v", ev)
			}
		}
	}
	return nil
}

// newSession replaces B's machine, as accepting a new offer would.
func (r *crashReceiver) newSession(sid string) {
	r.reset <- sid
	<-r.resetAck
}

func (r *crashReceiver) stop() {
	r.cancel()
	r.conn.Close()
	r.wg.Wait()
}

// crashOutput collects a child's output; the exec copier goroutine writes
// while the test may read it for a failure message.
type crashOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *crashOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(b)
}

func (o *crashOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// crashChild starts A for one session.
type crashChild struct {
	cmd  *exec.Cmd
	out  crashOutput
	done chan error
}

func crashStartChild(t *testing.T, dirA, idB string, addrB netip.AddrPort, sid string) *crashChild {
	t.Helper()
	c := &crashChild{done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	c.cmd.Env = append(os.Environ(),
		crashEnvChild+"=1", crashEnvDir+"="+dirA, crashEnvPeer+"="+idB,
		crashEnvAddr+"="+addrB.String(), crashEnvSession+"="+sid, fmt.Sprintf("%s=%d", crashEnvTotal, crashTotal))
	c.cmd.Stdout = &c.out
	c.cmd.Stderr = &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() {
		// Kill only our own child (a no-op if it exited) and reap it.
		_ = c.cmd.Process.Kill()
		<-c.done
		c.done <- nil
	})
	return c
}

func TestCrashResend(t *testing.T) {
	if os.Getenv(crashEnvChild) == "1" {
		t.Skip("this is the child process")
	}
	if testing.Short() {
		t.Skip("crash test re-executes the test binary and takes seconds; skipped with -short")
	}
	root := t.TempDir()
	dirA, dirB := filepath.Join(root, "a"), filepath.Join(root, "b")
	idA, err := identity.LoadOrCreateIdentity(dirA)
	if err != nil {
		t.Fatal(err)
	}
	idB, err := identity.LoadOrCreateIdentity(dirB)
	if err != nil {
		t.Fatal(err)
	}
	stB, err := OpenStore(dirB)
	if err != nil {
		t.Fatal(err)
	}
	defer stB.Close()
	b := crashStartReceiver(t, idB, idA, stB)
	addrB := b.conn.LocalAddr().(*net.UDPAddr).AddrPort()

	killAt := []int64{300, 650} // B's stored count at which A dies
	for run := 0; ; run++ {
		sid := fmt.Sprintf("crash-session-%d", run)
		b.newSession(sid)
		child := crashStartChild(t, dirA, idB.ID(), addrB, sid)
		if run < len(killAt) {
			deadline := time.Now().Add(crashHang)
			for b.stored.Load() < killAt[run] {
				select {
				case err := <-child.done:
					child.done <- err
					t.Fatalf("run %d: A exited (%v) before B stored %d messages:\n%s", run, err, killAt[run], child.out.String())
				case err := <-b.errs:
					t.Fatalf("run %d: %v\nA's output:\n%s", run, err, child.out.String())
				case <-time.After(2 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("run %d: B stored only %d messages in %v", run, b.stored.Load(), crashHang)
				}
			}
			if run == 0 {
				// A second process on A's profile is refused, naming A's pid.
				_, err := OpenStore(dirA)
				var running *AlreadyRunningError
				if !errors.As(err, &running) || running.PID != child.cmd.Process.Pid {
					t.Fatalf("opening A's profile while A runs (pid %d): %v", child.cmd.Process.Pid, err)
				}
				t.Logf("while A runs: %v", err)
			}
			if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := <-child.done
			child.done <- err
			t.Logf("run %d: killed A (%v) with B holding %d messages", run, err, b.stored.Load())
			// The lock died with A; what A left must show work in flight.
			stA, err := OpenStore(dirA)
			if err != nil {
				t.Fatalf("reopen A's store after the kill: %v", err)
			}
			out, err := stA.Outbox(idB.ID())
			queued, _ := stA.Count(idB.ID())
			stA.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("run %d: A had queued %d, %d undelivered", run, queued, len(out))
			if len(out) == 0 && queued == crashTotal {
				t.Fatalf("run %d: A finished before the kill; the crash tested nothing", run)
			}
			continue
		}
		select {
		case err := <-child.done:
			child.done <- err
			if err != nil {
				t.Fatalf("final run: A failed: %v\n%s", err, child.out.String())
			}
		case err := <-b.errs:
			t.Fatalf("final run: %v\nA's output:\n%s", err, child.out.String())
		case <-time.After(crashHang):
			t.Fatalf("final run: A did not finish within %v; B stored %d\n%s", crashHang, b.stored.Load(), child.out.String())
		}
		t.Logf("final run: A done; B stored %d, recognised %d resends\n%s", b.stored.Load(), b.dupes.Load(), child.out.String())
		break
	}
	b.stop()

	// B: every message exactly once, in sending order.
	hist, err := stB.History(idA.ID(), 0, 2*crashTotal)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != crashTotal {
		t.Fatalf("B holds %d messages; want %d", len(hist), crashTotal)
	}
	seen := map[session.MessageID]bool{}
	for i, r := range hist {
		if r.Body != crashBody(i) || r.Mine || r.State != StateReceived || seen[r.MsgID] {
			t.Fatalf("B's message %d: %+v (duplicate id: %v)", i, r, seen[r.MsgID])
		}
		seen[r.MsgID] = true
	}
	// A: all delivered, no duplicates, the same IDs B has.
	stA, err := OpenStore(dirA)
	if err != nil {
		t.Fatal(err)
	}
	defer stA.Close()
	histA, err := stA.History(idB.ID(), 0, 2*crashTotal)
	if err != nil {
		t.Fatal(err)
	}
	if len(histA) != crashTotal {
		t.Fatalf("A holds %d messages; want %d", len(histA), crashTotal)
	}
	for i, r := range histA {
		if r.Body != crashBody(i) || !r.Mine || r.State != StateDelivered || r.MsgID != hist[i].MsgID {
			t.Fatalf("A's message %d: %+v; B has id %v", i, r, hist[i].MsgID)
		}
	}
	if out, _ := stA.Outbox(idB.ID()); len(out) != 0 {
		t.Fatalf("A's outbox still holds %d messages", len(out))
	}
}
