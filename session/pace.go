package session

import "time"

// streamWindow bounds the numbered streams' fragments in flight by the
// queue they build on the path, so a file crossing a slow link does not
// make every chat message wait behind a quarter megabyte of file data: a
// delay-based window after LEDBAT (RFC 6817), which BitTorrent uses for
// the same reason. The queueing delay is the recent RTT (the lowest of the
// last few samples, so one late packet is not taken for a queue) minus
// the lowest RTT seen lately. The window starts at StreamInitialWindow and
// doubles per round trip while the queue stays under half the target;
// after that it moves in proportion to how far the queue is from
// StreamQueueTarget, by at most one fragment per round trip (RFC 6817
// §2.4.2), and shrinks by a quarter per round trip while the queue is over
// twice the target. The streams' share of the in-flight budget caps it: a
// LAN or loopback reaches that cap within milliseconds. Chat is not
// limited by it.
type streamWindow struct {
	cwnd      float64
	slowStart bool
	base      [2]time.Duration // lowest RTT in this and the previous BaseRTTPeriod
	baseStart time.Time
	recent    [4]time.Duration // the last RTT samples
	n         int
	cut       time.Time // last multiplicative decrease
	since     time.Time // samples of fragments sent before are of an old path
}

const (
	// StreamQueueTarget is the queueing delay the numbered streams may add
	// to the path: well under the ~100 ms at which a person notices a
	// chat message lagging, above the jitter of an ordinary path.
	StreamQueueTarget = 25 * time.Millisecond
	// StreamMinWindow keeps the streams moving however delayed the path.
	StreamMinWindow = 8
	// StreamInitialWindow is where a session's streams start (37 KiB): a
	// slow link sees at most that much file data ahead of a chat message
	// before the first round trips tell how fast it is.
	StreamInitialWindow = 32
	// BaseRTTPeriod is how long the lowest RTT is remembered (two periods
	// are kept), so a path whose delay grew is measured anew within 20 s
	// even when nobody calls PathChanged (RFC 6817 §4.2 keeps minutes of
	// history; a chat's paths change more often than a server's).
	BaseRTTPeriod = 10 * time.Second

	maxStreamWindow = SendWindowFragments - ChatReserveFragments
)

func (w *streamWindow) init() { w.cwnd, w.slowStart = StreamInitialWindow, true }

// forgetPath drops the delay history, so fragments sent from now on set a
// new base, and probes the new path's capacity with a slow start.
func (w *streamWindow) forgetPath(now time.Time) {
	w.base, w.baseStart, w.n = [2]time.Duration{}, time.Time{}, 0
	w.since, w.slowStart = now, true
}

// window is the streams' in-flight limit in fragments.
func (w *streamWindow) window() int { return int(w.cwnd) }

// onAck takes an RTT sample of a stream fragment sent at sentAt, the
// smoothed RTT, and how many stream fragments the ack newly covered.
func (w *streamWindow) onAck(now, sentAt time.Time, sample, srtt time.Duration, acked int) {
	if sentAt.Before(w.since) {
		return
	}
	if w.baseStart.IsZero() || now.Sub(w.baseStart) >= BaseRTTPeriod {
		w.base[1], w.base[0], w.baseStart = w.base[0], sample, now
	} else {
		w.base[0] = min(w.base[0], sample)
	}
	base := w.base[0]
	if w.base[1] > 0 {
		base = min(base, w.base[1])
	}
	w.recent[w.n%len(w.recent)] = sample
	w.n++
	current := sample
	for _, r := range w.recent[:min(w.n, len(w.recent))] {
		current = min(current, r)
	}
	queue := current - base
	switch {
	case queue > 2*StreamQueueTarget:
		w.slowStart = false
		if now.Sub(w.cut) >= srtt {
			w.cwnd *= 0.75
			w.cut = now
		}
	case w.slowStart && queue < StreamQueueTarget/2:
		w.cwnd += float64(acked)
	default:
		w.slowStart = false
		off := float64(StreamQueueTarget-queue) / float64(StreamQueueTarget)
		w.cwnd += off * float64(acked) / w.cwnd
	}
	w.cwnd = min(max(w.cwnd, StreamMinWindow), maxStreamWindow)
}
