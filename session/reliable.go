package session

import (
	"fmt"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
)

// Reliable ordered delivery. Every message is cut into fragments that take
// consecutive sequence numbers in one space per direction; acks name
// fragments (cumulative + selective ranges), and the same space carries the
// receipt ("every message below `committed` is stored") and the flow-control
// window ("send nothing at or above `window`").

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
	id      MessageID
	lastSeq uint64
}

type sender struct {
	// frags[head:] are the fragments from the lowest unacked (base) to the
	// newest; the acked prefix frags[:head] is compacted away now and then
	// so the backing array is reused rather than regrown.
	frags    []outFrag
	head     int
	base     uint64
	next     uint64 // next sequence number to assign
	sendNext uint64 // lowest never-sent sequence number
	inflight int    // sent and not acked
	lost     []uint64

	peerWindow uint64 // the receiver accepts seq < peerWindow
	committed  uint64 // the receiver stored every message below this seq
	deliveries []pendingDelivery

	// RFC 6298 state.
	srtt, rttvar, rto time.Duration
	hasRTT            bool
	minRTO, maxRTO    time.Duration
	rtoAt             time.Time

	// Receipt probes: when nothing is in flight but messages are not yet
	// delivered (a lost ack, or a closed window), a PING asks for a fresh ack.
	probeAt       time.Time
	probeInterval time.Duration
	probeDue      bool

	waitStart time.Time // when deliveries last became non-empty
}

// frag returns the fragment with sequence number seq (base <= seq < next).
func (s *sender) frag(seq uint64) *outFrag { return &s.frags[s.head+int(seq-s.base)] }

func (s *sender) init(t Timers) {
	s.rto, s.minRTO, s.maxRTO = t.InitialRTO, t.MinRTO, t.MaxRTO
	// Before the first ack, assume the receiver's default window.
	s.peerWindow = RecvWindowFragments
}

func (s *sender) enqueue(now time.Time, msg OutMessage) {
	if len(s.deliveries) == 0 {
		s.waitStart = now
	}
	var sentAt int64
	if !msg.SentAt.IsZero() {
		sentAt = msg.SentAt.UnixNano()
	}
	body, total := msg.Body, len(msg.Body)
	for off := 0; ; off += fragmentSize {
		end := min(off+fragmentSize, total)
		f := dataFrame{seq: s.next, first: off == 0, last: end == total, data: body[off:end:end]}
		if f.first {
			f.id, f.sentAt, f.total = msg.ID, sentAt, uint32(total)
		}
		s.frags = append(s.frags, outFrag{f: f})
		s.next++
		if end == total {
			break
		}
	}
	s.deliveries = append(s.deliveries, pendingDelivery{id: msg.ID, lastSeq: s.next - 1})
}

// emit hands retransmissions, then new fragments the windows allow, to add,
// which returns the counter of the datagram the fragment went into.
func (s *sender) emit(m *Machine, now time.Time, add func(*dataFrame) uint64) {
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
	for s.sendNext < s.next && s.inflight < SendWindowFragments && s.sendNext < s.peerWindow {
		of := s.frag(s.sendNext)
		of.sent, of.count, of.lastSent = true, 1, now
		of.lastPkt = add(&of.f)
		s.inflight++
		s.sendNext++
	}
	if s.inflight > 0 && s.rtoAt.IsZero() {
		s.rtoAt = now.Add(s.rto)
	}
	s.scheduleProbe(now)
}

// scheduleProbe arms the receipt probe when only receipts are outstanding.
func (s *sender) scheduleProbe(now time.Time) {
	if s.inflight > 0 || len(s.deliveries) == 0 {
		s.probeAt, s.probeInterval = time.Time{}, 0
		return
	}
	if s.probeAt.IsZero() {
		if s.probeInterval == 0 {
			s.probeInterval = s.rto
		}
		s.probeAt = now.Add(s.probeInterval)
	}
}

func (s *sender) handleAck(m *Machine, now time.Time, a *ackFrame) {
	if a.cum > s.sendNext {
		m.fail(ReasonProtocolError, fmt.Sprintf("ack for fragment %d that was never sent", a.cum-1))
		return
	}
	if a.window > s.peerWindow {
		s.peerWindow = a.window
	}
	var largest *outFrag
	mark := func(seq uint64) {
		of := s.frag(seq)
		if of.acked {
			return
		}
		of.acked = true
		s.inflight--
		if largest == nil || of.f.seq > largest.f.seq {
			largest = of
		}
	}
	for seq := s.base; seq < a.cum; seq++ {
		mark(seq)
	}
	for _, r := range a.ranges {
		if r.end > s.sendNext {
			m.fail(ReasonProtocolError, fmt.Sprintf("ack for fragment %d that was never sent", r.end-1))
			return
		}
		for seq := max(r.start, s.base); seq < r.end; seq++ {
			mark(seq)
		}
	}
	if largest != nil {
		if largest.count == 1 {
			// Karn's algorithm: only unambiguous samples (RFC 6298 §3).
			s.sample(now.Sub(largest.lastSent))
		}
		s.detectLoss(now, largest)
		if s.inflight > 0 {
			s.rtoAt = now.Add(s.rto) // RFC 6298 §5.3
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
			m.events = append(m.events, Delivered{ID: s.deliveries[k].id})
			k++
		}
		s.deliveries = s.deliveries[k:]
		s.probeAt, s.probeInterval = time.Time{}, 0
		s.waitStart = now
	}
	s.scheduleProbe(now)
}

// detectLoss marks as lost every unacked fragment older than the newest
// acked one whose datagram went out at least LossReorderThreshold datagrams
// before that one's (RFC 9002 §6.1.1, packet threshold) and at least 9/8
// SRTT ago (§6.1.2's time threshold; requiring both, not either, keeps a
// reordered burst from being resent while it is still on its way).
func (s *sender) detectLoss(now time.Time, largest *outFrag) {
	if largest.lastPkt < LossReorderThreshold || !s.hasRTT {
		return
	}
	limit := largest.lastPkt - LossReorderThreshold
	sentBefore := now.Add(-s.srtt * 9 / 8)
	for seq := s.base; seq < largest.f.seq; seq++ {
		of := s.frag(seq)
		if of.sent && !of.acked && !of.lost && of.lastPkt <= limit && !of.lastSent.After(sentBefore) {
			of.lost = true
			s.lost = append(s.lost, seq)
		}
	}
}

// sample folds one RTT measurement into SRTT/RTTVAR (RFC 6298 §2.2–2.3).
func (s *sender) sample(r time.Duration) {
	if r < 0 {
		r = 0
	}
	if !s.hasRTT {
		s.hasRTT = true
		s.srtt, s.rttvar = r, r/2
	} else {
		diff := s.srtt - r
		if diff < 0 {
			diff = -diff
		}
		s.rttvar = (3*s.rttvar + diff) / 4
		s.srtt = (7*s.srtt + r) / 8
	}
	s.rto = min(max(s.srtt+max(ClockGranularity, 4*s.rttvar), s.minRTO), s.maxRTO)
}

func (s *sender) timeout(m *Machine, now time.Time) {
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
		s.rto = min(2*s.rto, s.maxRTO)
		s.rtoAt = now.Add(s.rto)
	}
	if !s.probeAt.IsZero() && !now.Before(s.probeAt) {
		s.probeDue = true
		s.probeInterval = min(2*s.probeInterval, s.maxRTO)
		s.probeAt = now.Add(s.probeInterval)
	}
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
	id        MessageID
	lastSeq   uint64
	committed bool
}

type receiver struct {
	cum       uint64 // next expected sequence number
	highest   uint64 // one past the highest received
	committed uint64 // every message below this seq is committed
	ring      []inFrag
	pending   []pendingCommit // delivered to the UI, in order, awaiting Commit

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

func (r *receiver) init() { r.ring = make([]inFrag, RecvWindowFragments) }

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
			m.fail(ReasonProtocolError, fmt.Sprintf("fragment %d starts a message inside another", f.seq))
			return
		}
		a.active, a.id, a.sentAt, a.total = true, f.id, f.sentAt, f.total
		a.body = make([]byte, 0, f.total)
	} else if !a.active {
		m.fail(ReasonProtocolError, fmt.Sprintf("fragment %d continues no message", f.seq))
		return
	}
	if len(a.body)+len(f.data) > int(a.total) {
		m.fail(ReasonProtocolError, fmt.Sprintf("fragment %d overflows its message of %d bytes", f.seq, a.total))
		return
	}
	a.body = append(a.body, f.data...)
	if !f.last {
		return
	}
	if len(a.body) != int(a.total) {
		m.fail(ReasonProtocolError, fmt.Sprintf("message ending at fragment %d has %d of %d bytes", f.seq, len(a.body), a.total))
		return
	}
	var sentAt time.Time
	if a.sentAt != 0 {
		sentAt = time.Unix(0, a.sentAt)
	}
	m.events = append(m.events, Received{ID: a.id, Body: a.body, SentAt: sentAt})
	r.pending = append(r.pending, pendingCommit{id: a.id, lastSeq: f.seq})
	a.active, a.body = false, nil
}

func (r *receiver) commit(id MessageID) error {
	found := false
	for i := range r.pending {
		if p := &r.pending[i]; !p.committed && p.id == id {
			p.committed, found = true, true
			break
		}
	}
	if !found {
		return fmt.Errorf("commit %s: %w", id, ErrUnknownMessage)
	}
	k := 0
	for k < len(r.pending) && r.pending[k].committed {
		r.committed = r.pending[k].lastSeq + 1
		k++
	}
	if k > 0 {
		r.pending = r.pending[k:]
		r.ackPending = true // the receipt, and a wider window
	}
	return nil
}

// ackFrame describes what we hold: cum, up to MaxAckRanges runs above it,
// the commit frontier and the window.
func (r *receiver) ackFrame() *ackFrame {
	a := &r.ack
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
