package session

import (
	"fmt"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
)

// Every timer and size limit of the session machine lives here, with the
// reason for its value (in the spirit of wireguard-go's constants file).
const (
	// HandshakeInitialRTO is the first retransmission interval of Noise
	// message 1. The path was just proven by punch's probes, so a lost
	// message 1 is the only reason to wait; 500 ms matches the STUN
	// retransmission start in RFC 8489 §6.2.1 that the rest of the stack uses.
	HandshakeInitialRTO = 500 * time.Millisecond
	// HandshakeRTTFactor and HandshakeMinRTO time the first retransmission
	// of message 1 when punch measured the path's round trip (the usual
	// case): three round trips leave room for jitter and the responder's
	// two DH operations, and the floor keeps a LAN's sub-millisecond RTT
	// from resending a message 1 that is merely still being processed. On
	// a lossy path a lost message 1 then costs tens of milliseconds, not
	// HandshakeInitialRTO, which stays the cap and the value when no RTT
	// is known.
	HandshakeRTTFactor = 3
	HandshakeMinRTO    = 20 * time.Millisecond
	// HandshakeMaxRTO caps the doubling of the message 1 interval so a late
	// answer is still noticed within a few seconds.
	HandshakeMaxRTO = 4 * time.Second
	// HandshakeTimeout bounds how long the user watches "connecting…" after
	// punch selected a path: eight tries of message 1 (at 0, 0.5, 1.5, 3.5,
	// 7.5, 11.5, 15.5 and 19.5 s). WireGuard retries for 90 s, but it runs
	// unattended.
	HandshakeTimeout = 20 * time.Second

	// InitialRTO is the retransmission timeout before any RTT sample,
	// RFC 6298 §2.1 (1 s).
	InitialRTO = time.Second
	// MinRTO is the lower bound of the retransmission timeout. RFC 6298 §2.4
	// asks for 1 s to protect TCP against spurious retransmissions on slow
	// links; our receivers acknowledge at once (no delayed acks) and a
	// spurious retransmission costs only one duplicate fragment that the
	// receiver suppresses, so 200 ms (Linux TCP's TCP_RTO_MIN) keeps a chat
	// responsive on lossy LAN and internet paths alike.
	MinRTO = 200 * time.Millisecond
	// MaxRTO caps the exponential backoff (RFC 6298 §5.5 allows any maximum
	// of at least 60 s). Punch declares a silent path lost after ~30 s, so
	// waiting longer than a few seconds between tries buys nothing but a
	// slow recovery when the path comes back.
	MaxRTO = 8 * time.Second
	// ClockGranularity is G in RFC 6298 §2.2: the machine sees the
	// caller's time, which is at least millisecond-accurate.
	ClockGranularity = time.Millisecond

	// DeadPeerTimeout fails the session when data or a receipt has been
	// outstanding this long without a single authenticated packet from the
	// peer. Twice punch's 30 s path-lost timeout, so punch normally notices
	// first and this is only the backstop.
	DeadPeerTimeout = 60 * time.Second

	// TypingRefresh is the minimum interval between two "typing" frames
	// while the user keeps typing (the indicator is a hint, not worth a
	// datagram per key press).
	TypingRefresh = 3 * time.Second
	// TypingExpiry clears a peer's typing indicator when no refresh came:
	// two refresh intervals, so one lost frame does not make it flicker.
	TypingExpiry = 2 * TypingRefresh
)

const (
	// MaxMessageSize is the largest message body Send accepts (64 KiB).
	MaxMessageSize = 64 << 10
	// MaxDatagramSize bounds every datagram the machine emits, all headers
	// included: 1200 bytes fits the IPv6 minimum MTU of 1280 with IPv6 and
	// UDP headers to spare, the same bound QUIC uses (RFC 9000 §14).
	MaxDatagramSize = 1200

	// RecvWindowFragments is how many fragments past the last committed
	// message a receiver accepts (about 1.1 MiB). A receiver whose UI stops
	// committing stops the sender after this much, which is the flow
	// control: the advertised window only moves when messages are stored.
	RecvWindowFragments = 1024
	// SendWindowFragments bounds unacknowledged fragments in flight, so a
	// burst of Sends does not flood the path before the first ack returns.
	SendWindowFragments = 256
	// LossReorderThreshold declares a fragment lost when a fragment sent in
	// a datagram at least this many datagrams later was acknowledged first
	// (RFC 9002 §6.1.1 kPacketThreshold).
	LossReorderThreshold = 3
	// MaxAckRanges bounds the selective-ack ranges in one ack frame.
	MaxAckRanges = 32

	// MaxStreamMessageSize is the largest message SendStream accepts
	// (128 KiB): room for a 64 KiB file chunk and its header, and still
	// only an eighth of the receive window, so several messages are in
	// flight at once and a stream never runs stop-and-wait.
	MaxStreamMessageSize = 128 << 10
	// MaxStreams bounds the open numbered streams per direction: one per
	// running file transfer plus control, and a peer can make us buffer
	// at most this many receive windows.
	MaxStreams = 16
	// ChatReserveFragments is the part of SendWindowFragments that only the
	// chat stream may fill, so a chat message goes out at once even while
	// files keep the rest of the window full.
	ChatReserveFragments = 64
	// StreamQuantum is how many fragments a numbered stream sends before
	// the next one gets its turn: about 9 KiB, so streams share the path
	// fairly within a single flush.
	StreamQuantum = 8
)

// Timers overrides the timer constants for one machine (sansio.Override):
// a zero field keeps the default, a negative DeadPeerTimeout switches that
// timer off, and any other negative field is refused by NewMachine. Tests
// use it to stretch DeadPeerTimeout in 50%-loss runs.
type Timers struct {
	HandshakeInitialRTO time.Duration
	HandshakeMaxRTO     time.Duration
	HandshakeTimeout    time.Duration
	InitialRTO          time.Duration
	MinRTO              time.Duration
	MaxRTO              time.Duration
	DeadPeerTimeout     time.Duration
	TypingRefresh       time.Duration
	TypingExpiry        time.Duration
}

func (t Timers) withDefaults() (Timers, error) {
	var err error
	def := func(v *time.Duration, d time.Duration, name string) {
		if *v < 0 && err == nil {
			err = fmt.Errorf("timer %s cannot be off", name)
		}
		*v = sansio.Override(*v, d)
	}
	def(&t.HandshakeInitialRTO, HandshakeInitialRTO, "HandshakeInitialRTO")
	def(&t.HandshakeMaxRTO, HandshakeMaxRTO, "HandshakeMaxRTO")
	def(&t.HandshakeTimeout, HandshakeTimeout, "HandshakeTimeout")
	def(&t.InitialRTO, InitialRTO, "InitialRTO")
	def(&t.MinRTO, MinRTO, "MinRTO")
	def(&t.MaxRTO, MaxRTO, "MaxRTO")
	t.DeadPeerTimeout = sansio.Override(t.DeadPeerTimeout, DeadPeerTimeout)
	def(&t.TypingRefresh, TypingRefresh, "TypingRefresh")
	def(&t.TypingExpiry, TypingExpiry, "TypingExpiry")
	return t, err
}
