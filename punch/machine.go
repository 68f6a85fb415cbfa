package punch

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
)

// Role says which side of a punch nominates the path. Like ICE's
// controlling agent (RFC 8445 section 6.1.1), the controlling side picks
// the first pair that works and tells the other; the controlled side
// follows, so both end up on one pair even when several work (a LAN pair
// and a hairpinned public pair, say).
type Role int

// The roles.
const (
	// Controlling is the offering side (also the Noise initiator).
	Controlling Role = iota
	// Controlled is the answering side.
	Controlled
)

// String names the role.
func (r Role) String() string {
	switch r {
	case Controlling:
		return "controlling"
	case Controlled:
		return "controlled"
	}
	return fmt.Sprintf("role%d", int(r))
}

// PathKind is the kind of path a machine punches. An owner runs one
// machine per kind side by side over the same sockets; each kind keys its
// packets with its own tag (PacketTag routes them), so the machines never
// take each other's packets, and a relayed path that answers first never
// holds up a direct one.
type PathKind int

// The path kinds.
const (
	// PathDirect probes the peer's host and server-reflexive addresses
	// from this side's plain sockets, IPv6 pairs preferred.
	PathDirect PathKind = iota
	// PathRelayed probes through TURN relays: from this side's relay
	// socket to the peer's public addresses and relayed ones, and from
	// its plain sockets to the peer's relayed addresses.
	PathRelayed
	// PathPredicted is birthday probing between a symmetric NAT and a
	// cone NAT (see PredictionSide): the symmetric side sends from many
	// extra sockets to the cone side's reflexive address, the cone side
	// probes ports of the symmetric side's public IP, both until one
	// authenticated answer.
	PathPredicted
)

// String names the kind, for logs and JSON.
func (k PathKind) String() string {
	switch k {
	case PathDirect:
		return "direct"
	case PathRelayed:
		return "relayed"
	case PathPredicted:
		return "predicted"
	}
	return fmt.Sprintf("kind%d", int(k))
}

// LocalSocket is one of this side's sockets a machine may probe from.
type LocalSocket struct {
	ID SocketID
	// Family is which addresses the socket can send to.
	Family Family
	// Relayed is the socket's relayed address when it is a TURN allocation
	// (what the peer sends to; it travels as a relayed candidate); invalid
	// for a plain UDP socket.
	Relayed netip.AddrPort
}

// Config is what a Machine needs to punch one session's path.
type Config struct {
	// Rand seeds the transaction IDs (and, for PathPredicted, the ports
	// probed); nil: crypto/rand.
	Rand io.Reader
	Role Role
	// Kind is the kind of path to punch; the zero value is PathDirect.
	Kind PathKind
	// Sockets are this side's sockets to probe from. Nil means the main
	// socket alone, sending to IPv4 and IPv6 addresses alike. A
	// PathPredicted machine on the symmetric side asks for extra sockets
	// itself (SocketsWanted).
	Sockets []LocalSocket
	// Local are this side's candidates (what the peer was told; the
	// selected path's local address when the peer's packets do not say);
	// Remote are the peer's, the addresses probed.
	Local, Remote []Candidate
	// Secret and SessionID key the packets' MAC and routing tag; both
	// sides must have the same.
	Secret    [32]byte
	SessionID string
	// LocalNAT and RemoteNAT are each side's measured NAT behaviour, used
	// to say why punching failed.
	LocalNAT, RemoteNAT NATBehavior
	// Timer overrides (sansio.Override): zero keeps the default.
	// KeepaliveInterval is the keepalive period on a selected path
	// (DefaultKeepaliveInterval; negative: no keepalives).
	KeepaliveInterval time.Duration
	// PathTimeout is the silence after which a selected path is lost
	// (DefaultPathTimeout; negative: never).
	PathTimeout time.Duration
	// PunchTimeout is how long to punch before failing
	// (DefaultPunchTimeout, or DefaultPredictTimeout for PathPredicted;
	// it cannot be off).
	PunchTimeout time.Duration
}

// Event is something the machine reports: PathSelected, Failed or PathLost.
type Event interface{ punchEvent() }

// PathSelected says a path works. Local is this side's address as the peer
// reached it (a host, server-reflexive, relayed or peer-reflexive
// address); Remote is the peer's address as seen here, where to send from
// now on, from Socket. RTT is a probe's measured round trip, or zero when
// the path was chosen on the peer's probe before any reply of ours came
// back. Kind is the machine's; Relay is the TURN relayed address the path
// crosses (this side's or the peer's), invalid for a direct path.
type PathSelected struct {
	Local, Remote netip.AddrPort
	RTT           time.Duration
	Socket        SocketID
	Kind          PathKind
	Relay         netip.AddrPort
}

// SocketsWanted asks the owner to open Count extra IPv4 UDP sockets (any
// port, on the main socket's interfaces) and to pass their IDs to
// SocketsOpened: only the symmetric side of birthday probing asks, once.
// Opening fewer (file descriptors run out) is fine.
type SocketsWanted struct{ Count int }

// SocketsDone hands extra sockets back: the owner closes them. The socket
// of a selected path is handed back only once that path is lost.
type SocketsDone struct{ IDs []SocketID }

// Failed says no direct path was found. Detail lists what was tried and
// what came back, for the connection details view and logs.
type Failed struct {
	Reason Reason
	Detail string
	// HeardPeer: some authenticated packet of the peer arrived, so it was
	// there and punching; false means nothing came back at all (the peer
	// may have quit since it signalled).
	HeardPeer bool
}

// PathLost says the selected path went silent for the path timeout. The
// machine is finished; a new session punches again.
type PathLost struct{}

func (PathSelected) punchEvent()  {}
func (Failed) punchEvent()        {}
func (PathLost) punchEvent()      {}
func (SocketsWanted) punchEvent() {}
func (SocketsDone) punchEvent()   {}

// Reason is why punching failed.
type Reason int

// The reasons.
const (
	// ReasonTimeout: no pair answered before the punch timeout.
	ReasonTimeout Reason = iota
	// ReasonSymmetricNAT: no pair answered and one side is behind a
	// symmetric NAT while the other is not open or full-cone, which is
	// expected not to work.
	ReasonSymmetricNAT
	// ReasonNoCandidates: the peer sent no usable address.
	ReasonNoCandidates
	// ReasonRelayTimeout: no pair through a TURN relay answered.
	ReasonRelayTimeout
)

// String is a short token for logs and JSON.
func (r Reason) String() string {
	switch r {
	case ReasonTimeout:
		return "timeout"
	case ReasonSymmetricNAT:
		return "symmetric-nat"
	case ReasonNoCandidates:
		return "no-candidates"
	case ReasonRelayTimeout:
		return "relay-timeout"
	}
	return fmt.Sprintf("reason%d", int(r))
}

// Message says what happened in plain words for the user.
func (r Reason) Message() string {
	switch r {
	case ReasonTimeout:
		return "no direct connection: none of the peer's addresses answered (a firewall may block UDP, or the peer went away)"
	case ReasonSymmetricNAT:
		return "no direct connection: one side is behind a symmetric NAT, which only connects directly to peers on an open or full-cone NAT"
	case ReasonNoCandidates:
		return "no direct connection: the peer sent no address to try"
	case ReasonRelayTimeout:
		return "no relayed connection: the peer did not answer through the TURN relay"
	}
	return "no direct connection"
}

// Stats counts what the machine sent and what it received and ignored.
type Stats struct {
	ProbesSent, RepliesSent, KeepalivesSent int
	// Accepted counts authenticated packets acted on.
	Accepted int
	// Malformed: not a well-formed punch packet. OtherTag: another
	// session's. Forged: bad MAC. Reflected: claims our own role (our own
	// packet bounced back, or a misconfigured peer). Replayed: a probe or
	// keepalive ID already seen from another address. Duplicate: one
	// already seen from the same address (the network duplicated it).
	// Unexpected: authentic but useless (a reply to nothing we sent, a
	// keepalive before selection, a packet from another address after
	// selection, anything before Start or after the machine finished).
	Malformed, OtherTag, Forged, Reflected, Replayed, Duplicate, Unexpected int
}

// Ignored is the sum of the packets the machine did not act on.
func (s Stats) Ignored() int {
	return s.Malformed + s.OtherTag + s.Forged + s.Reflected + s.Replayed + s.Duplicate + s.Unexpected
}

// machineState is where the machine is in its life.
type machineState int

const (
	stateIdle     machineState = iota // before Start
	statePunching                     // probing every target
	stateSelected                     // a path is selected: keepalives
	stateDone                         // failed or path lost
)

// target is one pair being probed (a local socket and a peer address),
// with what happened there.
type target struct {
	socket    SocketID
	addr      netip.AddrPort
	label     string         // "host", "srflx", "relay" or "prflx" (learned from a probe)
	relay     netip.AddrPort // the relayed address the pair crosses, if any
	sent      int            // probes sent
	probesIn  int            // authenticated probes received from it
	repliesIn int            // authenticated replies received from it
}

// outstanding is a probe sent and not yet answered.
type outstanding struct {
	socket   SocketID
	to       netip.AddrPort
	at       time.Time
	answered bool
}

// pending is a working IPv4 pair the controlling side holds back for a
// moment while an IPv6 pair may still answer.
type pending struct {
	socket        SocketID
	remote, local netip.AddrPort
	rtt           time.Duration
	until         time.Time
}

// Machine is the sans-I/O hole-punch state machine for one session and
// one path kind. It probes every pair of a local socket and a peer
// candidate that its kind allows, answers the peer's probes, selects the
// first pair that works (the controlling side nominates, the controlled
// side follows), then keeps it open and watches it. It reads no clock,
// starts no goroutine and touches no socket: the caller feeds it packets
// and timeouts and sends what Transmits returns. It is not safe for
// concurrent use.
type Machine struct {
	cfg  Config
	tag  Tag
	mac  *macer
	txid uint64 // next transaction ID; starts random

	state         machineState
	started       time.Time
	punchDeadline time.Time
	round         int
	nextProbe     time.Time
	targets       []*target
	maxTargets    int
	sent          map[uint64]*outstanding
	seen          replaySet
	preferV6      bool     // both sides have global IPv6: such a pair wins over IPv4
	held          *pending // controlling side: an IPv4 pair waiting on IPv6
	bd            *birthday

	socket        SocketID
	local, remote netip.AddrPort
	rtt           time.Duration
	selectedAt    time.Time
	lastHeard     time.Time
	nextKeepalive time.Time
	// Controlling side: it keeps nominating (probes with the selected
	// flag) until the controlled side answers with its own selected flag.
	nominated     bool
	nominateRound int
	nextNominate  time.Time

	tx    []Transmit
	ev    []Event
	stats Stats
}

// NewMachine makes a machine for cfg.
func NewMachine(cfg Config) (*Machine, error) {
	if cfg.Role != Controlling && cfg.Role != Controlled {
		return nil, fmt.Errorf("punch: unknown role %d", int(cfg.Role))
	}
	if cfg.Kind < PathDirect || cfg.Kind > PathPredicted {
		return nil, fmt.Errorf("punch: unknown path kind %d", int(cfg.Kind))
	}
	if cfg.SessionID == "" {
		return nil, errors.New("punch: a session ID is needed to key the packets")
	}
	if cfg.PunchTimeout < 0 {
		return nil, errors.New("punch: the punch timeout cannot be off")
	}
	if cfg.Kind == PathPredicted {
		if _, ok := PredictionSide(cfg.LocalNAT, cfg.RemoteNAT); !ok {
			return nil, fmt.Errorf("punch: birthday probing needs a symmetric NAT facing a cone NAT that filters by port, not %s facing %s",
				describeNAT(cfg.LocalNAT), describeNAT(cfg.RemoteNAT))
		}
	}
	cfg.KeepaliveInterval = sansio.Override(cfg.KeepaliveInterval, DefaultKeepaliveInterval)
	cfg.PathTimeout = sansio.Override(cfg.PathTimeout, DefaultPathTimeout)
	punchDefault := DefaultPunchTimeout
	if cfg.Kind == PathPredicted {
		punchDefault = DefaultPredictTimeout
	}
	cfg.PunchTimeout = sansio.Override(cfg.PunchTimeout, punchDefault)
	if cfg.Sockets == nil {
		cfg.Sockets = []LocalSocket{{ID: MainSocket, Family: FamilyAny}}
	}
	rand := sansio.Rand(cfg.Rand)
	var seed [8]byte
	if _, err := io.ReadFull(rand, seed[:]); err != nil {
		return nil, fmt.Errorf("punch: seed transaction IDs: %w", err)
	}
	m := &Machine{
		cfg:        cfg,
		txid:       binary.BigEndian.Uint64(seed[:]),
		sent:       make(map[uint64]*outstanding),
		seen:       newReplaySet(replayWindow),
		maxTargets: maxTargets,
	}
	tag, key := deriveKeys(cfg.Secret, cfg.SessionID, cfg.Kind)
	m.tag, m.mac = tag, newMacer(&key)
	if cfg.Kind == PathPredicted {
		bd, err := newBirthday(cfg, rand)
		if err != nil {
			return nil, err
		}
		m.bd = bd
		m.maxTargets += birthdaySockets
		return m, nil
	}
	// Highest priority first, each pair once: the order of a round.
	remote := slices.Clone(cfg.Remote)
	slices.SortStableFunc(remote, func(a, b Candidate) int { return cmp.Compare(b.Priority, a.Priority) })
	for _, c := range remote {
		addr := netip.AddrPortFrom(c.Addr.Addr().Unmap(), c.Addr.Port())
		if !addr.IsValid() || addr.Port() == 0 || addr.Addr().IsUnspecified() {
			continue
		}
		c.Addr = addr
		for _, s := range cfg.Sockets {
			if len(m.targets) == maxPairs {
				break
			}
			if !pairAllowed(cfg.Kind, s, c) || m.target(s.ID, addr) != nil {
				continue
			}
			t := &target{socket: s.ID, addr: addr, label: c.Type.String(), relay: s.Relayed}
			if c.Type == CandidateRelayed {
				t.relay = addr
			}
			m.targets = append(m.targets, t)
		}
	}
	m.preferV6 = cfg.Kind == PathDirect && hasGlobal6(cfg.Local) && slices.ContainsFunc(m.targets, func(t *target) bool {
		return isGlobal6(t.addr.Addr())
	})
	return m, nil
}

// RTT is the latest round trip measured by a probe on the selected path
// (zero: none yet; the path may have been chosen on the peer's probe).
func (m *Machine) RTT() time.Duration {
	if m.state != stateSelected {
		return 0
	}
	return m.rtt
}

// pairAllowed reports whether a machine of kind probes candidate c from
// socket s.
func pairAllowed(kind PathKind, s LocalSocket, c Candidate) bool {
	a := c.Addr.Addr()
	if !s.Family.Allows(a) || (a.Is6() && a.IsLinkLocalUnicast()) {
		return false // a link-local address needs a zone only its own host knows
	}
	viaRelay, toRelay := s.Relayed.IsValid(), c.Type == CandidateRelayed
	switch kind {
	case PathDirect:
		return !viaRelay && !toRelay
	case PathRelayed:
		if viaRelay {
			// A TURN server can reach public addresses only (and would
			// be a way into the peer's LAN otherwise).
			return toRelay || publicAddr(a)
		}
		return toRelay
	}
	return false
}

// publicAddr reports whether a is routable on the internet at large.
func publicAddr(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate()
}

// isGlobal6 reports whether a is a global IPv6 address (not unique-local,
// link-local or an IPv4 address in disguise).
func isGlobal6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && publicAddr(a)
}

func hasGlobal6(cs []Candidate) bool {
	return slices.ContainsFunc(cs, func(c Candidate) bool { return isGlobal6(c.Addr.Addr()) })
}

// Tag is the routing tag every packet of this machine carries.
func (m *Machine) Tag() Tag { return m.tag }

// Kind is the kind of path the machine punches.
func (m *Machine) Kind() PathKind { return m.cfg.Kind }

// Stats returns the counters so far.
func (m *Machine) Stats() Stats { return m.stats }

// Start begins punching: a probe to every pair at once, then paced rounds
// (birthday probing has its own schedule). With nothing to probe it fails
// at once. Calling it again does nothing.
func (m *Machine) Start(now time.Time) {
	if m.state != stateIdle {
		return
	}
	m.started = now
	m.punchDeadline = now.Add(m.cfg.PunchTimeout)
	if m.bd != nil {
		if !m.bd.peer.IsValid() {
			m.fail(ReasonNoCandidates, "the peer's candidate list had no IPv4 server-reflexive address to aim birthday probes at")
			return
		}
		m.state = statePunching
		m.bd.start(m, now)
		return
	}
	// With a relay of its own, a relayed machine may have nothing to
	// probe (the peer's addresses are all private) and still work: the
	// peer probes the relayed address, and the answers go back through
	// the relay to wherever they came from.
	if len(m.targets) == 0 && !(m.cfg.Kind == PathRelayed && m.hasRelay()) {
		detail := "the peer's candidate list had no usable address"
		if m.cfg.Kind == PathRelayed {
			detail = "no pair through a TURN relay: neither side offered a relayed address this side can use"
		}
		m.fail(ReasonNoCandidates, detail)
		return
	}
	m.state = statePunching
	m.probeRound(now)
}

// probeRound sends one probe to every target and plans the next round.
func (m *Machine) probeRound(now time.Time) {
	for _, t := range m.targets {
		m.sendProbe(now, t.socket, t.addr)
		t.sent++
	}
	m.round++
	m.nextProbe = now.Add(probeInterval(m.round))
}

func (m *Machine) nextTxID() uint64 {
	id := m.txid
	m.txid++
	return id
}

func (m *Machine) flags(selected bool) byte {
	var f byte
	if m.cfg.Role == Controlling {
		f |= flagControlling
	}
	if selected {
		f |= flagSelected
	}
	return f
}

// onPath reports whether (socket, to) is the selected path: packets on it
// carry the selected flag.
func (m *Machine) onPath(socket SocketID, to netip.AddrPort) bool {
	return m.state == stateSelected && socket == m.socket && to == m.remote
}

func (m *Machine) send(socket SocketID, to netip.AddrPort, p packet) {
	p.tag = m.tag
	p.dst = to
	p.flags = m.flags(m.onPath(socket, to))
	m.tx = append(m.tx, Transmit{To: to, Socket: socket, Data: p.appendMarshal(make([]byte, 0, packetLen), m.mac)})
}

func (m *Machine) sendProbe(now time.Time, socket SocketID, to netip.AddrPort) {
	id := m.nextTxID()
	if len(m.sent) < maxOutstanding {
		m.sent[id] = &outstanding{socket: socket, to: to, at: now}
	}
	m.send(socket, to, packet{typ: typeProbe, txid: id})
	m.stats.ProbesSent++
}

// Heard reports whether an authenticated packet of this session came from
// addr to the local socket (a probe or a reply; the selected path's address counts too). The
// owner uses it to hold session datagrams that arrive from the peer a
// moment before this side selects the path, and nothing else: only
// addresses that passed the MAC are remembered, at most maxTargets of them.
func (m *Machine) Heard(socket SocketID, addr netip.AddrPort) bool {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if m.state == stateSelected && addr == m.remote && socket == m.socket {
		return true
	}
	t := m.target(socket, addr)
	return t != nil && (t.probesIn > 0 || t.repliesIn > 0)
}

// HandleDatagram takes one punch-class datagram read by the main socket;
// see HandleDatagramOn.
func (m *Machine) HandleDatagram(at time.Time, from netip.AddrPort, b []byte) {
	m.HandleDatagramOn(at, MainSocket, from, b)
}

// HandleDatagramOn takes one punch-class datagram read by the given local
// socket. Anything that is not an authentic packet of this session from
// the peer is counted and ignored.
func (m *Machine) HandleDatagramOn(at time.Time, socket SocketID, from netip.AddrPort, b []byte) {
	p, err := parsePacket(b)
	switch {
	case err != nil:
		m.stats.Malformed++
		return
	case p.tag != m.tag:
		m.stats.OtherTag++
		return
	case !verifyMAC(m.mac, b):
		m.stats.Forged++
		return
	case (p.flags&flagControlling != 0) == (m.cfg.Role == Controlling):
		m.stats.Reflected++
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	peerSelected := p.flags&flagSelected != 0
	if m.state == stateIdle || m.state == stateDone {
		// Remember the ID even now, so a copy replayed once we start
		// is still recognised.
		if p.typ != typeReply {
			m.seen.add(p.txid, from)
		}
		m.stats.Unexpected++
		return
	}

	if p.typ == typeReply {
		o := m.sent[p.txid]
		switch {
		case o == nil || o.socket != socket:
			m.stats.Unexpected++
			return
		case o.answered:
			m.stats.Duplicate++
			return
		}
		o.answered = true
		rtt := max(at.Sub(o.at), 0)
		if t := m.target(o.socket, o.to); t != nil {
			t.repliesIn++
		}
		m.heard(at, socket, from, p, peerSelected, rtt)
		m.nominateIfDue(at)
		return
	}

	// Probes and keepalives carry fresh IDs: one seen before is a copy.
	if src, ok := m.seen.lookup(p.txid); ok {
		if src == from {
			m.stats.Duplicate++
		} else {
			m.stats.Replayed++
		}
		return
	}
	m.seen.add(p.txid, from)

	if p.typ == typeKeepalive {
		// Keepalives only go on a selected path; one reaching a controlled
		// side still punching means every nomination before it was lost.
		if m.state == statePunching && !peerSelected {
			m.stats.Unexpected++
			return
		}
		m.heard(at, socket, from, p, peerSelected, 0)
		return
	}

	// A probe: learn the address if new (peer-reflexive: the peer's NAT
	// mapping towards us), act on it, then answer, so the answer already
	// carries the selected flag if this probe selected the path.
	t := m.target(socket, from)
	if t == nil && len(m.targets) < m.maxTargets {
		t = &target{socket: socket, addr: from, label: "prflx", relay: m.socketRelay(socket)}
		m.targets = append(m.targets, t)
	}
	if t != nil {
		t.probesIn++
	}
	m.heard(at, socket, from, p, peerSelected, 0)
	m.send(socket, from, packet{typ: typeReply, txid: p.txid})
	m.stats.RepliesSent++
	m.nominateIfDue(at)
}

// hasRelay reports whether one of this side's sockets is a TURN relay.
func (m *Machine) hasRelay() bool {
	return slices.ContainsFunc(m.cfg.Sockets, func(s LocalSocket) bool { return s.Relayed.IsValid() })
}

// socketRelay is the relayed address of a local socket, if it is a relay.
func (m *Machine) socketRelay(id SocketID) netip.AddrPort {
	for _, s := range m.cfg.Sockets {
		if s.ID == id {
			return s.Relayed
		}
	}
	return netip.AddrPort{}
}

// nominateIfDue sends the controlling side's nomination when it is due.
func (m *Machine) nominateIfDue(now time.Time) {
	if m.nominating() && !now.Before(m.nextNominate) {
		m.nominate(now)
	}
}

// heard acts on an authentic packet from the peer.
func (m *Machine) heard(at time.Time, socket SocketID, from netip.AddrPort, p packet, peerSelected bool, rtt time.Duration) {
	switch m.state {
	case statePunching:
		m.stats.Accepted++
		// The controlling side takes the first pair that works; the
		// controlled side waits to be told which.
		if m.cfg.Role == Controlled && !peerSelected {
			return
		}
		if m.cfg.Role == Controlling && m.preferV6 && !isGlobal6(from.Addr()) {
			// An IPv4 pair works, but an IPv6 one may a moment later:
			// hold this one for ipv6Grace (RFC 8305's spirit).
			if m.held == nil {
				m.held = &pending{socket: socket, remote: from, local: p.dst, rtt: rtt, until: at.Add(ipv6Grace)}
			}
			return
		}
		m.selectPath(at, socket, from, p.dst, rtt)
		if m.cfg.Role == Controlling {
			// Nominate at once, after any reply to this packet: the
			// reply (already flagged) reaches the peer first and
			// carries an RTT for it.
			m.nextNominate = at
		}
	case stateSelected:
		if socket != m.socket || from != m.remote {
			m.stats.Unexpected++ // a late answer on another pair
			return
		}
		m.stats.Accepted++
		m.lastHeard = at
		if rtt > 0 {
			m.rtt = rtt
		}
		if m.cfg.Role == Controlling && peerSelected {
			m.nominated = true
		}
	}
}

// selectPath moves to the selected state on the pair (local, remote) over
// socket.
func (m *Machine) selectPath(at time.Time, socket SocketID, remote, local netip.AddrPort, rtt time.Duration) {
	m.state = stateSelected
	m.held = nil
	m.socket = socket
	m.remote = remote
	m.local = local
	if !m.local.IsValid() {
		m.local = m.localFallback(socket)
	}
	m.rtt = rtt
	m.selectedAt = at
	m.lastHeard = at
	if m.cfg.KeepaliveInterval > 0 {
		m.nextKeepalive = at.Add(m.cfg.KeepaliveInterval)
	}
	m.sent = make(map[uint64]*outstanding) // answers to other pairs no longer matter
	relay := m.socketRelay(socket)
	if t := m.target(socket, remote); t != nil && t.relay.IsValid() {
		relay = t.relay
	}
	m.ev = append(m.ev, PathSelected{Local: m.local, Remote: m.remote, RTT: rtt, Socket: socket, Kind: m.cfg.Kind, Relay: relay})
	if m.bd != nil {
		m.bd.release(m, socket)
	}
}

// localFallback is this side's address on socket when the peer's packets
// did not say where they were sent: the socket's relayed address, else
// the first local candidate.
func (m *Machine) localFallback(socket SocketID) netip.AddrPort {
	if r := m.socketRelay(socket); r.IsValid() {
		return r
	}
	if len(m.cfg.Local) > 0 {
		return m.cfg.Local[0].Addr
	}
	return netip.AddrPort{}
}

// nominate sends the controlling side's "use this path" probe and plans
// the next one in case it or its answer is lost.
func (m *Machine) nominate(now time.Time) {
	m.sendProbe(now, m.socket, m.remote)
	m.nominateRound++
	m.nextNominate = now.Add(probeInterval(m.nominateRound))
}

// NoteReceived records that session traffic arrived on the selected path,
// which shows the path is alive as well as a keepalive would.
func (m *Machine) NoteReceived(at time.Time) {
	if m.state == stateSelected && at.After(m.lastHeard) {
		m.lastHeard = at
	}
}

// HandleTimeout runs whatever timers are due at now.
func (m *Machine) HandleTimeout(now time.Time) {
	switch m.state {
	case statePunching:
		if h := m.held; h != nil && !now.Before(h.until) {
			m.selectPath(now, h.socket, h.remote, h.local, h.rtt)
			m.nextNominate = now
			m.nominateIfDue(now)
			return
		}
		if !now.Before(m.punchDeadline) {
			m.timedOut()
			return
		}
		if m.bd != nil {
			m.bd.timeout(m, now)
			return
		}
		if !now.Before(m.nextProbe) {
			m.probeRound(now)
		}
	case stateSelected:
		if m.cfg.PathTimeout > 0 && !now.Before(m.lastHeard.Add(m.cfg.PathTimeout)) {
			m.state = stateDone
			m.ev = append(m.ev, PathLost{})
			if m.bd != nil {
				m.bd.release(m, MainSocket)
			}
			return
		}
		m.nominateIfDue(now)
		if m.cfg.KeepaliveInterval > 0 && !now.Before(m.nextKeepalive) {
			m.send(m.socket, m.remote, packet{typ: typeKeepalive, txid: m.nextTxID()})
			m.stats.KeepalivesSent++
			m.nextKeepalive = now.Add(m.cfg.KeepaliveInterval)
		}
	}
}

// nominating reports whether the controlling side still has to tell the
// controlled side which path it selected. Past the punch timeout the peer
// has given up, so there is nobody left to tell.
func (m *Machine) nominating() bool {
	return m.state == stateSelected && m.cfg.Role == Controlling && !m.nominated &&
		m.nextNominate.Before(m.punchDeadline)
}

// Deadline is when HandleTimeout should next be called; zero: never.
func (m *Machine) Deadline() time.Time {
	switch m.state {
	case statePunching:
		d := m.punchDeadline
		if m.held != nil {
			d = sansio.Earliest(d, m.held.until)
		}
		if m.bd != nil {
			return sansio.Earliest(d, m.bd.deadline())
		}
		return sansio.Earliest(m.nextProbe, d)
	case stateSelected:
		var d time.Time
		if m.cfg.PathTimeout > 0 {
			d = m.lastHeard.Add(m.cfg.PathTimeout)
		}
		if m.nominating() {
			d = sansio.Earliest(d, m.nextNominate)
		}
		if m.cfg.KeepaliveInterval > 0 {
			d = sansio.Earliest(d, m.nextKeepalive)
		}
		return d
	}
	return time.Time{}
}

// Transmits returns, and forgets, the packets to send.
func (m *Machine) Transmits() []Transmit {
	tx := m.tx
	m.tx = nil
	return tx
}

// Events returns, and forgets, what happened since the last call.
func (m *Machine) Events() []Event {
	ev := m.ev
	m.ev = nil
	return ev
}

func (m *Machine) target(socket SocketID, addr netip.AddrPort) *target {
	for _, t := range m.targets {
		if t.socket == socket && t.addr == addr {
			return t
		}
	}
	return nil
}

func (m *Machine) fail(r Reason, detail string) {
	m.state = stateDone
	m.held = nil
	m.ev = append(m.ev, Failed{Reason: r, Detail: detail})
	if m.bd != nil {
		m.bd.release(m, MainSocket)
	}
}

// timedOut fails punching with the most telling reason and a detail of
// every pair tried.
func (m *Machine) timedOut() {
	reason := ReasonTimeout
	local, remote := m.cfg.LocalNAT, m.cfg.RemoteNAT
	switch {
	case m.cfg.Kind == PathRelayed:
		reason = ReasonRelayTimeout
	case (local.Symmetric() && !remote.Open()) || (remote.Symmetric() && !local.Open()):
		reason = ReasonSymmetricNAT
	}
	var d strings.Builder
	fmt.Fprintf(&d, "this side: %s; peer: %s; ", describeNAT(local), describeNAT(remote))
	if m.bd != nil {
		m.bd.describe(&d, m)
	} else {
		fmt.Fprintf(&d, "tried %d pair(s) for %v:", len(m.targets), m.cfg.PunchTimeout)
	}
	heard := false
	for _, t := range m.targets {
		if m.bd != nil && t.probesIn == 0 && t.repliesIn == 0 {
			continue // hundreds of silent birthday sockets say nothing
		}
		fmt.Fprintf(&d, " %s %v", t.label, t.addr)
		if t.socket != MainSocket {
			fmt.Fprintf(&d, " from socket %d", t.socket)
		}
		fmt.Fprintf(&d, " (%d probes", t.sent)
		if t.probesIn > 0 {
			fmt.Fprintf(&d, ", %d of its probes came in", t.probesIn)
			heard = true
		}
		if t.repliesIn > 0 {
			fmt.Fprintf(&d, ", %d replies", t.repliesIn)
			heard = true
		}
		if t.probesIn == 0 && t.repliesIn == 0 {
			d.WriteString(", nothing back")
		}
		d.WriteString(");")
	}
	if heard && m.cfg.Role == Controlled {
		d.WriteString(" the peer's packets arrived but it never chose a path;")
	}
	if n := m.stats.Ignored(); n > 0 {
		fmt.Fprintf(&d, " ignored %d packet(s) that were not the peer's (%d forged, %d other session, %d replayed, %d malformed)",
			n, m.stats.Forged, m.stats.OtherTag, m.stats.Replayed, m.stats.Malformed)
	}
	m.fail(reason, strings.TrimSuffix(strings.TrimSpace(d.String()), ";"))
	if f, ok := m.ev[len(m.ev)-1].(Failed); ok {
		f.HeardPeer = heard
		m.ev[len(m.ev)-1] = f
	}
}

// describeNAT names a NAT behaviour for a failure's detail.
func describeNAT(b NATBehavior) string {
	switch {
	case b.Mapping == MappingNone:
		return "no NAT"
	case b.Symmetric():
		return fmt.Sprintf("symmetric NAT (%s mapping)", b.Mapping)
	case b.Mapping == MappingEndpointIndependent && b.Filtering == FilteringEndpointIndependent:
		return "full-cone NAT"
	case b.Mapping == MappingEndpointIndependent && b.Filtering != FilteringUnknown:
		return fmt.Sprintf("cone NAT (%s filtering)", b.Filtering)
	case b.Mapping == MappingEndpointIndependent:
		return "cone NAT"
	}
	return "NAT not measured"
}

// replaySet remembers the last n transaction IDs received and where from.
type replaySet struct {
	from map[uint64]netip.AddrPort
	ring []uint64
	next int
}

func newReplaySet(n int) replaySet {
	return replaySet{from: make(map[uint64]netip.AddrPort), ring: make([]uint64, 0, n)}
}

func (r *replaySet) lookup(id uint64) (netip.AddrPort, bool) {
	a, ok := r.from[id]
	return a, ok
}

// add remembers id, forgetting the oldest once full.
func (r *replaySet) add(id uint64, from netip.AddrPort) {
	if _, ok := r.from[id]; ok {
		return // the first sender stays the one that counts
	}
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, id)
	} else {
		delete(r.from, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.from[id] = from
}
