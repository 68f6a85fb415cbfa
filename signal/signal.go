// Package signal carries the intent to talk: offers, answers and cancels
// addressed from one p2ptui identity to another, plus presence. It never looks
// inside a payload (the session layer seals it) and knows nothing of UDP or
// the UI. Backends: Firestore (real deployments), a local mailbox directory
// (the embedded default) and an in-memory hub (tests).
package signal

import (
	"context"
	"errors"
	"time"
)

// ProtocolVersion is written into every document; readers reject others.
const ProtocolVersion = 1

// MaxPayload bounds a signal's sealed payload. Offers carry a handful of
// candidates and a name, far below this; anything larger is hostile or broken.
const MaxPayload = 8 << 10

// DefaultTTL is how long an offer stays actionable. An offer older than this
// is stale: the sender has given up, and its candidates' NAT mappings are
// likely gone.
const DefaultTTL = 2 * time.Minute

// Kind says what a signal asks for.
type Kind string

// The kinds of signal.
const (
	KindOffer  Kind = "offer"
	KindAnswer Kind = "answer"
	KindCancel Kind = "cancel"
)

// Signal is one offer, answer or cancel addressed to one recipient.
type Signal struct {
	ID        string // assigned by the backend on Send; the handle for Ack
	From      string // sender ID
	To        string // recipient ID
	Kind      Kind
	SessionID string
	Payload   []byte // opaque, sealed by the session layer
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Presence is what a peer publishes about itself.
type Presence struct {
	ID          string
	DisplayName string
	PublicKey   []byte
	Version     int
	LastSeen    time.Time
	// Instance names the running process (random per start), so a reader
	// can tell an offer left behind by an earlier run of the peer from one
	// of the run that is online now. Empty: not told.
	Instance string
	// Offline is written by a clean quit: the peer is gone now, however
	// recent LastSeen is.
	Offline bool
}

// Event is delivered on the stream returned by Listen: ListeningEvent,
// SignalEvent, HealthEvent or RejectedEvent.
type Event interface{ isEvent() }

// ListeningEvent comes once, before any signal: the listener receives, so
// a signal sent to me from now on arrives. (Firestore's listener needs a
// moment to be set up after Listen returns; telling peers I am here before
// then invites offers into that gap.)
type ListeningEvent struct{}

// SignalEvent is a valid, unexpired signal addressed to the listener.
type SignalEvent struct{ Signal Signal }

// HealthEvent reports that the backend became unavailable (Err != nil) or
// available again (Err == nil). Listeners keep retrying while unavailable.
type HealthEvent struct {
	Backend string
	Err     error
}

// RejectedEvent reports an inbox document that was refused and deleted; the
// stream goes on with the good ones.
type RejectedEvent struct {
	DocID  string
	Reason string
}

func (ListeningEvent) isEvent() {}
func (SignalEvent) isEvent()    {}
func (HealthEvent) isEvent()    {}
func (RejectedEvent) isEvent()  {}

// Errors callers branch on.
var (
	ErrNotFound         = errors.New("not found")
	ErrInvalid          = errors.New("invalid signal")
	ErrClosed           = errors.New("signaller closed")
	ErrUnavailable      = errors.New("signalling backend unavailable")
	ErrAlreadyListening = errors.New("already listening")
)

// Signaller is what the rest of the program uses, whatever the backend.
// A Signaller is opened for one identity (me); all methods are safe for
// concurrent use.
type Signaller interface {
	// Name is a short description for the status bar, e.g.
	// "firestore project demo" or "local /run/user/1000/p2ptui".
	Name() string
	// PublishPresence writes or refreshes my presence.
	PublishPresence(ctx context.Context, p Presence) error
	// LookupPresence returns a peer's presence, or ErrNotFound.
	LookupPresence(ctx context.Context, id string) (Presence, error)
	// WatchPresence reports id's presence at once and again whenever it
	// changes, until ctx is cancelled or Close is called; then the channel
	// is closed. A watch that breaks is set up again by itself, so a
	// reading may repeat; one that fails says so in PresenceUpdate.Err.
	WatchPresence(ctx context.Context, id string) (<-chan PresenceUpdate, error)
	// Send validates s, fills in CreatedAt/ExpiresAt when zero, stores it in
	// the recipient's inbox and returns the signal ID.
	Send(ctx context.Context, s Signal) (string, error)
	// Listen starts delivering the signals addressed to me, pending ones
	// first in CreatedAt order, then new ones as they arrive, until ctx is
	// cancelled or Close is called; then the channel is closed.
	Listen(ctx context.Context) (<-chan Event, error)
	// Ack deletes a handled signal from my inbox.
	Ack(ctx context.Context, signalID string) error
	// Close stops the listener and waits for every goroutine to end.
	Close() error
}
