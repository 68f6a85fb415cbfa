package punch

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// machEpoch is the fake clock's zero: tests never read the real clock.
var machEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// seeded is a deterministic randomness source for NewMachine.
func machSeeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	return rand.NewChaCha8(s)
}

var (
	machAddrA = netip.MustParseAddrPort("198.51.100.1:4000")
	machAddrB = netip.MustParseAddrPort("203.0.113.2:5000")
)

func machConfigs() (Config, Config) {
	a := Config{Role: Controlling, SessionID: "s1", Secret: [32]byte{1, 2, 3},
		Local:  []Candidate{{Type: CandidateHost, Addr: machAddrA}},
		Remote: []Candidate{{Type: CandidateHost, Addr: machAddrB}}}
	b := a
	b.Role = Controlled
	b.Local, b.Remote = a.Remote, a.Local
	return a, b
}

func machNew(t testing.TB, cfg Config, seed uint64) *Machine {
	t.Helper()
	cfg.Rand = machSeeded(seed)
	m, err := NewMachine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// relay delivers everything from sends to the machine at the address it is
// addressed to, as coming from the sender's address; other packets vanish.
// It returns how many packets it delivered.
func machRelay(at time.Time, from netip.AddrPort, tx []Transmit, peers map[netip.AddrPort]*Machine) int {
	n := 0
	for _, t := range tx {
		if m := peers[t.To]; m != nil {
			m.HandleDatagram(at, from, t.Data)
			n++
		}
	}
	return n
}

func TestNewMachineValidates(t *testing.T) {
	a, _ := machConfigs()
	a.Rand = machSeeded(1)
	bad := []Config{a, a, a}
	bad[0].Role = 7
	bad[1].SessionID = ""
	bad[2].PunchTimeout = -time.Second // punching must end
	for i, c := range bad {
		if _, err := NewMachine(c); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	a.Rand = bytes.NewReader(nil)
	if _, err := NewMachine(a); err == nil {
		t.Error("an empty source of randomness accepted")
	}
	a.Rand = nil // crypto/rand
	if _, err := NewMachine(a); err != nil {
		t.Errorf("nil rand (crypto/rand) refused: %v", err)
	}
}

func TestStartWithoutCandidatesFails(t *testing.T) {
	a, _ := machConfigs()
	a.Remote = []Candidate{{Addr: netip.MustParseAddrPort("0.0.0.0:1")}, {}}
	m := machNew(t, a, 1)
	m.Start(machEpoch)
	ev := m.Events()
	if len(ev) != 1 || ev[0].(Failed).Reason != ReasonNoCandidates {
		t.Fatalf("events %#v", ev)
	}
	if len(m.Transmits()) != 0 || !m.Deadline().IsZero() {
		t.Fatal("a failed machine still wants to act")
	}
}

func TestStartProbesEveryCandidateByPriority(t *testing.T) {
	a, _ := machConfigs()
	low := netip.MustParseAddrPort("10.0.0.2:5000")
	high := netip.MustParseAddrPort("[2001:db8::2]:5000")
	a.Remote = []Candidate{
		{Addr: low, Priority: 1},
		{Addr: high, Priority: 9},
		{Addr: low, Priority: 5}, // the same address again
		{Addr: netip.MustParseAddrPort("[::ffff:10.0.0.3]:7"), Priority: 3},
	}
	m := machNew(t, a, 1)
	m.Start(machEpoch)
	var to []netip.AddrPort
	for _, tx := range m.Transmits() {
		to = append(to, tx.To)
		if tg, ok := PacketTag(tx.Data); !ok || tg != m.Tag() {
			t.Fatalf("probe carries tag %v %v, machine has %v", tg, ok, m.Tag())
		}
	}
	want := []netip.AddrPort{high, low, netip.MustParseAddrPort("10.0.0.3:7")}
	if len(to) != len(want) {
		t.Fatalf("probed %v, want %v", to, want)
	}
	for i := range want {
		if to[i] != want[i] {
			t.Fatalf("probed %v, want %v", to, want)
		}
	}
	if got := m.Deadline().Sub(machEpoch); got != probeFastInterval {
		t.Fatalf("next round after %v", got)
	}
}

func TestProbeScheduleThenTimeout(t *testing.T) {
	a, _ := machConfigs()
	m := machNew(t, a, 1)
	m.Start(machEpoch)
	probes := len(m.Transmits())
	var failed *Failed
	for i := 0; i < 1000 && failed == nil; i++ {
		d := m.Deadline()
		if d.IsZero() {
			t.Fatal("no deadline while punching")
		}
		m.HandleTimeout(d)
		probes += len(m.Transmits())
		for _, ev := range m.Events() {
			f := ev.(Failed)
			failed = &f
			if got := d.Sub(machEpoch); got != DefaultPunchTimeout {
				t.Fatalf("failed after %v", got)
			}
		}
	}
	if failed == nil || failed.Reason != ReasonTimeout || failed.HeardPeer {
		t.Fatalf("failed = %#v; want a timeout that heard nothing", failed)
	}
	if !strings.Contains(failed.Detail, machAddrB.String()) || !strings.Contains(failed.Detail, "nothing back") {
		t.Errorf("detail %q does not say what was tried", failed.Detail)
	}
	// 10 rounds in the first 0.5 s, then 100, 200, 400 ms, then 500 ms.
	if probes < 20 || probes > 30 {
		t.Errorf("%d probes in %v", probes, DefaultPunchTimeout)
	}
	if m.Stats().ProbesSent != probes {
		t.Errorf("stats say %d probes, sent %d", m.Stats().ProbesSent, probes)
	}
}

func TestProbeInterval(t *testing.T) {
	want := map[int]time.Duration{1: 50 * time.Millisecond, 10: 50 * time.Millisecond,
		11: 100 * time.Millisecond, 12: 200 * time.Millisecond, 13: 400 * time.Millisecond,
		14: 500 * time.Millisecond, 100: 500 * time.Millisecond}
	for r, w := range want {
		if got := probeInterval(r); got != w {
			t.Errorf("probeInterval(%d) = %v, want %v", r, got, w)
		}
	}
}

// handshake runs two directly connected machines (B starting after A's
// first probes were lost) and returns both selections.
func machHandshake(t *testing.T) (*Machine, *Machine, PathSelected, PathSelected) {
	t.Helper()
	ca, cb := machConfigs()
	a, b := machNew(t, ca, 1), machNew(t, cb, 2)
	peers := map[netip.AddrPort]*Machine{machAddrA: a, machAddrB: b}
	now := machEpoch
	a.Start(now)
	a.Transmits() // lost: B has not started
	now = now.Add(10 * time.Millisecond)
	b.Start(now)
	var selA, selB []PathSelected
	for range 6 {
		now = now.Add(time.Millisecond)
		machRelay(now, machAddrB, b.Transmits(), peers)
		machRelay(now, machAddrA, a.Transmits(), peers)
		for _, ev := range a.Events() {
			selA = append(selA, ev.(PathSelected))
		}
		for _, ev := range b.Events() {
			selB = append(selB, ev.(PathSelected))
		}
	}
	if len(selA) != 1 || len(selB) != 1 {
		t.Fatalf("selections: A %v, B %v", selA, selB)
	}
	return a, b, selA[0], selB[0]
}

func TestHandshakeSelectsOnePath(t *testing.T) {
	a, b, sa, sb := machHandshake(t)
	if sa.Remote != machAddrB || sa.Local != machAddrA || sb.Remote != machAddrA || sb.Local != machAddrB {
		t.Fatalf("A selected %+v, B selected %+v", sa, sb)
	}
	if sb.RTT <= 0 {
		t.Errorf("B's RTT %v: it selected on a reply to its own probe", sb.RTT)
	}
	if a.nominating() {
		t.Error("A still nominating after B's selected reply")
	}
	if s := a.Stats(); s.Ignored() != 0 {
		t.Errorf("A ignored packets: %+v", s)
	}
	if s := b.Stats(); s.Forged+s.Replayed+s.Reflected+s.Malformed != 0 {
		t.Errorf("B: %+v", s)
	}
}

func TestControlledWaitsForNomination(t *testing.T) {
	ca, cb := machConfigs()
	a, b := machNew(t, ca, 1), machNew(t, cb, 2)
	b.Start(machEpoch)
	b.Transmits()
	// A's probe before A selected: B answers but does not select.
	a.Start(machEpoch)
	machRelay(machEpoch, machAddrA, a.Transmits(), map[netip.AddrPort]*Machine{machAddrB: b})
	if ev := b.Events(); len(ev) != 0 {
		t.Fatalf("B selected on an un-nominated probe: %v", ev)
	}
	tx := b.Transmits()
	if len(tx) != 1 || tx[0].To != machAddrA {
		t.Fatalf("B's answer: %v", tx)
	}
	// The reply selects on A, whose nomination then selects on B.
	machRelay(machEpoch, machAddrB, tx, map[netip.AddrPort]*Machine{machAddrA: a})
	if ev := a.Events(); len(ev) != 1 {
		t.Fatalf("A: %v", ev)
	}
	machRelay(machEpoch, machAddrA, a.Transmits(), map[netip.AddrPort]*Machine{machAddrB: b})
	if ev := b.Events(); len(ev) != 1 || ev[0].(PathSelected).Remote != machAddrA {
		t.Fatalf("B: %v", ev)
	}
}

func TestFailureReasons(t *testing.T) {
	var (
		none = NATBehavior{Mapping: MappingNone}
		full = NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringEndpointIndependent}
		cone = NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringUnknown}
		port = NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringAddressAndPortDependent}
		sym  = NATBehavior{Mapping: MappingAddressAndPortDependent, Filtering: FilteringAddressAndPortDependent}
		symA = NATBehavior{Mapping: MappingAddressDependent, Filtering: FilteringUnknown}
		unk  = NATBehavior{}
	)
	cases := []struct {
		local, remote NATBehavior
		want          Reason
	}{
		{sym, port, ReasonSymmetricNAT},
		{port, sym, ReasonSymmetricNAT},
		{sym, sym, ReasonSymmetricNAT},
		{symA, cone, ReasonSymmetricNAT},
		{sym, unk, ReasonSymmetricNAT},
		{sym, none, ReasonTimeout},
		{full, sym, ReasonTimeout},
		{port, port, ReasonTimeout},
		{cone, unk, ReasonTimeout},
		{unk, unk, ReasonTimeout},
	}
	for _, tc := range cases {
		a, _ := machConfigs()
		a.LocalNAT, a.RemoteNAT = tc.local, tc.remote
		a.PunchTimeout = time.Second
		m := machNew(t, a, 1)
		m.Start(machEpoch)
		m.HandleTimeout(machEpoch.Add(time.Second))
		ev := m.Events()
		if len(ev) != 1 {
			t.Fatalf("%v/%v: %v", tc.local, tc.remote, ev)
		}
		f := ev[0].(Failed)
		if f.Reason != tc.want {
			t.Errorf("local %v, remote %v: %v, want %v (%s)", tc.local, tc.remote, f.Reason, tc.want, f.Detail)
		}
		if f.Reason.Message() == "" || f.Reason.String() == "" {
			t.Error("reason without words")
		}
	}
	if ReasonSymmetricNAT.String() != "symmetric-nat" || ReasonTimeout.String() != "timeout" || ReasonNoCandidates.String() != "no-candidates" {
		t.Error("reason tokens changed")
	}
}

func TestForeignPacketsIgnored(t *testing.T) {
	ca, cb := machConfigs()
	a, b := machNew(t, ca, 1), machNew(t, cb, 2)
	a.Start(machEpoch)
	b.Start(machEpoch)
	probeA := a.Transmits()[0].Data
	probeB := b.Transmits()[0].Data
	mallory := netip.MustParseAddrPort("192.0.2.66:666")
	other := cb
	other.SessionID = "other"
	o := machNew(t, other, 3)
	o.Start(machEpoch)
	forged := bytes.Clone(probeA)
	forged[offTxID] ^= 1

	a.HandleDatagram(machEpoch, mallory, probeA)                // A's own probe reflected
	a.HandleDatagram(machEpoch, mallory, o.Transmits()[0].Data) // another session
	a.HandleDatagram(machEpoch, mallory, forged[:10])           // malformed
	b.HandleDatagram(machEpoch, mallory, forged)                // bad MAC
	b.HandleDatagram(machEpoch, machAddrA, probeA)              // the real one: answered
	b.HandleDatagram(machEpoch, mallory, probeA)                // replayed from elsewhere
	b.HandleDatagram(machEpoch, machAddrA, probeA)              // duplicated by the network
	if len(a.Events())+len(b.Events()) != 0 {
		t.Fatal("foreign packets produced events")
	}
	if tx := b.Transmits(); len(tx) != 1 || tx[0].To != machAddrA {
		t.Fatalf("B answered %v", tx)
	}
	sa, sb := a.Stats(), b.Stats()
	if sa.Reflected != 1 || sa.OtherTag != 1 || sa.Malformed != 1 || sa.Accepted != 0 {
		t.Errorf("A stats %+v", sa)
	}
	if sb.Forged != 1 || sb.Replayed != 1 || sb.Duplicate != 1 || sb.Accepted != 1 {
		t.Errorf("B stats %+v", sb)
	}
	// A reply replayed to A from Mallory after the real one.
	_ = probeB
}

func TestKeepalivesThenPathLost(t *testing.T) {
	a, b, _, _ := machHandshake(t)
	sel := a.selectedAt
	heard := a.lastHeard // B's answer to the nomination, a moment later
	a.Transmits()
	// Silence: keepalives every 15 s from selection, lost 30 s after the
	// last packet heard.
	var kinds []string
	var lostAt time.Time
	for i := 0; i < 20 && lostAt.IsZero(); i++ {
		d := a.Deadline()
		a.HandleTimeout(d)
		for _, tx := range a.Transmits() {
			p, _ := parsePacket(tx.Data)
			kinds = append(kinds, p.typ.String()+"@"+d.Sub(sel).String())
		}
		for _, ev := range a.Events() {
			if _, ok := ev.(PathLost); ok {
				lostAt = d
			}
		}
	}
	if got := lostAt.Sub(heard); got != DefaultPathTimeout {
		t.Fatalf("path lost after %v (sent %v)", got, kinds)
	}
	if strings.Join(kinds, " ") != "keepalive@15s keepalive@30s" {
		t.Fatalf("sent %v", kinds)
	}
	if !a.Deadline().IsZero() {
		t.Fatal("a lost machine still has a deadline")
	}
	_ = b
}

func TestNoteReceivedKeepsPathAlive(t *testing.T) {
	a, b, _, _ := machHandshake(t)
	sel := a.selectedAt
	for s := 10; s <= 300; s += 10 {
		now := sel.Add(time.Duration(s) * time.Second)
		for d := a.Deadline(); !d.IsZero() && !d.After(now); d = a.Deadline() {
			a.HandleTimeout(d)
		}
		a.NoteReceived(now)
		if ev := a.Events(); len(ev) != 0 {
			t.Fatalf("at %ds: %v", s, ev)
		}
	}
	// Keepalives from B count too.
	now := sel.Add(301 * time.Second)
	b.Transmits()
	b.HandleTimeout(b.selectedAt.Add(DefaultKeepaliveInterval))
	tx := b.Transmits()
	if len(tx) != 1 {
		t.Fatalf("B keepalive: %v", tx)
	}
	a.HandleDatagram(now, machAddrB, tx[0].Data)
	if a.lastHeard != now {
		t.Fatal("a keepalive did not count as liveness")
	}
	// ...but not the same keepalive replayed.
	a.HandleDatagram(now.Add(time.Second), machAddrB, tx[0].Data)
	if a.lastHeard != now || a.Stats().Duplicate == 0 {
		t.Fatal("a replayed keepalive counted")
	}
}

func TestKeepalivesOff(t *testing.T) {
	ca, _ := machConfigs()
	ca.KeepaliveInterval = -1
	ca.PathTimeout = -1
	m := machNew(t, ca, 1)
	m.Start(machEpoch)
	m.Transmits()
	_, cb := machConfigs()
	b := machNew(t, cb, 2)
	b.Start(machEpoch)
	m.HandleDatagram(machEpoch, machAddrB, b.Transmits()[0].Data)
	if len(m.Events()) != 1 {
		t.Fatal("no selection")
	}
	m.Transmits()
	// Only nominations until the punch timeout, then nothing at all.
	for i := 0; i < 100 && !m.Deadline().IsZero(); i++ {
		m.HandleTimeout(m.Deadline())
		for _, tx := range m.Transmits() {
			if p, _ := parsePacket(tx.Data); p.typ != typeProbe {
				t.Fatalf("sent a %v with keepalives off", p.typ)
			}
		}
	}
	if !m.Deadline().IsZero() {
		t.Fatal("timers left with keepalives and path timeout off")
	}
}

func TestReplaySetEvictsOldest(t *testing.T) {
	r := newReplaySet(3)
	x := netip.MustParseAddrPort("10.0.0.1:1")
	y := netip.MustParseAddrPort("10.0.0.2:2")
	for id := range uint64(3) {
		r.add(id, x)
	}
	r.add(1, y) // already known: the first sender stays
	if src, ok := r.lookup(1); !ok || src != x {
		t.Fatalf("lookup(1) = %v %v", src, ok)
	}
	r.add(3, y) // evicts 0
	if _, ok := r.lookup(0); ok {
		t.Fatal("the oldest ID was not forgotten")
	}
	for id := uint64(1); id <= 3; id++ {
		if _, ok := r.lookup(id); !ok {
			t.Fatalf("ID %d forgotten too early", id)
		}
	}
	r.add(4, y)
	r.add(5, y)
	if _, ok := r.lookup(2); ok || len(r.from) != 3 {
		t.Fatalf("window holds %d IDs", len(r.from))
	}
}

// TestPeerReflexiveSelected: a symmetric-NAT peer's probe arrives from an
// address it never announced; the path is selected there and later probes
// go there too.
func TestPeerReflexiveSelected(t *testing.T) {
	ca, cb := machConfigs()
	a, b := machNew(t, ca, 1), machNew(t, cb, 2)
	b.Start(machEpoch)
	a.Start(machEpoch)
	a.Transmits()
	prflx := netip.MustParseAddrPort("203.0.113.2:61234")
	tx := b.Transmits()
	a.HandleDatagram(machEpoch, prflx, tx[0].Data)
	ev := a.Events()
	if len(ev) != 1 || ev[0].(PathSelected).Remote != prflx || ev[0].(PathSelected).Local != machAddrA {
		t.Fatalf("A: %v", ev)
	}
	out := a.Transmits()
	if len(out) != 2 || out[0].To != prflx || out[1].To != prflx {
		t.Fatalf("A answered %v", out)
	}
	if p, _ := parsePacket(out[0].Data); p.typ != typeReply || p.flags != flagControlling|flagSelected {
		t.Fatalf("first answer %+v", p)
	}
	if p, _ := parsePacket(out[1].Data); p.typ != typeProbe || p.flags != flagControlling|flagSelected {
		t.Fatalf("nomination %+v", p)
	}
	if a.target(MainSocket, prflx) == nil || a.target(MainSocket, prflx).label != "prflx" {
		t.Fatal("peer-reflexive address not learned")
	}
}

// TestKeepaliveNominates: when every nomination was lost, the controlling
// side's first keepalive still tells the controlled side its path.
func TestKeepaliveNominates(t *testing.T) {
	ca, cb := machConfigs()
	ca.KeepaliveInterval = time.Second // due within the controlled side's punch
	ctl, ctd := machNew(t, ca, 1), machNew(t, cb, 2)
	ctd.Start(machEpoch)
	ctd.Transmits()
	ctl.Start(machEpoch)
	// ctl selects on the reply to its probe; its nominations are all lost.
	ctd.HandleDatagram(machEpoch, machAddrA, ctl.Transmits()[0].Data)
	ctl.HandleDatagram(machEpoch, machAddrB, ctd.Transmits()[0].Data)
	if len(ctl.Events()) != 1 || len(ctd.Events()) != 0 {
		t.Fatal("controlling side did not select alone")
	}
	var keepalive []byte
	var d time.Time
	for keepalive == nil {
		d = ctl.Deadline()
		ctl.HandleTimeout(d)
		for _, tx := range ctl.Transmits() {
			if p, _ := parsePacket(tx.Data); p.typ == typeKeepalive {
				keepalive = tx.Data
			}
		}
		if d.Sub(machEpoch) > time.Minute {
			t.Fatal("no keepalive")
		}
	}
	if d.Sub(machEpoch) != time.Second {
		t.Fatalf("keepalive at %v", d.Sub(machEpoch))
	}
	ctd.HandleDatagram(d, machAddrA, keepalive)
	if ev := ctd.Events(); len(ev) != 1 || ev[0].(PathSelected).Remote != machAddrA {
		t.Fatalf("controlled side: %v", ev)
	}
}

func TestFinishedMachineIgnoresEverything(t *testing.T) {
	ca, cb := machConfigs()
	ca.PunchTimeout = time.Second
	a, b := machNew(t, ca, 1), machNew(t, cb, 2)
	a.Start(machEpoch)
	a.HandleTimeout(machEpoch.Add(time.Second))
	if ev := a.Events(); len(ev) != 1 {
		t.Fatalf("%v", ev)
	}
	a.Transmits()
	a.Start(machEpoch.Add(2 * time.Second)) // no restart
	b.Start(machEpoch)
	a.HandleDatagram(machEpoch.Add(2*time.Second), machAddrB, b.Transmits()[0].Data)
	a.HandleTimeout(machEpoch.Add(time.Hour))
	a.NoteReceived(machEpoch.Add(time.Hour))
	if len(a.Events())+len(a.Transmits()) != 0 || !a.Deadline().IsZero() {
		t.Fatal("a finished machine acted")
	}
	if a.Stats().Unexpected != 1 {
		t.Fatalf("stats %+v", a.Stats())
	}
}

// Heard answers only for addresses an authenticated packet came from; a
// forged probe from a new address does not make it count (nor grow the
// machine's tables).
func TestHeardOnlyAfterTheMAC(t *testing.T) {
	a, b := machConfigs()
	ma, mb := machNew(t, a, 1), machNew(t, b, 2)
	ma.Start(t0)
	mb.Start(t0)
	stranger := netip.MustParseAddrPort("198.51.100.99:7777")
	for _, tx := range mb.Transmits() {
		forged := bytes.Clone(tx.Data)
		forged[len(forged)-1] ^= 1
		ma.HandleDatagram(t0, stranger, forged)
	}
	if ma.Heard(MainSocket, stranger) {
		t.Fatal("a forged probe made its source count as heard")
	}
	if n := len(ma.targets); n != 1 {
		t.Fatalf("%d targets after forged probes, want 1 (the candidate)", n)
	}
	if ma.Heard(MainSocket, machAddrB) {
		t.Fatal("heard B before anything of B's arrived")
	}
	mb.HandleTimeout(t0.Add(time.Second))
	for _, tx := range mb.Transmits() {
		ma.HandleDatagram(t0.Add(time.Second), machAddrB, tx.Data)
	}
	if !ma.Heard(MainSocket, machAddrB) {
		t.Fatal("B's authentic probes did not make it heard")
	}
}

// A controlled side that heard the peer's probes but was never told which
// path to use fails saying it heard the peer.
func TestTimeoutAfterHearingThePeer(t *testing.T) {
	ca, cb := machConfigs()
	a, b := machNew(t, ca, 1), machNew(t, cb, 2)
	b.Start(machEpoch)
	b.Transmits()
	a.Start(machEpoch)
	machRelay(machEpoch, machAddrA, a.Transmits(), map[netip.AddrPort]*Machine{machAddrB: b})
	var failed *Failed
	for i := 0; i < 1000 && failed == nil; i++ {
		b.HandleTimeout(b.Deadline())
		b.Transmits()
		for _, ev := range b.Events() {
			if f, ok := ev.(Failed); ok {
				failed = &f
			}
		}
	}
	if failed == nil || !failed.HeardPeer {
		t.Fatalf("failed = %#v; want HeardPeer", failed)
	}
}
