package session

import (
	"math"
	"time"
)

// maxCounter is never used as a nonce: Noise reserves 2^64-1 (rekey), and
// the replay window needs highest+1 to fit. A session never gets near it.
const maxCounter = math.MaxUint64

// handleTransport authenticates, replay-checks and applies one transport
// datagram. Anything wrong drops the datagram and counts it; only an
// authenticated peer breaking the protocol ends the session.
func (m *Machine) handleTransport(now time.Time, b []byte) {
	counter, header, ct, err := parseTransportHeader(b)
	if err != nil {
		m.stats.DroppedMalformed++
		return
	}
	if m.state != stateEstablished {
		// The responder may send before our message 2 arrived; it will
		// retransmit.
		m.stats.DroppedMalformed++
		return
	}
	if !m.replay.Check(counter) {
		m.stats.Replays++
		return
	}
	plain, err := m.recvCipher.Decrypt(m.rcv.plainBuf[:0], counter, header, ct)
	if err != nil {
		m.stats.DroppedUnauthenticated++
		return
	}
	m.rcv.plainBuf = plain[:0]
	if err := validateFrames(plain, &m.rcv.scratch); err != nil {
		// Authentic but unparseable: a peer bug. Dropping it (without
		// marking the counter) keeps the session alive.
		m.stats.DroppedMalformed++
		return
	}
	m.replay.Accept(counter)
	m.stats.DatagramsReceived++
	m.stats.BytesReceived += uint64(len(b))
	m.lastHeard = now
	for rest := plain; len(rest) > 0; {
		f := &m.rcv.scratch
		rest, _ = nextFrame(rest, f)
		switch f.kind {
		case frameData:
			m.rcv.handleData(m, &f.data)
		case frameAck:
			m.snd.handleAck(m, now, &f.ack)
		case framePing:
			m.rcv.ackPending = true
		case frameTyping:
			m.handleTyping(now, f.typing)
		case frameClose:
			m.fail(ReasonPeerClosed, "")
		}
		if m.state == stateFailed {
			return
		}
	}
}

func (m *Machine) handleTyping(now time.Time, active bool) {
	if active {
		m.typingRemoteEnd = now.Add(m.timers.TypingExpiry)
	}
	if active != m.typingRemote {
		m.typingRemote = active
		m.events = append(m.events, Typing{Active: active})
	}
}

// flush packs pending acks, the typing frame, probes, retransmissions and new
// fragments into as few datagrams as fit in MaxDatagramSize.
func (m *Machine) flush(now time.Time) {
	p := m.payload[:0]
	if m.rcv.ackPending {
		m.rcv.ackPending = false
		p = appendAckFrame(p, m.rcv.ackFrame())
	}
	if m.typingDirty {
		m.typingDirty = false
		m.typingSentAt = now
		active := byte(0)
		if m.typingLocal {
			active = 1
		}
		p = append(p, frameTyping, active)
	}
	if m.snd.probeDue {
		m.snd.probeDue = false
		p = append(p, framePing)
	}
	m.snd.emit(m, now, func(f *dataFrame) uint64 {
		if len(p)+f.encodedLen() > maxPayload {
			m.seal(p)
			p = p[:0]
		}
		p = appendDataFrame(p, f)
		return m.sendCounter // the datagram p will be sealed into
	})
	if len(p) > 0 {
		m.seal(p)
	}
	m.payload = p[:0]
}

// seal encrypts one plaintext into a transport datagram and queues it.
func (m *Machine) seal(plain []byte) {
	if m.sendCounter >= maxCounter-1 {
		m.fail(ReasonProtocolError, "nonce space exhausted")
		return
	}
	n := m.sendCounter
	m.sendCounter++
	b := make([]byte, 0, transportOverhead+len(plain))
	b = appendTransportHeader(b, n)
	b = m.sendCipher.Encrypt(b, n, b[:transportHeaderLen], plain)
	m.out = append(m.out, b)
	m.stats.DatagramsSent++
}
