package session

import (
	"fmt"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
)

// Reliable ordered delivery. Every stream (the chat stream 0 and the
// numbered streams of stream.go) cuts its messages into fragments that take
// consecutive sequence numbers in the stream's own space, one per direction;
// acks name fragments (cumulative + selective ranges), and the same space
// carries the receipt ("every message below `committed` is stored") and the
// flow-control window ("send nothing at or above `window`"). The RTT
// estimate, the retransmission timeout and the in-flight budget belong to
// the path, so every stream of a session shares them (rttState,
// Machine.inflight).

// outFrag is a fragment on the sender side.
type outFrag struct {
	f        dataFrame // f.data aliases the caller's message body
	sent     bool
	acked    bool
	lost     bool      // queued for retransmission
	count    int       // transmissions so far
	lastSent time.Time // for RTT samples
	lastPkt  uint64    // counter of the datagram that last carried it, for loss detection
}

type pendingDelivery struct {
	id      MessageID // chat stream only
	msg     uint64    // the message's index in its stream
	lastSeq uint64
}

// rttState is the RFC 6298 estimate of the path, shared by every stream.
type rttState struct {
	srtt, rttvar, rto time.Duration
	hasRTT            bool
	minRTO, maxRTO    time.Duration
}

type sender struct {
	stream   StreamID
	fragSize int // body bytes per fragment in this stream's frame format
	maxMsg   int

	// frags[head:] are the fragments from the lowest unacked (base) to the
	// newest; the acked prefix frags[:head] is compacted away now and then
	// so the backing array is reused rather than regrown.
	frags    []outFrag
	head     int
	base     uint64
	next     uint64 // next sequence number to assign
	sendNext uint64 // lowest never-sent sequence number
	inflight int    // sent and not acked (this stream's share of Machine.inflight)
	lost     []uint64
	msgNext  uint64 // index of the next message enqueued

	peerWindow uint64 // the receiver accepts seq < peerWindow
	committed  uint64 // the receiver stored every message below this seq
	deliveries []pendingDelivery

	rtoAt time.Time

	// Receipt probes: when nothing is in flight but messages are not yet
	// delivered (a lost ack, or a closed window), a PING asks for a fresh ack.
	probeAt       time.Time
	probeInterval time.Duration
	probeDue      bool

	waitStart time.Time // when deliveries last became non-empty
}

// frag returns the fragment with sequence number seq (base <= seq < next).
func (s *sender) frag(seq uint64) *outFrag { return &s.frags[s.head+int(seq-s.base)] }

func (s *sender) init(stream StreamID) {
	s.stream = stream
	s.fragSize, s.maxMsg = fragmentSize, MaxMessageSize
	if stream != chatStream {
		s.fragSize, s.maxMsg = streamFragmentSize, MaxStreamMessageSize
	}
	// Before the first ack, assume the receiver's default window.
	s.peerWindow = RecvWindowFragments
}

// enqueue cuts a message into fragments and returns its index in the stream.
func (s *sender) enqueue(now time.Time, id MessageID, body []byte, sentAt time.Time) uint64 {
	if len(s.deliveries) == 0 {
		s.waitStart = now
	}
	var at int64
	if !sentAt.IsZero() {
		at = sentAt.UnixNano()
	}
	total := len(body)
	for off := 0; ; off += s.fragSize {
		end := min(off+s.fragSize, total)
		f := dataFrame{stream: s.stream, seq: s.next, first: off == 0, last: end == total, data: body[off:end:end]}
		if f.first {
			f.id, f.sentAt, f.total = id, at, uint32(total)
		}
		s.frags = append(s.frags, outFrag{f: f})
		s.next++
		if end == total {
			break
		}
	}
	msg := s.msgNext
	s.msgNext++
	s.deliveries = append(s.deliveries, pendingDelivery{id: id, msg: msg, lastSeq: s.next - 1})
	return msg
}

// emitLost hands the fragments taken as lost to add again, which returns the
// counter of the datagram the fragment went into.
func (s *sender) emitLost(m *Machine, now time.Time, add func(*dataFrame) uint64) {
	for _, seq := range s.lost {
		if seq < s.base {
			continue
		}
		of := s.frag(seq)
		if of.acked || !of.lost {
			continue
		}
		of.lost = false
		of.count++
		of.lastSent = now
		of.lastPkt = add(&of.f)
		m.stats.Retransmits++
	}
	s.lost = s.lost[:0]
}

// emitNew hands at most budget new fragments that the peer's window and the
// session's in-flight limit allow to add, and reports how many it sent.
func (s *sender) emitNew(m *Machine, now time.Time, limit, budget int, add func(*dataFrame) uint64) int {
	n := 0
	for n < budget && s.sendNext < s.next && m.inflight < limit && s.sendNext < s.peerWindow {
		of := s.frag(s.sendNext)
		of.sent, of.count, of.lastSent = true, 1, now
		of.lastPkt = add(&of.f)
		s.inflight++
		m.inflight++
		s.sendNext++
		n++
	}
	return n
}

// armTimers starts the retransmission timer when something is in flight and
// the receipt probe when only receipts are outstanding.
func (s *sender) armTimers(m *Machine, now time.Time) {
	if s.inflight > 0 && s.rtoAt.IsZero() {
		s.rtoAt = now.Add(m.rtt.rto)
	}
	s.scheduleProbe(m, now)
}

// scheduleProbe arms the receipt probe when only receipts are outstanding.
func (s *sender) scheduleProbe(m *Machine, now time.Time) {
	if s.inflight > 0 || len(s.deliveries) == 0 {
		s.probeAt, s.probeInterval = time.Time{}, 0
		return
	}
	if s.probeAt.IsZero() {
		if s.probeInterval == 0 {
			s.probeInterval = m.rtt.rto
		}
		s.probeAt = now.Add(s.probeInterval)
	}
}

func (s *sender) handleAck(m *Machine, now time.Time, a *ackFrame) {
	if a.cum > s.sendNext {
		m.fail(ReasonProtocolError, fmt.Sprintf("ack for fragment %d of stream %d that was never sent", a.cum-1, s.stream))
		return
	}
	if a.window > s.peerWindow {
		s.peerWindow = a.window
	}
	var largest *outFrag
	acked := 0
	mark := func(seq uint64) {
		of := s.frag(seq)
		if of.acked {
			return
		}
		of.acked = true
		acked++
		s.inflight--
		m.inflight--
		if largest == nil || of.f.seq > largest.f.seq {
			largest = of
		}
	}
	for seq := s.base; seq < a.cum; seq++ {
		mark(seq)
	}
	for _, r := range a.ranges {
		if r.end > s.sendNext {
			m.fail(ReasonProtocolError, fmt.Sprintf("ack for fragment %d of stream %d that was never sent", r.end-1, s.stream))
			return
		}
		for seq := max(r.start, s.base); seq < r.end; seq++ {
			mark(seq)
		}
	}
	if largest != nil {
		if largest.count == 1 {
			// Karn's algorithm: only unambiguous samples (RFC 6298 §3).
			r := now.Sub(largest.lastSent)
			m.rtt.sample(r)
			if s.stream != chatStream {
				m.swin.onAck(now, largest.lastSent, r, m.rtt.srtt, acked)
			}
		}
		s.detectLoss(m, now, largest)
		if s.inflight > 0 {
			s.rtoAt = now.Add(m.rtt.rto) // RFC 6298 §5.3
		} else {
			s.rtoAt = time.Time{}
		}
	}
	// Drop the acked prefix.
	k := s.head
	for k < len(s.frags) && s.frags[k].acked {
		k++
	}
	clear(s.frags[s.head:k]) // release the message bodies they point into
	s.base += uint64(k - s.head)
	s.head = k
	if s.head > len(s.frags)/2 {
		n := copy(s.frags, s.frags[s.head:])
		clear(s.frags[n:])
		s.frags, s.head = s.frags[:n], 0
	}

	if a.committed > s.committed {
		s.committed = a.committed
		k := 0
		for k < len(s.deliveries) && s.deliveries[k].lastSeq < s.committed {
			if s.stream == chatStream {
				m.events = append(m.events, Delivered{ID: s.deliveries[k].id})
			}
			k++
		}
		if k > 0 && s.stream != chatStream {
			m.events = append(m.events, StreamDelivered{Stream: s.stream, Seq: s.deliveries[k-1].msg})
		}
		s.deliveries = s.deliveries[k:]
		s.probeAt, s.probeInterval = time.Time{}, 0
		s.waitStart = now
	}
	s.scheduleProbe(m, now)
}

// detectLoss marks as lost every unacked fragment older than the newest
// acked one whose datagram went out at least LossReorderThreshold datagrams
// before that one's (RFC 9002 §6.1.1, packet threshold) and at least 9/8
// SRTT ago (§6.1.2's time threshold; requiring both, not either, keeps a
// reordered burst from being resent while it is still on its way).
func (s *sender) detectLoss(m *Machine, now time.Time, largest *outFrag) {
	if largest.lastPkt < LossReorderThreshold || !m.rtt.hasRTT {
		return
	}
	limit := largest.lastPkt - LossReorderThreshold
	sentBefore := now.Add(-m.rtt.srtt * 9 / 8)
	for seq := s.base; seq < largest.f.seq; seq++ {
		of := s.frag(seq)
		if of.sent && !of.acked && !of.lost && of.lastPkt <= limit && !of.lastSent.After(sentBefore) {
			of.lost = true
			s.lost = append(s.lost, seq)
		}
	}
}

// sample folds one RTT measurement into SRTT/RTTVAR (RFC 6298 §2.2–2.3).
func (r *rttState) sample(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if !r.hasRTT {
		r.hasRTT = true
		r.srtt, r.rttvar = d, d/2
	} else {
		diff := r.srtt - d
		if diff < 0 {
			diff = -diff
		}
		r.rttvar = (3*r.rttvar + diff) / 4
		r.srtt = (7*r.srtt + d) / 8
	}
	r.rto = min(max(r.srtt+max(ClockGranularity, 4*r.rttvar), r.minRTO), r.maxRTO)
}

// timeout runs the stream's timers; it reports whether the retransmission
// timer fired, so the machine backs the shared RTO off once however many
// streams time out together.
func (s *sender) timeout(m *Machine, now time.Time) (fired bool) {
	if !s.rtoAt.IsZero() && !now.Before(s.rtoAt) {
		// RFC 6298 §5.4–5.6: retransmit, back off, restart the timer. With
		// selective acks every fragment still unacked after a whole RTO is
		// taken as lost, not only the oldest.
		for seq := s.base; seq < s.sendNext; seq++ {
			of := s.frag(seq)
			if of.sent && !of.acked && !of.lost {
				of.lost = true
				s.lost = append(s.lost, of.f.seq)
			}
		}
		fired = true
	}
	if !s.probeAt.IsZero() && !now.Before(s.probeAt) {
		s.probeDue = true
		s.probeInterval = min(2*s.probeInterval, m.rtt.maxRTO)
		s.probeAt = now.Add(s.probeInterval)
	}
	return fired
}

// forget drops everything the stream has in flight from the session's
// budget, when the stream is closed.
func (s *sender) forget(m *Machine) {
	m.inflight -= s.inflight
	s.inflight = 0
	clear(s.frags)
	s.frags, s.lost, s.deliveries = nil, nil, nil
}

func (s *sender) deadline() time.Time { return sansio.Earliest(s.rtoAt, s.probeAt) }

// waitingSince reports whether messages await their receipt, and since when.
func (s *sender) waitingSince() (time.Time, bool) { return s.waitStart, len(s.deliveries) > 0 }

// inFrag is a fragment buffered out of order on the receiver side.
type inFrag struct {
	present bool
	f       dataFrame
	buf     []byte // owns f.data, reused across uses of the slot
}

type pendingCommit struct {
	id        MessageID // chat stream only
	msg       uint64
	lastSeq   uint64
	committed bool
}

type receiver struct {
	stream    StreamID
	cum       uint64 // next expected sequence number
	highest   uint64 // one past the highest received
	committed uint64 // every message below this seq is committed
	ring      []inFrag
	pending   []pendingCommit // delivered to the UI, in order, awaiting Commit
	msgNext   uint64          // index of the next message delivered

	// The message being reassembled.
	asm struct {
		active bool
		id     MessageID
		sentAt int64
		total  uint32
		body   []byte
	}

	ackPending bool
	ack        ackFrame
	plainBuf   []byte
	scratch    frame
}

func (r *receiver) init(stream StreamID) {
	r.stream = stream
	r.ring = make([]inFrag, RecvWindowFragments)
}

func (r *receiver) handleData(m *Machine, f *dataFrame) {
	r.ackPending = true
	if f.seq < r.cum {
		m.stats.DuplicateFragments++
		return
	}
	if f.seq >= r.committed+RecvWindowFragments {
		return // beyond the window we advertised: not acked, resent later
	}
	r.highest = max(r.highest, f.seq+1)
	if f.seq > r.cum {
		slot := &r.ring[f.seq%RecvWindowFragments]
		if slot.present {
			m.stats.DuplicateFragments++
			return
		}
		slot.present = true
		slot.buf = append(slot.buf[:0], f.data...)
		slot.f = *f
		slot.f.data = slot.buf
		return
	}
	r.deliver(m, f)
	for m.state != stateFailed {
		slot := &r.ring[r.cum%RecvWindowFragments]
		if !slot.present {
			break
		}
		slot.present = false
		r.deliver(m, &slot.f)
	}
}

// deliver appends the in-order fragment r.cum to the message being
// reassembled and reports the message when it is complete.
func (r *receiver) deliver(m *Machine, f *dataFrame) {
	r.cum++
	a := &r.asm
	if f.first {
		if a.active {
			m.fail(ReasonProtocolError, fmt.Sprintf("fragment %d of stream %d starts a message inside another", f.seq, r.stream))
			return
		}
		a.active, a.id, a.sentAt, a.total = true, f.id, f.sentAt, f.total
		a.body = make([]byte, 0, f.total)
	} else if !a.active {
		m.fail(ReasonProtocolError, fmt.Sprintf("fragment %d of stream %d continues no message", f.seq, r.stream))
		return
	}
	if len(a.body)+len(f.data) > int(a.total) {
		m.fail(ReasonProtocolError, fmt.Sprintf("fragment %d of stream %d overflows its message of %d bytes", f.seq, r.stream, a.total))
		return
	}
	a.body = append(a.body, f.data...)
	if !f.last {
		return
	}
	if len(a.body) != int(a.total) {
		m.fail(ReasonProtocolError, fmt.Sprintf("message ending at fragment %d of stream %d has %d of %d bytes", f.seq, r.stream, len(a.body), a.total))
		return
	}
	msg := r.msgNext
	r.msgNext++
	if r.stream == chatStream {
		var sentAt time.Time
		if a.sentAt != 0 {
			sentAt = time.Unix(0, a.sentAt)
		}
		m.events = append(m.events, Received{ID: a.id, Body: a.body, SentAt: sentAt})
	} else {
		m.events = append(m.events, StreamReceived{Stream: r.stream, Seq: msg, Body: a.body})
	}
	r.pending = append(r.pending, pendingCommit{id: a.id, msg: msg, lastSeq: f.seq})
	a.active, a.body = false, nil
}

// commit marks the chat message id as stored.
func (r *receiver) commit(id MessageID) error {
	for i := range r.pending {
		if p := &r.pending[i]; !p.committed && p.id == id {
			p.committed = true
			r.advance()
			return nil
		}
	}
	return fmt.Errorf("commit %s: %w", id, ErrUnknownMessage)
}

// commitSeq marks message msg of a numbered stream as consumed.
func (r *receiver) commitSeq(msg uint64) error {
	if len(r.pending) == 0 || msg < r.pending[0].msg || msg-r.pending[0].msg >= uint64(len(r.pending)) {
		return fmt.Errorf("commit message %d of stream %d: %w", msg, r.stream, ErrUnknownMessage)
	}
	p := &r.pending[msg-r.pending[0].msg]
	if p.committed {
		return fmt.Errorf("commit message %d of stream %d twice: %w", msg, r.stream, ErrUnknownMessage)
	}
	p.committed = true
	r.advance()
	return nil
}

// advance moves the commit frontier over the committed prefix of pending.
func (r *receiver) advance() {
	k := 0
	for k < len(r.pending) && r.pending[k].committed {
		r.committed = r.pending[k].lastSeq + 1
		k++
	}
	if k > 0 {
		r.pending = r.pending[k:]
		r.ackPending = true // the receipt, and a wider window
	}
}

// ackFrame describes what we hold: cum, up to MaxAckRanges runs above it,
// the commit frontier and the window.
func (r *receiver) ackFrame() *ackFrame {
	a := &r.ack
	a.stream = r.stream
	a.cum, a.committed, a.window = r.cum, r.committed, r.committed+RecvWindowFragments
	a.ranges = a.ranges[:0]
	for seq := r.cum + 1; seq < r.highest; seq++ {
		if !r.ring[seq%RecvWindowFragments].present {
			continue
		}
		if n := len(a.ranges); n > 0 && a.ranges[n-1].end == seq {
			a.ranges[n-1].end++
			continue
		}
		if len(a.ranges) == MaxAckRanges {
			break
		}
		a.ranges = append(a.ranges, ackRange{seq, seq + 1})
	}
	return a
}
