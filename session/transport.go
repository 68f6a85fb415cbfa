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
		case frameSData:
			if r := m.incoming(f.data.stream); r != nil {
				r.handleData(m, &f.data)
			}
		case frameSAck:
			// An ack for a stream we closed is old news.
			if s := m.outStream(f.ack.stream); s != nil {
				s.handleAck(m, now, &f.ack)
			}
		case frameStop:
			m.handleStop(f.stream)
		case framePing:
			m.rcv.ackPending = true
			for _, r := range m.sin {
				r.ackPending = true
			}
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
// fragments into as few datagrams as fit in MaxDatagramSize. Chat goes
// before the numbered streams, which take turns.
func (m *Machine) flush(now time.Time) {
	p := m.payload[:0]
	// room makes space for n more bytes, sealing the datagram when full.
	room := func(n int) {
		if len(p)+n > maxPayload {
			m.seal(p)
			p = p[:0]
		}
	}
	if m.rcv.ackPending {
		m.rcv.ackPending = false
		p = appendAckFrame(p, m.rcv.ackFrame())
	}
	for _, r := range m.sin {
		if r.ackPending {
			r.ackPending = false
			a := r.ackFrame()
			room(5 + ackFixedLen + len(a.ranges)*ackRangeLen)
			p = appendStreamAckFrame(p, a)
		}
	}
	for _, id := range m.stops {
		room(stopLen)
		p = appendStopFrame(p, id)
	}
	m.stops = m.stops[:0]
	if m.typingDirty {
		m.typingDirty = false
		m.typingSentAt = now
		active := byte(0)
		if m.typingLocal {
			active = 1
		}
		p = append(p, frameTyping, active)
	}
	probe := m.snd.probeDue
	m.snd.probeDue = false
	for _, s := range m.sout {
		probe = probe || s.probeDue
		s.probeDue = false
	}
	if probe {
		room(1)
		p = append(p, framePing)
	}
	add := func(f *dataFrame) uint64 {
		room(f.encodedLen())
		p = appendAnyDataFrame(p, f)
		return m.sendCounter // the datagram p will be sealed into
	}
	m.snd.emitLost(m, now, add)
	m.snd.emitNew(m, now, SendWindowFragments, int(^uint(0)>>1), add)
	m.snd.armTimers(m, now)
	if n := len(m.sout); n > 0 {
		for _, s := range m.sout {
			s.emitLost(m, now, add)
		}
		// Round robin, StreamQuantum fragments a turn, starting with a
		// different stream each flush; chat keeps its reserve, and the
		// streams together stay within their delay-based window.
		limit := min(SendWindowFragments-ChatReserveFragments, m.snd.inflight+m.swin.window())
		m.rr = (m.rr + 1) % n
		for sent := true; sent && m.inflight < limit; {
			sent = false
			for i := range n {
				if m.sout[(m.rr+i)%n].emitNew(m, now, limit, StreamQuantum, add) > 0 {
					sent = true
				}
			}
		}
		for _, s := range m.sout {
			s.armTimers(m, now)
		}
	}
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
