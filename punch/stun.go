package punch

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/pion/stun/v2"
)

// STUN retransmission (RFC 8489 section 6.2.1). The RFC's RTO starts at
// 500 ms and doubles, with Rc = 7 requests; its last wait of Rm = 16 RTOs
// would keep a user at "connecting…" for 39.5 s, so the RTO is capped and
// the last wait is one capped RTO: seven requests, at 0, 0.5, 1.5, 3.1,
// 4.7, 6.3 and 7.9 s, and the server is given up at 9.5 s.
const (
	stunInitialRTO = 500 * time.Millisecond
	stunMaxRTO     = 1600 * time.Millisecond
	stunTries      = 7
	// stunAnswerGrace is how long the other servers get once one has
	// answered: their answers only refine the mapping behaviour, and a dead
	// server must not hold up a working one for 9.5 s.
	stunAnswerGrace = 2 * time.Second
)

// Errors in DiscoveryResult.Err and ServerAnswer.Err.
var (
	// ErrNoSTUNServers means discovery had no server to ask.
	ErrNoSTUNServers = errors.New("punch: no STUN servers configured")
	// ErrSTUNTimeout means a server never answered within the schedule.
	ErrSTUNTimeout = errors.New("punch: STUN server did not answer")
	// ErrSTUNRejected means a server answered with a Binding error response.
	ErrSTUNRejected = errors.New("punch: STUN server refused the request")
	// ErrSTUNNoAddress means a success response carried no mapped address.
	ErrSTUNNoAddress = errors.New("punch: STUN response without a mapped address")
	// ErrNoSTUNAnswer means no server gave a mapped address.
	ErrNoSTUNAnswer = errors.New("punch: no STUN server gave our public address")
)

// DefaultSTUNServers are public STUN servers for real use, as host:port to
// be resolved by the caller (ResolveSTUNServers). Two operators, so the
// mapping behaviour can be found by comparing their answers. A fresh slice
// each call: nothing package-level to mutate.
func DefaultSTUNServers() []string {
	return []string{"stun.l.google.com:19302", "stun.cloudflare.com:3478"}
}

// DiscoveryConfig tunes a Discovery. Zero durations and counts take the
// RFC 8489-derived defaults above; tests shorten them.
type DiscoveryConfig struct {
	// Rand supplies transaction IDs; nil: crypto/rand.
	Rand io.Reader
	// Servers are the STUN servers to ask (duplicates are asked once):
	// IPv4 ones, and IPv6 ones for a socket that can send IPv6 (a
	// dual-stack socket); each family's answers are compared apart.
	Servers []netip.AddrPort
	// Socket is the socket the requests go out from (Transmit.Socket),
	// whose datagrams the caller feeds in; zero is the main socket.
	Socket SocketID
	// Local are the socket's own addresses (its host candidates): a mapped
	// address among them means there is no NAT (MappingNone).
	Local []netip.AddrPort
	// InitialRTO is the first retransmission timeout; it doubles per try.
	InitialRTO time.Duration
	// MaxRTO caps the retransmission timeout and is the last wait.
	MaxRTO time.Duration
	// Tries is how many requests a server gets before it is given up.
	Tries int
	// AnswerGrace is how long the other servers get once one has answered.
	AnswerGrace time.Duration
	// FilteringRTO is the fixed retransmission interval of the RFC 5780
	// filtering tests (default 300 ms), and FilteringTries how many
	// requests each gets (default 3): a NAT that drops their answers
	// delays Result by FilteringTries × FilteringRTO after the first
	// server's answer (0.9 s by default), and only with a server that
	// advertises OTHER-ADDRESS.
	FilteringRTO   time.Duration
	FilteringTries int
}

// ServerAnswer is what one STUN server said.
type ServerAnswer struct {
	Server netip.AddrPort
	Mapped netip.AddrPort // valid when Err is nil
	RTT    time.Duration  // from the first request to the answer
	Err    error
}

// DiscoveryResult is what STUN discovery found.
type DiscoveryResult struct {
	// Reflexive is the public IPv4 address of the socket as the first
	// answering IPv4 server (in configuration order) saw it; zero if no
	// IPv4 server answered.
	Reflexive Candidate
	// NAT is the mapping behaviour found by comparing the servers' answers,
	// and the filtering behaviour found by the RFC 5780 section 4.4 tests
	// when the first server advertises OTHER-ADDRESS (most public servers
	// do not: filtering is then unknown, as it is when the server answers
	// CHANGE-REQUEST with an error). NAT.PortStep is set when the two
	// first servers' mappings were a few ports apart: a NAT handing out
	// ports in sequence. All of it concerns IPv4.
	NAT NATBehavior
	// Reflexive6 is the IPv6 address as the first answering IPv6 server
	// saw it (zero if none answered): usually the host's own, as IPv6
	// rarely has NAT. NAT6 is the IPv6 mapping behaviour (MappingNone when
	// the answer is one of DiscoveryConfig.Local; filtering unmeasured).
	Reflexive6 Candidate
	NAT6       NATBehavior
	// Servers is each server's answer, in configuration order.
	Servers []ServerAnswer
	// Err is set when no server gave a mapped address.
	Err error
}

// stunTransaction is one server's Binding request and its retransmissions.
type stunTransaction struct {
	server netip.AddrPort
	id     [stun.TransactionIDSize]byte
	req    []byte
	sent   int       // requests sent so far
	first  time.Time // when the first was sent
	next   time.Time // next retransmission, or the give-up instant
	done   bool
	answer ServerAnswer
}

// Discovery is the sans-I/O STUN client: it asks every configured server
// for this socket's public address with a Binding request, retransmits on
// the RFC 8489 schedule, and compares the answers to find the NAT's mapping
// behaviour. It never reads a clock or touches a socket: the caller feeds it
// time and datagrams, sends its Transmits and calls HandleTimeout at
// Deadline.
type Discovery struct {
	cfg         DiscoveryConfig
	rand        io.Reader
	txns        []*stunTransaction
	out         []Transmit
	started     bool
	firstAnswer time.Time  // zero until a server answers
	filter      *filtering // nil unless the first server offered RFC 5780
	err         error      // a setup error (no servers, no randomness)
}

// NewDiscovery makes a discovery. cfg.Rand supplies transaction IDs
// (nil: crypto/rand; an off-path attacker must not guess them). A negative
// duration or count in cfg is a setup error that Result reports.
func NewDiscovery(cfg DiscoveryConfig) *Discovery {
	d := &Discovery{rand: sansio.Rand(cfg.Rand)}
	for _, v := range []time.Duration{cfg.InitialRTO, cfg.MaxRTO, cfg.AnswerGrace, cfg.FilteringRTO} {
		if v < 0 {
			d.err = errors.New("punch: negative duration in DiscoveryConfig")
		}
	}
	if cfg.Tries < 0 || cfg.FilteringTries < 0 {
		d.err = errors.New("punch: negative count in DiscoveryConfig")
	}
	cfg.InitialRTO = sansio.Override(cfg.InitialRTO, stunInitialRTO)
	cfg.MaxRTO = max(sansio.Override(cfg.MaxRTO, stunMaxRTO), cfg.InitialRTO)
	if cfg.Tries == 0 {
		cfg.Tries = stunTries
	}
	cfg.AnswerGrace = sansio.Override(cfg.AnswerGrace, stunAnswerGrace)
	cfg.FilteringRTO = sansio.Override(cfg.FilteringRTO, stunFilteringRTO)
	if cfg.FilteringTries == 0 {
		cfg.FilteringTries = stunFilteringTries
	}
	d.cfg = cfg
	return d
}

// Start sends the first request to every server.
func (d *Discovery) Start(now time.Time) {
	if d.started {
		return
	}
	d.started = true
	if d.err != nil {
		return // a setup error; Result reports it
	}
	seen := make(map[netip.AddrPort]bool)
	for _, s := range d.cfg.Servers {
		s = netip.AddrPortFrom(s.Addr().Unmap(), s.Port())
		if seen[s] || !s.IsValid() {
			continue
		}
		seen[s] = true
		t := &stunTransaction{server: s, answer: ServerAnswer{Server: s}}
		if _, err := io.ReadFull(d.rand, t.id[:]); err != nil {
			d.err = fmt.Errorf("punch: STUN transaction ID: %w", err)
			d.txns = nil
			d.out = nil
			return
		}
		m, err := stun.Build(stun.BindingRequest, stun.NewTransactionIDSetter(t.id), stun.Fingerprint)
		if err != nil {
			d.err = fmt.Errorf("punch: build a STUN Binding request: %w", err)
			d.txns = nil
			d.out = nil
			return
		}
		t.req = m.Raw
		t.first = now
		d.txns = append(d.txns, t)
		d.send(t, now)
	}
	if len(d.txns) == 0 {
		d.err = ErrNoSTUNServers
	}
}

// rto is the wait after the k-th request (0-based).
func (d *Discovery) rto(k int) time.Duration {
	r := d.cfg.InitialRTO
	for range k {
		r *= 2
		if r >= d.cfg.MaxRTO {
			return d.cfg.MaxRTO
		}
	}
	return min(r, d.cfg.MaxRTO)
}

func (d *Discovery) send(t *stunTransaction, now time.Time) {
	d.out = append(d.out, Transmit{To: t.server, Data: t.req, Socket: d.cfg.Socket})
	t.next = now.Add(d.rto(t.sent))
	t.sent++
}

// HandleDatagram takes a STUN-class datagram. Anything that is not a Binding
// response to one of our outstanding requests, from the server it was sent
// to, is ignored: a stray or spoofed packet cannot plant an address.
func (d *Discovery) HandleDatagram(at time.Time, from netip.AddrPort, b []byte) {
	if !d.started || d.err != nil {
		return
	}
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil {
		return
	}
	if m.Type.Method != stun.MethodBinding ||
		(m.Type.Class != stun.ClassSuccessResponse && m.Type.Class != stun.ClassErrorResponse) {
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if d.handleFilterPacket(from, m) {
		return
	}
	var t *stunTransaction
	for _, c := range d.txns {
		if !c.done && c.id == m.TransactionID && c.server == from {
			t = c
			break
		}
	}
	if t == nil {
		return
	}
	if m.Contains(stun.AttrFingerprint) && stun.Fingerprint.Check(m) != nil {
		return // damaged in transit: a retransmission may fare better
	}
	t.done = true
	t.answer.RTT = at.Sub(t.first)
	if m.Type.Class == stun.ClassErrorResponse {
		var code stun.ErrorCodeAttribute
		if code.GetFrom(m) == nil {
			t.answer.Err = fmt.Errorf("%w: %v: %d %s", ErrSTUNRejected, from, code.Code, code.Reason)
		} else {
			t.answer.Err = fmt.Errorf("%w: %v", ErrSTUNRejected, from)
		}
		return
	}
	mapped, ok := mappedAddress(m)
	if !ok {
		t.answer.Err = fmt.Errorf("%w: %v", ErrSTUNNoAddress, from)
		return
	}
	t.answer.Mapped = mapped
	if d.firstAnswer.IsZero() {
		d.firstAnswer = at
	}
	if t == d.filterServer() {
		d.startFiltering(at, t.server, m)
	}
}

// filterServer is the transaction whose server runs the RFC 5780 filtering
// tests: the first IPv4 one, since the NAT's filtering is what decides
// punching (IPv6 paths cross firewalls, which filter like port-restricted
// NATs whatever a test says).
func (d *Discovery) filterServer() *stunTransaction {
	for _, t := range d.txns {
		if t.server.Addr().Is4() {
			return t
		}
	}
	return nil
}

// mappedAddress reads XOR-MAPPED-ADDRESS, or the RFC 3489 MAPPED-ADDRESS an
// old server sends instead.
func mappedAddress(m *stun.Message) (netip.AddrPort, bool) {
	var xor stun.XORMappedAddress
	if err := xor.GetFrom(m); err == nil {
		return addrPortFromIP(xor.IP, xor.Port)
	}
	var plain stun.MappedAddress
	if err := plain.GetFrom(m); err == nil {
		return addrPortFromIP(plain.IP, plain.Port)
	}
	return netip.AddrPort{}, false
}

func addrPortFromIP(ip []byte, port int) (netip.AddrPort, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || port <= 0 || port > 65535 || a.IsUnspecified() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// HandleTimeout retransmits what is due and gives up on servers whose
// schedule has run out (or whose grace after another's answer has).
func (d *Discovery) HandleTimeout(now time.Time) {
	d.filterTimeout(now)
	for _, t := range d.txns {
		if t.done {
			continue
		}
		if !d.firstAnswer.IsZero() && !now.Before(d.firstAnswer.Add(d.cfg.AnswerGrace)) {
			t.done = true
			t.answer.Err = fmt.Errorf("%w: %v (within %v of another server's answer)", ErrSTUNTimeout, t.server, d.cfg.AnswerGrace)
			continue
		}
		if now.Before(t.next) {
			continue
		}
		if t.sent >= d.cfg.Tries {
			t.done = true
			t.answer.Err = fmt.Errorf("%w: %v (%d requests over %v)", ErrSTUNTimeout, t.server, t.sent, now.Sub(t.first).Round(time.Millisecond))
			continue
		}
		d.send(t, now)
	}
}

// Transmits returns the requests to send now, and forgets them.
func (d *Discovery) Transmits() []Transmit {
	out := d.out
	d.out = nil
	return out
}

// Deadline is when HandleTimeout must next be called; zero once done.
func (d *Discovery) Deadline() time.Time {
	dl := d.filterDeadline()
	for _, t := range d.txns {
		if t.done {
			continue
		}
		next := t.next
		if !d.firstAnswer.IsZero() {
			if g := d.firstAnswer.Add(d.cfg.AnswerGrace); g.Before(next) {
				next = g
			}
		}
		if dl.IsZero() || next.Before(dl) {
			dl = next
		}
	}
	return dl
}

// Result is the whole outcome: ok once every server has answered or been
// given up and the filtering tests, if the first server offered them, have
// concluded (at most FilteringTries × FilteringRTO after its answer; with
// a server without RFC 5780 there is no wait). ok is false while discovery
// is still running (or before Start). The result does not change after.
func (d *Discovery) Result() (DiscoveryResult, bool) {
	if d.filter != nil && !d.filter.done && d.err == nil {
		return DiscoveryResult{}, false
	}
	return d.Mapped()
}

// Mapped is Result without waiting for the filtering tests: ok as soon as
// every server has answered or been given up, with NAT.Filtering unknown
// if the tests are still running. A caller that needs the public address
// early takes it here and keeps feeding the discovery until Result is ok
// to learn the filtering.
func (d *Discovery) Mapped() (DiscoveryResult, bool) {
	if d.err != nil {
		return DiscoveryResult{Err: d.err}, true
	}
	if !d.started {
		return DiscoveryResult{}, false
	}
	var res DiscoveryResult
	var answered4, answered6 []ServerAnswer
	for _, t := range d.txns {
		if !t.done {
			return DiscoveryResult{}, false
		}
		res.Servers = append(res.Servers, t.answer)
		switch {
		case t.answer.Err != nil:
		case t.server.Addr().Is4():
			answered4 = append(answered4, t.answer)
		default:
			answered6 = append(answered6, t.answer)
		}
	}
	if len(answered4)+len(answered6) == 0 {
		errs := []error{ErrNoSTUNAnswer}
		for _, a := range res.Servers {
			errs = append(errs, a.Err)
		}
		res.Err = errors.Join(errs...)
		return res, true
	}
	if len(answered4) > 0 {
		res.Reflexive = Candidate{Type: CandidateServerReflexive, Addr: answered4[0].Mapped, Priority: srflxCandidatePriority()}
		res.NAT.Mapping = d.mapping(answered4)
		res.NAT.PortStep = portStep(res.NAT, answered4)
		if d.filter != nil && d.filter.done {
			res.NAT.Filtering = d.filter.result
		}
	}
	if len(answered6) > 0 {
		res.Reflexive6 = Candidate{Type: CandidateServerReflexive, Addr: answered6[0].Mapped, Priority: srflxCandidatePriority()}
		res.NAT6.Mapping = d.mapping(answered6)
	}
	return res, true
}

// portStep is the difference between the first two servers' mapped ports
// when the NAT is symmetric and they are close: the requests left at once
// in configuration order, so a NAT allocating in sequence gave the second
// the next port (or a few further on, if other mappings came between).
func portStep(nat NATBehavior, answered []ServerAnswer) int {
	if !nat.Symmetric() || len(answered) < 2 || answered[0].Mapped.Addr() != answered[1].Mapped.Addr() {
		return 0
	}
	step := int(answered[1].Mapped.Port()) - int(answered[0].Mapped.Port())
	if step == 0 || step < -MaxPortStep || step > MaxPortStep {
		return 0
	}
	return step
}

// mapping compares the servers' answers (RFC 5780 section 4.3 in spirit,
// with independent servers instead of one server's alternate addresses).
func (d *Discovery) mapping(answered []ServerAnswer) MappingBehavior {
	for _, a := range answered {
		for _, l := range d.cfg.Local {
			if a.Mapped == netip.AddrPortFrom(l.Addr().Unmap(), l.Port()) {
				return MappingNone
			}
		}
	}
	if len(answered) < 2 {
		return MappingUnknown
	}
	differ, sameIPPortsAgree := false, false
	for i := range answered {
		for j := i + 1; j < len(answered); j++ {
			a, b := answered[i], answered[j]
			same := a.Mapped == b.Mapped
			if !same {
				differ = true
			}
			if a.Server.Addr() == b.Server.Addr() && same {
				sameIPPortsAgree = true
			}
		}
	}
	switch {
	case !differ:
		return MappingEndpointIndependent
	case sameIPPortsAgree:
		// One destination IP on two ports kept the mapping, two IPs did
		// not: the mapping depends on the address only.
		return MappingAddressDependent
	default:
		// Without that evidence assume the stricter behaviour; for punching
		// both are symmetric NATs.
		return MappingAddressAndPortDependent
	}
}
