package session

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
	"github.com/p2ptui/p2ptui/punch/sansio"
)

// The Noise protocol: Noise_IK_25519_ChaChaPoly_BLAKE2s. IK because the
// initiator knows the responder's static key from its contacts, and it
// completes in one round trip.
var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// prologuePrefix names the protocol version; the session ID follows, so a
// handshake only completes between the two ends of one offer/answer.
const prologuePrefix = "p2ptui/1 "

// handshake drives the two Noise IK messages.
//
// The initiator keeps its ephemeral private key and message 1 bytes and
// resends the same bytes until message 2 arrives. Because flynn/noise
// corrupts a HandshakeState when ReadMessage fails half-way (Rollback
// restores the hash but not the cipher key), every message 2 candidate is
// read by a fresh state rebuilt from the kept ephemeral: a forged message 2
// costs the attacker nothing and cannot break the real one.
//
// The responder answers the first message 1 that authenticates and caches
// (message 1, message 2); a retransmitted message 1 gets the same message 2
// again, without a new handshake state.
type handshake struct {
	ephemeral []byte // initiator: the ephemeral private key
	msg1      []byte // initiator: what we send; responder: what we accepted
	msg2      []byte // responder: our answer; initiator: what we accepted

	rto      time.Duration // initiator: current message 1 interval
	resendAt time.Time     // initiator: next message 1 retransmission
	sentAt   time.Time     // initiator: when message 1 last went out
	rttKnown bool          // initiator: rto follows a measured path RTT
	giveUpAt time.Time
}

func (m *Machine) noiseConfig(initiator bool, rng io.Reader) noise.Config {
	cfg := noise.Config{
		CipherSuite: noiseSuite,
		Random:      rng,
		Pattern:     noise.HandshakeIK,
		Initiator:   initiator,
		Prologue:    []byte(prologuePrefix + m.cfg.SessionID),
		StaticKeypair: noise.DHKey{
			Private: append([]byte(nil), m.cfg.LocalPrivate[:]...),
			Public:  append([]byte(nil), m.cfg.LocalPublic[:]...),
		},
	}
	if initiator {
		cfg.PeerStatic = append([]byte(nil), m.cfg.RemoteStatic[:]...)
	}
	return cfg
}

// initiatorState rebuilds the initiator's state after writing message 1
// with the kept ephemeral key; it also returns message 1.
func (h *handshake) initiatorState(m *Machine) (*noise.HandshakeState, []byte, error) {
	hs, err := noise.NewHandshakeState(m.noiseConfig(true, bytes.NewReader(h.ephemeral)))
	if err != nil {
		return nil, nil, fmt.Errorf("noise initiator: %w", err)
	}
	msg, _, _, err := hs.WriteMessage([]byte{typeHandshakeInit}, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("noise message 1: %w", err)
	}
	return hs, msg, nil
}

func (h *handshake) start(m *Machine, now time.Time) error {
	h.giveUpAt = now.Add(m.timers.HandshakeTimeout)
	if !m.cfg.Initiator {
		return nil
	}
	h.ephemeral = make([]byte, 32)
	if _, err := io.ReadFull(m.rand, h.ephemeral); err != nil {
		return fmt.Errorf("ephemeral key: %w", err)
	}
	_, msg1, err := h.initiatorState(m)
	if err != nil {
		return err
	}
	h.msg1 = msg1
	h.rto = m.timers.HandshakeInitialRTO
	if rtt := m.cfg.PathRTT; rtt > 0 {
		// The probes just measured this path: a lost message 1 is worth
		// resending after a few round trips, not after half a second.
		h.rto = rttRTO(m, rtt)
		h.rttKnown = true
	}
	h.sentAt = now
	h.resendAt = now.Add(h.rto)
	m.out = append(m.out, bytes.Clone(h.msg1))
	m.stats.DatagramsSent++
	return nil
}

func (h *handshake) deadline() time.Time { return sansio.Earliest(h.resendAt, h.giveUpAt) }

// rttRTO is the first message 1 interval for a measured round trip.
func rttRTO(m *Machine, rtt time.Duration) time.Duration {
	return min(max(HandshakeRTTFactor*rtt, HandshakeMinRTO), m.timers.HandshakeInitialRTO)
}

// learnRTT takes a round trip measured after the handshake started (the
// path was chosen on the peer's probe, before a reply of ours timed one):
// a message 1 still waiting on the unmeasured default is resent after a
// few round trips instead.
func (h *handshake) learnRTT(m *Machine, now time.Time, rtt time.Duration) {
	if !m.cfg.Initiator || h.rttKnown || h.msg2 != nil || h.resendAt.IsZero() || rtt <= 0 {
		return
	}
	h.rttKnown = true
	if r := rttRTO(m, rtt); r < h.rto {
		h.rto = r
		h.resendAt = sansio.Earliest(h.resendAt, h.sentAt.Add(r))
	}
}

func (h *handshake) timeout(m *Machine, now time.Time) {
	if !now.Before(h.giveUpAt) {
		m.fail(ReasonHandshakeTimeout, fmt.Sprintf("no answer within %v", m.timers.HandshakeTimeout))
		return
	}
	if !h.resendAt.IsZero() && !now.Before(h.resendAt) {
		h.rto = min(2*h.rto, m.timers.HandshakeMaxRTO)
		h.resendAt = now.Add(h.rto)
		h.sentAt = now
		m.out = append(m.out, bytes.Clone(h.msg1))
		m.stats.DatagramsSent++
		m.stats.HandshakeRetransmits++
	}
}

// handle processes a handshake datagram of the right length (packetType
// checked it). It may arrive in any state.
func (h *handshake) handle(m *Machine, now time.Time, typ byte, b []byte) {
	if m.cfg.Initiator != (typ == typeHandshakeResp) {
		m.stats.DroppedMalformed++ // our own kind of message reflected back
		return
	}
	if m.cfg.Initiator {
		h.handleResp(m, now, b)
	} else {
		h.handleInit(m, now, b)
	}
}

func (h *handshake) handleInit(m *Machine, now time.Time, b []byte) {
	if h.msg1 != nil {
		if bytes.Equal(b, h.msg1) {
			// Our message 2 was lost: answer the same again.
			m.out = append(m.out, bytes.Clone(h.msg2))
			m.stats.DatagramsSent++
			m.stats.HandshakeRetransmits++
		} else {
			m.stats.DroppedUnauthenticated++
		}
		return
	}
	hs, err := noise.NewHandshakeState(m.noiseConfig(false, m.rand))
	if err != nil {
		m.fail(ReasonBadConfig, err.Error())
		return
	}
	if _, _, _, err := hs.ReadMessage(nil, b[1:]); err != nil {
		m.stats.DroppedUnauthenticated++
		return
	}
	if subtle.ConstantTimeCompare(hs.PeerStatic(), m.cfg.RemoteStatic[:]) != 1 {
		// Someone who knows the session ID and my public key (anyone who
		// saw the path and my ID) can make a message 1 that authenticates
		// their own key. Ending the session for it would let them cut any
		// attempt short; dropping it lets the real one still complete.
		m.stats.WrongKey++
		return
	}
	msg2, cs1, cs2, err := hs.WriteMessage([]byte{typeHandshakeResp}, nil)
	if err != nil {
		m.fail(ReasonBadConfig, fmt.Sprintf("noise message 2: %v", err))
		return
	}
	h.msg1, h.msg2 = bytes.Clone(b), msg2
	m.out = append(m.out, bytes.Clone(msg2))
	m.stats.DatagramsSent++
	// cs1 encrypts initiator→responder, cs2 responder→initiator.
	m.establish(now, cs2, cs1)
}

func (h *handshake) handleResp(m *Machine, now time.Time, b []byte) {
	if h.msg2 != nil {
		if !bytes.Equal(b, h.msg2) {
			m.stats.DroppedUnauthenticated++
		}
		return // a duplicate of the answer we already used
	}
	hs, _, err := h.initiatorState(m)
	if err != nil {
		m.fail(ReasonBadConfig, err.Error())
		return
	}
	_, cs1, cs2, err := hs.ReadMessage(nil, b[1:])
	if err != nil {
		m.stats.DroppedUnauthenticated++
		return
	}
	h.msg2 = bytes.Clone(b)
	h.resendAt = time.Time{}
	m.establish(now, cs1, cs2)
}

// establish switches to transport keys. Cipher() hands out the raw AEAD
// with explicit nonces: our counter travels in every datagram.
func (m *Machine) establish(now time.Time, send, recv *noise.CipherState) {
	m.sendCipher = send.Cipher()
	m.recvCipher = recv.Cipher()
	m.state = stateEstablished
	m.lastHeard = now
	m.events = append(m.events, Established{RemoteStatic: m.cfg.RemoteStatic})
}
