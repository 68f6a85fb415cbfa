package punch

import (
	"cmp"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// PredictionSide says whether birthday probing (PathPredicted) can help
// between this side's NAT and the peer's, and if so whether this side is
// the symmetric one (it opens extra sockets) or the cone one (it probes
// ports). It applies when one NAT is symmetric and the other maps
// endpoint-independently but filters by port, or in a way not measured:
// against a full-cone or address-restricted NAT, or no NAT, the direct
// path works without it, and between two symmetric NATs neither side has
// a fixed address for the other to aim at.
func PredictionSide(local, remote NATBehavior) (symmetric, ok bool) {
	portFiltered := func(b NATBehavior) bool {
		return b.Mapping == MappingEndpointIndependent &&
			(b.Filtering == FilteringAddressAndPortDependent || b.Filtering == FilteringUnknown)
	}
	switch {
	case local.Symmetric() && portFiltered(remote):
		return true, true
	case remote.Symmetric() && portFiltered(local):
		return false, true
	}
	return false, false
}

// birthday is a PathPredicted machine's own state. The symmetric side
// ("opener") gets extra sockets from its owner and sends from each to the
// cone side's reflexive address, which gives each a fresh mapping on its
// NAT; the cone side ("prober") sends to ports of the symmetric side's
// public IP, each opening its own NAT to that port. A probe that lands on
// a mapping (or a socket's packet that lands on a port the cone side
// probed) is answered like any probe, and the machine selects as usual.
type birthday struct {
	opener bool
	// peer is the other side's IPv4 reflexive address: where the
	// opener's sockets send, or the IP (and base port) the prober probes.
	peer netip.AddrPort
	rng  *rand.Rand

	// The opener's extra sockets (held until handed back) and rounds.
	asked   bool
	sockets []SocketID
	opened  int
	round   int
	next    time.Time

	// The prober's ports tried, probes sent and next prediction.
	step   int
	tried  [65536 / 64]uint64
	probes int
	k      int
	hits   int // predicted ports tried
}

func newBirthday(cfg Config, rnd io.Reader) (*birthday, error) {
	symmetric, _ := PredictionSide(cfg.LocalNAT, cfg.RemoteNAT)
	var seed [32]byte
	if _, err := io.ReadFull(rnd, seed[:]); err != nil {
		return nil, fmt.Errorf("punch: seed birthday probing: %w", err)
	}
	b := &birthday{opener: symmetric, rng: rand.New(rand.NewChaCha8(seed))}
	remote := slices.Clone(cfg.Remote)
	slices.SortStableFunc(remote, func(a, b Candidate) int { return cmp.Compare(b.Priority, a.Priority) })
	for _, c := range remote {
		if c.Type == CandidateServerReflexive && c.Addr.Addr().Unmap().Is4() && c.Addr.Port() != 0 {
			b.peer = netip.AddrPortFrom(c.Addr.Addr().Unmap(), c.Addr.Port())
			break
		}
	}
	if !b.opener && b.peer.IsValid() {
		b.step = cfg.RemoteNAT.PortStep
		// The peer's mapping towards its STUN servers is not one towards
		// us: no use probing it.
		b.mark(int(b.peer.Port()))
		if b.step != 0 {
			b.mark(int(b.peer.Port()) + b.step)
		}
	}
	return b, nil
}

func (b *birthday) mark(port int) {
	if port >= 0 && port < 65536 {
		b.tried[port/64] |= 1 << (port % 64)
	}
}

func (b *birthday) isTried(port int) bool {
	return b.tried[port/64]&(1<<(port%64)) != 0
}

// start asks for the extra sockets (opener) or sends the first probes.
func (b *birthday) start(m *Machine, now time.Time) {
	if b.opener {
		b.asked = true
		m.ev = append(m.ev, SocketsWanted{Count: birthdaySockets})
		return
	}
	b.probeBatch(m, now)
}

// SocketsOpened gives a PathPredicted machine the extra sockets it asked
// for (SocketsWanted): it sends from each at once. Sockets it cannot use
// (too many, unasked for, or arriving after punching ended) are handed
// straight back with SocketsDone.
func (m *Machine) SocketsOpened(now time.Time, ids []SocketID) {
	b := m.bd
	if b == nil || !b.opener || !b.asked || m.state != statePunching {
		if len(ids) > 0 {
			m.ev = append(m.ev, SocketsDone{IDs: slices.Clone(ids)})
		}
		return
	}
	var extra []SocketID
	for _, id := range ids {
		if b.opened == birthdaySockets || id == MainSocket || slices.Contains(b.sockets, id) {
			extra = append(extra, id)
			continue
		}
		b.opened++
		b.sockets = append(b.sockets, id)
		m.targets = append(m.targets, &target{socket: id, addr: b.peer, label: "srflx"})
		m.sendProbe(now, id, b.peer)
		m.targets[len(m.targets)-1].sent++
	}
	if len(extra) > 0 {
		m.ev = append(m.ev, SocketsDone{IDs: extra})
	}
	if b.next.IsZero() {
		b.round = 1
		b.next = now.Add(b.resendGap())
	}
}

// Sockets lists the extra sockets a PathPredicted machine holds: an owner
// that abandons the machine (another path won) closes them.
func (m *Machine) Sockets() []SocketID {
	if m.bd == nil {
		return nil
	}
	return slices.Clone(m.bd.sockets)
}

// resendGap is the wait after the opener's round b.round: 500 ms,
// doubling, capped at birthdayResendMax.
func (b *birthday) resendGap() time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < b.round && d < birthdayResendMax; i++ {
		d *= 2
	}
	return min(d, birthdayResendMax)
}

// timeout runs the birthday schedule.
func (b *birthday) timeout(m *Machine, now time.Time) {
	if b.next.IsZero() || now.Before(b.next) {
		return
	}
	if !b.opener {
		b.probeBatch(m, now)
		return
	}
	for _, t := range m.targets {
		if t.socket != MainSocket && t.addr == b.peer && slices.Contains(b.sockets, t.socket) {
			m.sendProbe(now, t.socket, t.addr)
			t.sent++
		}
	}
	b.round++
	b.next = now.Add(b.resendGap())
}

// probeBatch sends the prober's next probes at birthdayRate.
func (b *birthday) probeBatch(m *Machine, now time.Time) {
	n := min(birthdayRate*int(birthdayTick)/int(time.Second), birthdayMaxProbes-b.probes)
	for range n {
		port, ok := b.nextPort()
		if !ok {
			break
		}
		m.sendProbe(now, MainSocket, netip.AddrPortFrom(b.peer.Addr(), uint16(port)))
		b.probes++
	}
	b.next = time.Time{}
	if b.probes < birthdayMaxProbes {
		b.next = now.Add(birthdayTick)
	}
}

// nextPort is the next port to probe: the predicted ones first when the
// peer's NAT allocates in sequence, then random ones, each port once.
func (b *birthday) nextPort() (int, bool) {
	for b.step != 0 && b.k < birthdayPredictions {
		b.k++
		// The peer's two STUN mappings took base and base+step: its next
		// ones follow from base+2*step.
		p := int(b.peer.Port()) + b.step*(b.k+1)
		if p < birthdayLowPort || p > 65535 {
			b.k = birthdayPredictions
			break
		}
		if !b.isTried(p) {
			b.mark(p)
			b.hits++
			return p, true
		}
	}
	free := 65536 - birthdayLowPort
	for range free { // practically once or twice: at most 2,048 of 64,512 are taken
		p := birthdayLowPort + b.rng.IntN(free)
		if !b.isTried(p) {
			b.mark(p)
			return p, true
		}
	}
	return 0, false
}

// deadline is the birthday schedule's next instant (zero: none).
func (b *birthday) deadline() time.Time { return b.next }

// release hands back every extra socket except keep (MainSocket, never an
// extra socket, to keep none).
func (b *birthday) release(m *Machine, keep SocketID) {
	var done []SocketID
	kept := b.sockets[:0]
	for _, id := range b.sockets {
		if id == keep {
			kept = append(kept, id)
		} else {
			done = append(done, id)
		}
	}
	b.sockets = kept
	b.next = time.Time{}
	if len(done) > 0 {
		m.ev = append(m.ev, SocketsDone{IDs: done})
	}
}

// describe says what birthday probing did, for a failure's detail.
func (b *birthday) describe(d *strings.Builder, m *Machine) {
	if b.opener {
		fmt.Fprintf(d, "birthday probing: %d extra socket(s) sent to %v in %d round(s)", b.opened, b.peer, b.round)
		if b.opened == 0 {
			d.WriteString(" (none could be opened)")
		}
	} else {
		fmt.Fprintf(d, "birthday probing: %d probe(s) at %d/s to ports of %v", b.probes, birthdayRate, b.peer.Addr())
		if b.step != 0 {
			fmt.Fprintf(d, ", %d of them predicted from a port step of %d", b.hits, b.step)
		}
	}
	d.WriteString(" over " + m.cfg.PunchTimeout.String() + ", nothing answered;")
}
