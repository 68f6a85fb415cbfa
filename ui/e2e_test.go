package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
	"github.com/p2ptui/p2ptui/signal/emulator"
)

// e2eTimings make reconnects quick enough for a test while keeping every
// path the real program takes.
var e2eTimings = conn.Timers{
	PresenceEvery: 300 * time.Millisecond,
	WaitingPoll:   200 * time.Millisecond,
	OfferTimeout:  3 * time.Second,
	RetryMin:      100 * time.Millisecond,
	RetryMax:      500 * time.Millisecond,
}

// e2eWait bounds each expectation; it guards against a hang, it is not a
// speed requirement.
const e2eWait = 20 * time.Second

// eventLog collects a headless program's JSON lines for expectations.
type eventLog struct {
	t    testing.TB
	name string

	mu     sync.Mutex
	events []Event
	used   []bool // consumed by expect
	wake   chan struct{}
	buf    []byte
}

func newEventLog(t testing.TB, name string) *eventLog {
	return &eventLog{t: t, name: name, wake: make(chan struct{}, 1)}
}

func (l *eventLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, b...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		var e Event
		if err := json.Unmarshal(l.buf[:i], &e); err != nil {
			l.t.Errorf("%s: bad event line %q: %v", l.name, l.buf[:i], err)
		} else {
			l.events = append(l.events, e)
			l.used = append(l.used, false)
		}
		l.buf = l.buf[i+1:]
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

// has reports whether an event named ev was written so far.
func (l *eventLog) has(ev string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Ev == ev {
			return true
		}
	}
	return false
}

// expect waits for the earliest event not yet consumed that matches ok, and
// consumes it. Events of one program arrive in its order, but the order
// between independent events (a store write and a handshake) is not fixed.
func (l *eventLog) expect(what string, ok func(Event) bool) Event {
	l.t.Helper()
	return l.expectWithin(what, e2eWait, ok)
}

// expectWithin is expect with its own limit.
func (l *eventLog) expectWithin(what string, limit time.Duration, ok func(Event) bool) Event {
	l.t.Helper()
	deadline := time.After(limit)
	for {
		l.mu.Lock()
		for i := range l.events {
			if !l.used[i] && ok(l.events[i]) {
				l.used[i] = true
				e := l.events[i]
				l.mu.Unlock()
				return e
			}
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-deadline:
			l.mu.Lock()
			defer l.mu.Unlock()
			var b strings.Builder
			for _, e := range l.events {
				j, _ := json.Marshal(e)
				fmt.Fprintf(&b, "  %s\n", j)
			}
			l.t.Fatalf("%s: no %s event within %v; events:\n%s", l.name, what, limit, b.String())
			return Event{}
		}
	}
}

func ev(name string) func(Event) bool { return func(e Event) bool { return e.Ev == name } }

// e2ePeer is one headless program with its own store, socket and signaller
// on a shared memory hub.
type e2ePeer struct {
	t     testing.TB
	name  string
	id    identity.Identity
	log   *eventLog
	in    *io.PipeWriter
	prog  *tea.Program
	done  chan struct{}
	model *Model
	sock  *punch.Socket
	sig   signal.Signaller
	store *store.Store
	once  sync.Once
	sonce sync.Once
}

// opener opens a signaller for an identity: a memory hub's, or Firestore's.
type opener func(t testing.TB, id string) signal.Signaller

func onHub(hub *signal.Hub) opener {
	return func(t testing.TB, id string) signal.Signaller { return hub.Open(id) }
}

func startE2EPeer(t testing.TB, hub *signal.Hub, dir, name string) *e2ePeer {
	t.Helper()
	return startE2EPeerOn(t, onHub(hub), dir, name, nil)
}

func startE2EPeerWith(t testing.TB, hub *signal.Hub, dir, name string, tune func(*Deps)) *e2ePeer {
	t.Helper()
	return startE2EPeerOn(t, onHub(hub), dir, name, tune)
}

func startE2EPeerOn(t testing.TB, open opener, dir, name string, tune func(*Deps)) *e2ePeer {
	t.Helper()
	id, err := identity.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	sock, err := punch.ListenUDP(context.Background(), "127.0.0.1:0")
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	p := &e2ePeer{t: t, name: name, id: id, log: newEventLog(t, name), sock: sock, store: st, sig: open(t, id.ID()), done: make(chan struct{})}
	inR, inW := io.Pipe()
	p.in = inW
	d := Deps{
		Signaller: p.sig, Store: st, Identity: id, Socket: sock, Name: name,
		Headless: true, Commands: inR, Events: p.log, Timers: e2eTimings,
	}
	if tune != nil {
		tune(&d)
	}
	p.model = New(d)
	p.prog = tea.NewProgram(p.model, tea.WithInput(nil), tea.WithOutput(io.Discard), tea.WithoutRenderer(), tea.WithoutSignalHandler())
	go func() {
		defer close(p.done)
		if _, err := p.prog.Run(); err != nil && !errors.Is(err, tea.ErrProgramKilled) {
			t.Errorf("%s: program: %v", name, err)
		}
	}()
	t.Cleanup(p.close)
	p.log.expect("ready", ev("ready"))
	return p
}

func (p *e2ePeer) cmd(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		p.t.Fatalf("%s: write command %q: %v", p.name, line, err)
	}
}

// stop quits the program and closes what it used but the store, in the
// order main does; it is safe to call twice.
func (p *e2ePeer) stop() {
	p.once.Do(func() {
		go io.WriteString(p.in, "quit\n") // the reader may already be gone
		select {
		case <-p.done:
		case <-time.After(e2eWait):
			p.t.Errorf("%s: program did not quit", p.name)
			p.prog.Kill()
			<-p.done
		}
		p.in.Close()
		p.model.Close()
		p.sig.Close()
		p.sock.Close()
	})
}

// close stops the program and closes its store (releasing the profile).
func (p *e2ePeer) close() {
	p.stop()
	p.sonce.Do(func() { p.store.Close() })
}

// checkGoroutines fails the test if goroutines it started outlive it (the
// programs' Cmds, listeners, socket readers, event writers). Registered
// first, so it runs after every other cleanup.
func checkGoroutines(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("%d goroutines left behind (%d before):\n%s", runtime.NumGoroutine()-before, before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestEndToEnd drives two headless programs over a memory hub and real
// loopback sockets: add, connect, accept, messages both ways with receipts,
// one side goes away, the other queues, it comes back and the message
// arrives.
func TestEndToEnd(t *testing.T) {
	checkGoroutines(t)
	hub := signal.NewMemoryHub()
	dirA, dirB := t.TempDir(), t.TempDir()
	a := startE2EPeer(t, hub, dirA, "alice")
	b := startE2EPeer(t, hub, dirB, "bob")

	a.cmd("add bob " + b.id.ID())
	a.log.expect("contact", ev("contact"))
	a.cmd("connect bob")
	offer := b.log.expect("offer", ev("offer"))
	if offer.From != a.id.ID() || offer.Known == nil || *offer.Known || offer.Name != "alice" {
		t.Fatalf("offer = %+v, want an unknown alice", offer)
	}
	if want := identity.Fingerprint(a.id.Public, b.id.Public); offer.Fingerprint != want {
		t.Errorf("offer fingerprint %q, want %q", offer.Fingerprint, want)
	}
	b.cmd("accept " + offer.Session + " alice")
	for _, p := range []*e2ePeer{a, b} {
		c := p.log.expect("connected", ev("connected"))
		if c.Encrypted == nil || !*c.Encrypted || c.Path != "direct" || !strings.HasPrefix(c.Remote, "127.0.0.1:") {
			t.Errorf("%s: connected = %+v", p.name, c)
		}
	}
	b.log.expect("contact alice", ev("contact"))

	a.cmd("send bob hello bob")
	m := b.log.expect("message", ev("message"))
	if m.From != a.id.ID() || m.Body != "hello bob" {
		t.Fatalf("bob got %+v", m)
	}
	if r := a.log.expect("receipt", ev("receipt")); r.ID != m.ID || r.To != b.id.ID() {
		t.Fatalf("alice's receipt %+v, want for %s", r, m.ID)
	}
	b.cmd("send alice hi   alice")
	if m := a.log.expect("message", ev("message")); m.Body != "hi   alice" || m.From != b.id.ID() {
		t.Fatalf("alice got %+v", m)
	}
	b.log.expect("receipt", ev("receipt"))

	// Bob quits; alice is told (not as a failure), and her next message
	// waits for him.
	b.close()
	if c := a.log.expect("closed", func(e Event) bool { return e.Ev == "closed" || e.Ev == "failure" }); c.Ev != "closed" {
		t.Fatalf("after bob quit alice got %+v, want closed", c)
	}
	a.cmd("send bob are you there?")
	q := a.log.expect("queued", ev("queued"))
	a.log.expect("waiting", func(e Event) bool { return e.Ev == "waiting" && e.Peer == b.id.ID() })

	// Bob comes back with the same profile: they are contacts now, so the
	// chat comes back by itself, without a prompt, and the message arrives.
	b2 := startE2EPeer(t, hub, dirB, "bob")
	b2.log.expect("connected", ev("connected"))
	m = b2.log.expect("queued message", ev("message"))
	if m.Body != "are you there?" || m.ID != q.ID {
		t.Fatalf("bob got %+v, want the queued message %s", m, q.ID)
	}
	a.log.expect("receipt", func(e Event) bool { return e.Ev == "receipt" && e.ID == q.ID })
	if b2.log.has("offer") {
		t.Fatal("bob was asked again after his restart")
	}

	// Both stores agree on what happened (once the programs have ended, so
	// every store write they started is done).
	a.stop()
	b2.stop()
	if out, err := a.store.Outbox(b.id.ID()); err != nil || len(out) != 0 {
		t.Errorf("alice's outbox = %v, %v; want empty", out, err)
	}
	hist, err := b2.store.History(a.id.ID(), 0, 10)
	if err != nil || len(hist) != 3 {
		t.Fatalf("bob's history = %v, %v; want 3 records", hist, err)
	}
}

// crash ends a peer without a goodbye: the program is killed and its
// socket closed, as if the machine lost power or network.
func (p *e2ePeer) crash() {
	p.once.Do(func() {
		p.prog.Kill()
		<-p.done
		p.in.Close()
		p.model.Close()
		p.sig.Close()
		p.sock.Close()
	})
	p.sonce.Do(func() { p.store.Close() })
}

// connectPair adds b to a's contacts, connects and has b accept.
func connectPair(t testing.TB, a, b *e2ePeer, bName string) {
	t.Helper()
	a.cmd("add " + bName + " " + b.id.ID())
	a.cmd("connect " + bName)
	offer := b.log.expect("offer from "+a.name, func(e Event) bool { return e.Ev == "offer" && e.From == a.id.ID() })
	b.cmd("accept " + offer.Session + " " + a.name)
	a.log.expect("connected to "+bName, func(e Event) bool { return e.Ev == "connected" && e.Peer == b.id.ID() })
	b.log.expect("connected to "+a.name, func(e Event) bool { return e.Ev == "connected" && e.Peer == a.id.ID() })
}

// One program holds several conversations at once; messages go to the
// right one.
func TestEndToEndSeveralPeers(t *testing.T) {
	checkGoroutines(t)
	hub := signal.NewMemoryHub()
	a := startE2EPeer(t, hub, t.TempDir(), "alice")
	b := startE2EPeer(t, hub, t.TempDir(), "bob")
	c := startE2EPeer(t, hub, t.TempDir(), "carol")
	connectPair(t, a, b, "bob")
	connectPair(t, a, c, "carol")
	a.cmd("send bob for bob")
	a.cmd("send carol for carol")
	if m := b.log.expect("message", ev("message")); m.Body != "for bob" {
		t.Fatalf("bob got %+v", m)
	}
	t.Cleanup(func() {
		if t.Failed() {
			a.log.mu.Lock()
			for _, e := range a.log.events {
				j, _ := json.Marshal(e)
				t.Logf("alice: %s", j)
			}
			a.log.mu.Unlock()
		}
	})
	if m := c.log.expect("message", ev("message")); m.Body != "for carol" {
		t.Fatalf("carol got %+v", m)
	}
	c.cmd("send alice from carol")
	b.cmd("send alice from bob")
	got := map[string]string{}
	for range 2 {
		m := a.log.expect("message", ev("message"))
		got[m.From] = m.Body
	}
	if got[b.id.ID()] != "from bob" || got[c.id.ID()] != "from carol" {
		t.Fatalf("alice got %v", got)
	}
}

// A peer that vanishes without a goodbye is noticed by the path going
// silent; the message written meanwhile waits and arrives after it is back.
func TestEndToEndPathLost(t *testing.T) {
	checkGoroutines(t)
	hub := signal.NewMemoryHub()
	fast := func(d *Deps) {
		d.PunchKeepalive = 200 * time.Millisecond
		d.PunchPathTimeout = time.Second
	}
	dirB := t.TempDir()
	a := startE2EPeerWith(t, hub, t.TempDir(), "alice", fast)
	b := startE2EPeerWith(t, hub, dirB, "bob", fast)
	connectPair(t, a, b, "bob")

	b.crash()
	f := a.log.expect("failure", ev("failure"))
	if f.Peer != b.id.ID() || f.Words == "" {
		t.Fatalf("failure = %+v, want one about bob in words", f)
	}
	t.Logf("alice was told: %s (%s)", f.Words, f.Reason)
	a.cmd("send bob still there?")
	q := a.log.expect("queued", ev("queued"))

	b2 := startE2EPeerWith(t, hub, dirB, "bob", fast)
	for {
		e := b2.log.expect("an offer or connected", func(e Event) bool { return e.Ev == "connected" || e.Ev == "offer" })
		if e.Ev == "connected" {
			break
		}
		b2.cmd("accept " + e.Session)
	}
	if m := b2.log.expect("message", ev("message")); m.ID != q.ID || m.Body != "still there?" {
		t.Fatalf("bob got %+v, want %s", m, q.ID)
	}
	a.log.expect("receipt", func(e Event) bool { return e.Ev == "receipt" && e.ID == q.ID })
}

// The same conversation over the real Firestore backend (the official
// emulator): offers, answers and acks through snapshot listeners.
func TestEndToEndFirestore(t *testing.T) {
	host := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if host == "" {
		if err := emulator.Available(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("no Firestore emulator: %v", err)
			}
			t.Skipf("no Firestore emulator: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		em, err := emulator.Start(ctx, 0)
		cancel()
		if err != nil {
			t.Fatalf("start the Firestore emulator: %v", err)
		}
		t.Cleanup(em.Stop)
		host = em.Host
		t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	}
	checkGoroutines(t)
	var r [4]byte
	if _, err := io.ReadFull(newSeeded(byte(time.Now().UnixNano())), r[:]); err != nil {
		t.Fatal(err)
	}
	project := fmt.Sprintf("p2ptui-ui-e2e-%x", r)
	open := func(t testing.TB, id string) signal.Signaller {
		fs, err := signal.OpenFirestore(context.Background(), project, id, nil, signal.FirestoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	// The emulator under -race on a busy machine can take seconds to
	// deliver: give offers the real program's time to be answered.
	patient := func(d *Deps) {
		d.Timers.OfferTimeout = conn.DefaultOfferTimeout
		// Presence goes through the emulator too: a 300 ms round would
		// call a peer offline whenever a write lags a second.
		d.Timers.PresenceEvery = 5 * time.Second
	}
	a := startE2EPeerOn(t, open, t.TempDir(), "alice", patient)
	b := startE2EPeerOn(t, open, t.TempDir(), "bob", patient)
	connectPair(t, a, b, "bob")
	a.cmd("send bob over firestore signalling")
	if m := b.log.expect("message", ev("message")); m.Body != "over firestore signalling" {
		t.Fatalf("bob got %+v", m)
	}
	a.log.expect("receipt", ev("receipt"))
	b.cmd("send alice and back")
	if m := a.log.expect("message", ev("message")); m.Body != "and back" {
		t.Fatalf("alice got %+v", m)
	}
}

// BenchmarkSendToReceipt is one message's trip through the whole program on
// loopback: store it (outbox), send over the encrypted session, the peer
// stores and commits it, its receipt comes back and is recorded. One at a
// time, so ns/op is the latency a person sees between Enter and ✓✓.
func BenchmarkSendToReceipt(b *testing.B) {
	hub := signal.NewMemoryHub()
	a := startE2EPeer(b, hub, b.TempDir(), "alice")
	c := startE2EPeer(b, hub, b.TempDir(), "bob")
	begin := time.Now()
	connectPair(b, a, c, "bob")
	connect := time.Since(begin)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a.cmd(fmt.Sprintf("send bob message %d", i))
		a.log.expect("receipt", ev("receipt"))
	}
	b.StopTimer()
	// Add, offer, accept, punch and handshake, once per benchmark run.
	b.ReportMetric(float64(connect.Microseconds())/1000, "ms-connect")
}
