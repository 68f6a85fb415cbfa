package conn

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session"
)

// SignalKind says what a signal asks for.
type SignalKind int

// The kinds of signal.
const (
	KindOffer  SignalKind = iota + 1 // let's talk: my candidates
	KindAnswer                       // yes: my candidates
	KindCancel                       // withdrawn (by the offerer) or declined (by the other side)
)

// String is the kind's name; it is also the label a seal binds, so an
// answer cannot be opened as an offer.
func (k SignalKind) String() string {
	switch k {
	case KindOffer:
		return "offer"
	case KindAnswer:
		return "answer"
	case KindCancel:
		return "cancel"
	}
	return fmt.Sprintf("kind%d", int(k))
}

// Signal is one offer, answer or cancel as the engine sees it; the owner
// maps it to and from its signalling backend.
type Signal struct {
	ID        string // the backend's handle, for AckSignal (incoming only)
	From, To  string
	Kind      SignalKind
	SessionID string
	Payload   []byte // sealed invitation
}

// Presence is what a peer published about itself.
type Presence struct {
	Name     string
	LastSeen time.Time
	Instance string
	Offline  bool
}

// Contact is a name the user gave an ID, with the per-contact settings
// the lifecycle obeys.
type Contact struct {
	ID     string
	Name   string
	Public [32]byte
	// AskEachTime: this contact's offers are prompted like a stranger's,
	// and it is never connected to automatically.
	AskEachTime bool
}

// FailReason says why an attempt ended, for the owner to branch on.
type FailReason int

// The reasons an attempt fails.
const (
	ReasonInternal     FailReason = iota + 1 // could not make keys or seal
	ReasonSignalling                         // the signalling service could not be reached
	ReasonNoAnswer                           // the offer was not answered in time
	ReasonDeclined                           // the peer declined
	ReasonNoPath                             // punching found no path
	ReasonSymmetricNAT                       // no path, as expected of a symmetric NAT facing a non-open one
	ReasonPathLost                           // the selected path went silent
	ReasonHandshake                          // the encrypted handshake did not complete
	ReasonSessionError                       // the session failed (dead peer, protocol error)
)

// String is a short token for logs and the headless stream.
func (r FailReason) String() string {
	switch r {
	case ReasonInternal:
		return "internal"
	case ReasonSignalling:
		return "signalling"
	case ReasonNoAnswer:
		return "no-answer"
	case ReasonDeclined:
		return "declined"
	case ReasonNoPath:
		return "no-path"
	case ReasonSymmetricNAT:
		return "symmetric-nat"
	case ReasonPathLost:
		return "path-lost"
	case ReasonHandshake:
		return "handshake"
	case ReasonSessionError:
		return "session"
	}
	return fmt.Sprintf("reason%d", int(r))
}

// Phase is where a peer's connection stands, as the user sees it.
type Phase int

// The phases.
const (
	PhaseIdle       Phase = iota // nothing running, nothing wanted
	PhaseWaiting                 // wanted, but the peer is offline: waiting for its presence
	PhaseConnecting              // offering, punching or securing the path
	PhaseConnected               // the encrypted session is up
	PhaseFailed                  // the last attempt failed; Words says why
)

// String names the phase.
func (p Phase) String() string {
	switch p {
	case PhaseWaiting:
		return "waiting"
	case PhaseConnecting:
		return "connecting"
	case PhaseConnected:
		return "connected"
	case PhaseFailed:
		return "failed"
	}
	return "idle"
}

// Path describes a live session's path.
type Path struct {
	// Kind is the punch machine that found it: "direct", "predicted"
	// (direct too, found by birthday probing) or "relayed".
	Kind string
	// Relay names what a relayed path crosses: my TURN server's host, or
	// the IP of the peer's relayed address.
	Relay         string
	Local, Remote netip.AddrPort
	RTT           time.Duration
}

// PeerStatus is everything the screen shows about one peer.
type PeerStatus struct {
	ID          string
	Name        string // the contact's name, else the name the peer gave
	Contact     bool
	AskEachTime bool
	Blocked     bool // its signals are dropped unseen
	Phase       Phase
	Online      bool   // presence says it runs now (or a session is up)
	Words       string // plain words for the phase: why it failed, what it waits for
	Queued      int    // messages stored and not yet delivered
	Typing      bool
	LastActive  time.Time
	Fingerprint string    // safety number of the pair
	SessionID   string    // the session of the current (or last) attempt
	Since       time.Time // when the session was established (when connected)
	Path        Path      // when connected
	Stats       session.Stats
}

// Effect is something the owner must do: exactly one of the types below.
// Effects are drained in the order they were made; store effects must run
// one at a time in that order (messages keep their order, a receipt is
// never recorded before its message).
type Effect interface{ effect() }

// SendDatagram writes one datagram from one of my sockets (the zero
// Socket: the main one).
type SendDatagram struct {
	Socket punch.SocketID
	To     netip.AddrPort
	Data   []byte
}

// SendSignal stores a signal in the peer's inbox; report the outcome with
// HandleSignalSent.
type SendSignal struct{ Signal Signal }

// AckSignal deletes a handled signal from my inbox.
type AckSignal struct{ ID string }

// Listen starts the inbox listener; report HandleListening or
// HandleListenFailed, then each event.
type Listen struct{}

// PublishPresence writes my presence.
type PublishPresence struct {
	ID, Name  string
	PublicKey [32]byte
	Instance  string
	Offline   bool
}

// LookupPresence reads a peer's presence; report it with HandlePresence.
type LookupPresence struct{ ID string }

// WatchPresence starts (On) or ends a watch of a peer's presence: the
// owner reports each reading with HandlePresence, as it does a lookup, so
// a peer I am waiting for is connected to the moment it appears. Stop ends
// every watch.
type WatchPresence struct {
	ID string
	On bool
}

// LoadContacts reads the contacts and each one's outbox size; report them
// with HandleContacts, carrying Gen.
type LoadContacts struct{ Gen int }

// StoreQueue stores one outgoing message in the outbox before it is sent;
// report it with HandleQueued.
type StoreQueue struct {
	Peer string
	ID   session.MessageID
	Body string
	At   time.Time
}

// StoreReceived stores the messages a session delivered (one transaction
// for a burst), skipping ones already stored; report with HandleReceived.
type StoreReceived struct {
	Peer, SessionID string
	Msgs            []session.Received
	At              time.Time
}

// StoreMarkSent records that messages went to a live session.
type StoreMarkSent struct {
	Peer string
	IDs  []session.MessageID
}

// StoreMarkDelivered records receipts: the messages leave the outbox.
type StoreMarkDelivered struct {
	Peer string
	IDs  []session.MessageID
}

// LoadOutbox reads what waits for peer, for a fresh session; report with
// HandleOutbox.
type LoadOutbox struct{ Peer, SessionID string }

// StoreAddContact, StoreRenameContact, StoreRemoveContact and
// StoreSetAskEachTime change the contacts; report the new list with
// HandleContacts, carrying Gen (a list read before later changes were
// written is not taken).
type StoreAddContact struct {
	Gen      int
	Name, ID string
	At       time.Time
}

// StoreRenameContact gives a contact a new name.
type StoreRenameContact struct {
	Gen      int
	ID, Name string
}

// StoreRemoveContact removes a contact (its history stays).
type StoreRemoveContact struct {
	Gen int
	ID  string
}

// StoreSetAskEachTime changes a contact's "ask me each time" setting.
type StoreSetAskEachTime struct {
	Gen int
	ID  string
	Ask bool
}

// StoreBlock records that an ID's offers are dropped unseen; StoreUnblock
// lets them through again. Report the new lists with HandleContacts.
type StoreBlock struct {
	Gen      int
	ID, Name string
	At       time.Time
}

// StoreUnblock lets an ID's offers through again.
type StoreUnblock struct {
	Gen int
	ID  string
}

// Blocked is an ID whose signals are dropped unseen (it need not be a
// contact).
type Blocked struct {
	ID    string
	Name  string // what it was known as when blocked; may be empty
	Since time.Time
}

// ContactsResult is the store's contact list after a LoadContacts or a
// change: Gen is the effect's, Outbox how many messages wait for each
// contact, Added the ID the change added, Blocked the blocked IDs.
type ContactsResult struct {
	Gen      int
	Contacts []Contact
	Outbox   map[string]int
	Added    string
	Blocked  []Blocked
	// TransferPeers (first load only) are the peers with unfinished file
	// transfers in the store, contacts or not.
	TransferPeers [][32]byte
	Err           error
}

// Stop: the engine has said goodbye; once the effects issued before it are
// done the program may end.
type Stop struct{}

func (SendDatagram) effect()        {}
func (SendSignal) effect()          {}
func (AckSignal) effect()           {}
func (Listen) effect()              {}
func (PublishPresence) effect()     {}
func (LookupPresence) effect()      {}
func (WatchPresence) effect()       {}
func (LoadContacts) effect()        {}
func (StoreQueue) effect()          {}
func (StoreReceived) effect()       {}
func (StoreMarkSent) effect()       {}
func (StoreMarkDelivered) effect()  {}
func (LoadOutbox) effect()          {}
func (StoreAddContact) effect()     {}
func (StoreRenameContact) effect()  {}
func (StoreRemoveContact) effect()  {}
func (StoreSetAskEachTime) effect() {}
func (StoreBlock) effect()          {}
func (StoreUnblock) effect()        {}
func (Stop) effect()                {}

// IsStore reports whether e uses the store (and must keep its order among
// store operations).
func IsStore(e Effect) bool {
	switch e.(type) {
	case LoadContacts, StoreQueue, StoreReceived, StoreMarkSent, StoreMarkDelivered, LoadOutbox,
		StoreAddContact, StoreRenameContact, StoreRemoveContact, StoreSetAskEachTime, StoreBlock, StoreUnblock,
		LoadTransfers:
		return true
	}
	return false
}

// Notification is a change the user (or a script) should see, reported
// once: exactly one of the types below.
type Notification interface{ note() }

// Observer receives notifications; the screen and the headless JSON writer
// implement it.
type Observer interface{ Notify(Notification) }

// Deliver hands each notification to obs, in order.
func Deliver(obs Observer, ns []Notification) {
	for _, n := range ns {
		obs.Notify(n)
	}
}

// Ready: the inbox listener runs and my public address is known (or known
// to be unknowable); sent once, before any presence.
type Ready struct {
	ID, Fingerprint, NAT string
}

// NATChanged: what discovery found about my NAT changed: plain words,
// and for scripts the RFC 4787 mapping and filtering and the public
// addresses STUN saw (invalid: none).
type NATChanged struct {
	Words              string
	Mapping, Filtering string
	Mapped, Mapped6    netip.AddrPort
}

// Health: the signalling backend became unreachable (OK false) or
// reachable again.
type Health struct {
	OK    bool
	Words string
}

// ContactsChanged: the contact list changed (added, renamed, removed,
// loaded); Added names a contact just added.
type ContactsChanged struct {
	Contacts []Contact
	Added    string
}

// PeerChanged: something the screen shows about a peer changed.
type PeerChanged struct{ Status PeerStatus }

// BlockedChanged: the blocked IDs changed (most recently blocked first).
type BlockedChanged struct{ Blocked []Blocked }

// PeerRemoved: a peer is no longer shown (contact removed).
type PeerRemoved struct{ ID string }

// PresenceChanged: a peer came online or went offline.
type PresenceChanged struct {
	Peer, Name string
	Online     bool
	LastSeen   time.Time
}

// OfferShown: an offer waits for the user's answer.
type OfferShown struct {
	From, Name  string // Name: the contact's, else the one the offer claims
	Contact     bool
	SessionID   string
	Fingerprint string
	Expires     time.Time
}

// OfferGone: a shown offer is no longer answerable (withdrawn, expired,
// its sender gone, answered).
type OfferGone struct {
	From, SessionID string
	Words           string
}

// Connecting: an attempt made progress (plain words).
type Connecting struct {
	Peer, SessionID, Words string
}

// Connected: an encrypted session is up, and how long each part of
// connecting took (zero: not measured on this side).
type Connected struct {
	Peer, SessionID                 string
	Path                            Path
	Signalling, Punching, Handshake time.Duration
	Measured                        bool // the three spans are known (this side offered)
}

// Failed: an attempt ended without a session.
type Failed struct {
	Peer   string
	Reason FailReason
	Words  string
	Detail string // what was tried, for the details view and logs
}

// Closed: a session ended cleanly (the peer quit or hung up); not a
// failure.
type Closed struct {
	Peer, Words string
}

// Waiting: a wanted connection waits for the peer to come online.
type Waiting struct {
	Peer, Words string
}

// MessageOut: the user wrote a message; it is being stored.
type MessageOut struct {
	Peer string
	ID   session.MessageID
	Body string
	At   time.Time
}

// MessageQueued: a message is stored and waits for a session.
type MessageQueued struct {
	Peer string
	ID   session.MessageID
	Body string
}

// MessageSent: a message went to a live session.
type MessageSent struct {
	Peer string
	ID   session.MessageID
}

// MessageDelivered: the peer stored a message (its receipt came).
type MessageDelivered struct {
	Peer string
	ID   session.MessageID
}

// MessageIn: a message from the peer, stored. SentAt is the sender's clock
// (sealed inside the session); At is when it arrived here.
type MessageIn struct {
	Peer   string
	ID     session.MessageID
	Body   string
	SentAt time.Time
	At     time.Time
}

// Typing: the peer started or stopped typing.
type Typing struct {
	Peer   string
	Active bool
}

// Problem: something went wrong that the user should read (plain words).
type Problem struct{ Words string }

func (Ready) note()            {}
func (NATChanged) note()       {}
func (Health) note()           {}
func (ContactsChanged) note()  {}
func (PeerChanged) note()      {}
func (PeerRemoved) note()      {}
func (BlockedChanged) note()   {}
func (PresenceChanged) note()  {}
func (OfferShown) note()       {}
func (OfferGone) note()        {}
func (Connecting) note()       {}
func (Connected) note()        {}
func (Failed) note()           {}
func (Closed) note()           {}
func (Waiting) note()          {}
func (MessageOut) note()       {}
func (MessageQueued) note()    {}
func (MessageSent) note()      {}
func (MessageDelivered) note() {}
func (MessageIn) note()        {}
func (Typing) note()           {}
func (Problem) note()          {}
