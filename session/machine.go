package session

import (
	"github.com/p2ptui/p2ptui/punch/sansio"

	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
)

// Machine is one encrypted, reliable, ordered conversation with one peer over
// the path punch selected: a Noise IK handshake followed by AEAD-protected
// datagrams that carry fragmented messages, acknowledgements, delivery
// receipts and a typing indicator, and, beside the chat, numbered streams
// (stream.go) for file transfers.
//
// Machine is sans-I/O: it never reads a clock, starts a goroutine or touches
// a socket. The caller passes every input with the current time, then sends
// what Transmits returns to the selected path, handles what Events returns,
// and calls HandleTimeout at Deadline. A Machine is not safe for concurrent
// use; the UI's event loop owns it.
type Machine struct {
	cfg    Config
	timers Timers
	rand   io.Reader

	state   machineState
	started bool
	now     time.Time // time of the latest input; Transmits stamps with it

	hs handshake

	// Transport keys with explicit nonces (noise.CipherState.Cipher), so
	// datagrams may be lost and reordered without desynchronising counters.
	sendCipher  noise.Cipher
	recvCipher  noise.Cipher
	sendCounter uint64
	replay      ReplayWindow

	snd sender   // the chat stream
	rcv receiver // the chat stream
	rtt rttState
	// inflight counts fragments of every stream sent and not acked.
	inflight int

	sout      []*sender   // our open numbered streams, in opening order
	sin       []*receiver // the peer's open numbered streams
	nextOut   StreamID    // the number OpenStream hands out next
	inHighest StreamID    // the highest peer stream number seen
	inSeen    uint64      // bit i: stream inHighest-i was seen
	stops     []StreamID  // STOP frames to send
	rr        int         // which numbered stream goes first in the next flush
	swin      streamWindow

	typingLocal     bool      // what SetTyping last said
	typingSentAt    time.Time // when a typing frame last went out
	typingDirty     bool      // a typing frame is waiting for Transmits
	typingRemote    bool
	typingRemoteEnd time.Time

	lastHeard time.Time // last authenticated datagram from the peer

	payload []byte // plaintext scratch for flush

	out    [][]byte
	events []Event
	stats  Stats
}

type machineState int

const (
	stateHandshake machineState = iota
	stateEstablished
	stateFailed
)

// Config describes one session. Keys are raw X25519 keys so the machine does
// not depend on how identities are stored.
type Config struct {
	// Initiator is true for the peer that sent the offer; it sends Noise
	// message 1.
	Initiator bool
	// LocalPrivate and LocalPublic are this user's long-term X25519 key pair.
	LocalPrivate [32]byte
	LocalPublic  [32]byte
	// RemoteStatic is the peer's long-term public key: the contact the
	// initiator calls, or the sender of the offer the responder accepted.
	// The responder fails the session if the initiator proves another key.
	RemoteStatic [32]byte
	// SessionID binds the handshake (through the Noise prologue) to one
	// offer/answer exchange, so a handshake can't be replayed into another.
	SessionID string
	// Rand is the source of ephemeral keys; nil means crypto/rand.
	Rand io.Reader
	// PathRTT is the round trip punch's probes measured on the selected
	// path (zero: unknown). It times the first handshake retransmission and
	// is the first RTT sample of the retransmission timer, so a loss right
	// after connecting is repaired in round trips, not in RFC 6298's
	// initial second.
	PathRTT time.Duration
	// Timers overrides timer constants; zero fields keep the defaults.
	Timers Timers
}

// MessageID identifies a chat message globally and persistently: the same
// message resent in a later session (after a crash or reconnect) carries the
// same ID, so the receiver's store can recognise the duplicate.
type MessageID [16]byte

// NewMessageID returns a random message ID read from r (crypto/rand if nil).
func NewMessageID(r io.Reader) (MessageID, error) {
	if r == nil {
		r = rand.Reader
	}
	var id MessageID
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return MessageID{}, fmt.Errorf("new message id: %w", err)
	}
	return id, nil
}

// String returns the ID as 32 lowercase hex digits.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// ParseMessageID parses the String form of a MessageID.
func ParseMessageID(s string) (MessageID, error) {
	var id MessageID
	if len(s) != 2*len(id) {
		return MessageID{}, fmt.Errorf("message id %q: want %d hex digits", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return MessageID{}, fmt.Errorf("message id %q: %w", s, err)
	}
	return id, nil
}

// OutMessage is a message handed to Send.
type OutMessage struct {
	ID     MessageID
	Body   []byte // at most MaxMessageSize bytes; the machine keeps a reference until Delivered
	SentAt time.Time
}

// Event is something the UI must know about: one of Established, Received,
// Delivered, Typing or Failed.
type Event interface{ sessionEvent() }

// Established reports a completed handshake with a peer proven to hold the
// private key of RemoteStatic.
type Established struct{ RemoteStatic [32]byte }

// Received is a complete message from the peer, in the order it was sent.
// Store it, then call Commit with its ID: only then does the peer learn it
// was delivered. Within a session every message is reported once; across
// sessions the ID lets the store drop a resend.
type Received struct {
	ID     MessageID
	Body   []byte
	SentAt time.Time // the sender's clock, as it claimed
}

// Delivered reports that the peer stored (committed) one of our messages:
// it can leave the outbox.
type Delivered struct{ ID MessageID }

// Typing reports the peer started or stopped typing.
type Typing struct{ Active bool }

// Failed ends the session; the machine ignores further input. Undelivered
// messages stay in the caller's outbox for the next session.
type Failed struct {
	Reason FailReason
	Detail string
}

func (Established) sessionEvent() {}
func (Received) sessionEvent()    {}
func (Delivered) sessionEvent()   {}
func (Typing) sessionEvent()      {}
func (Failed) sessionEvent()      {}

// FailReason says why a session ended, for the UI to branch on.
type FailReason int

// Failure reasons.
const (
	// ReasonHandshakeTimeout: no handshake completed within HandshakeTimeout.
	ReasonHandshakeTimeout FailReason = iota + 1
	// ReasonPeerUnresponsive: nothing authenticated came back for
	// DeadPeerTimeout while data or receipts were outstanding.
	ReasonPeerUnresponsive
	// ReasonProtocolError: the authenticated peer sent something impossible
	// (a bug or a hostile peer), so the conversation can't continue safely.
	ReasonProtocolError
	// ReasonBadConfig: NewMachine's inputs were unusable.
	ReasonBadConfig
	// ReasonPeerClosed: the peer ended the conversation (Close).
	ReasonPeerClosed
)

// String is the reason in plain words, fit for the status bar.
func (r FailReason) String() string {
	switch r {
	case ReasonHandshakeTimeout:
		return "the peer did not answer the encrypted handshake"
	case ReasonPeerUnresponsive:
		return "the peer stopped responding"
	case ReasonProtocolError:
		return "the peer sent an invalid message"
	case ReasonBadConfig:
		return "the session was set up with invalid keys"
	case ReasonPeerClosed:
		return "the peer closed the conversation"
	}
	return fmt.Sprintf("session failure %d", int(r))
}

// Error makes Failed usable as an error.
func (f Failed) Error() string {
	if f.Detail == "" {
		return f.Reason.String()
	}
	return f.Reason.String() + ": " + f.Detail
}

// Stats are counters and the RTT estimate of one machine, for the status
// bar and for tests.
type Stats struct {
	// DatagramsSent counts every datagram handed out by Transmits.
	DatagramsSent uint64
	// DatagramsReceived counts datagrams that authenticated and were applied.
	DatagramsReceived uint64
	// DroppedUnauthenticated counts datagrams whose AEAD tag or handshake
	// failed to verify.
	DroppedUnauthenticated uint64
	// DroppedMalformed counts datagrams that did not parse (before or after
	// decryption) or arrived before the keys to read them existed.
	DroppedMalformed uint64
	// Replays counts authentic-looking datagrams refused by the replay window.
	Replays uint64
	// Retransmits counts fragments sent again (timeout or loss detection).
	Retransmits uint64
	// HandshakeRetransmits counts handshake messages sent again.
	HandshakeRetransmits uint64
	// DuplicateFragments counts fragments that arrived again and were
	// suppressed.
	DuplicateFragments uint64
	// BytesSent and BytesReceived count the datagrams' bytes handed out by
	// Transmits and received authentic (headers and tags included), for
	// the connection details.
	BytesSent, BytesReceived uint64
	// WrongKey counts handshake messages 1 that authenticated a static key
	// other than the expected peer's (an impostor who knows the session):
	// dropped, and the real peer's message 1 is still answered.
	WrongKey uint64
	// SRTT, RTTVar and RTO are the RFC 6298 estimates (zero SRTT: no
	// sample yet).
	SRTT, RTTVar, RTO time.Duration
}

// Errors returned by Send and Commit.
var (
	// ErrTooLarge: the body exceeds MaxMessageSize.
	ErrTooLarge = errors.New("message too large (at most 64 KiB)")
	// ErrClosed: the session failed; send through the next session.
	ErrClosed = errors.New("session closed")
	// ErrUnknownMessage: Commit named no message awaiting commit.
	ErrUnknownMessage = errors.New("no received message with that id awaits commit")
)

// NewMachine validates cfg and returns a machine waiting for Start.
func NewMachine(cfg Config) (*Machine, error) {
	if cfg.SessionID == "" {
		return nil, errors.New("new session machine: empty session id")
	}
	var zero [32]byte
	if cfg.LocalPrivate == zero || cfg.LocalPublic == zero || cfg.RemoteStatic == zero {
		return nil, errors.New("new session machine: missing key")
	}
	timers, err := cfg.Timers.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("new session machine: %w", err)
	}
	m := &Machine{cfg: cfg, timers: timers, rand: sansio.Rand(cfg.Rand)}
	m.rtt.rto, m.rtt.minRTO, m.rtt.maxRTO = timers.InitialRTO, timers.MinRTO, timers.MaxRTO
	m.snd.init(chatStream)
	m.rcv.init(chatStream)
	m.swin.init()
	if cfg.PathRTT > 0 {
		m.rtt.sample(cfg.PathRTT)
	}
	return m, nil
}

// Start begins the handshake at now: the initiator queues message 1, the
// responder starts waiting for it. Call it once, when punch selected a path.
func (m *Machine) Start(now time.Time) {
	if m.started {
		return
	}
	m.started = true
	m.now = now
	if err := m.hs.start(m, now); err != nil {
		m.fail(ReasonBadConfig, err.Error())
	}
}

// Close ends the session: the peer is told at once (one unreliable
// datagram, returned by the next Transmits) instead of noticing a silent
// path half a minute later. No event is reported locally; undelivered
// messages stay in the caller's outbox.
func (m *Machine) Close(now time.Time) {
	m.now = now
	if m.state == stateEstablished {
		m.seal([]byte{frameClose})
	}
	out := m.out
	m.state = stateFailed
	m.out = out
}

// SetPathRTT gives the machine a round trip measured on its path after it
// started (when Config.PathRTT was zero: the path was chosen before any
// probe of ours was answered). A handshake still waiting on the default
// retransmission interval switches to one that follows it, and the RTT
// estimate takes it as its first sample if it has none.
func (m *Machine) SetPathRTT(now time.Time, rtt time.Duration) {
	m.now = now
	if rtt <= 0 || m.state == stateFailed {
		return
	}
	m.hs.learnRTT(m, now, rtt)
	if !m.rtt.hasRTT {
		m.rtt.sample(rtt)
	}
}

// Established reports whether the handshake completed and the session is
// still alive.
func (m *Machine) Established() bool { return m.state == stateEstablished }

// HandleDatagram processes one datagram from the selected path (the caller
// already demultiplexed it as a session packet). Garbage, forgeries and
// replays are counted and dropped; they never end the session. A datagram
// before Start starts the machine: the peer's punch may select the path
// and send message 1 a moment before ours does.
func (m *Machine) HandleDatagram(now time.Time, b []byte) {
	if !m.started {
		m.Start(now)
	}
	m.now = now
	if m.state == stateFailed {
		return
	}
	typ, err := packetType(b)
	if err != nil {
		m.stats.DroppedMalformed++
		return
	}
	switch typ {
	case typeHandshakeInit, typeHandshakeResp:
		m.hs.handle(m, now, typ, b)
	case typeTransport:
		m.handleTransport(now, b)
	}
}

// HandleTimeout runs the timers that expired by now.
func (m *Machine) HandleTimeout(now time.Time) {
	m.now = now
	if m.state == stateFailed || !m.started {
		return
	}
	if m.state == stateHandshake {
		m.hs.timeout(m, now)
		return
	}
	fired := m.snd.timeout(m, now)
	for _, s := range m.sout {
		fired = s.timeout(m, now) || fired
	}
	if fired {
		// One backoff per timeout, however many streams it hit.
		m.rtt.rto = min(2*m.rtt.rto, m.rtt.maxRTO)
		for _, s := range append([]*sender{&m.snd}, m.sout...) {
			if !s.rtoAt.IsZero() && !now.Before(s.rtoAt) {
				s.rtoAt = now.Add(m.rtt.rto)
			}
		}
	}
	if m.typingRemote && !now.Before(m.typingRemoteEnd) {
		m.typingRemote = false
		m.events = append(m.events, Typing{Active: false})
	}
	if d := m.deadPeerDeadline(); !d.IsZero() && !now.Before(d) {
		m.fail(ReasonPeerUnresponsive, fmt.Sprintf("nothing heard for %v", now.Sub(m.lastHeard).Round(time.Second)))
	}
}

// Send queues a message. It may be called before the handshake completes;
// queued messages go out once it does. The machine keeps msg.Body until the
// message is delivered, so the caller must not modify it.
func (m *Machine) Send(now time.Time, msg OutMessage) error {
	m.now = now
	if m.state == stateFailed {
		return ErrClosed
	}
	if len(msg.Body) > MaxMessageSize {
		return fmt.Errorf("send %d bytes: %w", len(msg.Body), ErrTooLarge)
	}
	m.snd.enqueue(now, msg.ID, msg.Body, msg.SentAt)
	return nil
}

// Commit tells the machine the UI stored the received message id; the
// peer's delivery receipt covers it from now on.
func (m *Machine) Commit(now time.Time, id MessageID) error {
	m.now = now
	if m.state == stateFailed {
		return ErrClosed
	}
	return m.rcv.commit(id)
}

// SetTyping records whether the local user is typing. Frames are sent on a
// change and refreshed at most every TypingRefresh, unreliably: a lost
// frame only delays the indicator.
func (m *Machine) SetTyping(now time.Time, active bool) {
	m.now = now
	if m.state == stateFailed {
		return
	}
	if active != m.typingLocal || (active && now.Sub(m.typingSentAt) >= m.timers.TypingRefresh) {
		m.typingLocal = active
		m.typingDirty = true
	}
}

// Transmits returns the datagrams to send now, in order, each at most
// MaxDatagramSize bytes and starting with a byte in 0x60–0x6F. Data is
// stamped with the time of the latest input call, so call it right after
// the inputs.
func (m *Machine) Transmits() [][]byte {
	if m.state == stateEstablished {
		m.flush(m.now)
	}
	out := m.out
	m.out = nil
	for _, b := range out {
		m.stats.BytesSent += uint64(len(b))
	}
	return out
}

// Events returns what happened since the last call.
func (m *Machine) Events() []Event {
	ev := m.events
	m.events = nil
	return ev
}

// Deadline is when HandleTimeout must next be called; zero means no timer
// is running.
func (m *Machine) Deadline() time.Time {
	if m.state == stateFailed || !m.started {
		return time.Time{}
	}
	if m.state == stateHandshake {
		return m.hs.deadline()
	}
	d := m.snd.deadline()
	for _, s := range m.sout {
		d = sansio.Earliest(d, s.deadline())
	}
	if m.typingRemote {
		d = sansio.Earliest(d, m.typingRemoteEnd)
	}
	return sansio.Earliest(d, m.deadPeerDeadline())
}

// Stats returns the counters and the current RTT estimate.
func (m *Machine) Stats() Stats {
	s := m.stats
	s.SRTT, s.RTTVar, s.RTO = m.rtt.srtt, m.rtt.rttvar, m.rtt.rto
	return s
}

func (m *Machine) fail(reason FailReason, detail string) {
	if m.state == stateFailed {
		return
	}
	m.state = stateFailed
	m.out = nil
	m.events = append(m.events, Failed{Reason: reason, Detail: detail})
}

// deadPeerDeadline is DeadPeerTimeout after the later of the last packet
// heard and the moment we started waiting for the peer; zero when nothing
// is outstanding.
func (m *Machine) deadPeerDeadline() time.Time {
	since, waiting := m.snd.waitingSince()
	for _, s := range m.sout {
		if t, w := s.waitingSince(); w {
			if !waiting || t.After(since) {
				since = t
			}
			waiting = true
		}
	}
	if !waiting {
		return time.Time{}
	}
	if m.lastHeard.After(since) {
		since = m.lastHeard
	}
	if m.timers.DeadPeerTimeout == 0 {
		return time.Time{} // switched off
	}
	return since.Add(m.timers.DeadPeerTimeout)
}
