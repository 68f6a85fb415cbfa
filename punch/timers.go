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

	// DefaultPredictTimeout bounds birthday probing: the cone side's
	// 2,048 probes at 250 a second take 8.2 s, and an answer to the last
	// needs a round trip more.
	DefaultPredictTimeout = 10 * time.Second
)

// ipv6Grace is how long the controlling side holds a working IPv4 pair
// while an IPv6 pair, probed at the same moment, may still answer: both
// sides have global IPv6 addresses, and IPv6 pairs cross no NAT (RFC 8421
// prefers them). RFC 8305 section 3 waits 50 ms for an IPv6 answer before
// taking IPv4 when resolving names; the same patience here costs a direct
// IPv4 path at most 50 ms, and only on dual-stack pairs.
const ipv6Grace = 50 * time.Millisecond

// Birthday probing (PathPredicted). With n mappings open on the
// symmetric side and k random ports probed out of the 64,512 a Linux NAT
// chooses from (1024-65535), a probe hits with probability about n/64,512
// each: 256 sockets and 1,024 probes give 1 - e^(-256*1024/64512), 98%;
// 2,048 probes, 99.97%.
const (
	// birthdaySockets is how many extra sockets the symmetric side asks
	// for: the bound, and the descriptors a process can spare.
	birthdaySockets = 256
	// birthdayRate is the cone side's probes per second: fast enough for
	// 90% within 5 s, slow enough (250 × 55 bytes ≈ 14 kB/s) not to look
	// like a flood to the NATs and networks in between.
	birthdayRate = 250
	// birthdayMaxProbes bounds the cone side's probes in all.
	birthdayMaxProbes = 2048
	// birthdayTick batches the cone side's probes: 5 probes every 20 ms
	// keep the rate without a timer per probe.
	birthdayTick = 20 * time.Millisecond
	// birthdayPredictions is how many predicted ports the cone side tries
	// first when the peer's NAT allocates in sequence: the 256 sockets'
	// mappings plus four times as many allocated by other traffic in
	// between.
	birthdayPredictions = 1280
	// birthdayResendMax caps the doubling gap (from 500 ms) between the
	// symmetric side's rounds over its extra sockets. A round renews
	// their mappings (Linux forgets an unanswered one after 30 s) and
	// catches collisions where the cone side probed a port before the
	// mapping existed: its own NAT then admits that port's next packet.
	birthdayResendMax = 4 * time.Second
	// birthdayLowPort is the first port a NAT hands out (Linux maps
	// source ports of 1024 and above into 1024-65535).
	birthdayLowPort = 1024
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
	// maxPairs bounds the pairs made from the peer's candidates and this
	// side's sockets; maxTargets bounds them together with the
	// peer-reflexive addresses learned from authenticated probes (plus
	// birthdaySockets for the symmetric side of birthday probing).
	maxPairs   = 2 * MaxCandidates
	maxTargets = maxPairs + MaxCandidates
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
