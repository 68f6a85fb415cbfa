package punch

import "time"

// Every timer of the hole-punch machine, in one place, with where its
// number comes from. Config can override the first three per machine.
const (
	// DefaultKeepaliveInterval is how often a selected path is refreshed.
	// RFC 8445 section 11 (ICE keepalives, Tr) defaults to 15 s; RFC 4787
	// REQ-5 wants NAT UDP mappings to live at least 2 min, but many home
	// routers and Linux conntrack (nf_conntrack_udp_timeout = 30 s for a
	// one-way-ish flow) drop them after 30 s, so 15 s is half the shortest
	// timeout seen in practice.
	DefaultKeepaliveInterval = 15 * time.Second

	// DefaultPathTimeout is the silence after which a selected path is
	// declared lost: two keepalive intervals, so one lost keepalive (or one
	// skipped by a busy peer) is not mistaken for a dead path.
	DefaultPathTimeout = 30 * time.Second

	// DefaultPunchTimeout bounds punching. A working pair answers within a
	// few round trips of both sides starting (the simulation measures 1-2
	// RTT), and the probe schedule below sends about 25 probes per
	// candidate in 8 s, so even with 500 ms RTTs and heavy loss a pair that
	// works is found well before; past that the user is better served by a
	// clear "no direct path" than by waiting. (ICE implementations use
	// similar figures: pion/ice checks for 5-25 s.)
	DefaultPunchTimeout = 8 * time.Second
)

// The probe schedule: a round sends one probe to every target address.
const (
	// probeFastInterval is the spacing of the first rounds: RFC 8445
	// section 14.2's Ta pacing default of 50 ms. The first rounds matter
	// most, because the other side may start a little later (its answer
	// is still travelling through signalling) and the first probes to a
	// not-yet-opened NAT are dropped.
	probeFastInterval = 50 * time.Millisecond
	// probeFastRounds is how many rounds go at probeFastInterval: half a
	// second, about the spread of signalling latency between the two
	// sides' starts.
	probeFastRounds = 10
	// probeMaxInterval caps the doubling after the fast rounds: RFC 8489
	// section 6.2.1's initial RTO of 500 ms, so a long RTT path is still
	// probed about twice a second until the punch timeout.
	probeMaxInterval = 500 * time.Millisecond
)

// Bounds on what a peer (or an attacker) can make the machine remember.
const (
	// replayWindow is how many received transaction IDs are remembered to
	// reject replays: far more than a peer sends during punching (about
	// 25 rounds × 32 targets) plus hours of keepalives.
	replayWindow = 4096
	// maxTargets bounds probe targets: the peer's candidates plus
	// peer-reflexive addresses learned from authenticated probes.
	maxTargets = 2 * MaxCandidates
	// maxOutstanding bounds remembered probes awaiting a reply.
	maxOutstanding = 4096
)

// probeInterval is the gap after round n (1-based) of probes.
func probeInterval(round int) time.Duration {
	if round <= probeFastRounds {
		return probeFastInterval
	}
	d := probeFastInterval
	for i := probeFastRounds; i < round && d < probeMaxInterval; i++ {
		d *= 2
	}
	return min(d, probeMaxInterval)
}
