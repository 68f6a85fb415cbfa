package ui

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/relay"
	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/session/transfer"
	"github.com/p2ptui/p2ptui/signal"
)

// Deps is everything the root model needs from outside. main.go opens the
// resources and closes them after the program ends; the model only uses them.
type Deps struct {
	Signaller signal.Signaller
	Store     *store.Store
	Identity  identity.Identity
	// Socket is the main UDP socket; Sockets, when set, the socket set it
	// belongs to (its first), which the TURN relay and the extra sockets
	// of birthday probing join. Without a set there is no relay and no
	// birthday probing.
	Socket  *punch.Socket
	Sockets *punch.SocketSet
	// TURN is the relay configuration (servers and credentials); the zero
	// value is none.
	TURN relay.Settings
	// STUN servers for discovering the public address and NAT behaviour;
	// none: only host candidates are offered. STUNNames are the servers as
	// configured, resolved or not, for the words and the details view.
	STUN      []netip.AddrPort
	STUNNames []STUNName
	// Name is my display name, sent (sealed) in offers and published with
	// presence.
	Name   string
	Logger *slog.Logger
	// Version identifies this build, for the headless ready event.
	Version string
	// Join tries a group's join code (sign in, claim my ID) and keeps it in
	// the profile for the next starts; it returns the group's project. It
	// blocks, so it runs in a Cmd. nil: joining is not offered.
	Join func(ctx context.Context, code string) (project string, err error)
	// Now and Rand are injected so tests run on a fake clock and seeded
	// randomness; nil means the real ones.
	Now  func() time.Time
	Rand io.Reader

	// Headless runs without a screen: commands are read from Commands, one
	// per line, and events are written to Events as JSON lines.
	Headless bool
	Commands io.Reader
	Events   io.Writer

	// Timers override the connection lifecycle's timers, Punch* and
	// SessionTimers the machines' (zero keeps every default; tests shorten
	// them).
	Timers                                         conn.Timers
	PunchKeepalive, PunchPathTimeout, PunchTimeout time.Duration
	SessionTimers                                  session.Timers

	// Downloads is where accepted files are saved unless the person picks
	// another folder; empty: DownloadsDir().
	Downloads string
	// TransferChunkSize is the chunk size of my file offers (zero: the
	// transfer layer's default; tests make it small).
	TransferChunkSize uint32
}

// STUNName is one configured STUN server: its name and what it resolved
// to (zero: it did not).
type STUNName struct {
	Name string
	Addr netip.AddrPort
}

// Model is the root Bubble Tea model: a thin adapter between the world and
// the connection engine (session/conn). Datagrams, signals, timer ticks,
// store results, keys and headless commands arrive in Update as messages
// and become engine inputs; the engine's effects become tea.Cmds (socket
// writes inline, everything that can block in a Cmd, store operations one
// at a time in order); its notifications go to one Observer — the screen,
// or the headless JSON writer.
type Model struct {
	d    Deps
	log  *slog.Logger
	now  func() time.Time
	rand io.Reader

	eng *conn.Engine
	// engErr: the engine could not be built (a broken source of
	// randomness): shown, and the program quits.
	engErr error

	// ctx bounds side effects and ends in Close; listenCtx stops the
	// inbox listener at quit, while the goodbye (offline presence,
	// withdrawn offers) still goes out.
	ctx          context.Context
	cancel       context.CancelFunc
	listenCtx    context.Context
	listenCancel context.CancelFunc
	watches      map[string]context.CancelFunc // presence watches, by peer

	screen *Screen
	obs    observer
	events *eventWriter  // headless only
	stdin  *bufio.Reader // headless only
	open   string        // the chat the user opened last

	timerGen    uint64
	timerAt     time.Time
	timerStop   chan struct{}
	quitting    bool // Stop came: only queued store writes matter now
	pendingCmds []tea.Cmd
	effects     *sideEffects
	presence    presenceWrites
	storeQ      []tea.Cmd
	storeBusy   bool

	// worker performs the file transfers' work off the event loop (nil
	// without a store); downloads is the default folder for accepted files.
	worker    *transfer.Worker
	downloads string

	// relays are my TURN allocations, by socket.
	relays map[punch.SocketID]*relay.Relay
}

// New builds the root model. Nothing runs until the program calls Init.
func New(d Deps) *Model {
	m := &Model{d: d, log: d.Logger, now: d.Now, rand: sansio.Rand(d.Rand), effects: newSideEffects(),
		relays: map[punch.SocketID]*relay.Relay{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.listenCtx, m.listenCancel = context.WithCancel(m.ctx)
	var host []punch.Candidate
	if d.Socket != nil {
		host = d.Socket.HostCandidates()
	}
	var turn []string
	if d.Sockets != nil {
		for _, s := range d.TURN.Servers {
			turn = append(turn, s.String())
		}
	}
	m.eng, m.engErr = conn.New(conn.Config{
		Identity: d.Identity, Name: d.Name, Rand: m.rand, Host: host, STUN: d.STUN, STUNConfigured: len(d.STUNNames), Logger: m.log,
		TURN:   turn,
		Timers: d.Timers, PunchKeepalive: d.PunchKeepalive, PunchPathTimeout: d.PunchPathTimeout, PunchTime: d.PunchTimeout,
		Session: d.SessionTimers, TransferChunkSize: d.TransferChunkSize,
	})
	if d.Store != nil {
		files, err := transfer.NewFiles(transfer.FilesConfig{Store: d.Store})
		if err != nil && m.engErr == nil {
			m.engErr = err
		}
		if err == nil {
			m.worker = transfer.NewWorker(files)
		}
	}
	m.downloads = d.Downloads
	if m.downloads == "" {
		m.downloads = DownloadsDir()
	}
	m.screen = NewScreen(Options{Now: m.now})
	m.screen.SetDownloads(m.downloads)
	m.screen.SetSelf(Self{ID: d.Identity.ID(), Name: d.Name, Fingerprint: identity.KeyFingerprint(d.Identity.Public)})
	backend := ""
	if d.Signaller != nil {
		backend = d.Signaller.Name()
	}
	if d.Headless {
		out := d.Events
		if out == nil {
			out = io.Discard
		}
		m.events = newEventWriter(out)
		m.obs = newJSONObserver(m.events, backend, d.Version)
		if d.Commands != nil {
			m.stdin = bufio.NewReaderSize(d.Commands, 64<<10)
		}
	} else {
		so := newScreenObserver(m.screen, backend, m.now)
		so.details = m.details
		m.obs = so
	}
	if m.eng != nil {
		m.obs.setNAT(m.eng.NATWords())
	}
	return m
}

// Close stops what the model started (the listener context, the headless
// event writer). Call it after the program has returned; the resources in
// Deps stay open for their owner to close.
func (m *Model) Close() {
	// The program may have ended without the flush (a signal, a kill):
	// store writes still queued run now, in order; their results have no
	// one to go to.
	q := m.storeQ
	m.storeQ = nil
	for _, c := range q {
		c()
	}
	m.effects.close(quitTimeout)
	if m.worker != nil {
		// The transfers' last checkpoints and records are written; their
		// results have no one to go to.
		if err := m.worker.Close(); err != nil {
			m.log.Warn("close transfer files", "err", err)
		}
	}
	m.cancel()
	if m.events != nil {
		m.events.Close()
	}
}

// Init starts the socket reader, the engine (discovery, presence, the
// contacts load that starts the listener) and the headless command reader.
func (m *Model) Init() tea.Cmd {
	now := m.now()
	if m.engErr != nil {
		m.showError("could not start: " + m.engErr.Error())
		return tea.Quit
	}
	switch {
	case m.d.Sockets != nil:
		m.do(waitDatagram(m.d.Sockets.Datagrams()))
	case m.d.Socket != nil:
		m.do(waitDatagram(m.d.Socket.Datagrams()))
	}
	if m.stdin != nil {
		m.do(readCommand(m.stdin))
	}
	if m.worker != nil {
		m.do(waitFileResult(m.ctx, m.worker.Results()))
	}
	m.eng.Start(now)
	return m.finish(now)
}

// View draws the screen; headless mode has none.
func (m *Model) View() string {
	if m.d.Headless || m.quitting {
		return ""
	}
	return m.screen.View()
}

// Update handles one message: see the type's comment.
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
	e := m.eng
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
		e.HandleDatagram(now, msg.dg)
		m.do(waitDatagram(msg.ch))
	case socketClosedMsg:
		m.log.Warn("UDP socket closed")

	case listeningMsg:
		// Ready waits for the listener's ListeningEvent.
		m.do(waitSignal(msg.ch))
	case listenFailedMsg:
		m.log.Error("listen for signals", "err", msg.err)
		e.HandleListenFailed(now, msg.err)
	case signalMsg:
		m.handleSignalEvent(now, msg.ev)
		m.do(waitSignal(msg.ch))
	case signalClosedMsg:

	case tickMsg:
		if msg.gen == m.timerGen {
			m.timerAt, m.timerStop = time.Time{}, nil
			e.HandleTimeout(now)
		}

	case signalSentMsg:
		e.HandleSignalSent(now, conn.SignalSent(msg))
	case presenceMsg:
		e.HandlePresence(now, msg.id, msg.p, msg.found, msg.err)
	case presenceWatchMsg:
		r := msg.presence
		e.HandlePresence(now, r.id, r.p, r.found, r.err)
		m.do(waitPresenceWatch(r.id, msg.ch))
	case contactsMsg:
		e.HandleContacts(now, conn.ContactsResult(msg))
	case queuedMsg:
		e.HandleQueued(now, msg.ef.Peer, msg.ef.ID, msg.ef.Body, msg.ef.At, msg.err)
	case receivedMsg:
		e.HandleReceived(now, msg.ef, msg.added, msg.err)
	case outboxMsg:
		e.HandleOutbox(now, msg.peer, msg.session, msg.recs, msg.err)
	case historyMsg:
		m.handleHistory(msg)
	case transfersMsg:
		e.HandleTransfers(now, msg.peer, msg.recs, msg.err)
	case fileResultMsg:
		e.HandleFileResult(now, msg.r)
		m.do(waitFileResult(m.ctx, msg.ch))
	case errMsg:
		m.log.Warn(msg.what, "err", msg.err)
		m.showError(msg.words)

	case OpenChatIntent:
		m.openChat(now, msg.ContactID)
	case SendIntent:
		if _, err := e.Send(now, msg.ContactID, msg.Text); err != nil {
			m.showError(err.Error())
		}
	case TypingIntent:
		e.SetTyping(now, msg.ContactID, msg.Active)
	case AcceptIntent:
		if err := e.Accept(now, msg.From, msg.SessionID, msg.AddAs); err != nil {
			m.showError(err.Error())
			break
		}
		m.openChat(now, msg.From)
	case DeclineIntent:
		if err := e.Decline(now, msg.From, msg.SessionID); err != nil {
			m.showError(err.Error())
		}
	case CancelIntent:
		e.Cancel(now, msg.ContactID)
	case AskEachTimeIntent:
		if err := e.SetAskEachTime(now, msg.ContactID, msg.Ask); err != nil {
			m.showError("could not change the contact: " + err.Error())
		}
	case AddContactIntent:
		if err := e.AddContact(now, msg.Name, msg.ID); err != nil {
			m.showError(err.Error())
		}
	case RenameContactIntent:
		if err := e.RenameContact(now, msg.ID, msg.Name); err != nil {
			m.showError("could not rename the contact: " + err.Error())
		}
	case RemoveContactIntent:
		e.RemoveContact(now, msg.ID)
		if m.open == msg.ID {
			m.open = ""
		}
	case BlockIntent:
		if err := e.Block(now, msg.ID, msg.Name); err != nil {
			m.showError("could not block: " + err.Error())
		}
	case UnblockIntent:
		e.Unblock(now, msg.ID)
	case JoinIntent:
		m.join(msg.Code)
	case joinedMsg:
		if msg.err != nil {
			m.showError("could not join the group: " + msg.err.Error() + " (nothing changed)")
			break
		}
		m.obs.note("Joined the group of project " + msg.project + ". Restart p2ptui to signal through it.")
	case SendFileIntent, AcceptFileIntent, DeclineFileIntent, CancelFileIntent:
		m.fileIntent(now, msg)
	case QuitIntent:
		m.quit(now)

	case commandMsg:
		m.handleCommand(now, msg)
		if m.stdin != nil && !m.eng.Quitting() {
			m.do(readCommand(m.stdin))
		}
	case commandErrMsg:
		m.obs.problem(msg.words)
		if m.stdin != nil {
			m.do(readCommand(m.stdin))
		}
	case stdinClosedMsg:
		m.quit(now)

	default:
		if m.handlePath(now, msg) {
			break
		}
		// Anything else (cursor blinks, the screen's own messages) belongs
		// to the screen.
		var c tea.Cmd
		m.screen, c = m.screen.Update(msg)
		m.do(c)
	}
}

// handleSignalEvent turns one listener event into engine input.
func (m *Model) handleSignalEvent(now time.Time, ev signal.Event) {
	switch ev := ev.(type) {
	case signal.ListeningEvent:
		m.eng.HandleListening(now)
	case signal.HealthEvent:
		// A listener that cannot start says so with its health; the
		// program is ready all the same, to show it (and my ID).
		m.eng.HandleListening(now)
		words := ev.Backend + " is reachable again"
		if ev.Err != nil {
			words = "signalling unavailable (" + ev.Backend + "): " + ev.Err.Error()
		}
		m.eng.HandleHealth(now, ev.Err == nil, words)
	case signal.RejectedEvent:
		m.log.Warn("signal rejected", "doc", ev.DocID, "reason", ev.Reason)
	case signal.SignalEvent:
		s := ev.Signal
		k, ok := signalKinds[s.Kind]
		if !ok {
			m.log.Warn("signal of unknown kind", "kind", s.Kind)
			m.do(ackSignal(m.ctx, m.d.Signaller, s.ID))
			return
		}
		m.eng.HandleSignal(now, conn.Signal{ID: s.ID, From: s.From, To: s.To, Kind: k, SessionID: s.SessionID, Payload: s.Payload})
	}
}

// signalKinds maps the backend's kinds to the engine's.
var signalKinds = map[signal.Kind]conn.SignalKind{
	signal.KindOffer: conn.KindOffer, signal.KindAnswer: conn.KindAnswer, signal.KindCancel: conn.KindCancel,
}

// openChat shows a chat (loading its history) and connects to its peer.
func (m *Model) openChat(now time.Time, peer string) {
	if err := m.eng.Connect(now, peer); err != nil {
		if !errors.Is(err, conn.ErrQuitting) {
			m.showError(err.Error())
		}
		return
	}
	m.open = peer
	m.obs.opened(peer)
	if m.d.Store != nil {
		m.storeOp(loadHistory(m.d.Store, peer))
	}
}

// handleHistory shows a chat's stored messages.
func (m *Model) handleHistory(msg historyMsg) {
	if msg.err != nil {
		m.showError("could not read the history: " + msg.err.Error())
		return
	}
	st := m.eng.Peer(msg.peer)
	views := make([]MessageView, 0, len(msg.recs))
	for _, r := range msg.recs {
		v := MessageView{Key: r.MsgID.String(), Mine: r.Mine, Body: r.Body, At: r.At, SentAt: r.SentAt}
		switch {
		case !r.Mine:
			v.Mark = MarkReceived
			v.Sender = peerName(st)
		case r.State == store.StateDelivered:
			v.Mark, v.Sender = MarkDelivered, m.d.Name
		case r.State == store.StateSent:
			v.Mark, v.Sender = MarkSent, m.d.Name
		default:
			v.Mark, v.Sender = MarkQueued, m.d.Name
		}
		views = append(views, v)
	}
	m.screen.SetMessages(msg.peer, views)
}

// finish performs the engine's effects, hands its notifications to the
// observer, schedules the next timer and returns the queued Cmds.
func (m *Model) finish(now time.Time) tea.Cmd {
	if m.eng != nil {
		conn.Deliver(m.obs, m.eng.Notifications())
		for _, ef := range m.eng.Effects() {
			m.perform(ef)
		}
		if !m.quitting {
			m.obs.focus(m.focused())
			m.scheduleTimer(now)
		}
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

// focused is the chat the status bar describes.
func (m *Model) focused() string {
	if f := m.screen.Focused(); f != "" {
		return f
	}
	return m.open
}

// perform turns one effect into I/O: a datagram is written at once (a UDP
// write does not block for long, and a failure concerns one packet the
// machines retransmit); everything else runs in a Cmd.
func (m *Model) perform(ef conn.Effect) {
	switch ef := ef.(type) {
	case conn.SendDatagram:
		m.sendDatagram(ef)
	case conn.SendSignal:
		m.effect(sendSignal(m.ctx, m.d.Signaller, ef.Signal))
	case conn.AckSignal:
		m.effect(ackSignal(m.ctx, m.d.Signaller, ef.ID))
	case conn.Listen:
		m.effect(listenSignals(m.listenCtx, m.d.Signaller))
	case conn.PublishPresence:
		m.effect(m.presence.publishPresence(m.ctx, m.d.Signaller, signal.Presence{ID: ef.ID, DisplayName: ef.Name,
			PublicKey: ef.PublicKey[:], Instance: ef.Instance, Offline: ef.Offline}))
	case conn.LookupPresence:
		m.effect(lookupPresence(m.ctx, m.d.Signaller, ef.ID))
	case conn.WatchPresence:
		m.watchPresence(ef.ID, ef.On)
	case conn.FileWork:
		if m.worker == nil {
			m.log.Error("file work without a store: dropped", "peer", ef.Peer)
			return
		}
		m.worker.Do(ef.Work...)
	case conn.Stop:
		// Goodbye is said: stop listening, then end once the store writes
		// and signals already issued are done.
		m.quitting = true
		if m.timerStop != nil {
			close(m.timerStop)
			m.timerStop = nil
		}
		m.listenCancel()
		m.do(flushThenQuit(m.effects))
	default:
		if conn.IsStore(ef) {
			m.storeOp(storeEffect(m.d.Store, ef))
			return
		}
		if m.performPath(ef) {
			return
		}
		m.log.Error("effect without a performer", "effect", ef)
	}
}

// watchPresence starts or ends a watch of id's presence. Watches live in
// listenCtx, so the goodbye's Stop ends any left.
func (m *Model) watchPresence(id string, on bool) {
	if cancel, ok := m.watches[id]; ok && !on {
		cancel()
		delete(m.watches, id)
	}
	if !on || m.watches[id] != nil || m.d.Signaller == nil || m.quitting {
		return
	}
	ctx, cancel := context.WithCancel(m.listenCtx)
	ch, err := m.d.Signaller.WatchPresence(ctx, id)
	if err != nil {
		cancel()
		// The engine's own poll still finds the peer, only later.
		m.log.Warn("cannot watch a peer's presence", "peer", id, "err", err)
		return
	}
	if m.watches == nil {
		m.watches = map[string]context.CancelFunc{}
	}
	m.watches[id] = cancel
	m.do(waitPresenceWatch(id, ch))
}

// joinedMsg reports a join attempt.
type joinedMsg struct {
	project string
	err     error
}

// join tries a join code in a Cmd.
func (m *Model) join(code string) {
	if m.d.Join == nil {
		m.showError("joining a group is not available here")
		return
	}
	join, ctx := m.d.Join, m.ctx
	m.effect(func() tea.Msg {
		project, err := join(ctx, code)
		return joinedMsg{project: project, err: err}
	})
}

// quit asks the engine to say goodbye; its Stop effect ends the program.
func (m *Model) quit(now time.Time) {
	if m.eng.Quitting() {
		return
	}
	m.eng.Quit(now)
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

// showError puts plain words in the status bar (or the headless stream).
func (m *Model) showError(words string) {
	if words != "" {
		m.obs.problem(words)
	}
}

// tickMsg is the one pending timer; gen tells a stale tick from the
// current one.
type tickMsg struct {
	gen uint64
	at  time.Time
}

// scheduleTimer arranges one tick for the engine's deadline. A pending tick
// for another instant is stopped (its goroutine ends at once) and, should
// it already have fired, recognised as stale by its generation.
func (m *Model) scheduleTimer(now time.Time) {
	d := m.eng.Deadline()
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

// details is everything the status line shortens, for the details view.
func (m *Model) details(focused string) DetailsView {
	ok, words := m.eng.Backend()
	d := DetailsView{BackendOK: ok, BackendHealth: "reachable", NAT: m.eng.NATWords()}
	if m.d.Signaller != nil {
		d.Backend = m.d.Signaller.Name()
	}
	if !ok {
		d.BackendHealth = words
	}
	answers := map[netip.AddrPort]punch.ServerAnswer{}
	for _, a := range m.eng.STUNAnswers() {
		answers[a.Server] = a
	}
	names := m.d.STUNNames
	if len(names) == 0 {
		for _, a := range m.d.STUN {
			names = append(names, STUNName{Name: a.String(), Addr: a})
		}
	}
	for _, n := range names {
		sd := STUNDetails{Server: n.Name}
		switch a, found := answers[n.Addr]; {
		case !n.Addr.IsValid():
			sd.Answer = "did not resolve"
		case !found:
			sd.Addr, sd.Answer = n.Addr.String(), "asking…"
		case a.Err != nil:
			sd.Addr, sd.Answer = n.Addr.String(), a.Err.Error()
		default:
			sd.Addr, sd.Answer = n.Addr.String(), fmt.Sprintf("mapped %v in %v", a.Mapped, a.RTT.Round(time.Millisecond))
		}
		d.STUN = append(d.STUN, sd)
	}
	if focused == "" {
		return d
	}
	st := m.eng.Peer(focused)
	if st.ID == "" {
		return d
	}
	c := &ChatDetails{Peer: peerName(st), State: st.Phase.String(), Since: st.Since}
	if st.Words != "" {
		c.State += ": " + st.Words
	}
	if st.Phase == conn.PhaseConnected {
		c.Path, c.Encrypted = st.Path.Words(), true
		c.Local, c.Remote = st.Path.Local.String(), st.Path.Remote.String()
		c.RTT = st.Stats.SRTT
		if c.RTT == 0 {
			c.RTT = st.Path.RTT
		}
		c.Sent, c.Received = st.Stats.BytesSent, st.Stats.BytesReceived
	}
	d.Chat = c
	return d
}
