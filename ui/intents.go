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
}

// MessageView is one chat message. Key is stable for the message's life
// (SetMark finds it by Key).
type MessageView struct {
	Key    string
	Mine   bool
	Sender string
	Body   string
	At     time.Time
	Mark   Mark
}

// OfferView is an incoming offer waiting for the user's answer.
type OfferView struct {
	ContactID   string // the offerer's ID
	Name        string // contact name; empty if unknown
	Known       bool   // the offerer is in the contacts
	Fingerprint string
	SessionID   string
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

// AcceptIntent: accept the offer SessionID; a non-empty AddAs also adds the
// (unknown) offerer to the contacts under that name.
type AcceptIntent struct{ SessionID, AddAs string }

// DeclineIntent: decline the offer SessionID.
type DeclineIntent struct{ SessionID string }

// AddContactIntent: add a contact. ID is as typed (trimmed); the engine
// validates it and calls ShowError if it is wrong.
type AddContactIntent struct{ Name, ID string }

// RenameContactIntent: give contact ID a new name.
type RenameContactIntent struct{ ID, Name string }

// RemoveContactIntent: remove contact ID (the user has confirmed).
type RemoveContactIntent struct{ ID string }

// QuitIntent: the user asked to quit.
type QuitIntent struct{}

// JoinIntent: the user entered a group's join code in the settings. Code
// has passed signal.ParseJoinCode (no typo); the engine tries it with
// signal.Join (sign in, claim the ID) and reports the outcome in words.
type JoinIntent struct{ Code string }
