package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/pion/stun/v2"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
)

// recSignaller records what the model asks of signalling; Listen's channel
// only closes (when its context ends).
type recSignaller struct {
	mu        sync.Mutex
	sent      []signal.Signal
	published []signal.Presence
	acks      []string
	lookups   []string
	presence  map[string]signal.Presence
	lookupErr error // every lookup fails with it (presence unknown)
	watches   []string
}

func (r *recSignaller) Name() string { return "recorder" }
func (r *recSignaller) PublishPresence(ctx context.Context, p signal.Presence) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.published = append(r.published, p)
	return nil
}
func (r *recSignaller) LookupPresence(ctx context.Context, id string) (signal.Presence, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups = append(r.lookups, id)
	if r.lookupErr != nil {
		return signal.Presence{}, r.lookupErr
	}
	if p, ok := r.presence[id]; ok {
		return p, nil
	}
	return signal.Presence{}, signal.ErrNotFound
}
func (r *recSignaller) WatchPresence(ctx context.Context, id string) (<-chan signal.PresenceUpdate, error) {
	r.mu.Lock()
	r.watches = append(r.watches, id)
	r.mu.Unlock()
	// Readings come from lookups here; the watch only ends with ctx.
	ch := make(chan signal.PresenceUpdate)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch, nil
}
func (r *recSignaller) Send(ctx context.Context, s signal.Signal) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, s)
	return fmt.Sprintf("s%d", len(r.sent)), nil
}
func (r *recSignaller) Listen(ctx context.Context) (<-chan signal.Event, error) {
	// Listening at once, as the real ones say when their listener is set up.
	ch := make(chan signal.Event, 1)
	ch <- signal.ListeningEvent{}
	go func() { <-ctx.Done(); close(ch) }()
	return ch, nil
}
func (r *recSignaller) Ack(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = append(r.acks, id)
	return nil
}
func (r *recSignaller) Close() error { return nil }

// sentKinds lists the kinds sent to peer, in order.
func (r *recSignaller) sentKinds(peer string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, s := range r.sent {
		if s.To == peer {
			out = append(out, string(s.Kind))
		}
	}
	return out
}

func (r *recSignaller) last(kind signal.Kind) (signal.Signal, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.sent) - 1; i >= 0; i-- {
		if r.sent[i].Kind == kind {
			return r.sent[i], true
		}
	}
	return signal.Signal{}, false
}

// fakeClock is the model's clock in unit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// seeded is deterministic randomness for keys and IDs.
type seeded struct{ r *rand.ChaCha8 }

func newSeeded(seed byte) *seeded { return &seeded{r: rand.NewChaCha8([32]byte{seed})} }
func (s *seeded) Read(b []byte) (int, error) {
	return s.r.Read(b)
}

type unitModel struct {
	t     *testing.T
	m     *Model
	clock *fakeClock
	sig   *recSignaller
	out   *syncBuffer
	id    identity.Identity
	store *store.Store
	msgs  chan tea.Msg // results of Cmds, kept across run calls
}

// runUntil keeps feeding Cmd results (a datagram from a real socket, say)
// into Update until cond holds.
func (u *unitModel) runUntil(what string, cond func() bool) {
	u.t.Helper()
	giveUp := time.Now().Add(runGiveUp)
	for !cond() {
		if time.Now().After(giveUp) {
			u.t.Fatalf("no %s within %v", what, runGiveUp)
		}
		u.run(nil)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// events returns every headless event emitted so far. Every event is
// queued inside Update, so once the writer is idle the output is complete:
// it waits for that (a guard against a hang, not a time budget), never
// returning a partial list that would let a test prove an absence.
func (u *unitModel) events() []Event {
	u.t.Helper()
	giveUp := time.Now().Add(runGiveUp)
	for !u.m.events.idle() {
		if time.Now().After(giveUp) {
			u.t.Fatalf("the event writer is still busy after %v", runGiveUp)
		}
		time.Sleep(time.Millisecond)
	}
	u.out.mu.Lock()
	data := u.out.b.String()
	u.out.mu.Unlock()
	var out []Event
	for _, line := range strings.Split(strings.TrimSpace(data), "\n") {
		if line == "" {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			u.t.Fatalf("bad event %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func (u *unitModel) has(ev string, ok func(Event) bool) bool {
	for _, e := range u.events() {
		if e.Ev == ev && (ok == nil || ok(e)) {
			return true
		}
	}
	return false
}

func newUnitModel(t *testing.T, seed byte, withStore bool, sock *punch.Socket) *unitModel {
	t.Helper()
	return newUnitModelWith(t, seed, withStore, sock, nil)
}

func newUnitModelSTUN(t *testing.T, seed byte, sock *punch.Socket, servers []netip.AddrPort) *unitModel {
	t.Helper()
	return newUnitModelWith(t, seed, true, sock, servers)
}

func newUnitModelWith(t *testing.T, seed byte, withStore bool, sock *punch.Socket, servers []netip.AddrPort) *unitModel {
	t.Helper()
	id, err := identity.NewIdentity(newSeeded(seed))
	if err != nil {
		t.Fatal(err)
	}
	u := &unitModel{msgs: make(chan tea.Msg, 1024), t: t, clock: &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}, sig: &recSignaller{presence: map[string]signal.Presence{}}, out: &syncBuffer{}, id: id}
	if withStore {
		u.store, err = store.OpenStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
	}
	u.m = New(Deps{
		Signaller: u.sig, Store: u.store, Identity: id, Socket: sock, STUN: servers, Name: fmt.Sprintf("user%d", seed),
		Now: u.clock.now, Rand: newSeeded(seed + 100), Headless: true, Events: u.out,
		Timers: conn.Timers{PresenceEvery: 30 * time.Second, OfferTimeout: 10 * time.Second, RetryMin: time.Second, RetryMax: 4 * time.Second},
	})
	t.Cleanup(func() {
		u.m.Close()
		if u.store != nil {
			u.store.Close()
		}
	})
	return u
}

// run executes the Cmds an Update returned, feeding their messages back
// into Update (except ticks), until every store and signalling Cmd is done
// and nothing more arrives. Cmds that block (timers, listeners) are left
// waiting; they end when the model's context does.
func (u *unitModel) run(cmd tea.Cmd) {
	u.t.Helper()
	msgs := u.msgs
	giveUp := time.Now().Add(runGiveUp)
	launch := func(c tea.Cmd) {
		if c == nil {
			return
		}
		go func() { msgs <- c() }()
	}
	launch(cmd)
	for {
		select {
		case msg := <-msgs:
			switch msg := msg.(type) {
			case nil:
			case tea.BatchMsg:
				for _, c := range msg {
					launch(c)
				}
			case tea.QuitMsg:
			case tickMsg:
				// Timers are the test's to drive, by advancing the fake
				// clock and sending the current tick itself.
			default:
				_, c := u.m.Update(msg)
				launch(c)
			}
		case <-time.After(30 * time.Millisecond):
			// Quiet, but done only when no store or signalling work is
			// queued or running (a loaded machine may take a while).
			u.m.effects.mu.Lock()
			busy := u.m.effects.pending > 0
			u.m.effects.mu.Unlock()
			if !busy && len(u.m.storeQ) == 0 && !u.m.storeBusy {
				return
			}
			if time.Now().After(giveUp) {
				u.t.Fatalf("side effects still pending after %v", runGiveUp)
			}
		}
	}
}

// runGiveUp bounds run's wait for side effects: a guard against a hang.
const runGiveUp = 20 * time.Second

func (u *unitModel) update(msg tea.Msg) {
	u.t.Helper()
	_, c := u.m.Update(msg)
	u.run(c)
}

// sealedSignal makes a real offer/answer/cancel from one identity to
// another, made at the unit models' clock.
func sealedSignal(t *testing.T, from identity.Identity, to identity.Identity, kind signal.Kind, sid string, cands []punch.Candidate, secret [32]byte) signal.Signal {
	t.Helper()
	inv := identity.Invitation{Name: "peer", Candidates: punch.EncodeCandidates(cands, punch.NATBehavior{}), PunchSecret: secret,
		Created: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	sealed, err := identity.SealInvitation(from, to.Public, sid, string(kind), inv, newSeeded(9))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	return signal.Signal{ID: "doc-" + sid + string(kind), From: from.ID(), To: to.ID(), Kind: kind, SessionID: sid, Payload: sealed, CreatedAt: now, ExpiresAt: now.Add(signal.DefaultTTL)}
}

func loopbackSocket(t *testing.T) *punch.Socket {
	t.Helper()
	sock, err := punch.ListenUDP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	return sock
}

func (u *unitModel) published() []signal.Presence {
	u.sig.mu.Lock()
	defer u.sig.mu.Unlock()
	return append([]signal.Presence(nil), u.sig.published...)
}

func TestInitSchedulesOneTimerAndIgnoresStaleTicks(t *testing.T) {
	u := newUnitModel(t, 1, false, nil)
	u.run(u.m.Init())
	if !u.has("ready", func(e Event) bool { return e.ID == u.id.ID() }) {
		t.Fatalf("no ready event: %+v", u.events())
	}
	if n := len(u.published()); n != 1 {
		t.Fatalf("published presence %d times at start, want 1", n)
	}
	next := u.clock.now().Add(30 * time.Second)
	if !u.m.timerAt.Equal(next) {
		t.Fatalf("timer at %v, want the next presence round %v", u.m.timerAt, next)
	}
	// A tick from an earlier generation does nothing, even when late.
	u.clock.advance(31 * time.Second)
	u.update(tickMsg{gen: u.m.timerGen - 1})
	if n := len(u.published()); n != 1 {
		t.Fatalf("a stale tick ran the presence round")
	}
	u.update(tickMsg{gen: u.m.timerGen})
	if n := len(u.published()); n != 2 {
		t.Fatalf("the current tick did not run the presence round (%d publishes)", n)
	}
	if want := u.clock.now().Add(30 * time.Second); !u.m.timerAt.Equal(want) {
		t.Fatalf("timer at %v, want %v", u.m.timerAt, want)
	}
}

// An offer from an unknown ID is shown, and nothing goes to it (no
// signal, no packet) until the user accepts; then punching starts.
func TestUnknownOfferSendsNothingBeforeAccept(t *testing.T) {
	sock := loopbackSocket(t)
	peerConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peerConn.Close()
	peerAddr := netip.MustParseAddrPort(peerConn.LocalAddr().String())

	u := newUnitModel(t, 2, true, sock)
	u.run(u.m.Init())
	stranger, _ := identity.NewIdentity(newSeeded(77))
	offer := sealedSignal(t, stranger, u.id, signal.KindOffer, "sess1", []punch.Candidate{{Type: punch.CandidateHost, Addr: peerAddr, Priority: 1}}, [32]byte{1})
	u.update(signalMsg{ev: signal.SignalEvent{Signal: offer}, ch: nil})

	if !u.has("offer", func(e Event) bool {
		return e.From == stranger.ID() && e.Known != nil && !*e.Known && e.Session == "sess1"
	}) {
		t.Fatalf("no unknown offer event: %+v", u.events())
	}
	if k := u.sig.sentKinds(stranger.ID()); len(k) != 0 {
		t.Fatalf("signals sent to an unknown offerer before accept: %v", k)
	}
	u.sig.mu.Lock()
	acked := strings.Join(u.sig.acks, ",")
	u.sig.mu.Unlock()
	if acked != offer.ID {
		t.Errorf("acks = %q, want the offer %q", acked, offer.ID)
	}
	// Nothing was ever handed to the socket for it: the engine's effects
	// so far held no datagram (a read would only prove nothing arrived
	// yet), and the peer's status says so.
	if st := u.m.eng.Peer(stranger.ID()); st.Phase != conn.PhaseIdle || st.SessionID != "" {
		t.Fatalf("before accept the stranger is %+v", st)
	}

	u.update(AcceptIntent{From: stranger.ID(), SessionID: "sess1", AddAs: "stranger"})
	if k := u.sig.sentKinds(stranger.ID()); len(k) != 1 || k[0] != "answer" {
		t.Fatalf("after accept sent %v, want one answer", k)
	}
	buf := make([]byte, 2048)
	peerConn.SetReadDeadline(time.Now().Add(runGiveUp))
	n, _, err := peerConn.ReadFromUDP(buf)
	if err != nil || n == 0 || buf[0] != punch.PunchByte {
		t.Fatalf("after accept: read %d bytes (first %#x), %v; want a punch probe", n, buf[0], err)
	}
	if st := u.m.eng.Peer(stranger.ID()); st.Phase != conn.PhaseConnecting || st.Name != "stranger" || st.SessionID != "sess1" {
		t.Fatalf("after accept the stranger is %+v", st)
	}
	// The answer opens for the offerer and carries my candidates.
	ans, _ := u.sig.last(signal.KindAnswer)
	inv, err := identity.OpenInvitation(stranger, u.id.Public, "sess1", string(signal.KindAnswer), ans.Payload)
	if err != nil {
		t.Fatalf("answer does not open: %v", err)
	}
	cands, _, err := punch.DecodeCandidates(inv.Candidates)
	if err != nil || len(cands) == 0 || cands[0].Addr != sock.LocalAddr() {
		t.Fatalf("answer candidates %v, %v; want my socket %v", cands, err, sock.LocalAddr())
	}
}

func TestDeclineSendsCancelAndForgetsTheOffer(t *testing.T) {
	u := newUnitModel(t, 3, false, nil)
	u.run(u.m.Init())
	peer, _ := identity.NewIdentity(newSeeded(78))
	offer := sealedSignal(t, peer, u.id, signal.KindOffer, "sess2", nil, [32]byte{2})
	u.update(signalMsg{ev: signal.SignalEvent{Signal: offer}})
	if o := u.m.eng.Offers(); len(o) != 1 || o[0] != [2]string{peer.ID(), "sess2"} {
		t.Fatalf("offers %v, want the one from the peer", o)
	}
	u.update(DeclineIntent{From: peer.ID(), SessionID: "sess2"})
	if o := u.m.eng.Offers(); len(o) != 0 {
		t.Fatalf("declined offer still pending: %v", o)
	}
	c, ok := u.sig.last(signal.KindCancel)
	if !ok || c.To != peer.ID() || c.SessionID != "sess2" {
		t.Fatalf("cancel = %+v, %v", c, ok)
	}
	if _, err := identity.OpenInvitation(peer, u.id.Public, "sess2", string(signal.KindCancel), c.Payload); err != nil {
		t.Fatalf("the cancel is not authenticated for the peer: %v", err)
	}
	// Accepting it afterwards is refused in words.
	u.update(AcceptIntent{From: peer.ID(), SessionID: "sess2"})
	if !u.has("error", func(e Event) bool { return strings.Contains(e.Words, "gone") }) {
		t.Fatalf("no error for a gone offer: %+v", u.events())
	}
}

// A forged offer (sealed by someone else, claiming another sender) shows
// nothing.
func TestForgedOfferIsDropped(t *testing.T) {
	u := newUnitModel(t, 4, false, nil)
	u.run(u.m.Init())
	alice, _ := identity.NewIdentity(newSeeded(80))
	mallory, _ := identity.NewIdentity(newSeeded(81))
	s := sealedSignal(t, mallory, u.id, signal.KindOffer, "sess3", nil, [32]byte{3})
	s.From = alice.ID() // claims to be alice
	u.update(signalMsg{ev: signal.SignalEvent{Signal: s}})
	if len(u.m.eng.Offers()) != 0 || u.has("offer", nil) {
		t.Fatal("a forged offer was shown")
	}
}

// A message to an online contact without a session is stored, then
// offered for; an unanswered offer is withdrawn and retried with backoff
// while mail waits; the message stays in the outbox throughout.
func TestQueuedMessageConnectsAndRetries(t *testing.T) {
	u := newUnitModel(t, 5, true, nil)
	u.run(u.m.Init())
	bob, _ := identity.NewIdentity(newSeeded(82))
	online := func() {
		u.sig.mu.Lock()
		u.sig.presence[bob.ID()] = signal.Presence{ID: bob.ID(), DisplayName: "bob", LastSeen: u.clock.now()}
		u.sig.mu.Unlock()
	}
	online()
	u.update(AddContactIntent{Name: "bob", ID: bob.ID()})
	if !u.has("contact", func(e Event) bool { return e.ID == bob.ID() }) {
		t.Fatalf("no contact event: %+v", u.events())
	}
	u.update(SendIntent{ContactID: bob.ID(), Text: "hello"})
	if !u.has("queued", func(e Event) bool { return e.Body == "hello" }) {
		t.Fatalf("no queued event: %+v", u.events())
	}
	if k := u.sig.sentKinds(bob.ID()); len(k) != 1 || k[0] != "offer" {
		t.Fatalf("sent %v, want one offer", k)
	}
	for i, wantBackoff := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		u.clock.advance(10 * time.Second) // the offer timeout
		online()
		u.update(tickMsg{gen: u.m.timerGen})
		if st := u.m.eng.Peer(bob.ID()); st.Phase != conn.PhaseFailed {
			t.Fatalf("round %d: %+v, want failed (retry planned)", i, st)
		}
		u.clock.advance(wantBackoff)
		u.update(tickMsg{gen: u.m.timerGen})
		if st := u.m.eng.Peer(bob.ID()); st.Phase != conn.PhaseConnecting {
			t.Fatalf("round %d: no new offer after %v (%+v)", i, wantBackoff, st)
		}
	}
	k := u.sig.sentKinds(bob.ID())
	if got := strings.Join(k, " "); got != "offer cancel offer cancel offer cancel offer cancel offer" {
		t.Fatalf("signals: %s", got)
	}
	out, err := u.store.Outbox(bob.ID())
	if err != nil || len(out) != 1 || out[0].Body != "hello" {
		t.Fatalf("outbox = %v, %v", out, err)
	}
	if !u.has("failure", func(e Event) bool { return e.Reason == "no-answer" && strings.Contains(e.Words, "bob") }) {
		t.Fatalf("no failure in words: %+v", u.events())
	}
}

// A message to a contact that is not running waits for it: no offer is
// left in its inbox, the user is told what the program waits for.
func TestMessageToAnOfflineContactWaits(t *testing.T) {
	u := newUnitModel(t, 14, true, nil)
	u.run(u.m.Init())
	bob, _ := identity.NewIdentity(newSeeded(89))
	u.update(AddContactIntent{Name: "bob", ID: bob.ID()})
	u.update(SendIntent{ContactID: bob.ID(), Text: "when you're back"})
	if !u.has("waiting", func(e Event) bool { return e.Peer == bob.ID() && e.Words == "waiting for bob to come online" }) {
		t.Fatalf("no waiting event: %+v", u.events())
	}
	if k := u.sig.sentKinds(bob.ID()); len(k) != 0 {
		t.Fatalf("sent %v to a contact that is not running", k)
	}
}

// Two offers crossing at the same instant: the lower ID's survives on
// both sides.
func TestCrossingOffers(t *testing.T) {
	a := newUnitModel(t, 6, true, loopbackSocket(t))
	b := newUnitModel(t, 7, true, loopbackSocket(t))
	lo, hi := a, b
	if hi.id.ID() < lo.id.ID() {
		lo, hi = hi, lo
	}
	// Presence cannot be read, so neither knows the other is there: no
	// automatic offers, and opening the chat offers at once.
	lo.sig.lookupErr = signal.ErrUnavailable
	hi.sig.lookupErr = signal.ErrUnavailable
	for _, u := range []*unitModel{lo, hi} {
		u.run(u.m.Init())
	}
	lo.update(AddContactIntent{Name: "hi", ID: hi.id.ID()})
	hi.update(AddContactIntent{Name: "lo", ID: lo.id.ID()})
	lo.update(OpenChatIntent{ContactID: hi.id.ID()})
	hi.update(OpenChatIntent{ContactID: lo.id.ID()})
	loOffer, _ := lo.sig.last(signal.KindOffer)
	hiOffer, _ := hi.sig.last(signal.KindOffer)

	lo.update(signalMsg{ev: signal.SignalEvent{Signal: hiOffer}})
	hi.update(signalMsg{ev: signal.SignalEvent{Signal: loOffer}})
	if st := lo.m.eng.Peer(hi.id.ID()); st.Phase != conn.PhaseConnecting || st.SessionID != loOffer.SessionID {
		t.Fatalf("lower ID: %+v, want still on its own offer %s", st, loOffer.SessionID)
	}
	if k := lo.sig.sentKinds(hi.id.ID()); strings.Join(k, " ") != "offer" {
		t.Fatalf("lower ID sent %v", k)
	}
	if st := hi.m.eng.Peer(lo.id.ID()); st.Phase != conn.PhaseConnecting || st.SessionID != loOffer.SessionID {
		t.Fatalf("higher ID: %+v, want punching the lower's %s", st, loOffer.SessionID)
	}
	// Cmds run concurrently: the cancel and the answer may go in either order.
	k := hi.sig.sentKinds(lo.id.ID())
	sort.Strings(k)
	if strings.Join(k, " ") != "answer cancel offer" {
		t.Fatalf("higher ID sent %v, want its offer, then a cancel of it and an answer", k)
	}
	if lo.has("offer", nil) || hi.has("offer", nil) {
		t.Fatal("a crossing offer was shown as a prompt")
	}
}

// Mail left in the outbox from an earlier run goes out when the contact's
// presence shows it online: the engine offers without being asked.
func TestPresenceConnectsWhenMailWaits(t *testing.T) {
	u := newUnitModel(t, 8, true, loopbackSocket(t))
	bob, _ := identity.NewIdentity(newSeeded(83))
	if _, err := u.store.AddContact("bob", bob.ID(), u.clock.now()); err != nil {
		t.Fatal(err)
	}
	id, _ := session.NewMessageID(newSeeded(84))
	if _, err := u.store.Queue(bob.ID(), id, "from last time", u.clock.now()); err != nil {
		t.Fatal(err)
	}
	u.sig.presence[bob.ID()] = signal.Presence{ID: bob.ID(), DisplayName: "bob", LastSeen: u.clock.now()}
	u.run(u.m.Init())
	if k := u.sig.sentKinds(bob.ID()); strings.Join(k, " ") != "offer" {
		t.Fatalf("sent %v, want one offer", k)
	}
	if st := u.m.eng.Peer(bob.ID()); st.Queued != 1 || st.Phase != conn.PhaseConnecting {
		t.Fatalf("bob: %+v", st)
	}
	if !u.has("presence", func(e Event) bool { return e.Peer == bob.ID() && e.Online != nil && *e.Online }) {
		t.Fatalf("no presence event: %+v", u.events())
	}
	// The ready event came first.
	evs := u.events()
	if len(evs) == 0 || evs[0].Ev != "ready" {
		t.Fatalf("first event %+v, want ready", evs)
	}
}

// A contact online when I start is connected to by itself (an automatic
// offer); one set to "ask me each time" is not.
func TestContactsOnlineAtStartAreReconnected(t *testing.T) {
	u := newUnitModel(t, 9, true, loopbackSocket(t))
	bob, _ := identity.NewIdentity(newSeeded(85))
	carol, _ := identity.NewIdentity(newSeeded(90))
	for _, c := range []identity.Identity{bob, carol} {
		if _, err := u.store.AddContact("c", c.ID(), u.clock.now()); err != nil {
			t.Fatal(err)
		}
		u.sig.presence[c.ID()] = signal.Presence{ID: c.ID(), LastSeen: u.clock.now()}
	}
	if err := u.store.SetAskEachTime(carol.ID(), true); err != nil {
		t.Fatal(err)
	}
	u.run(u.m.Init())
	if k := u.sig.sentKinds(bob.ID()); strings.Join(k, " ") != "offer" {
		t.Fatalf("sent %v to an online contact, want one offer", k)
	}
	offer, _ := u.sig.last(signal.KindOffer)
	inv, err := identity.OpenInvitation(bob, u.id.Public, offer.SessionID, string(signal.KindOffer), offer.Payload)
	if err != nil || !inv.Auto || inv.Instance != u.m.eng.Instance() {
		t.Fatalf("offer %+v, %v; want an automatic one from this run", inv, err)
	}
	if k := u.sig.sentKinds(carol.ID()); len(k) != 0 {
		t.Fatalf("sent %v to an ask-each-time contact", k)
	}
}

func TestHealthEventReachesEvents(t *testing.T) {
	u := newUnitModel(t, 10, false, nil)
	u.run(u.m.Init())
	u.update(signalMsg{ev: signal.HealthEvent{Backend: "firestore demo", Err: fmt.Errorf("deadline exceeded")}})
	u.update(signalMsg{ev: signal.HealthEvent{Backend: "firestore demo"}})
	var got []string
	for _, e := range u.events() {
		if e.Ev == "health" && e.OK != nil {
			got = append(got, fmt.Sprint(*e.OK)+": "+e.Words)
		}
	}
	want := "[false: signalling unavailable (firestore demo): deadline exceeded true: firestore demo is reachable again]"
	if fmt.Sprint(got) != want {
		t.Fatalf("health events %v, want %s", got, want)
	}
}

// An answer that arrives just after my offer timed out is still taken;
// one for an older offer is not.
func TestLateAnswerToLatestOfferIsTaken(t *testing.T) {
	u := newUnitModel(t, 11, true, loopbackSocket(t))
	u.run(u.m.Init())
	bob, _ := identity.NewIdentity(newSeeded(86))
	u.sig.mu.Lock()
	u.sig.presence[bob.ID()] = signal.Presence{ID: bob.ID(), LastSeen: u.clock.now()}
	u.sig.mu.Unlock()
	u.update(AddContactIntent{Name: "bob", ID: bob.ID()})
	u.update(OpenChatIntent{ContactID: bob.ID()})
	first, _ := u.sig.last(signal.KindOffer)
	u.clock.advance(10 * time.Second)
	u.update(tickMsg{gen: u.m.timerGen}) // no answer: a retry is planned
	u.clock.advance(time.Second)
	u.update(tickMsg{gen: u.m.timerGen}) // the retry: a second offer
	u.clock.advance(10 * time.Second)
	u.update(tickMsg{gen: u.m.timerGen}) // which times out too
	second, _ := u.sig.last(signal.KindOffer)
	if st := u.m.eng.Peer(bob.ID()); st.Phase != conn.PhaseFailed || second.SessionID == first.SessionID {
		t.Fatalf("%+v, offers %s %s", st, first.SessionID, second.SessionID)
	}
	bobAddr := []punch.Candidate{{Type: punch.CandidateHost, Addr: netip.MustParseAddrPort("127.0.0.1:9"), Priority: 1}}
	u.update(signalMsg{ev: signal.SignalEvent{Signal: sealedSignal(t, bob, u.id, signal.KindAnswer, first.SessionID, bobAddr, [32]byte{})}})
	if st := u.m.eng.Peer(bob.ID()); st.Phase != conn.PhaseFailed {
		t.Fatalf("an answer to an older offer started punching: %+v", st)
	}
	u.update(signalMsg{ev: signal.SignalEvent{Signal: sealedSignal(t, bob, u.id, signal.KindAnswer, second.SessionID, bobAddr, [32]byte{})}})
	if st := u.m.eng.Peer(bob.ID()); st.Phase != conn.PhaseConnecting || st.SessionID != second.SessionID {
		t.Fatalf("late answer to the latest offer: %+v, want punching", st)
	}
}

// fakeSTUN answers Binding requests on loopback with a mapped address of
// its choosing, once gate is closed (nil: at once), until the test ends.
func fakeSTUN(t *testing.T, mapped netip.AddrPort, gate <-chan struct{}) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if req.Decode() != nil || req.Type != stun.BindingRequest {
				continue
			}
			if gate != nil {
				<-gate
			}
			resp, err := stun.Build(stun.BindingSuccess, stun.NewTransactionIDSetter(req.TransactionID),
				&stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())}, stun.Fingerprint)
			if err == nil {
				conn.WriteToUDP(resp.Raw, from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return netip.MustParseAddrPort(conn.LocalAddr().String())
}

// A chat opened while STUN discovery runs waits for it, then offers the
// server-reflexive address too; the NAT words reach the ready event.
func TestOfferWaitsForDiscovery(t *testing.T) {
	mapped := netip.MustParseAddrPort("203.0.113.7:40000")
	gate := make(chan struct{})
	server := fakeSTUN(t, mapped, gate)
	sock := loopbackSocket(t)
	u := newUnitModelSTUN(t, 12, sock, []netip.AddrPort{server})
	bob, _ := identity.NewIdentity(newSeeded(87))
	u.sig.presence[bob.ID()] = signal.Presence{ID: bob.ID(), LastSeen: u.clock.now()}
	u.run(u.m.Init())
	u.update(AddContactIntent{Name: "bob", ID: bob.ID()})
	u.update(OpenChatIntent{ContactID: bob.ID()})
	if st := u.m.eng.Peer(bob.ID()); st.Phase != conn.PhaseConnecting || st.Words != "finding my public address" {
		t.Fatalf("before discovery: %+v, want finding my public address", st)
	}
	if _, ok := u.sig.last(signal.KindOffer); ok {
		t.Fatal("offered before my public address was known")
	}
	close(gate)
	u.runUntil("offer after discovery", func() bool { _, ok := u.sig.last(signal.KindOffer); return ok })
	offer, _ := u.sig.last(signal.KindOffer)
	inv, err := identity.OpenInvitation(bob, u.id.Public, offer.SessionID, string(signal.KindOffer), offer.Payload)
	if err != nil {
		t.Fatal(err)
	}
	cands, _, err := punch.DecodeCandidates(inv.Candidates)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, c := range cands {
		types = append(types, c.String())
	}
	if got := strings.Join(types, ", "); !strings.Contains(got, "host 127.0.0.1:") || !strings.Contains(got, "srflx 203.0.113.7:40000") {
		t.Fatalf("offered candidates %s, want my host address and the reflexive one", got)
	}
	if !u.has("ready", func(e Event) bool { return e.NAT != "" && !strings.Contains(e.NAT, "STUN") }) {
		t.Fatalf("ready event without NAT words: %+v", u.events())
	}
}

// A backend may deliver a signal twice (a listener reconnecting): the
// prompt is shown once.
func TestRedeliveredOfferShownOnce(t *testing.T) {
	u := newUnitModel(t, 13, false, nil)
	u.run(u.m.Init())
	peer, _ := identity.NewIdentity(newSeeded(88))
	offer := sealedSignal(t, peer, u.id, signal.KindOffer, "sess9", nil, [32]byte{9})
	u.update(signalMsg{ev: signal.SignalEvent{Signal: offer}})
	u.update(signalMsg{ev: signal.SignalEvent{Signal: offer}})
	n := 0
	for _, e := range u.events() {
		if e.Ev == "offer" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d offer events, want 1", n)
	}
}

// Quitting says goodbye before the program ends: offline presence is
// written, and the Cmd that ends the program waits for it.
func TestQuitPublishesOfflinePresence(t *testing.T) {
	u := newUnitModel(t, 15, true, nil)
	u.run(u.m.Init())
	u.update(QuitIntent{})
	p := u.published()
	if len(p) < 2 || !p[len(p)-1].Offline || p[len(p)-1].Instance != u.m.eng.Instance() {
		t.Fatalf("published %+v; want the last one offline, of this run", p)
	}
	if !u.m.quitting {
		t.Fatal("not quitting after the goodbye")
	}
}

// The screen observer turns peers' statuses into contact rows and the
// focused chat's path into the status bar.
func TestScreenObserverRowsAndStatus(t *testing.T) {
	s := NewScreen(Options{})
	o := newScreenObserver(s, "local /tmp/x", time.Now)
	bob := conn.PeerStatus{ID: "bobid", Name: "bob", Contact: true, Phase: conn.PhaseConnected,
		Path: conn.Path{Kind: "direct", Local: netip.MustParseAddrPort("10.0.0.1:1"), Remote: netip.MustParseAddrPort("10.0.0.2:2")}}
	carol := conn.PeerStatus{ID: "carolid", Name: "carol", Contact: true, Phase: conn.PhaseWaiting, Words: "waiting for carol to come online", Queued: 2}
	o.Notify(conn.ContactsChanged{Contacts: []conn.Contact{{ID: "carolid", Name: "carol"}, {ID: "bobid", Name: "bob"}}})
	o.Notify(conn.PeerChanged{Status: bob})
	o.Notify(conn.PeerChanged{Status: carol})
	o.Notify(conn.MessageIn{Peer: "carolid", Body: "hi"})
	o.focus("bobid")
	if len(o.rows) != 2 || o.rows[0].ID != "carolid" || o.rows[1].ID != "bobid" {
		t.Fatalf("rows %+v; want carol then bob, in the store's order", o.rows)
	}
	if r := o.rows[0]; r.Presence != PresenceOffline || r.Detail != "waiting for carol to come online" || r.Unread != 1 {
		t.Fatalf("carol's row %+v", r)
	}
	if r := o.rows[1]; r.Presence != PresenceConnected {
		t.Fatalf("bob's row %+v", r)
	}
	if o.status.Path != "direct, encrypted 10.0.0.1:1 ⇄ 10.0.0.2:2" || o.status.Backend != "local /tmp/x" {
		t.Fatalf("status %+v", o.status)
	}
	o.opened("carolid")
	if o.rows[0].Unread != 0 || o.status.Path != "waiting for carol to come online" {
		t.Fatalf("after opening carol: row %+v status %+v", o.rows[0], o.status)
	}
	o.Notify(conn.Health{OK: false, Words: "signalling unavailable (local): gone"})
	o.focus("carolid")
	if o.status.BackendHealthy || o.status.Err != "signalling unavailable (local): gone" {
		t.Fatalf("status after an outage %+v", o.status)
	}
}

// A join code from the dialog or the headless command is tried in a Cmd
// by the function main gives; the outcome is told in words.
func TestJoinIntent(t *testing.T) {
	u := newUnitModel(t, 16, false, nil)
	var tried []string
	u.m.d.Join = func(ctx context.Context, code string) (string, error) {
		tried = append(tried, code)
		if code == "bad" {
			return "", fmt.Errorf("the project has no p2ptui rules")
		}
		return "my-group", nil
	}
	u.run(u.m.Init())
	u.update(JoinIntent{Code: "good"})
	u.update(JoinIntent{Code: "bad"})
	if fmt.Sprint(tried) != "[good bad]" {
		t.Fatalf("tried %v", tried)
	}
	if !u.has("note", func(e Event) bool { return strings.Contains(e.Words, "Joined the group of project my-group") }) {
		t.Fatalf("no note for the join: %+v", u.events())
	}
	if !u.has("error", func(e Event) bool {
		return strings.Contains(e.Words, "could not join the group: the project has no p2ptui rules (nothing changed)")
	}) {
		t.Fatalf("no error for the failed join: %+v", u.events())
	}
}
