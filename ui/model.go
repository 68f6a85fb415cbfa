package ui

import (
	"bufio"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/netip"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
)

// Deps is everything the root model needs from outside. main.go opens the
// resources and closes them after the program ends; the model only uses them.
type Deps struct {
	Signaller signal.Signaller
	Store     *store.Store
	Identity  identity.Identity
	Socket    *punch.Socket
	// STUN servers for discovering the public address and NAT behaviour;
	// none: only host candidates are offered.
	STUN []netip.AddrPort
	// Name is my display name, sent (sealed) in offers and published with
	// presence.
	Name   string
	Logger *slog.Logger
	// Version identifies this build, for the headless ready event.
	Version string
	// Now and Rand are injected so tests run on a fake clock and seeded
	// randomness; nil means the real ones.
	Now  func() time.Time
	Rand io.Reader

	// Headless runs without a screen: commands are read from Commands, one
	// per line, and events are written to Events as JSON lines.
	Headless bool
	Commands io.Reader
	Events   io.Writer

	// Timings overrides the engine's timers; zero fields keep the defaults.
	Timings Timings
	// Punch and Session override the machines' timers (tests shorten them).
	PunchKeepalive, PunchPathTimeout, PunchTimeout time.Duration
	SessionTimers                                  session.Timers
}

// Timings are the engine's own timers (the machines keep theirs).
type Timings struct {
	// Presence is how often my presence is published and contacts'
	// presence looked up.
	Presence time.Duration
	// OfferTimeout is how long an offer waits for an answer before the
	// attempt counts as failed.
	OfferTimeout time.Duration
	// RetryMin and RetryMax bound the reconnect backoff.
	RetryMin, RetryMax time.Duration
	// Rediscover is how old a STUN result may get before the next
	// connection attempt runs discovery again (mappings change).
	Rediscover time.Duration
}

// Default engine timings, and why.
const (
	// Presence every 30 s: a contact shows as online within a minute of
	// starting, at two small writes/reads per minute per peer.
	defaultPresenceEvery = 30 * time.Second
	// An offer lives signal.DefaultTTL (2 min) in the peer's inbox; a
	// person who is there answers within a minute or not at all.
	defaultOfferTimeout = 60 * time.Second
	// Reconnect backoff: first retry soon (a blip), then doubling to a
	// minute so an absent peer costs one offer a minute at most.
	defaultRetryMin = 2 * time.Second
	defaultRetryMax = 60 * time.Second
	// NAT mappings of home routers commonly last minutes; a STUN result
	// older than this is refreshed before it is offered again.
	defaultRediscover = 5 * time.Minute
	// Reconnect attempts without any sign of the peer before waiting for
	// its presence (or the user) instead.
	maxBlindRetries = 5
)

func (t Timings) withDefaults() Timings {
	if t.Presence <= 0 {
		t.Presence = defaultPresenceEvery
	}
	if t.OfferTimeout <= 0 {
		t.OfferTimeout = defaultOfferTimeout
	}
	if t.RetryMin <= 0 {
		t.RetryMin = defaultRetryMin
	}
	if t.RetryMax <= 0 {
		t.RetryMax = defaultRetryMax
	}
	if t.Rediscover <= 0 {
		t.Rediscover = defaultRediscover
	}
	return t
}

// Model is the root Bubble Tea model: the one event loop that owns the
// STUN discovery, every peerLink's punch and session machines, and the
// screen. Signals, datagrams, timer deadlines, keys and headless commands
// all arrive in Update as messages; blocking work runs in tea.Cmds that
// report back as messages.
type Model struct {
	d      Deps
	t      Timings
	log    *slog.Logger
	now    func() time.Time
	rand   io.Reader
	me     string
	ctx    context.Context // ends at quit: stops the listener and pending Cmds
	cancel context.CancelFunc

	screen *Screen
	events *eventWriter  // headless only
	stdin  *bufio.Reader // headless only

	contacts []store.Contact // cache of the store's contacts, in its order
	loaded   bool            // contacts came from the store

	convs    map[string]*peerLink // by peer ID
	byTag    map[punch.Tag]*peerLink
	byRemote map[netip.AddrPort]*peerLink
	offers   map[string]*incomingOffer // by session ID, waiting for the user
	presence map[string]signal.Presence
	open     string // the contact whose chat the user opened last

	disc      *punch.Discovery
	discAt    time.Time // when the last discovery finished
	discDone  bool
	reflexive *punch.Candidate
	nat       punch.NATBehavior

	listening    bool
	backendOK    bool
	backendErr   string
	ready        bool
	presenceAt   time.Time // next presence round
	timerGen     uint64
	timerAt      time.Time // the deadline the pending tick is for
	timerStop    chan struct{}
	quitting     bool
	pendingCmds  []tea.Cmd
	effects      *sideEffects
	storeQ       []tea.Cmd // store operations waiting for the running one
	storeBusy    bool
	status       StatusView // last pushed to the screen
	statusSet    bool
	contactViews []ContactView // last pushed to the screen
	contactsSet  bool
}

// New builds the root model. Nothing runs until the program calls Init.
func New(d Deps) *Model {
	m := &Model{
		d:        d,
		t:        d.Timings.withDefaults(),
		log:      d.Logger,
		now:      d.Now,
		rand:     d.Rand,
		me:       d.Identity.ID(),
		convs:    map[string]*peerLink{},
		byTag:    map[punch.Tag]*peerLink{},
		byRemote: map[netip.AddrPort]*peerLink{},
		offers:   map[string]*incomingOffer{},
		presence: map[string]signal.Presence{},
		effects:  newSideEffects(),
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.screen = NewScreen(Options{Now: m.now})
	m.screen.SetSelf(Self{ID: m.me, Name: d.Name, Fingerprint: identity.KeyFingerprint(d.Identity.Public)})
	if d.Headless {
		out := d.Events
		if out == nil {
			out = io.Discard
		}
		m.events = newEventWriter(out)
		if d.Commands != nil {
			m.stdin = bufio.NewReaderSize(d.Commands, 64<<10)
		}
	}
	m.backendOK = true
	m.refreshStatus()
	return m
}

// Close stops what the model started (the listener context, the headless
// event writer). Call it after the program has returned; the resources in
// Deps stay open for their owner to close.
func (m *Model) Close() {
	m.cancel()
	// The program may have ended without the flush (a signal, a kill):
	// store writes still queued run now, in order; their results have no
	// one to go to.
	q := m.storeQ
	m.storeQ = nil
	for _, c := range q {
		c()
	}
	m.effects.close(quitTimeout)
	if m.events != nil {
		m.events.Close()
	}
}

// Init starts the listeners, discovery and the first presence round.
func (m *Model) Init() tea.Cmd {
	now := m.now()
	if m.d.Socket != nil {
		m.do(waitDatagram(m.d.Socket.Datagrams()))
	}
	m.storeOp(loadContacts(m.d.Store))
	if m.stdin != nil {
		m.do(readCommand(m.stdin))
	}
	m.startDiscovery(now)
	m.presenceRound(now)
	return m.finish(now)
}

// View draws the screen; headless mode has none.
func (m *Model) View() string {
	if m.d.Headless || m.quitting {
		return ""
	}
	return m.screen.View()
}

// effect queues a Cmd that uses the store or the signaller.
func (m *Model) effect(c tea.Cmd) { m.do(m.effects.guard(c)) }

// storeOp queues a Cmd that uses the store. Store operations run one at a
// time, in the order they were issued: messages are queued, appended and
// sent in the order the user typed or the peer sent them, and a receipt
// is never recorded before its message was queued.
func (m *Model) storeOp(c tea.Cmd) {
	if c == nil {
		return
	}
	// Guarded when queued, so quitting waits for the queued ones too.
	m.storeQ = append(m.storeQ, m.effects.guard(c))
	m.nextStoreOp()
}

// nextStoreOp starts the next store operation unless one is running.
func (m *Model) nextStoreOp() {
	if m.storeBusy || len(m.storeQ) == 0 {
		return
	}
	c := m.storeQ[0]
	m.storeQ[0] = nil
	m.storeQ = m.storeQ[1:]
	m.storeBusy = true
	m.do(func() tea.Msg { return storeDoneMsg{msg: c()} })
}

// storeDoneMsg ends one store operation; msg is its own result.
type storeDoneMsg struct{ msg tea.Msg }

// do queues a Cmd to be returned from the current Update.
func (m *Model) do(c tea.Cmd) {
	if c != nil {
		m.pendingCmds = append(m.pendingCmds, c)
	}
}

// emit writes a headless event; with a screen it does nothing.
func (m *Model) emit(e Event) {
	if m.events != nil {
		m.events.emit(e)
	}
}

// Update handles one message; see the type's comment.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	now := m.now()
	if m.quitting {
		// Only the store writes still queued matter now; the flush's
		// QuitMsg ends the program once they are done.
		if _, ok := msg.(storeDoneMsg); ok {
			m.storeBusy = false
			m.nextStoreOp()
			cmds := m.pendingCmds
			m.pendingCmds = nil
			return m, tea.Batch(cmds...)
		}
		return m, nil
	}
	m.handle(now, msg)
	return m, m.finish(now)
}

// handle routes one message.
func (m *Model) handle(now time.Time, msg tea.Msg) {
	switch msg := msg.(type) {
	case storeDoneMsg:
		m.storeBusy = false
		m.nextStoreOp()
		if msg.msg != nil {
			m.handle(now, msg.msg)
		}

	case tea.WindowSizeMsg:
		m.screen.SetSize(msg.Width, msg.Height)
	case tea.KeyMsg:
		if msg.Type == tea.KeyCtrlC {
			m.quit(now)
			break
		}
		var c tea.Cmd
		m.screen, c = m.screen.Update(msg)
		m.do(c)

	case datagramMsg:
		m.handleDatagram(now, msg.dg)
		m.do(waitDatagram(msg.ch))
	case socketClosedMsg:
		m.log.Warn("UDP socket closed")

	case listeningMsg:
		m.listening = true
		m.do(waitSignal(msg.ch))
		m.checkReady()
	case listenFailedMsg:
		m.backendOK = false
		m.backendErr = "signalling unavailable: " + msg.err.Error()
		m.log.Error("listen for signals", "err", msg.err)
		m.emit(Event{Ev: "error", Words: m.backendErr})
		m.refreshStatus()
	case signalMsg:
		m.handleSignalEvent(now, msg.ev)
		m.do(waitSignal(msg.ch))
	case signalClosedMsg:
		m.listening = false

	case tickMsg:
		if msg.gen == m.timerGen {
			m.timerAt, m.timerStop = time.Time{}, nil
			m.handleTimeouts(now)
		}

	case contactsMsg:
		m.handleContacts(now, msg)
	case storedMsg:
		m.handleStored(now, msg)
	case historyMsg:
		m.handleHistory(msg)
	case outboxMsg:
		m.handleOutbox(now, msg)
	case signalSentMsg:
		m.handleSignalSent(now, msg)
	case presenceMsg:
		m.handlePresence(now, msg)
	case errMsg:
		m.log.Warn(msg.what, "err", msg.err)
		m.showError(msg.words)

	case OpenChatIntent:
		m.openChat(now, msg.ContactID)
	case SendIntent:
		m.sendText(now, msg.ContactID, msg.Text)
	case TypingIntent:
		m.setTyping(now, msg.ContactID, msg.Active)
	case AcceptIntent:
		m.accept(now, msg.SessionID, msg.AddAs)
	case DeclineIntent:
		m.decline(now, msg.SessionID)
	case AddContactIntent:
		m.addContact(msg.Name, msg.ID)
	case RenameContactIntent:
		m.renameContact(msg.ID, msg.Name)
	case RemoveContactIntent:
		m.removeContact(now, msg.ID)
	case QuitIntent:
		m.quit(now)

	case commandMsg:
		m.handleCommand(now, msg)
		if m.stdin != nil && !m.quitting {
			m.do(readCommand(m.stdin))
		}
	case commandErrMsg:
		m.emit(Event{Ev: "error", Words: msg.words})
		if m.stdin != nil {
			m.do(readCommand(m.stdin))
		}
	case stdinClosedMsg:
		m.quit(now)

	default:
		// Anything else (cursor blinks, the screen's own messages) belongs
		// to the screen.
		var c tea.Cmd
		m.screen, c = m.screen.Update(msg)
		m.do(c)
	}
}

// finish schedules the next timer and hands out the queued Cmds.
func (m *Model) finish(now time.Time) tea.Cmd {
	if !m.quitting {
		m.scheduleTimer(now)
		m.refreshStatus()
		m.refreshContacts()
	}
	cmds := m.pendingCmds
	m.pendingCmds = nil
	switch len(cmds) {
	case 0:
		return nil
	case 1:
		return cmds[0]
	}
	return tea.Batch(cmds...)
}

// tickMsg is the one pending timer; gen tells a stale tick from the
// current one.
type tickMsg struct {
	gen uint64
	at  time.Time
}

// deadline is the earliest instant any machine or engine timer wants
// HandleTimeout; zero means none.
func (m *Model) deadline() time.Time {
	var d time.Time
	add := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if m.disc != nil && !m.discDone {
		add(m.disc.Deadline())
	}
	add(m.presenceAt)
	for _, c := range m.convs {
		add(c.deadline())
	}
	for _, o := range m.offers {
		add(o.expires)
	}
	return d
}

// scheduleTimer arranges one tick for the earliest deadline. A pending tick
// for another instant is stopped (its goroutine ends at once) and, should
// it already have fired, recognised as stale by its generation.
func (m *Model) scheduleTimer(now time.Time) {
	d := m.deadline()
	if d.Equal(m.timerAt) {
		return
	}
	if m.timerStop != nil {
		close(m.timerStop)
		m.timerStop = nil
	}
	m.timerGen++
	m.timerAt = d
	if d.IsZero() {
		return
	}
	stop := make(chan struct{})
	m.timerStop = stop
	m.do(tick(m.ctx, stop, d.Sub(now), tickMsg{gen: m.timerGen, at: d}))
}

// tick waits for d, unless stopped or the model's context ends first.
// Unlike tea.Tick it leaves no goroutine behind when its deadline moves.
func tick(ctx context.Context, stop <-chan struct{}, d time.Duration, msg tickMsg) tea.Cmd {
	return func() tea.Msg {
		t := time.NewTimer(max(d, 0))
		defer t.Stop()
		select {
		case <-t.C:
			return msg
		case <-stop:
		case <-ctx.Done():
		}
		return nil
	}
}

// handleTimeouts runs every timer that is due.
func (m *Model) handleTimeouts(now time.Time) {
	if m.disc != nil && !m.discDone {
		if d := m.disc.Deadline(); !d.IsZero() && !now.Before(d) {
			m.disc.HandleTimeout(now)
			m.pumpDiscovery(now)
		}
	}
	if !m.presenceAt.IsZero() && !now.Before(m.presenceAt) {
		m.presenceRound(now)
	}
	for _, c := range m.sortedConvs() {
		if d := c.deadline(); !d.IsZero() && !now.Before(d) {
			m.convTimeout(now, c)
		}
	}
	for sid, o := range m.offers {
		if !now.Before(o.expires) {
			delete(m.offers, sid)
			m.screen.HideOffer(sid)
		}
	}
}

// quit ends the program: live sessions tell their peers at once, the
// listener stops, and tea.Quit is returned.
func (m *Model) quit(now time.Time) {
	if m.quitting {
		return
	}
	m.quitting = true
	for _, c := range m.convs {
		if c.sess != nil {
			c.sess.Close(now)
			m.writeSession(c)
		}
	}
	// The listener stops; store writes already issued (a message just
	// queued, a receipt) finish before the program ends.
	m.cancel()
	m.do(flushThenQuit(m.effects))
}

// showError puts plain words in the status bar and the headless stream.
func (m *Model) showError(words string) {
	if words == "" {
		return
	}
	m.screen.ShowError(words)
	m.emit(Event{Ev: "error", Words: words})
}

// refreshStatus pushes the status bar's content to the screen when it
// changed. finish calls it after every message: the path of the open chat
// changes with every step of connecting.
func (m *Model) refreshStatus() {
	st := StatusView{BackendHealthy: m.backendOK, Err: m.backendErr}
	if m.d.Signaller != nil {
		st.Backend = m.d.Signaller.Name()
	}
	st.NAT = m.natWords()
	open := m.screen.Focused()
	if open == "" {
		open = m.open
	}
	if c := m.convs[open]; c != nil {
		st.Path = c.pathWords()
	}
	if m.statusSet && st == m.status {
		return
	}
	m.status, m.statusSet = st, true
	m.screen.SetStatus(st)
}

// natWords describes what discovery found, for people.
func (m *Model) natWords() string {
	switch {
	case len(m.d.STUN) == 0:
		return "no STUN servers: only peers on this network can be reached"
	case !m.discDone:
		return "finding my public address…"
	case m.reflexive == nil:
		return "STUN servers did not answer: only peers on this network can be reached"
	}
	return m.nat.Phrase()
}

// checkReady emits the headless "ready" event once the listener runs and
// discovery has finished.
func (m *Model) checkReady() {
	if m.ready || !m.listening || !m.discDone {
		return
	}
	m.ready = true
	m.emit(Event{Ev: "ready", ID: m.me, Fingerprint: identity.KeyFingerprint(m.d.Identity.Public), NAT: m.natWords(), Backend: m.backendName()})
}

func (m *Model) backendName() string {
	if m.d.Signaller == nil {
		return ""
	}
	return m.d.Signaller.Name()
}
