package conn

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
)

// Config is what an Engine needs.
type Config struct {
	Identity identity.Identity
	// Name is my display name, sealed into offers and published with
	// presence.
	Name string
	// Instance names this run ([a-z0-9], at most identity.MaxInstanceBytes);
	// empty: made from Rand.
	Instance string
	// Rand supplies session IDs, punch secrets, nonces and keys; nil:
	// crypto/rand.
	Rand io.Reader
	// Host are the socket's host candidates; STUN the servers discovery
	// asks for the public address (none: host candidates only).
	Host []punch.Candidate
	STUN []netip.AddrPort
	// STUNConfigured is how many STUN servers the user configured,
	// resolved or not: when none resolved, the words say so.
	STUNConfigured int
	// TURN are the TURN servers to allocate a relay on, as URIs
	// ("turn:HOST:PORT"), in order of preference; none: no relay. The
	// owner holds the credentials and performs AllocateRelay.
	TURN []string
	// Logger receives what happened, for the log file; nil: nothing.
	Logger *slog.Logger
	// Timers override the lifecycle's timers; Punch and Session the
	// machines' (zero keeps every default).
	Timers                                      Timers
	PunchKeepalive, PunchPathTimeout, PunchTime time.Duration
	Session                                     session.Timers
	// Discovery tunes STUN (tests shorten it); Rand and Servers are set
	// by the engine.
	Discovery punch.DiscoveryConfig
	// TransferChunkSize is the chunk size of my file offers; zero:
	// transfer.DefaultChunkSize.
	TransferChunkSize uint32
}

// Engine is the connection lifecycle for one identity: a Link per peer, and
// everything they share. See the package comment for the contract.
type Engine struct {
	cfg      Config
	t        Timers
	rand     io.Reader
	log      *slog.Logger
	me       string
	fp       string
	instance string
	sealer   *identity.Sealer

	contacts    []Contact // in the store's order
	blocked     []Blocked // most recently blocked first
	loaded      bool
	contactsGen int // of the latest contact change sent to the store

	links   map[string]*link
	byTag   map[punch.Tag]*link
	byRoute map[route]*link
	relay   relaySlot

	offers    []*pendingOffer // shown to the user, oldest first
	verifying []*pendingOffer // waiting for the sender's presence
	seen      map[offerKey]time.Time
	seenOrder []offerKey

	disc       *punch.Discovery
	discDone   bool // Result is final
	discMapped bool // the mapping part is known (Mapped)
	discAt     time.Time
	reflexive  *punch.Candidate
	reflexive6 *punch.Candidate // a global IPv6 address a NAT66 maps to
	mapped6    netip.AddrPort   // my IPv6 address as STUN saw it (no NAT66: a host address)
	natTold    NATChanged       // the latest NATChanged, so each change is told once
	nat        punch.NATBehavior
	natWords   string
	answers    []punch.ServerAnswer // the latest discovery's, in server order

	listening    bool
	ready        bool
	quitting     bool
	backendOK    bool
	backendWords string
	presenceAt   time.Time
	watching     map[string]bool // peers whose presence the owner watches

	effects []Effect
	notes   []Notification
	lastNow time.Time // the latest instant an input carried
	// received collects each peer's Received events of one input, so a
	// burst costs one store transaction.
	received map[string]*StoreReceived
}

// ErrQuitting is returned by intents after Quit.
var ErrQuitting = errors.New("quitting")

// New makes an engine; nothing happens until Start.
func New(cfg Config) (*Engine, error) {
	t, err := cfg.Timers.withDefaults()
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:       cfg,
		t:         t,
		rand:      sansio.Rand(cfg.Rand),
		log:       cfg.Logger,
		me:        cfg.Identity.ID(),
		fp:        identity.KeyFingerprint(cfg.Identity.Public),
		sealer:    identity.NewSealer(cfg.Identity),
		instance:  cfg.Instance,
		links:     map[string]*link{},
		byTag:     map[punch.Tag]*link{},
		byRoute:   map[route]*link{},
		seen:      map[offerKey]time.Time{},
		received:  map[string]*StoreReceived{},
		backendOK: true,
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.instance == "" {
		var b [8]byte
		if _, err := io.ReadFull(e.rand, b[:]); err != nil {
			return nil, fmt.Errorf("conn: instance: %w", err)
		}
		e.instance = hex.EncodeToString(b[:])
	}
	if len(e.instance) > identity.MaxInstanceBytes {
		return nil, errors.New("conn: instance too long")
	}
	e.natWords = e.describeNAT()
	e.natTold = NATChanged{Words: e.natWords}
	return e, nil
}

// ID is my ID; Instance this run's instance.
func (e *Engine) ID() string       { return e.me }
func (e *Engine) Instance() string { return e.instance }

// Effects returns, and forgets, what the owner must do.
func (e *Engine) Effects() []Effect {
	e.flushReceived()
	e.syncWatches()
	out := e.effects
	e.effects = nil
	return out
}

// Notifications returns, and forgets, what changed.
func (e *Engine) Notifications() []Notification {
	e.flushReceived()
	e.refreshPeers()
	out := e.notes
	e.notes = nil
	return out
}

func (e *Engine) do(ef Effect) { e.effects = append(e.effects, ef) }

// syncWatches asks the owner to watch the presence of exactly the peers I
// am waiting for. It runs once per batch of effects, so a link that passes
// through waiting within one input costs no watch.
func (e *Engine) syncWatches() {
	if e.quitting {
		clear(e.watching) // Stop ends them
		return
	}
	for _, id := range slices.Sorted(maps.Keys(e.watching)) {
		if l := e.links[id]; l == nil || l.st != stWaiting {
			delete(e.watching, id)
			e.do(WatchPresence{ID: id})
		}
	}
	for _, l := range e.sortedLinks() {
		if l.st == stWaiting && !e.watching[l.peer] {
			if e.watching == nil {
				e.watching = map[string]bool{}
			}
			e.watching[l.peer] = true
			e.do(WatchPresence{ID: l.peer, On: true})
		}
	}
}

// at records the instant of an input (time never goes back for the
// status queries, even if a caller's clock does).
func (e *Engine) at(now time.Time) {
	if now.After(e.lastNow) {
		e.lastNow = now
	}
}
func (e *Engine) tell(n Notification) { e.notes = append(e.notes, n) }

// Start begins: contacts are loaded (the listener starts once they are
// here, since signals are judged against them), STUN discovery runs, my
// presence is published.
func (e *Engine) Start(now time.Time) {
	e.at(now)
	e.do(LoadContacts{Gen: e.contactsGen})
	e.startDiscovery(now)
	e.presenceRound(now)
	// Contacts online now are reconnected within moments: the relay's
	// two round trips go in parallel with discovery.
	e.wantRelay(now)
}

// ---- contacts ----

// HandleContacts takes the store's contact list (after a load or a change)
// and how many messages wait for each contact. A list read before a later
// change of mine was written is stale and not taken: the later result
// will bring the list.
func (e *Engine) HandleContacts(now time.Time, r ContactsResult) {
	e.at(now)
	first := !e.loaded
	e.loaded = true
	if first {
		e.do(Listen{})
	}
	if r.Err != nil {
		e.tell(Problem{Words: r.Err.Error()})
		if r.Gen == e.contactsGen && !first {
			e.do(LoadContacts{Gen: e.contactsGen}) // what is stored, then
		}
		return
	}
	if r.Gen < e.contactsGen {
		if r.Added != "" {
			e.tell(ContactsChanged{Contacts: slices.Clone(e.contacts), Added: r.Added})
		}
		return
	}
	contacts, outbox, added := r.Contacts, r.Outbox, r.Added
	if !slices.Equal(r.Blocked, e.blocked) {
		e.blocked = slices.Clone(r.Blocked)
		e.tell(BlockedChanged{Blocked: slices.Clone(e.blocked)})
	}
	old := map[string]bool{}
	for _, c := range e.contacts {
		old[c.ID] = true
	}
	e.contacts = slices.Clone(contacts)
	for _, c := range e.contacts {
		l := e.link(c.ID, c.Public)
		l.contact, l.name, l.ask = true, c.Name, c.AskEachTime
		if n, ok := outbox[c.ID]; ok {
			l.queued = n
		}
		delete(old, c.ID)
	}
	for id := range old {
		if l := e.links[id]; l != nil {
			l.contact = false
		}
	}
	e.tell(ContactsChanged{Contacts: slices.Clone(e.contacts), Added: added})
	if first {
		// Peers I have unfinished file transfers with get a link (and so
		// their transfers) even when they are not contacts.
		for _, pub := range r.TransferPeers {
			if id := identity.IDFromPublic(pub); id != e.me && !e.IsBlocked(id) {
				e.link(id, pub)
			}
		}
		// The first round of lookups decides who to reconnect: a contact
		// that is online when I start is connected to by me.
		for _, c := range e.contacts {
			e.links[c.ID].startup = true
		}
		e.lookupAll()
	}
	for _, l := range e.sortedLinks() {
		e.maybeConnect(now, l, triggerChange)
	}
}

// Contacts returns the contacts as the engine knows them.
func (e *Engine) Contacts() []Contact { return slices.Clone(e.contacts) }

func (e *Engine) contact(id string) (Contact, bool) {
	for _, c := range e.contacts {
		if c.ID == id {
			return c, true
		}
	}
	return Contact{}, false
}

// AddContact validates and adds a contact; the error says in words what
// is wrong with the name or the ID.
func (e *Engine) AddContact(now time.Time, name, id string) error {
	e.at(now)
	name, err := store.CleanContactName(name)
	if err != nil {
		return fmt.Errorf("name: %w", err)
	}
	pub, err := identity.ParseID(strings.TrimSpace(id))
	if err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	id = identity.IDFromPublic(pub)
	switch {
	case id == e.me:
		return errors.New("ID: that is my own ID")
	case e.isContact(id):
		return errors.New("ID: that ID is already a contact")
	}
	// Known at once, so a command right after (or the offer just
	// accepted) finds it; the store's list replaces this once written.
	e.contacts = append(e.contacts, Contact{ID: id, Name: name, Public: pub})
	l := e.link(id, pub)
	l.contact, l.name = true, name
	e.contactsGen++
	e.do(StoreAddContact{Gen: e.contactsGen, Name: name, ID: id, At: now})
	e.do(LookupPresence{ID: id})
	l.lookupPending = true
	return nil
}

func (e *Engine) isContact(id string) bool {
	_, ok := e.contact(id)
	return ok
}

// RenameContact gives a contact a new name.
func (e *Engine) RenameContact(now time.Time, id, name string) error {
	e.at(now)
	name, err := store.CleanContactName(name)
	if err != nil {
		return fmt.Errorf("name: %w", err)
	}
	if !e.isContact(id) {
		return errors.New("no such contact")
	}
	for i := range e.contacts {
		if e.contacts[i].ID == id {
			e.contacts[i].Name = name
		}
	}
	if l := e.links[id]; l != nil {
		l.name = name
	}
	e.contactsGen++
	e.do(StoreRenameContact{Gen: e.contactsGen, ID: id, Name: name})
	return nil
}

// RemoveContact forgets a contact (and any stranger's link): the session,
// if any, is closed, and nothing more is attempted.
func (e *Engine) RemoveContact(now time.Time, id string) {
	e.at(now)
	wasContact := e.isContact(id)
	if l := e.links[id]; l != nil {
		// Said on the session while it is up; told in a later one if not.
		l.cancelTransfers(now)
		l.teardown(now)
		l.closeTransfers(now)
		delete(e.links, id)
		e.tell(PeerRemoved{ID: id})
	}
	e.contacts = slices.DeleteFunc(e.contacts, func(c Contact) bool { return c.ID == id })
	if wasContact {
		e.contactsGen++
		e.do(StoreRemoveContact{Gen: e.contactsGen, ID: id})
	}
}

// SetAskEachTime changes a contact's "ask me each time" setting.
func (e *Engine) SetAskEachTime(now time.Time, id string, ask bool) error {
	e.at(now)
	if !e.isContact(id) {
		return errors.New("no such contact")
	}
	for i := range e.contacts {
		if e.contacts[i].ID == id {
			e.contacts[i].AskEachTime = ask
		}
	}
	e.links[id].ask = ask
	e.contactsGen++
	e.do(StoreSetAskEachTime{Gen: e.contactsGen, ID: id, Ask: ask})
	return nil
}

// IsBlocked reports whether id's signals are dropped unseen.
func (e *Engine) IsBlocked(id string) bool {
	return slices.ContainsFunc(e.blocked, func(b Blocked) bool { return b.ID == id })
}

// Block drops id's signals unseen from now on: its waiting requests go, a
// session or attempt with it ends, nothing is attempted with it. A contact
// stays a contact (blocked).
func (e *Engine) Block(now time.Time, id, name string) error {
	e.at(now)
	pub, err := identity.ParseID(id)
	if err != nil {
		return fmt.Errorf("ID: %w", err)
	}
	id = identity.IDFromPublic(pub)
	if id == e.me {
		return errors.New("that is my own ID")
	}
	if e.IsBlocked(id) {
		return nil
	}
	e.blocked = slices.Insert(e.blocked, 0, Blocked{ID: id, Name: name, Since: now})
	for i := 0; i < len(e.offers); {
		if e.offers[i].key.from == id {
			e.hide(i, "blocked")
			continue
		}
		i++
	}
	e.verifying = slices.DeleteFunc(e.verifying, func(o *pendingOffer) bool { return o.key.from == id })
	if l := e.links[id]; l != nil {
		if l.st == stOffering {
			l.sendCancel(now, l.sid)
		}
		l.cancelTransfers(now)
		l.teardown(now)
		l.xmWant = false
		l.userWant = false
		l.words = "blocked"
	}
	e.contactsGen++
	e.do(StoreBlock{Gen: e.contactsGen, ID: id, Name: name, At: now})
	e.tell(BlockedChanged{Blocked: slices.Clone(e.blocked)})
	return nil
}

// Unblock lets id's signals through again.
func (e *Engine) Unblock(now time.Time, id string) {
	e.at(now)
	if !e.IsBlocked(id) {
		return
	}
	e.blocked = slices.DeleteFunc(e.blocked, func(b Blocked) bool { return b.ID == id })
	if l := e.links[id]; l != nil {
		l.words = ""
		l.hold = false
	}
	e.contactsGen++
	e.do(StoreUnblock{Gen: e.contactsGen, ID: id})
	e.tell(BlockedChanged{Blocked: slices.Clone(e.blocked)})
}

// link returns the link with peer, creating it.
func (e *Engine) link(peer string, pub [32]byte) *link {
	l := e.links[peer]
	if l == nil {
		l = newLink(e, peer, pub)
		e.links[peer] = l
		l.loadTransfers()
	}
	return l
}

func (e *Engine) sortedLinks() []*link {
	out := make([]*link, 0, len(e.links))
	for _, l := range e.links {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].peer < out[j].peer })
	return out
}

// ---- intents ----

// Connect: the user wants to talk to peer (opened the chat). Offline peers
// are waited for; failed attempts are retried.
func (e *Engine) Connect(now time.Time, peer string) error {
	e.at(now)
	if e.quitting {
		return ErrQuitting
	}
	pub, err := identity.ParseID(peer)
	if err != nil {
		return fmt.Errorf("not a contact: %w", err)
	}
	peer = identity.IDFromPublic(pub)
	if peer == e.me {
		return errors.New("that is my own ID")
	}
	if e.IsBlocked(peer) {
		return errors.New("that ID is blocked: unblock it first")
	}
	l := e.link(peer, pub)
	l.userWant = true
	l.hold = false
	l.blind = 0
	if l.st == stOffering && l.auto {
		// An offer my program made by itself may be declined unseen by a
		// peer who does not reconnect with me; the user's own offer asks.
		l.sendCancel(now, l.sid)
		l.teardown(now)
	}
	if l.st == stBackoff {
		l.retryAt = time.Time{}
		l.st = stIdle
	}
	e.maybeConnect(now, l, triggerUser)
	return nil
}

// Cancel: the user no longer wants to connect to peer (a running attempt
// is withdrawn; a live session stays).
func (e *Engine) Cancel(now time.Time, peer string) {
	e.at(now)
	l := e.links[peer]
	if l == nil {
		return
	}
	l.userWant = false
	switch l.st {
	case stEstablished:
		return
	case stOffering:
		l.sendCancel(now, l.sid)
	}
	if l.busy() || l.st == stWaiting || l.st == stBackoff {
		l.teardown(now)
		l.st = stIdle
		l.words = "connecting cancelled"
		l.hold = true
	}
}

// Send stores text for peer (then sends it on a live session, or connects).
func (e *Engine) Send(now time.Time, peer, text string) (session.MessageID, error) {
	e.at(now)
	if e.quitting {
		return session.MessageID{}, ErrQuitting
	}
	if strings.TrimSpace(text) == "" {
		return session.MessageID{}, errors.New("the message is empty")
	}
	if len(text) > session.MaxMessageSize {
		return session.MessageID{}, fmt.Errorf("the message is too long: %d bytes, at most %d", len(text), session.MaxMessageSize)
	}
	l := e.links[peer]
	if l == nil {
		return session.MessageID{}, errors.New("not a contact: add the ID first")
	}
	id, err := session.NewMessageID(e.rand)
	if err != nil {
		return session.MessageID{}, fmt.Errorf("could not number the message: %w", err)
	}
	l.lastActive = now
	e.tell(MessageOut{Peer: peer, ID: id, Body: text, At: now})
	e.do(StoreQueue{Peer: peer, ID: id, Body: text, At: now})
	return id, nil
}

// SetTyping passes my typing state to a live session with peer.
func (e *Engine) SetTyping(now time.Time, peer string, active bool) {
	e.at(now)
	if l := e.links[peer]; l != nil && l.sess != nil && l.st == stEstablished {
		l.sess.SetTyping(now, active)
		l.pump(now)
	}
}

// Quit says goodbye: live sessions are closed (the peers learn it at
// once), my outstanding offers are withdrawn, offline presence is
// written, then Stop.
func (e *Engine) Quit(now time.Time) {
	e.at(now)
	if e.quitting {
		return
	}
	for _, l := range e.sortedLinks() {
		if l.st == stOffering || l.st == stGathering {
			l.sendCancel(now, l.sid)
		}
		if l.sess != nil {
			l.sess.Close(now)
			l.writeSession()
		}
		l.closeTransfers(now)
	}
	e.releaseRelay("quitting")
	e.quitting = true
	e.do(PublishPresence{ID: e.me, Name: e.cfg.Name, PublicKey: e.cfg.Identity.Public, Instance: e.instance, Offline: true})
	e.do(Stop{})
}

// Quitting reports whether Quit was called.
func (e *Engine) Quitting() bool { return e.quitting }

// ---- signalling ----

// HandleListening: the inbox listener runs.
func (e *Engine) HandleListening(now time.Time) {
	e.at(now)
	e.listening = true
	e.checkReady()
}

// HandleListenFailed: the listener could not start.
func (e *Engine) HandleListenFailed(now time.Time, err error) {
	e.at(now)
	e.backendOK, e.backendWords = false, "signalling unavailable: "+err.Error()
	e.tell(Health{OK: false, Words: e.backendWords})
}

// HandleHealth: the backend became unreachable (ok false, words say why)
// or reachable again; planned retries then go at once.
func (e *Engine) HandleHealth(now time.Time, ok bool, words string) {
	e.at(now)
	e.backendOK, e.backendWords = ok, words
	e.tell(Health{OK: ok, Words: words})
	if !ok {
		return
	}
	for _, l := range e.sortedLinks() {
		if l.st == stBackoff && !l.retryAt.IsZero() && l.wanted() {
			l.retryAt = now
		}
	}
}

// SignalSent is the outcome of a SendSignal effect.
type SignalSent struct {
	Peer, SessionID string
	Kind            SignalKind
	Err             error
}

// HandleSignalSent: a failed offer or answer fails its attempt.
func (e *Engine) HandleSignalSent(now time.Time, r SignalSent) {
	e.at(now)
	if r.Err == nil || r.Kind == KindCancel {
		if r.Err != nil {
			e.log.Warn("send cancel", "peer", r.Peer, "err", r.Err)
		}
		return
	}
	e.log.Warn("send signal", "kind", r.Kind, "peer", r.Peer, "err", r.Err)
	l := e.links[r.Peer]
	if l == nil || l.sid != r.SessionID {
		return
	}
	if l.st == stOffering || l.st == stPunching || l.st == stHandshaking {
		l.fail(now, ReasonSignalling, "could not reach the signalling service: "+r.Err.Error(), "", true)
	}
}

// HandleSignal takes one signal from the inbox listener. It is always
// acknowledged (deleted), whatever becomes of it.
func (e *Engine) HandleSignal(now time.Time, s Signal) {
	e.at(now)
	if s.ID != "" {
		e.do(AckSignal{ID: s.ID})
	}
	if e.quitting {
		return
	}
	if e.IsBlocked(s.From) {
		e.log.Info("signal from a blocked ID dropped", "from", s.From, "kind", s.Kind)
		return
	}
	var pub [32]byte
	if l := e.links[s.From]; l != nil {
		pub = l.pub // checked when the link was made
	} else {
		p, err := identity.ParseID(s.From)
		if err != nil || s.From == e.me {
			e.log.Warn("signal from a malformed ID", "from", s.From, "err", err)
			return
		}
		pub = p
	}
	switch s.Kind {
	case KindOffer:
		e.handleOffer(now, s, pub)
	case KindAnswer:
		e.handleAnswer(now, s, pub)
	case KindCancel:
		e.handleCancel(now, s, pub)
	default:
		e.log.Warn("signal of unknown kind", "from", s.From, "kind", s.Kind)
	}
}

// ---- presence ----

// presenceRound publishes my presence and looks up every contact's.
func (e *Engine) presenceRound(now time.Time) {
	e.presenceAt = now.Add(e.t.PresenceEvery)
	if e.quitting {
		return
	}
	if e.reflexive == nil && e.discoveryStale(now) {
		e.startDiscovery(now)
	}
	e.do(PublishPresence{ID: e.me, Name: e.cfg.Name, PublicKey: e.cfg.Identity.Public, Instance: e.instance})
	if e.loaded {
		e.lookupAll()
	}
}

func (e *Engine) lookupAll() {
	for _, l := range e.sortedLinks() {
		if l.contact || l.wanted() {
			l.lookup()
		}
	}
}

// HandlePresence takes a presence read: found false means the peer never
// published one; err a read that failed.
func (e *Engine) HandlePresence(now time.Time, id string, p Presence, found bool, err error) {
	e.at(now)
	l := e.links[id]
	if l != nil {
		l.lookupPending = false
	}
	if err != nil {
		e.log.Debug("presence lookup", "peer", id, "err", err)
		e.resolveVerifying(now, id, p, found, err)
		return
	}
	if l != nil {
		l.notePresence(now, p, found)
	}
	e.resolveVerifying(now, id, p, found, nil)
	e.checkOffersStillLive(now, id, p, found)
}

// ---- datagrams ----

// HandleDatagram demultiplexes one datagram: STUN to discovery, punch
// packets to the link their tag names, session packets to the link whose
// path they came from.
func (e *Engine) HandleDatagram(now time.Time, dg punch.Datagram) {
	e.at(now)
	switch punch.Classify(dg.Data) {
	case punch.ClassSTUN:
		if e.disc != nil && !e.discDone && dg.Socket == punch.MainSocket {
			e.disc.HandleDatagram(dg.At, dg.From, dg.Data)
			e.pumpDiscovery(now)
		}
	case punch.ClassPunch:
		tag, ok := punch.PacketTag(dg.Data)
		if !ok {
			return
		}
		if l := e.byTag[tag]; l != nil {
			l.handlePunch(now, tag, dg)
		}
	case punch.ClassSession:
		if l := e.byRoute[route{socket: dg.Socket, addr: dg.From}]; l != nil && l.sess != nil {
			l.handleSession(now, dg)
			return
		}
		// The peer may have selected a path (and sent its handshake or
		// moved its session there) a moment before my machine did: a
		// link whose machines had authenticated probes from there takes
		// it (its session authenticates it), or holds a few until its
		// session starts.
		for _, l := range e.sortedLinks() {
			if !l.heard(dg.Socket, dg.From) {
				continue
			}
			if l.sess != nil {
				l.handleSession(now, dg)
			} else if l.st == stPunching {
				l.holdEarly(dg)
			}
			return
		}
	}
}

// ---- store results ----

// HandleQueued: a message is in the outbox (or could not be stored).
func (e *Engine) HandleQueued(now time.Time, peer string, id session.MessageID, body string, at time.Time, err error) {
	e.at(now)
	if err != nil {
		e.log.Error("queue message", "peer", peer, "err", err)
		e.tell(Problem{Words: "could not store the message, so it was not sent: " + err.Error()})
		return
	}
	l := e.links[peer]
	if l == nil {
		return
	}
	l.queued++
	if l.st == stEstablished && l.sess != nil && l.outboxLoaded {
		l.sendStored(now, []store.Record{{MsgID: id, Body: body, At: at}})
		l.pump(now)
		return
	}
	if l.st == stEstablished {
		return // the session's outbox read, still to come, has it
	}
	e.tell(MessageQueued{Peer: peer, ID: id, Body: body})
	if l.st == stBackoff && !l.retryAt.IsZero() {
		return // a retry is planned already
	}
	l.blind = 0
	e.maybeConnect(now, l, triggerMail)
}

// HandleReceived: the messages of a StoreReceived are stored; added are
// the ones that were new (resends from an earlier session are not).
func (e *Engine) HandleReceived(now time.Time, r StoreReceived, added []store.Record, err error) {
	e.at(now)
	l := e.links[r.Peer]
	if err != nil {
		// Not committed: the peer resends them in a later session.
		e.log.Error("store received messages", "peer", r.Peer, "err", err)
		e.tell(Problem{Words: "could not store a received message: " + err.Error()})
		return
	}
	isNew := map[session.MessageID]bool{}
	for _, rec := range added {
		isNew[rec.MsgID] = true
	}
	for _, m := range r.Msgs {
		if isNew[m.ID] {
			if l != nil {
				l.lastActive = now
			}
			e.tell(MessageIn{Peer: r.Peer, ID: m.ID, Body: string(m.Body), SentAt: m.SentAt, At: r.At})
		}
	}
	if l == nil || l.sess == nil || l.sid != r.SessionID {
		return
	}
	for _, m := range r.Msgs {
		if err := l.sess.Commit(now, m.ID); err != nil && !errors.Is(err, session.ErrClosed) {
			e.log.Warn("commit", "peer", r.Peer, "err", err)
		}
	}
	l.pump(now)
}

// HandleOutbox: what waited for a fresh session, in order.
func (e *Engine) HandleOutbox(now time.Time, peer, sessionID string, recs []store.Record, err error) {
	e.at(now)
	if err != nil {
		e.tell(Problem{Words: "could not read the outbox: " + err.Error()})
		return
	}
	l := e.links[peer]
	if l == nil || l.sess == nil || l.st != stEstablished || l.sid != sessionID {
		return
	}
	l.queued = len(recs)
	l.outboxLoaded = true
	l.sendStored(now, recs)
	l.pump(now)
}

// ---- discovery ----

func (e *Engine) startDiscovery(now time.Time) {
	if len(e.cfg.STUN) == 0 {
		e.discDone, e.discMapped, e.discAt = true, true, now
		e.setNATWords()
		e.checkReady()
		return
	}
	local := make([]netip.AddrPort, 0, len(e.cfg.Host))
	for _, c := range e.cfg.Host {
		local = append(local, c.Addr)
	}
	dc := e.cfg.Discovery
	dc.Servers, dc.Local, dc.Rand = e.cfg.STUN, local, e.rand
	e.disc = punch.NewDiscovery(dc)
	e.discDone = false
	e.disc.Start(now)
	e.pumpDiscovery(now)
}

// discoveryStale reports whether STUN discovery should run again: its
// result is old (NAT mappings change), or it found no public address and a
// while has passed (the network may be back: without the address, peers
// behind other NATs cannot be reached).
func (e *Engine) discoveryStale(now time.Time) bool {
	if len(e.cfg.STUN) == 0 || !e.discDone {
		return false
	}
	age := now.Sub(e.discAt)
	return age > e.t.Rediscover || (e.reflexive == nil && age >= rediscoverFailed)
}

// pumpDiscovery sends STUN requests; the reflexive address is taken as
// soon as the mapping is known (an offer waits for nothing else), the NAT's
// filtering when the whole result is in.
func (e *Engine) pumpDiscovery(now time.Time) {
	for _, t := range e.disc.Transmits() {
		e.do(SendDatagram{To: t.To, Data: t.Data})
	}
	if !e.discMapped {
		if res, ok := e.disc.Mapped(); ok {
			e.discMapped = true
			e.takeDiscovery(now, res)
			for _, l := range e.sortedLinks() {
				l.maybeOffer(now)
			}
			e.checkReady()
		}
	}
	if res, ok := e.disc.Result(); ok && !e.discDone {
		e.discDone = true
		e.discAt = now
		e.takeDiscovery(now, res)
	}
}

func (e *Engine) takeDiscovery(now time.Time, res punch.DiscoveryResult) {
	e.answers = slices.Clone(res.Servers)
	before := e.reflexive
	if res.Err != nil || !res.Reflexive.Addr.IsValid() {
		e.log.Warn("STUN discovery", "err", res.Err)
		e.reflexive = nil
	} else {
		r := res.Reflexive
		e.reflexive = &r
		e.nat = res.NAT
		e.log.Info("STUN discovery", "reflexive", r.Addr, "mapping", res.NAT.Mapping, "filtering", res.NAT.Filtering)
	}
	e.reflexive6, e.mapped6 = nil, res.Reflexive6.Addr
	if r6 := res.Reflexive6; r6.Addr.IsValid() && res.NAT6.Mapping != punch.MappingNone {
		e.reflexive6 = &r6
		e.log.Info("STUN discovery over IPv6", "reflexive", r6.Addr, "mapping", res.NAT6.Mapping)
	}
	e.setNATWords()
	if e.reflexive != nil && (before == nil || before.Addr != e.reflexive.Addr) {
		// A new public address (found at last, or the NAT changed it):
		// attempts that failed without it get a new chance.
		for _, l := range e.sortedLinks() {
			if l.st == stFailed || l.st == stBackoff {
				l.hold, l.blind = false, 0
				l.retryAt = time.Time{}
				l.st = stIdle
				e.maybeConnect(now, l, triggerRetry)
			}
		}
	}
}

func (e *Engine) setNATWords() {
	e.natWords = e.describeNAT()
	n := NATChanged{Words: e.natWords, Mapped6: e.mapped6}
	if e.reflexive != nil {
		n.Mapping, n.Filtering, n.Mapped = e.nat.Mapping.String(), e.nat.Filtering.String(), e.reflexive.Addr
	}
	if n != e.natTold {
		e.natTold = n
		e.tell(n)
	}
}

func (e *Engine) describeNAT() string {
	switch {
	case len(e.cfg.STUN) == 0 && e.cfg.STUNConfigured > 0:
		return "STUN servers did not resolve (no DNS?): only peers on this network can be reached"
	case len(e.cfg.STUN) == 0:
		return "no STUN servers: only peers on this network can be reached"
	case !e.discMapped:
		return "finding my public address…"
	case e.reflexive == nil:
		return "STUN servers did not answer: only peers on this network can be reached"
	}
	return e.nat.Phrase()
}

// NATWords describes what discovery found, for people.
func (e *Engine) NATWords() string { return e.natWords }

// STUNAnswers is what each STUN server answered in the latest discovery,
// in configuration order (nil before any answer).
func (e *Engine) STUNAnswers() []punch.ServerAnswer { return slices.Clone(e.answers) }

// Backend is the signalling backend's health as last reported.
func (e *Engine) Backend() (ok bool, words string) { return e.backendOK, e.backendWords }

// BlockedIDs lists the blocked IDs, most recently blocked first.
func (e *Engine) BlockedIDs() []Blocked { return slices.Clone(e.blocked) }

// localCandidates are the host addresses plus what STUN found and my
// relayed address.
func (e *Engine) localCandidates() []punch.Candidate {
	var extra []punch.Candidate
	for _, c := range []*punch.Candidate{e.reflexive, e.reflexive6} {
		if c != nil && !slices.ContainsFunc(e.cfg.Host, func(h punch.Candidate) bool { return h.Addr == c.Addr }) {
			extra = append(extra, *c)
		}
	}
	if c, ok := e.relayCandidate(); ok {
		extra = append(extra, c)
	}
	// A host with many interfaces must not push the public and relayed
	// addresses out of the list's bound: its last host addresses give way.
	hosts := e.cfg.Host[:min(len(e.cfg.Host), punch.MaxCandidates-len(extra))]
	return append(slices.Clone(hosts), extra...)
}

// checkReady reports Ready once the listener runs and the public address
// is known, then the presence learned so far.
func (e *Engine) checkReady() {
	if e.ready || !e.listening || !e.discMapped {
		return
	}
	e.ready = true
	e.tell(Ready{ID: e.me, Fingerprint: e.fp, NAT: e.natWords})
	for _, l := range e.sortedLinks() {
		if l.havePresence {
			l.presenceTold = false
			l.tellPresence(time.Time{})
		}
	}
}

// ---- timers ----

// Deadline is when HandleTimeout must next be called.
func (e *Engine) Deadline() time.Time {
	var d time.Time
	if e.disc != nil && !e.discDone {
		d = sansio.Earliest(d, e.disc.Deadline())
	}
	if !e.quitting {
		d = sansio.Earliest(d, e.presenceAt, e.relayDeadline())
	}
	for _, l := range e.links {
		d = sansio.Earliest(d, l.deadline())
	}
	for _, o := range e.offers {
		d = sansio.Earliest(d, o.expires)
	}
	for _, o := range e.verifying {
		d = sansio.Earliest(d, o.verifyBy)
	}
	return d
}

// HandleTimeout runs every timer that is due.
func (e *Engine) HandleTimeout(now time.Time) {
	e.at(now)
	if e.disc != nil && !e.discDone && sansio.Due(e.disc.Deadline(), now) {
		e.disc.HandleTimeout(now)
		e.pumpDiscovery(now)
	}
	if !e.quitting && sansio.Due(e.presenceAt, now) {
		e.presenceRound(now)
	}
	for _, l := range e.sortedLinks() {
		if sansio.Due(l.deadline(), now) {
			l.handleTimeout(now)
		}
	}
	e.relayTimeout(now)
	e.expireOffers(now)
	for _, o := range slices.Clone(e.verifying) {
		if sansio.Due(o.verifyBy, now) {
			e.finishVerifying(now, o)
		}
	}
}

// ---- what the screen shows ----

// Peer returns one peer's status (zero if unknown).
func (e *Engine) Peer(id string) PeerStatus {
	if l := e.links[id]; l != nil {
		return l.status(e.nowHint())
	}
	return PeerStatus{}
}

// Peers returns every peer's status, contacts first in the store's order.
func (e *Engine) Peers() []PeerStatus {
	now := e.nowHint()
	var out []PeerStatus
	seen := map[string]bool{}
	for _, c := range e.contacts {
		if l := e.links[c.ID]; l != nil {
			out = append(out, l.status(now))
			seen[c.ID] = true
		}
	}
	for _, l := range e.sortedLinks() {
		if !seen[l.peer] {
			out = append(out, l.status(now))
		}
	}
	return out
}

// nowHint is the latest instant any input carried, for the status
// queries that take no time of their own.
func (e *Engine) nowHint() time.Time { return e.lastNow }

// refreshPeers reports the peers whose status changed.
func (e *Engine) refreshPeers() {
	for _, l := range e.sortedLinks() {
		st := l.status(e.lastNow)
		if l.told && statusEqual(st, l.lastTold) {
			continue
		}
		l.told, l.lastTold = true, st
		e.tell(PeerChanged{Status: st})
	}
}

func statusEqual(a, b PeerStatus) bool {
	a.Stats, b.Stats = session.Stats{}, session.Stats{}
	return a == b
}
