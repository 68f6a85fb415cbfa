package punch

// A deterministic simulated network for the hole-punch machine: a priority
// queue of datagrams ordered by delivery time, NATs as maps, a seeded
// random source for loss, duplication, reordering (jitter) and NAT port
// choice. Same seed, same run.
//
// What is modelled (RFC 4787 terms):
//   - open: no NAT, no firewall; the host's address is public.
//   - full-cone: endpoint-independent mapping and filtering.
//   - address-restricted: endpoint-independent mapping, address-dependent
//     filtering (inbound from any port of an IP the inside host sent to).
//   - port-restricted: endpoint-independent mapping, address-and-port-
//     dependent filtering (Linux MASQUERADE).
//   - symmetric: address-and-port-dependent mapping (a new random port per
//     destination) and filtering (MASQUERADE --random-fully).
//   - sequential symmetric: the same, but each new mapping takes the next
//     port or one a little further on (other traffic took those between),
//     as many carrier-grade NATs do.
//
// Ports are drawn from 1024-65535, as Linux's NAT does.
//
// Every NAT has one public IP ("paired" pooling, RFC 4787 REQ-2), mappings
// are refreshed by outbound packets only (REQ-6's MUST; inbound refresh is
// a MAY) and expire after an idle timeout, and there is no hairpinning (a
// packet from inside to the NAT's own public address is dropped), which
// is the common case and the one that forces same-NAT peers onto host
// candidates. Hosts behind a NAT reach each other directly on its LAN.
//
// With one public IP per NAT, symmetric vs address-restricted connects: the
// restricted side has sent to the symmetric side's public IP (at its STUN
// port), and address-dependent filtering then admits the symmetric side's
// fresh port on that IP. Symmetric vs port-restricted and vs symmetric fail:
// neither side can learn the port the other's NAT will use.
//
// STUN is not simulated packet by packet: each host behind a NAT gets a
// mapping towards a STUN server address at setup, as discovery would leave
// it, and reports its NAT's mapping behaviour the way our discovery does
// (mapping measured, filtering unknown: coturn cannot test it).

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/punch/simnet"
)

type simKind = simnet.Kind

const (
	simOpen           = simnet.Open
	simFullCone       = simnet.FullCone
	simAddrRestricted = simnet.AddrRestricted
	simPortRestricted = simnet.PortRestricted
	simSymmetric      = simnet.Symmetric
	simSequential     = simnet.Sequential
	simKinds          = simnet.Kinds
)

// simBehavior is what our STUN discovery would report for the kind; with
// filteringKnown, also the filtering (as an RFC 5780-capable server would).
func simBehavior(k simKind, filteringKnown bool) NATBehavior {
	b := NATBehavior{}
	switch k {
	case simOpen:
		return NATBehavior{Mapping: MappingNone}
	case simSymmetric, simSequential:
		b.Mapping = MappingAddressAndPortDependent
	default:
		b.Mapping = MappingEndpointIndependent
	}
	if filteringKnown {
		b.Filtering = [...]FilteringBehavior{0, FilteringEndpointIndependent, FilteringAddressDependent,
			FilteringAddressAndPortDependent, FilteringAddressAndPortDependent, FilteringAddressAndPortDependent}[k]
	}
	return b
}

// simExpectConnect is the outcome the model predicts.
func simExpectConnect(a, b simKind) bool { return simnet.ExpectConnect(a, b) }

var (
	simSTUN  = netip.MustParseAddrPort("203.0.113.250:3478")
	simSTUN2 = netip.MustParseAddrPort("203.0.113.251:3478")
)

type simNAT = simnet.NAT

type simHost struct {
	name    string
	addr    netip.AddrPort // the main socket's own address
	nat     *simNAT        // nil: open
	m       *Machine
	startAt time.Time
	started bool

	selected   *PathSelected
	selectedAt time.Time
	failed     *Failed
	lost       time.Time
	inbox      []simPacket // non-punch packets delivered

	// more are machines of other path kinds beside m, as an owner runs
	// them over the same sockets; their outcomes go to moreSel/moreFail.
	more     []*Machine
	moreSel  map[PathKind]PathSelected
	moreFail map[PathKind]Failed
	// extra are the extra sockets the owner opened (birthday probing),
	// by ID; extraOpened counts every one ever opened.
	extra       map[SocketID]netip.AddrPort
	extraOpened int
}

func (h *simHost) machines() []*Machine {
	if h.m == nil {
		return h.more
	}
	return append([]*Machine{h.m}, h.more...)
}

// socketAddr is the inside address of one of the host's sockets.
func (h *simHost) socketAddr(id SocketID) (netip.AddrPort, bool) {
	if id == MainSocket {
		return h.addr, true
	}
	a, ok := h.extra[id]
	return a, ok
}

// socketAt is the socket bound to the inside address a.
func (h *simHost) socketAt(a netip.AddrPort) (SocketID, bool) {
	if a == h.addr {
		return MainSocket, true
	}
	for id, x := range h.extra {
		if x == a {
			return id, true
		}
	}
	return 0, false
}

type simPacket struct {
	at   time.Time
	seq  int
	from netip.AddrPort
	to   netip.AddrPort
	host *simHost // set for LAN deliveries: already routed
	sock SocketID // with host: the socket it reaches
	data []byte
	// lossless packets (the test's own checks) skip loss and duplication
	lossless bool
}

type simQueue []simPacket

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simPacket)) }
func (q *simQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

type simNet struct {
	now    time.Time
	rng    *rand.Rand
	q      simQueue
	seq    int
	nats   []*simNAT
	hosts  []*simHost
	loss   float64
	dup    float64
	delay  time.Duration // one-way, internet
	jitter time.Duration // extra uniform delay: reorders packets
	lan    time.Duration // one-way, LAN
	// tap, if set, sees every packet put on the internet (an on-path
	// observer) at the instant it is sent.
	tap func(from, to netip.AddrPort, data []byte)
	// delivered counts packets handed to hosts.
	delivered int
}

func newSimNet(seed uint64) *simNet {
	return &simNet{
		now:   machEpoch,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		delay: 20 * time.Millisecond,
		lan:   time.Millisecond,
	}
}

func (n *simNet) addNAT(kind simKind) *simNAT {
	i := len(n.nats) + 1
	nat := simnet.NewNAT(kind, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), 2*time.Minute)
	n.nats = append(n.nats, nat)
	return nat
}

// addHost places a host behind nat (nil: open, on the internet) and
// returns it with its candidates and NAT behaviour as discovery would find
// them.
func (n *simNet) addHost(name string, nat *simNAT, filteringKnown bool) (*simHost, []Candidate, NATBehavior) {
	i := len(n.hosts) + 1
	h := &simHost{name: name, nat: nat}
	n.hosts = append(n.hosts, h)
	port := uint16(4000 + i)
	if nat == nil {
		h.addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), port)
		// Discovery on an open host: mapped equals local.
		return h, []Candidate{
			{Type: CandidateHost, Addr: h.addr, Priority: 100},
			{Type: CandidateServerReflexive, Addr: h.addr, Priority: 50},
		}, simBehavior(simOpen, filteringKnown)
	}
	h.addr = netip.AddrPortFrom(nat.LAN.Addr().Next().Next().Next(), port)
	for _, other := range n.hosts[:i-1] {
		if other.nat == nat {
			h.addr = netip.AddrPortFrom(other.addr.Addr().Next(), port)
		}
	}
	m := nat.Outbound(n.now, n.rng, h.addr, simSTUN)
	beh := simBehavior(nat.Kind, filteringKnown)
	if nat.Kind.Symmetric() {
		// Discovery asks a second server at once; its step finding is
		// the real one's.
		m2 := nat.Outbound(n.now, n.rng, h.addr, simSTUN2)
		beh.PortStep = portStep(beh, []ServerAnswer{
			{Mapped: netip.AddrPortFrom(nat.Public, m.Ext)}, {Mapped: netip.AddrPortFrom(nat.Public, m2.Ext)}})
	}
	return h, []Candidate{
		{Type: CandidateHost, Addr: h.addr, Priority: 100},
		{Type: CandidateServerReflexive, Addr: netip.AddrPortFrom(nat.Public, m.Ext), Priority: 50},
	}, beh
}

// sendFrom puts a datagram from one of h's sockets on the network.
func (n *simNet) sendFrom(h *simHost, sock SocketID, to netip.AddrPort, data []byte, lossless bool) {
	src, ok := h.socketAddr(sock)
	if !ok {
		panic(fmt.Sprintf("%s sends from socket %d, which is not open", h.name, sock))
	}
	if h.nat != nil {
		if h.nat.LAN.Contains(to.Addr()) {
			for _, dst := range n.hosts {
				if id, ok := dst.socketAt(to); ok && dst.nat == h.nat {
					n.schedule(simPacket{from: src, to: to, host: dst, sock: id, data: data, lossless: lossless}, n.lan)
				}
			}
			return
		}
		if to.Addr() == h.nat.Public {
			return // no hairpinning
		}
		m := h.nat.Outbound(n.now, n.rng, src, to)
		src = netip.AddrPortFrom(h.nat.Public, m.Ext)
	}
	if to.Addr().IsPrivate() {
		return // not routable on the internet
	}
	if n.tap != nil {
		n.tap(src, to, data)
	}
	n.schedule(simPacket{from: src, to: to, data: data, lossless: lossless}, n.delay)
}

func (n *simNet) schedule(p simPacket, delay time.Duration) {
	copies := 1
	if !p.lossless {
		if n.rng.Float64() < n.loss {
			return
		}
		if n.rng.Float64() < n.dup {
			copies = 2
		}
	}
	for range copies {
		q := p
		q.at = n.now.Add(delay)
		if n.jitter > 0 && !p.lossless {
			q.at = q.at.Add(time.Duration(n.rng.Int64N(int64(n.jitter))))
		}
		n.seq++
		q.seq = n.seq
		heap.Push(&n.q, q)
	}
}

// route finds the host and socket an internet packet reaches, through
// its NAT.
func (n *simNet) route(p simPacket) (*simHost, SocketID) {
	if p.host != nil {
		return p.host, p.sock
	}
	for _, nat := range n.nats {
		if nat.Public == p.to.Addr() {
			in, ok := nat.Inbound(n.now, p.from, p.to.Port())
			if !ok {
				return nil, 0
			}
			for _, h := range n.hosts {
				if id, ok := h.socketAt(in); ok && h.nat == nat {
					return h, id
				}
			}
			return nil, 0
		}
	}
	for _, h := range n.hosts {
		if h.nat == nil && h.addr == p.to {
			return h, MainSocket
		}
	}
	return nil, 0
}

func (n *simNet) deliver(p simPacket) {
	h, sock := n.route(p)
	if h == nil {
		return
	}
	n.delivered++
	switch Classify(p.data) {
	case ClassPunch:
		// As an owner does: the tag picks the machine.
		tag, _ := PacketTag(p.data)
		for _, m := range h.machines() {
			if m.Tag() == tag {
				m.HandleDatagramOn(n.now, sock, p.from, p.data)
				return
			}
		}
		if h.m != nil {
			h.m.HandleDatagramOn(n.now, sock, p.from, p.data) // counted as foreign
		}
	case ClassSession:
		p.sock = sock
		h.inbox = append(h.inbox, p)
	}
}

// pump sends what the machines want sent, opens and closes the sockets
// they ask for, and records their events.
func (n *simNet) pump() {
	for _, h := range n.hosts {
		for again := true; again; {
			again = false
			for _, m := range h.machines() {
				for _, tx := range m.Transmits() {
					n.sendFrom(h, tx.Socket, tx.To, tx.Data, false)
				}
				for _, ev := range m.Events() {
					if n.record(h, m, ev) {
						again = true // the machine has more to send
					}
				}
			}
		}
	}
}

// record acts on one machine's event as an owner would; it reports
// whether the machine was given something (sockets) to act on.
func (n *simNet) record(h *simHost, m *Machine, ev Event) bool {
	switch ev := ev.(type) {
	case SocketsWanted:
		if h.extra == nil {
			h.extra = map[SocketID]netip.AddrPort{}
		}
		ids := make([]SocketID, 0, ev.Count)
		for range ev.Count {
			h.extraOpened++
			id := SocketID(h.extraOpened)
			h.extra[id] = netip.AddrPortFrom(h.addr.Addr(), uint16(20000+h.extraOpened))
			ids = append(ids, id)
		}
		m.SocketsOpened(n.now, ids)
		return true
	case SocketsDone:
		for _, id := range ev.IDs {
			if _, ok := h.extra[id]; !ok {
				panic(fmt.Sprintf("%s: socket %d handed back twice", h.name, id))
			}
			delete(h.extra, id)
		}
		return false
	}
	if m != h.m {
		if h.moreSel == nil {
			h.moreSel, h.moreFail = map[PathKind]PathSelected{}, map[PathKind]Failed{}
		}
		switch ev := ev.(type) {
		case PathSelected:
			h.moreSel[m.Kind()] = ev
		case Failed:
			h.moreFail[m.Kind()] = ev
		}
		return false
	}
	switch ev := ev.(type) {
	case PathSelected:
		if h.selected != nil {
			panic(fmt.Sprintf("%s selected twice", h.name))
		}
		h.selected, h.selectedAt = &ev, n.now
	case Failed:
		h.failed = &ev
	case PathLost:
		h.lost = n.now
	}
	return false
}

// step runs the next thing to happen, if it is no later than until.
func (n *simNet) step(until time.Time) bool {
	var next time.Time
	var who *simHost
	for _, h := range n.hosts {
		if len(h.machines()) == 0 {
			continue
		}
		d := h.startAt
		if h.started {
			d = time.Time{}
			for _, m := range h.machines() {
				d = sansio.Earliest(d, m.Deadline())
			}
		}
		if !d.IsZero() && (next.IsZero() || d.Before(next)) {
			next, who = d, h
		}
	}
	if len(n.q) > 0 && (next.IsZero() || !n.q[0].at.After(next)) {
		next, who = n.q[0].at, nil
	}
	if next.IsZero() || next.After(until) {
		n.now = until
		return false
	}
	n.now = next
	switch {
	case who == nil:
		n.deliver(heap.Pop(&n.q).(simPacket))
	case !who.started:
		who.started = true
		for _, m := range who.machines() {
			m.Start(n.now)
		}
	default:
		for _, m := range who.machines() {
			if sansio.Due(m.Deadline(), n.now) {
				m.HandleTimeout(n.now)
			}
		}
	}
	n.pump()
	return true
}

// runUntil steps until done() or the instant until.
func (n *simNet) runUntil(until time.Time, done func() bool) {
	for !done() && n.step(until) {
	}
}

// simScenario is one punch between two hosts.
type simScenario struct {
	seed           uint64
	kindA, kindB   simKind
	sameNAT        bool // both behind one NAT of kindA
	filteringKnown bool
	loss, dup      float64
	delay, jitter  time.Duration
	skew           time.Duration // B starts this long after A (may be negative)
	natTimeout     time.Duration // 0: 2 min
	keepalive      time.Duration
	pathTimeout    time.Duration
	// predict runs birthday probing (PathPredicted) as each side's
	// primary machine, with a direct machine beside it.
	predict bool
}

type simRun struct {
	net  *simNet
	a, b *simHost
}

func (s simScenario) String() string {
	return fmt.Sprintf("seed=%d %v/%v same=%v loss=%.2f dup=%.2f delay=%v jitter=%v skew=%v",
		s.seed, s.kindA, s.kindB, s.sameNAT, s.loss, s.dup, s.delay, s.jitter, s.skew)
}

func (s simScenario) build(t testing.TB) *simRun {
	t.Helper()
	n := newSimNet(s.seed)
	n.loss, n.dup, n.jitter = s.loss, s.dup, s.jitter
	if s.delay > 0 {
		n.delay = s.delay
	}
	natFor := func(k simKind) *simNAT {
		if k == simOpen {
			return nil
		}
		nat := n.addNAT(k)
		if s.natTimeout > 0 {
			nat.Timeout = s.natTimeout
		}
		return nat
	}
	natA := natFor(s.kindA)
	natB := natA
	if !s.sameNAT {
		natB = natFor(s.kindB)
	}
	a, candA, behA := n.addHost("A", natA, s.filteringKnown)
	b, candB, behB := n.addHost("B", natB, s.filteringKnown)
	var secret [32]byte
	for i := range secret {
		secret[i] = byte(n.rng.Uint32())
	}
	cfg := func(role Role, local, remote []Candidate, ln, rn NATBehavior) Config {
		return Config{Role: role, Local: local, Remote: remote, Secret: secret, SessionID: "sim",
			LocalNAT: ln, RemoteNAT: rn, KeepaliveInterval: s.keepalive, PathTimeout: s.pathTimeout}
	}
	a.m = machNew(t, cfg(Controlling, candA, candB, behA, behB), s.seed*2+1)
	b.m = machNew(t, cfg(Controlled, candB, candA, behB, behA), s.seed*2+2)
	if s.predict {
		a.more, b.more = []*Machine{a.m}, []*Machine{b.m}
		ca, cb := cfg(Controlling, candA, candB, behA, behB), cfg(Controlled, candB, candA, behB, behA)
		ca.Kind, cb.Kind = PathPredicted, PathPredicted
		a.m = machNew(t, ca, s.seed*2+101)
		b.m = machNew(t, cb, s.seed*2+102)
	}
	a.startAt, b.startAt = n.now, n.now
	if s.skew > 0 {
		b.startAt = n.now.Add(s.skew)
	} else {
		a.startAt = n.now.Add(-s.skew)
	}
	return &simRun{net: n, a: a, b: b}
}

// settled: both sides have an outcome.
func (r *simRun) settled() bool {
	return (r.a.selected != nil || r.a.failed != nil) && (r.b.selected != nil || r.b.failed != nil)
}

// punch runs until both sides have an outcome, plus a little for the last
// acknowledgements in flight.
func (r *simRun) punch() {
	deadline := r.net.now.Add(DefaultPredictTimeout + 2*time.Second)
	r.net.runUntil(deadline, r.settled)
	r.net.runUntil(r.net.now.Add(3*r.net.delay+r.net.jitter), func() bool { return false })
}

// checkPath sends a lossless non-punch datagram from one side to its
// selected remote and reports whether it arrives at the other side from
// the address that side selected: the two selections agree.
func (r *simRun) checkPath(from, to *simHost) bool {
	n := r.net
	to.inbox = nil
	n.sendFrom(from, from.selected.Socket, from.selected.Remote, []byte{0x6f, 'c', 'h', 'k'}, true)
	n.runUntil(n.now.Add(time.Second), func() bool { return len(to.inbox) > 0 })
	return len(to.inbox) == 1 && to.inbox[0].from == to.selected.Remote && to.inbox[0].sock == to.selected.Socket
}

// verify checks the outcome against the model and returns the time from
// the later start to both selected, in RTTs (0 if it failed).
func (r *simRun) verify(t testing.TB, s simScenario, wantConnect bool, wantReason Reason) float64 {
	t.Helper()
	a, b := r.a, r.b
	if !wantConnect {
		for _, h := range []*simHost{a, b} {
			if h.selected != nil {
				t.Fatalf("%v: %s selected %+v, expected failure", s, h.name, *h.selected)
			}
			if h.failed == nil || h.failed.Reason != wantReason {
				t.Fatalf("%v: %s failed with %+v, want %v", s, h.name, h.failed, wantReason)
			}
		}
		return 0
	}
	if a.selected == nil || b.selected == nil {
		t.Fatalf("%v: selections A=%+v B=%+v; failures A=%+v B=%+v", s, a.selected, b.selected, a.failed, b.failed)
	}
	if !r.checkPath(a, b) || !r.checkPath(b, a) {
		t.Fatalf("%v: selections disagree: A %+v, B %+v", s, *a.selected, *b.selected)
	}
	if a.selected.Local != b.selected.Remote || b.selected.Local != a.selected.Remote {
		t.Fatalf("%v: local addresses do not match the other side's remote: A %+v, B %+v", s, *a.selected, *b.selected)
	}
	if s.sameNAT && (!b.selected.Remote.Addr().IsPrivate() || !a.selected.Remote.Addr().IsPrivate()) {
		t.Fatalf("%v: same-NAT peers not on host candidates: A %+v, B %+v", s, *a.selected, *b.selected)
	}
	rtt := 2 * (r.net.delay + r.net.jitter/2)
	if s.sameNAT {
		rtt = 2 * r.net.lan
	}
	return float64(r.timeToSelect()) / float64(rtt)
}

// timeToSelect is the time from the later start to both sides selected.
func (r *simRun) timeToSelect() time.Duration {
	start := r.a.startAt
	if r.b.startAt.After(start) {
		start = r.b.startAt
	}
	end := r.a.selectedAt
	if r.b.selectedAt.After(end) {
		end = r.b.selectedAt
	}
	return end.Sub(start)
}

// TestSimNATMatrix runs every ordered pair of NAT kinds, lossless and
// lossy, and checks the modelled outcome, the failure reason, and that
// both sides agree on the path.
func TestSimNATMatrix(t *testing.T) {
	for ka := range simKind(simKinds) {
		for kb := range simKind(simKinds) {
			for _, lossy := range []bool{false, true} {
				for _, known := range []bool{false, true} {
					s := simScenario{seed: uint64(ka*10 + kb), kindA: ka, kindB: kb, filteringKnown: known,
						skew: 30 * time.Millisecond}
					if lossy {
						s.loss, s.dup, s.jitter = 0.1, 0.05, 10*time.Millisecond
					}
					r := s.build(t)
					r.punch()
					rtts := r.verify(t, s, simExpectConnect(ka, kb), ReasonSymmetricNAT)
					if !lossy && rtts > 2.5 {
						t.Errorf("%v: both selected after %.2f RTT", s, rtts)
					}
				}
			}
		}
	}
}

func TestSimSameNATUsesHostCandidates(t *testing.T) {
	for k := simFullCone; k < simKinds; k++ {
		s := simScenario{seed: uint64(k), kindA: k, kindB: k, sameNAT: true, skew: -5 * time.Millisecond}
		r := s.build(t)
		r.punch()
		r.verify(t, s, true, 0)
	}
}

// TestSimBlackholeTimesOut: UDP blocked entirely between cone NATs is a
// plain timeout, with the addresses tried in the detail; symmetric vs
// port-restricted says why in the reason.
func TestSimBlackholeTimesOut(t *testing.T) {
	s := simScenario{seed: 1, kindA: simPortRestricted, kindB: simFullCone, loss: 1}
	r := s.build(t)
	r.punch()
	r.verify(t, s, false, ReasonTimeout)
	if d := r.a.failed.Detail; !strings.Contains(d, "srflx 198.51.100.2:") || !strings.Contains(d, "nothing back") {
		t.Errorf("detail %q", d)
	}
	t.Logf("A: %s: %s", r.a.failed.Reason.Message(), r.a.failed.Detail)

	s = simScenario{seed: 2, kindA: simSymmetric, kindB: simPortRestricted}
	r = s.build(t)
	r.punch()
	r.verify(t, s, false, ReasonSymmetricNAT)
	t.Logf("B: %s: %s", r.b.failed.Reason.Message(), r.b.failed.Detail)
}

// TestSimSpoofedIgnored: an on-path attacker (it sees every packet on the
// internet, but its copies arrive after the originals) replays everything
// from its own address, reflects each packet to its sender, and sends
// forgeries with bit flips and garbage. The peers still connect to each
// other, never to the attacker, and count what they ignored.
func TestSimSpoofedIgnored(t *testing.T) {
	for seed := range uint64(20) {
		s := simScenario{seed: seed, kindA: simOpen, kindB: simFullCone, skew: 40 * time.Millisecond}
		r := s.build(t)
		n := r.net
		mallory := &simHost{name: "M", addr: netip.MustParseAddrPort("192.0.2.66:666")}
		n.hosts = append(n.hosts, mallory)
		n.tap = func(from, to netip.AddrPort, data []byte) {
			if Classify(data) != ClassPunch {
				return
			}
			bad := slices.Clone(data)
			bad[n.rng.IntN(len(bad))] ^= byte(1 + n.rng.IntN(255))
			junk := make([]byte, n.rng.IntN(80))
			for i := range junk {
				junk[i] = byte(n.rng.Uint32())
			}
			if len(junk) > 0 {
				junk[0] = PunchByte
			}
			for _, p := range []simPacket{
				{from: mallory.addr, to: to, data: data},   // replay from elsewhere
				{from: mallory.addr, to: from, data: data}, // reflect
				{from: from, to: to, data: bad},            // forged, spoofed source
				{from: mallory.addr, to: to, data: junk},   // garbage
			} {
				// Scheduled behind the original: not a race.
				q := p
				q.lossless = true
				n.schedule(q, n.delay+time.Millisecond)
			}
		}
		r.punch()
		r.verify(t, s, true, 0)
		for _, h := range []*simHost{r.a, r.b} {
			if h.selected.Remote == mallory.addr {
				t.Fatalf("seed %d: %s selected the attacker", seed, h.name)
			}
			st := h.m.Stats()
			if st.Replayed+st.Duplicate == 0 || st.Reflected == 0 || st.Forged+st.Malformed == 0 {
				t.Fatalf("seed %d: %s counted %+v", seed, h.name, st)
			}
		}
	}
}

// TestSimKeepaliveHoldsMapping: behind port-restricted NATs whose mappings
// die after 30 s idle, 15 s keepalives hold the path for five silent
// minutes; without keepalives both sides declare the path lost and the NAT
// has indeed forgotten the mapping.
func TestSimKeepaliveHoldsMapping(t *testing.T) {
	base := simScenario{seed: 7, kindA: simPortRestricted, kindB: simPortRestricted,
		natTimeout: 30 * time.Second, pathTimeout: 30 * time.Second}

	s := base
	s.keepalive = 15 * time.Second
	r := s.build(t)
	r.punch()
	r.verify(t, s, true, 0)
	r.net.runUntil(r.net.now.Add(5*time.Minute), func() bool { return false })
	if !r.a.lost.IsZero() || !r.b.lost.IsZero() {
		t.Fatalf("path lost with keepalives: A %v B %v", r.a.lost, r.b.lost)
	}
	if !r.checkPath(r.a, r.b) || !r.checkPath(r.b, r.a) {
		t.Fatal("the path does not carry packets after 5 minutes with keepalives")
	}

	s = base
	s.keepalive = -1
	r = s.build(t)
	r.punch()
	r.verify(t, s, true, 0)
	selected := r.a.selectedAt
	r.net.runUntil(r.net.now.Add(2*time.Minute), func() bool { return false })
	for _, h := range []*simHost{r.a, r.b} {
		if h.lost.IsZero() {
			t.Fatalf("%s: path not lost without keepalives", h.name)
		}
		if got := h.lost.Sub(selected); got < 30*time.Second || got > 31*time.Second {
			t.Errorf("%s: path lost %v after selection", h.name, got)
		}
	}
	if r.checkPath(r.b, r.a) {
		t.Fatal("a packet crossed a NAT whose mapping should have expired")
	}
}

// simRandomScenario draws a scenario from seed.
func simRandomScenario(seed uint64) simScenario {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := simScenario{
		seed:           seed,
		kindA:          simKind(rng.IntN(simKinds)),
		kindB:          simKind(rng.IntN(simKinds)),
		filteringKnown: rng.IntN(2) == 0,
		loss:           []float64{0, 0, 0.01, 0.05, 0.2}[rng.IntN(5)],
		dup:            []float64{0, 0.02, 0.1}[rng.IntN(3)],
		delay:          time.Duration(2+rng.IntN(150)) * time.Millisecond,
		skew:           time.Duration(rng.IntN(1000)-500) * time.Millisecond,
	}
	s.jitter = time.Duration(rng.Int64N(int64(s.delay)))
	if s.kindA != simOpen && rng.IntN(10) == 0 {
		s.sameNAT = true
		s.kindB = s.kindA
	}
	return s
}

// TestSimManyScenarios runs thousands of random seeded scenarios (NAT
// kinds, loss up to 20%, duplication, reordering jitter up to the one-way
// delay, start skew of ±0.5 s) against the model, and logs the time to
// select in RTTs (with -v).
func TestSimManyScenarios(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	var rtts, ms, lossy []float64
	connected, failed := 0, 0
	for seed := range uint64(n) {
		s := simRandomScenario(seed)
		r := s.build(t)
		r.punch()
		want := s.sameNAT || simExpectConnect(s.kindA, s.kindB)
		x := r.verify(t, s, want, ReasonSymmetricNAT)
		if !want {
			failed++
			continue
		}
		connected++
		switch {
		case s.sameNAT:
		case s.loss == 0:
			rtts = append(rtts, x)
			ms = append(ms, x*float64(2*s.delay+s.jitter)/float64(time.Millisecond))
		case s.loss >= 0.2:
			lossy = append(lossy, x)
		}
	}
	t.Logf("%d scenarios: %d connected, %d failed as modelled", n, connected, failed)
	if len(rtts) > 0 {
		t.Logf("lossless (%d): time from the later start to both selected: %s RTT; %s ms",
			len(rtts), simQuantiles(rtts), simQuantiles(ms))
	}
	if len(lossy) > 0 {
		t.Logf("20%% loss (%d): %s RTT", len(lossy), simQuantiles(lossy))
	}
}

// simQuantiles formats p50, p90, p99 and max.
func simQuantiles(v []float64) string {
	v = slices.Clone(v)
	sort.Float64s(v)
	q := func(p float64) float64 { return v[int(p*float64(len(v)-1))] }
	return fmt.Sprintf("p50 %.2f, p90 %.2f, p99 %.2f, max %.2f", q(0.5), q(0.9), q(0.99), v[len(v)-1])
}

// TestSimDeterministic: the same seed gives the same run.
func TestSimDeterministic(t *testing.T) {
	run := func() string {
		s := simRandomScenario(42)
		s.loss = 0.1
		r := s.build(t)
		r.punch()
		return fmt.Sprintf("%v %v %v %v %d", r.a.selected, r.b.selected, r.a.selectedAt, r.b.selectedAt, r.net.delivered)
	}
	if x, y := run(), run(); x != y {
		t.Fatalf("two runs differ:\n%s\n%s", x, y)
	}
}

// BenchmarkSimTimeToSelect reports the simulated time from the later start
// to both sides selected, in RTTs, for port-restricted NATs on both sides,
// 50 ms one-way delay, 2% loss and the controlled side starting 0-200 ms
// later (the answer travelling through signalling).
func BenchmarkSimTimeToSelect(b *testing.B) {
	var sum float64
	var all []float64
	for i := range b.N {
		rng := rand.New(rand.NewPCG(uint64(i), 2))
		s := simScenario{seed: uint64(i), kindA: simPortRestricted, kindB: simPortRestricted,
			loss: 0.02, delay: 50 * time.Millisecond, jitter: 5 * time.Millisecond,
			skew: time.Duration(rng.IntN(200)) * time.Millisecond}
		r := s.build(b)
		r.punch()
		x := r.verify(b, s, true, 0)
		sum += x
		all = append(all, x)
	}
	sort.Float64s(all)
	b.ReportMetric(sum/float64(b.N), "rtt/select")
	b.ReportMetric(all[int(0.99*float64(len(all)-1))], "p99-rtt/select")
}

// simBirthdayRun is one birthday-probing scenario's outcome.
type simBirthdayRun struct {
	ok      bool
	elapsed time.Duration // from the later start to both selected
}

// runBirthday punches between a symmetric-NAT host and a cone-NAT host
// with a birthday-probing machine and a direct one on each side, and
// checks everything an owner relies on: the predicted path carries
// packets both ways on the sockets both sides selected; every extra
// socket but the selected one is handed back, and nothing is handed back
// twice; the direct machines beside them are undisturbed.
func runBirthday(t testing.TB, s simScenario) simBirthdayRun {
	t.Helper()
	r := s.build(t)
	r.punch()
	a, b := r.a, r.b
	directDone := func() bool {
		for _, h := range []*simHost{a, b} {
			_, sel := h.moreSel[PathDirect]
			_, failed := h.moreFail[PathDirect]
			if !sel && !failed {
				return false
			}
		}
		return true
	}
	r.net.runUntil(r.net.now.Add(DefaultPunchTimeout), directDone)
	for _, h := range []*simHost{a, b} {
		sym := (h == a && s.kindA.Symmetric()) || (h == b && s.kindB.Symmetric())
		switch {
		case sym && h.extraOpened != birthdaySockets:
			t.Fatalf("%v: %s opened %d extra sockets, want %d", s, h.name, h.extraOpened, birthdaySockets)
		case !sym && h.extraOpened != 0:
			t.Fatalf("%v: the cone side %s opened %d sockets", s, h.name, h.extraOpened)
		}
		keep := 0
		if h.selected != nil && h.selected.Socket != MainSocket {
			keep = 1
			if _, ok := h.extra[h.selected.Socket]; !ok {
				t.Fatalf("%v: %s's path socket %d was handed back", s, h.name, h.selected.Socket)
			}
		}
		if len(h.extra) != keep {
			t.Fatalf("%v: %s still holds %d extra sockets, want %d", s, h.name, len(h.extra), keep)
		}
		// The direct machine either fails for the reason it always gave,
		// or, when a birthday probe happened to land on the mapping of
		// the symmetric side's main socket (one more target among the
		// 256), connects through the hole that probe opened.
		if s.kindA != simAddrRestricted && s.kindB != simAddrRestricted {
			_, sel := h.moreSel[PathDirect]
			if f, ok := h.moreFail[PathDirect]; !sel && (!ok || f.Reason != ReasonSymmetricNAT) {
				t.Fatalf("%v: %s's direct machine: %+v / %+v", s, h.name, h.moreSel, h.moreFail)
			}
		}
	}
	if a.selected == nil || b.selected == nil {
		if a.selected != nil || b.selected != nil {
			t.Fatalf("%v: only one side selected: A %+v B %+v", s, a.selected, b.selected)
		}
		for _, h := range []*simHost{a, b} {
			if h.failed == nil || h.failed.Reason != ReasonSymmetricNAT || !strings.Contains(h.failed.Detail, "birthday probing") {
				t.Fatalf("%v: %s failed with %+v", s, h.name, h.failed)
			}
		}
		return simBirthdayRun{}
	}
	if a.selected.Kind != PathPredicted || !r.checkPath(a, b) || !r.checkPath(b, a) {
		t.Fatalf("%v: the predicted path does not work: A %+v, B %+v", s, *a.selected, *b.selected)
	}
	return simBirthdayRun{ok: true, elapsed: r.timeToSelect()}
}

// simBirthdayScenario draws a symmetric-facing-cone scenario from seed.
func simBirthdayScenario(seed uint64, sym simKind) simScenario {
	rng := rand.New(rand.NewPCG(seed, 3))
	cone := []simKind{simPortRestricted, simPortRestricted, simAddrRestricted}[rng.IntN(3)]
	s := simScenario{
		seed: seed, kindA: sym, kindB: cone, predict: true,
		filteringKnown: rng.IntN(2) == 0,
		loss:           []float64{0, 0, 0.05, 0.2}[rng.IntN(4)],
		delay:          time.Duration(5+rng.IntN(100)) * time.Millisecond,
		skew:           time.Duration(rng.IntN(600)-300) * time.Millisecond,
	}
	if cone == simAddrRestricted {
		s.filteringKnown = false // known address-dependent filtering needs no birthday
	}
	s.jitter = time.Duration(rng.Int64N(int64(s.delay)))
	if rng.IntN(2) == 0 {
		s.kindA, s.kindB = s.kindB, s.kindA
	}
	return s
}

// TestSimBirthday runs birthday probing between a symmetric NAT (random
// or sequential ports) and a port- or address-restricted cone, with
// random delays, loss up to 20%, either side controlling and starting
// first, and measures how often and how fast it connects (-v prints the
// figures). Random ports must connect in at least 95% of runs (the
// arithmetic in timers.go says 99.97% over 2,048 probes) and sequential
// ones every time, the median within 5 s and 1 s.
func TestSimBirthday(t *testing.T) {
	n := 200
	if testing.Short() {
		n = 40
	}
	for _, sym := range []simKind{simSymmetric, simSequential} {
		var all []float64
		times := map[simKind][]float64{}
		runs := map[simKind]int{}
		ok := 0
		for seed := range uint64(n) {
			s := simBirthdayScenario(seed, sym)
			cone := s.kindB
			if cone.Symmetric() {
				cone = s.kindA
			}
			runs[cone]++
			res := runBirthday(t, s)
			if res.ok {
				ok++
				ms := float64(res.elapsed) / float64(time.Millisecond)
				times[cone] = append(times[cone], ms)
				all = append(all, ms)
			}
		}
		for _, cone := range []simKind{simPortRestricted, simAddrRestricted} {
			if len(times[cone]) > 0 {
				t.Logf("%v vs %v: %d/%d connected; time from the later start to both selected: %s ms",
					sym, cone, len(times[cone]), runs[cone], simQuantiles(times[cone]))
			}
		}
		rate := float64(ok) / float64(n)
		want := map[simKind]float64{simSymmetric: 0.95, simSequential: 1}[sym]
		if rate < want {
			t.Errorf("%v: %.1f%% connected, want at least %.0f%%", sym, 100*rate, 100*want)
		}
		slices.Sort(all)
		limit := map[simKind]float64{simSymmetric: 5000, simSequential: 1000}[sym]
		if len(all) > 0 && all[len(all)/2] > limit {
			t.Errorf("%v: median %.0f ms, want within %.0f ms", sym, all[len(all)/2], limit)
		}
	}
}

// TestSimBirthdayBlackhole: when nothing gets through, both sides fail
// with the symmetric-NAT reason and a detail that says what birthday
// probing tried, and every extra socket is handed back.
func TestSimBirthdayBlackhole(t *testing.T) {
	s := simScenario{seed: 5, kindA: simSymmetric, kindB: simPortRestricted, predict: true, loss: 1}
	res := runBirthday(t, s)
	if res.ok {
		t.Fatal("connected through a black hole")
	}
	r := s.build(t)
	r.punch()
	if d := r.b.failed.Detail; !strings.Contains(d, fmt.Sprintf("%d probe(s)", birthdayMaxProbes)) {
		t.Errorf("cone side detail %q", d)
	}
	if d := r.a.failed.Detail; !strings.Contains(d, fmt.Sprintf("%d extra socket(s)", birthdaySockets)) {
		t.Errorf("symmetric side detail %q", d)
	}
	if st := r.b.m.Stats(); st.ProbesSent > birthdayMaxProbes {
		t.Errorf("cone side sent %d probes, bound %d", st.ProbesSent, birthdayMaxProbes)
	}
}

// BenchmarkSimBirthday reports birthday probing's success rate and mean
// time to both selected against a port-restricted cone with random
// symmetric ports, 2% loss and 50 ms one-way delay.
func BenchmarkSimBirthday(b *testing.B) {
	ok := 0
	var sum time.Duration
	for i := range b.N {
		rng := rand.New(rand.NewPCG(uint64(i), 4))
		s := simScenario{seed: uint64(i), kindA: simSymmetric, kindB: simPortRestricted, predict: true,
			loss: 0.02, delay: 50 * time.Millisecond, jitter: 5 * time.Millisecond,
			skew: time.Duration(rng.IntN(200)) * time.Millisecond}
		if res := runBirthday(b, s); res.ok {
			ok++
			sum += res.elapsed
		}
	}
	b.ReportMetric(float64(ok)/float64(b.N), "connected/op")
	if ok > 0 {
		b.ReportMetric(float64(sum.Milliseconds())/float64(ok), "ms/connect")
	}
}
