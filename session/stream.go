package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Numbered streams. Besides the chat stream (stream 0, whose messages have
// IDs and delivery receipts the store keeps), a session carries up to
// MaxStreams numbered streams in each direction: reliable, ordered message
// streams with their own sequence space and flow-control window, sharing
// the path's RTT estimate and in-flight budget. File transfers run on them,
// so a big file never holds up a chat message: chat is sent first in every
// datagram and keeps ChatReserveFragments of the in-flight budget to
// itself, and the numbered streams take turns (StreamQuantum fragments at a
// time).
//
// A stream is one-way. The sender opens it (OpenStream) and numbers it from
// its own space; the receiver learns of it from its first fragment and
// reports its messages as StreamReceived. The receiver's owner must
// CommitStream every message it has consumed: only that opens the window
// (so a receiver whose disk is slow stops the sender instead of buffering
// without bound), and only that makes StreamDelivered fire on the sender's
// side. Either side can end a stream at any time: CloseStream on the
// sender, StopStream on the receiver, which makes the sender's side report
// StreamStopped. Neither end buffers anything for a closed stream.

// StreamID numbers a stream within one direction of one session.
type StreamID uint32

// chatStream is the stream chat messages travel on, in the original DATA and
// ACK frames.
const chatStream StreamID = 0

// StreamReceived is a complete message on one of the peer's numbered
// streams, in the order sent. Call CommitStream(Stream, Seq) when it has
// been consumed.
type StreamReceived struct {
	Stream StreamID
	Seq    uint64 // the message's index in the stream, from 0
	Body   []byte
}

// StreamDelivered reports that the peer committed every message of one of
// our streams up to and including Seq.
type StreamDelivered struct {
	Stream StreamID
	Seq    uint64
}

// StreamStopped reports that the peer refused or stopped one of our
// streams; it is closed on this side too and its undelivered messages are
// dropped.
type StreamStopped struct{ Stream StreamID }

func (StreamReceived) sessionEvent()  {}
func (StreamDelivered) sessionEvent() {}
func (StreamStopped) sessionEvent()   {}

// Errors of the stream methods.
var (
	// ErrTooManyStreams: MaxStreams streams are open already.
	ErrTooManyStreams = errors.New("too many open streams")
	// ErrNoStream: the stream is not open (never opened, closed, or stopped
	// by the peer).
	ErrNoStream = errors.New("no such open stream")
)

// OpenStream opens a new outgoing stream. Like Send, it may be called
// before the handshake completes.
func (m *Machine) OpenStream(now time.Time) (StreamID, error) {
	m.now = now
	if m.state == stateFailed {
		return 0, ErrClosed
	}
	if len(m.sout) >= MaxStreams {
		return 0, fmt.Errorf("open stream: %w (%d)", ErrTooManyStreams, MaxStreams)
	}
	if m.nextOut == 0 {
		m.nextOut = 1
	}
	if m.nextOut == ^StreamID(0) {
		return 0, errors.New("open stream: stream numbers exhausted")
	}
	id := m.nextOut
	m.nextOut++
	s := &sender{}
	s.init(id)
	m.sout = append(m.sout, s)
	return id, nil
}

// SendStream queues a message of at most MaxStreamMessageSize bytes on an
// open outgoing stream and returns its index in the stream (the Seq of the
// StreamDelivered that covers it). The machine keeps body until the message
// is delivered or the stream closes; the caller must not modify it.
// Nothing limits how much is queued: the caller keeps its own backlog
// bounded by waiting for StreamDelivered.
func (m *Machine) SendStream(now time.Time, id StreamID, body []byte) (uint64, error) {
	m.now = now
	if m.state == stateFailed {
		return 0, ErrClosed
	}
	s := m.outStream(id)
	if s == nil {
		return 0, fmt.Errorf("send on stream %d: %w", id, ErrNoStream)
	}
	if len(body) > MaxStreamMessageSize {
		return 0, fmt.Errorf("send %d bytes on stream %d: %w", len(body), id, ErrTooLarge)
	}
	return s.enqueue(now, MessageID{}, body, time.Time{}), nil
}

// CommitStream tells the machine the owner consumed message seq of the
// peer's stream id, so the window can move past it.
func (m *Machine) CommitStream(now time.Time, id StreamID, seq uint64) error {
	m.now = now
	if m.state == stateFailed {
		return ErrClosed
	}
	r := m.inStream(id)
	if r == nil {
		return fmt.Errorf("commit on stream %d: %w", id, ErrNoStream)
	}
	return r.commitSeq(seq)
}

// CloseStream ends one of our streams: what is queued or in flight is
// dropped. The peer's side stays until its owner stops it.
func (m *Machine) CloseStream(now time.Time, id StreamID) {
	m.now = now
	for i, s := range m.sout {
		if s.stream == id {
			s.forget(m)
			m.sout = append(m.sout[:i], m.sout[i+1:]...)
			return
		}
	}
}

// StopStream ends one of the peer's streams: what arrives for it from now
// on is dropped, and the peer is told to stop sending.
func (m *Machine) StopStream(now time.Time, id StreamID) {
	m.now = now
	for i, r := range m.sin {
		if r.stream == id {
			m.sin = append(m.sin[:i], m.sin[i+1:]...)
			m.queueStop(id)
			return
		}
	}
}

func (m *Machine) outStream(id StreamID) *sender {
	for _, s := range m.sout {
		if s.stream == id {
			return s
		}
	}
	return nil
}

func (m *Machine) inStream(id StreamID) *receiver {
	for _, r := range m.sin {
		if r.stream == id {
			return r
		}
	}
	return nil
}

// streamWindowBits is how many stream numbers below the highest one seen
// the receiver remembers individually (inSeen). The sender numbers its
// streams in order, so a stream whose first fragment arrives after
// fragments of 64 newer streams is taken as closed.
const streamWindowBits = 64

// incoming returns the receiver for the peer's stream id, opening it on its
// first fragment, or nil when the stream is closed or refused (then the
// peer is told to stop).
func (m *Machine) incoming(id StreamID) *receiver {
	if r := m.inStream(id); r != nil {
		return r
	}
	seen := true
	switch {
	case id > m.inHighest:
		shift := uint64(id - m.inHighest)
		if shift >= streamWindowBits {
			m.inSeen = 0
		} else {
			m.inSeen <<= shift
		}
		m.inHighest = id
		seen = false
	case uint64(m.inHighest-id) < streamWindowBits:
		bit := uint64(1) << (m.inHighest - id)
		seen = m.inSeen&bit != 0
	}
	if seen || len(m.sin) >= MaxStreams {
		m.markSeen(id)
		m.queueStop(id)
		return nil
	}
	m.markSeen(id)
	r := &receiver{}
	r.init(id)
	m.sin = append(m.sin, r)
	return r
}

func (m *Machine) markSeen(id StreamID) {
	if d := uint64(m.inHighest - id); d < streamWindowBits {
		m.inSeen |= 1 << d
	}
}

// queueStop schedules a STOP frame for the peer's stream id, once per
// flush however many of its fragments arrived.
func (m *Machine) queueStop(id StreamID) {
	for _, s := range m.stops {
		if s == id {
			return
		}
	}
	m.stops = append(m.stops, id)
}

// handleStop closes our stream id when the peer stopped it.
func (m *Machine) handleStop(id StreamID) {
	if m.outStream(id) == nil {
		return
	}
	m.CloseStream(m.now, id)
	m.events = append(m.events, StreamStopped{Stream: id})
}

func appendStopFrame(b []byte, id StreamID) []byte {
	b = append(b, frameStop)
	return binary.BigEndian.AppendUint32(b, uint32(id))
}

// PathChanged tells the machine its datagrams take another path from now
// on (the connection machine moved the session, say from a relay to a
// direct pair): the streams' window measures the new path's delay afresh
// instead of taking a longer path for a queue.
func (m *Machine) PathChanged(now time.Time) {
	m.now = now
	m.swin.forgetPath(now)
}
