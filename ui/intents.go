package ui

import "time"

// This file is the contract between the screen (what the user sees and
// presses) and the engine (the root model that owns the machines): plain
// data flows in through Screen's setters, and what the user asks for flows
// out as the intent messages below, delivered to the root model's Update as
// ordinary tea.Msg values through the tea.Cmd that Screen.Update returns.

// Presence is what the screen knows about a contact's reachability.
type Presence int

// Presence states, from "nothing known" to "talking".
const (
	PresenceOffline    Presence = iota // no recent presence, no session
	PresenceOnline                     // seen recently, no session
	PresenceConnecting                 // offer sent or accepted, punching or handshaking
	PresenceConnected                  // encrypted session up
	PresenceFailed                     // last attempt failed; ContactView.Detail says why
)

// String is the word shown next to the glyph.
func (p Presence) String() string {
	switch p {
	case PresenceOnline:
		return "online"
	case PresenceConnecting:
		return "connecting"
	case PresenceConnected:
		return "connected"
	case PresenceFailed:
		return "failed"
	}
	return "offline"
}

// Mark is a message's delivery state as shown after it.
type Mark int

// Marks for outgoing (queued/sent/delivered) and incoming (received) messages.
const (
	MarkQueued    Mark = iota // stored in the outbox, not yet on the wire
	MarkSent                  // sent, no receipt yet
	MarkDelivered             // the peer acknowledged it
	MarkReceived              // a message from the peer (no mark drawn)
)

// String names the mark in words (used in the headless JSON and tests).
func (m Mark) String() string {
	switch m {
	case MarkQueued:
		return "queued"
	case MarkSent:
		return "sent"
	case MarkDelivered:
		return "delivered"
	}
	return "received"
}

// Self is the local user as shown in the header so the ID can be shared.
type Self struct {
	ID          string
	Name        string
	Fingerprint string // optional; shown in the "my ID" dialog
}

// ContactView is one row of the contacts pane. Name is peer- or
// user-controlled and is sanitized before drawing.
type ContactView struct {
	ID           string
	Name         string
	Presence     Presence
	Detail       string // plain words, e.g. why the last attempt failed
	Unread       int
	LastActivity time.Time // zero: never
	Fingerprint  string    // safety number for this pair
	Blocked      bool      // its requests are dropped unseen
	AskEachTime  bool      // its requests are asked about; never connected by itself
	Contact      bool      // in the contacts (else a caller accepted once)
}

// MessageView is one chat message. Key is stable for the message's life
// (SetMark finds it by Key).
type MessageView struct {
	Key    string
	Mine   bool
	Sender string
	Body   string
	// At is when this machine queued (mine) or received (theirs) it.
	At time.Time
	// SentAt is when the sender wrote it, by the sender's clock as the
	// encrypted message carries it (session.Received.SentAt; the store's
	// Record.SentAt). The chat shows it, and marks a message that arrived
	// more than lateAfter after it was written. Zero: unknown, At is shown.
	SentAt time.Time
	Mark   Mark
	// Notice: a line about the chat (a file sent or received, Body says
	// which), not a message; Failed: about something that went wrong.
	Notice bool
	Failed bool
}

// OfferView is an incoming offer waiting for the user's answer.
type OfferView struct {
	ContactID   string // the offerer's ID
	Name        string // contact name; empty if unknown
	Known       bool   // the offerer is in the contacts
	Fingerprint string
	SessionID   string
}

// BlockedView is one blocked ID in the "blocked" list (store.Blocked).
type BlockedView struct {
	ID    string
	Name  string // what it was known as when blocked; may be empty
	Since time.Time
}

// DetailsView is everything the status line shortens, for the details
// view (ctrl+s). The engine fills what it knows; empty fields are left out
// and, while none is set, the view shows the StatusView's words.
type DetailsView struct {
	Backend       string // e.g. "firestore (project p2p-demo)", "local /run/user/1000/p2ptui-signal"
	BackendHealth string // plain words: "reachable", "unreachable since 14:02: …"
	BackendOK     bool

	NAT  string        // my NAT in words (punch.NATBehavior.Phrase)
	STUN []STUNDetails // every configured server, in order, with its answer

	Chat *ChatDetails // the open chat's connection; nil: no chat open
}

// STUNDetails is one STUN server and what it answered.
type STUNDetails struct {
	Server string // as configured, "stun.example.org:3478"
	Addr   string // what the name resolved to; empty: did not resolve
	Answer string // plain words: "mapped 203.0.113.7:40112 in 23 ms", "no answer", "did not resolve"
}

// ChatDetails is the open chat's connection.
type ChatDetails struct {
	Peer      string        // its name (or short ID)
	State     string        // plain words: "connected", "punching through NATs", "failed: …"
	Path      string        // "direct", "relayed via 198.51.100.9:3478", ...
	Encrypted bool          // a Noise session carries it
	Local     string        // my address on the path
	Remote    string        // theirs
	RTT       time.Duration // smoothed round-trip time; 0: not measured
	Sent      uint64        // bytes sent on this session
	Received  uint64        // bytes received on this session
	Since     time.Time     // when the session was established; zero: not
}

// StatusView is the status bar's content.
type StatusView struct {
	Backend        string // e.g. "firestore", "local"
	BackendHealthy bool
	NAT            string // plain words, e.g. punch.NATBehavior.Phrase()
	Path           string // e.g. "direct, encrypted 10.0.0.2:4000 ⇄ 198.51.100.12:5000"
	Err            string // plain words; empty: none
}

// OpenChatIntent: the user opened a contact's chat (Enter on the contact);
// the engine also starts connecting to it.
type OpenChatIntent struct{ ContactID string }

// SendIntent: the user sent Text to ContactID.
type SendIntent struct{ ContactID, Text string }

// TypingIntent: the user started (Active) or stopped typing to ContactID.
// Sent only on changes.
type TypingIntent struct {
	ContactID string
	Active    bool
}

// AcceptIntent: accept the offer (From, SessionID) — a session ID alone
// does not name an offer, since anyone may reuse one; a non-empty AddAs
// also adds the (unknown) offerer to the contacts under that name.
type AcceptIntent struct{ From, SessionID, AddAs string }

// DeclineIntent: decline the offer (From, SessionID).
type DeclineIntent struct{ From, SessionID string }

// AskEachTimeIntent: ask about ContactID's requests each time (Ask), or
// connect with it by itself whenever both are online (the default).
type AskEachTimeIntent struct {
	ContactID string
	Ask       bool
}

// CancelIntent: stop connecting to (or waiting for) ContactID.
type CancelIntent struct{ ContactID string }

// AddContactIntent: add a contact. ID is as typed (trimmed); the engine
// validates it and calls ShowError if it is wrong.
type AddContactIntent struct{ Name, ID string }

// RenameContactIntent: give contact ID a new name.
type RenameContactIntent struct{ ID, Name string }

// RemoveContactIntent: remove contact ID (the user has confirmed).
type RemoveContactIntent struct{ ID string }

// BlockIntent: drop ID's offers from now on, unseen (store.Block with
// Name), and drop any offer of its that is waiting, without answering it.
// ID need not be a contact; blocking does not remove one.
type BlockIntent struct{ ID, Name string }

// UnblockIntent: let ID's offers through again (store.Unblock).
type UnblockIntent struct{ ID string }

// QuitIntent: the user asked to quit.
type QuitIntent struct{}

// JoinIntent: the user entered a group's join code in the settings. Code
// has passed signal.ParseJoinCode (no typo); the engine tries it with
// signal.Join (sign in, claim the ID) and reports the outcome in words.
type JoinIntent struct{ Code string }

// FileOfferView is a file a peer offers, waiting for the person's answer.
// Name is what the file would be saved as (sanitised by the transfer
// layer, and again before drawing); ID names the transfer.
type FileOfferView struct {
	Peer     string // the offerer's ID
	PeerName string // its name as the contacts show it
	ID       string
	Name     string
	Size     uint64
}

// TransferPhase is where an unfinished transfer stands, as shown.
type TransferPhase int

// The phases of an unfinished transfer.
const (
	TransferHashing   TransferPhase = iota // mine: the file is being read to be offered
	TransferOffered                        // offered, no answer yet
	TransferPreparing                      // theirs, accepted: the file is being made
	TransferActive                         // accepted: data moves whenever a session is up
)

// TransferView is one file transfer as the chat's transfer lines and the
// transfers list (ctrl+l) show it.
type TransferView struct {
	Peer     string
	PeerName string
	ID       string
	Outgoing bool
	Name     string
	Size     uint64
	Done     uint64  // bytes the receiver has stored
	Rate     float64 // bytes per second lately; 0: not known yet
	Phase    TransferPhase
}

// SendFileIntent: offer the file at Path to ContactID.
type SendFileIntent struct{ ContactID, Path string }

// AcceptFileIntent: accept Peer's file offer ID, saving the file in Dir.
type AcceptFileIntent struct{ Peer, ID, Dir string }

// DeclineFileIntent: say no to Peer's file offer ID.
type DeclineFileIntent struct{ Peer, ID string }

// CancelFileIntent: end the transfer ID with Peer, either direction.
type CancelFileIntent struct{ Peer, ID string }
