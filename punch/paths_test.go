package punch

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// Tests of the machine with several local sockets and path kinds: which
// pairs each kind probes, the socket every packet names, IPv6 preference,
// and birthday probing's schedule and socket bookkeeping.

var (
	pathRelayAddr = netip.MustParseAddrPort("203.0.113.20:50000") // this side's relayed address
	pathPeerRelay = netip.MustParseAddrPort("203.0.113.20:50001") // the peer's
	pathPeerHost  = netip.MustParseAddrPort("10.2.0.2:5000")
	pathPeerSrflx = netip.MustParseAddrPort("198.51.100.12:40000")
	pathPeerV6    = netip.MustParseAddrPort("[2001:db8:b::2]:5000")
	pathPeerLL    = netip.MustParseAddrPort("[fe80::2]:5000")
	pathMyV6      = netip.MustParseAddrPort("[2001:db8:a::2]:4000")
)

const pathRelaySocket SocketID = 9

func pathConfig(kind PathKind) Config {
	return Config{Role: Controlling, Kind: kind, SessionID: "paths", Secret: [32]byte{4},
		Sockets: []LocalSocket{
			{ID: MainSocket, Family: FamilyAny},
			{ID: pathRelaySocket, Family: FamilyIPv4, Relayed: pathRelayAddr},
		},
		Local: []Candidate{
			{Type: CandidateHost, Addr: pathMyV6, Priority: 200},
			{Type: CandidateHost, Addr: machAddrA, Priority: 100},
			{Type: CandidateRelayed, Addr: pathRelayAddr, Priority: 1},
		},
		Remote: []Candidate{
			{Type: CandidateHost, Addr: pathPeerV6, Priority: 200},
			{Type: CandidateHost, Addr: pathPeerLL, Priority: 150},
			{Type: CandidateHost, Addr: pathPeerHost, Priority: 100},
			{Type: CandidateServerReflexive, Addr: pathPeerSrflx, Priority: 50},
			{Type: CandidateRelayed, Addr: pathPeerRelay, Priority: 1},
		}}
}

type pair struct {
	socket SocketID
	to     netip.AddrPort
}

func pairsOf(tx []Transmit) []pair {
	var out []pair
	for _, t := range tx {
		out = append(out, pair{t.Socket, t.To})
	}
	return out
}

// TestPairsPerKind: the direct kind probes the peer's host and reflexive
// addresses from plain sockets (never a link-local one, never through the
// relay); the relayed kind probes the peer's public addresses and relayed
// one through this side's relay, and the peer's relayed address from the
// plain socket; the two kinds' packets carry different tags.
func TestPairsPerKind(t *testing.T) {
	direct := machNew(t, pathConfig(PathDirect), 1)
	direct.Start(machEpoch)
	got := pairsOf(direct.Transmits())
	want := []pair{{MainSocket, pathPeerV6}, {MainSocket, pathPeerHost}, {MainSocket, pathPeerSrflx}}
	if !slices.Equal(got, want) {
		t.Errorf("direct probed %v, want %v", got, want)
	}

	relayed := machNew(t, pathConfig(PathRelayed), 2)
	relayed.Start(machEpoch)
	got = pairsOf(relayed.Transmits())
	want = []pair{{pathRelaySocket, pathPeerSrflx}, {MainSocket, pathPeerRelay}, {pathRelaySocket, pathPeerRelay}}
	if !slices.Equal(got, want) {
		t.Errorf("relayed probed %v, want %v", got, want)
	}
	if direct.Tag() == relayed.Tag() {
		t.Error("direct and relayed machines share a tag")
	}

	// Without a relay on either side, a relayed machine has nothing to do.
	cfg := pathConfig(PathRelayed)
	cfg.Sockets = cfg.Sockets[:1]
	cfg.Remote = cfg.Remote[:4]
	m := machNew(t, cfg, 3)
	m.Start(machEpoch)
	if ev := m.Events(); len(ev) != 1 || ev[0].(Failed).Reason != ReasonNoCandidates ||
		!strings.Contains(ev[0].(Failed).Detail, "TURN") {
		t.Errorf("relayed machine without relays: %v", ev)
	}
	if _, err := NewMachine(Config{Role: Controlling, Kind: 9, SessionID: "x"}); err == nil {
		t.Error("unknown path kind accepted")
	}
	if PathDirect.String() != "direct" || PathRelayed.String() != "relayed" || PathPredicted.String() != "predicted" ||
		ReasonRelayTimeout.String() != "relay-timeout" || !strings.Contains(ReasonRelayTimeout.Message(), "TURN") {
		t.Error("kind or reason words changed")
	}
}

// TestRelayedPathSelected: a pair through the relay socket is selected on
// that socket, says which relayed address it crosses, and answers and
// keepalives leave from it; a reply arriving on another socket than its
// probe left from is not taken.
func TestRelayedPathSelected(t *testing.T) {
	cfg := pathConfig(PathRelayed)
	cfg.KeepaliveInterval = time.Second
	a := machNew(t, cfg, 1)
	peerCfg := cfg
	peerCfg.Role = Controlled
	peer := machNew(t, peerCfg, 2) // only its packet format matters here
	a.Start(machEpoch)
	var viaRelay Transmit
	for _, tx := range a.Transmits() {
		if tx.Socket == pathRelaySocket && tx.To == pathPeerSrflx {
			viaRelay = tx
		}
	}
	p, _ := parsePacket(viaRelay.Data)
	reply := packet{typ: typeReply, txid: p.txid, tag: a.tag, dst: pathRelayAddr}.appendMarshal(nil, peer.mac)
	a.HandleDatagramOn(machEpoch.Add(time.Millisecond), MainSocket, pathPeerSrflx, reply)
	if ev := a.Events(); len(ev) != 0 || a.Stats().Unexpected != 1 {
		t.Fatalf("a reply on the wrong socket was taken: %v %+v", ev, a.Stats())
	}
	a.HandleDatagramOn(machEpoch.Add(2*time.Millisecond), pathRelaySocket, pathPeerSrflx, reply)
	ev := a.Events()
	if len(ev) != 1 {
		t.Fatalf("events %v", ev)
	}
	sel := ev[0].(PathSelected)
	want := PathSelected{Local: pathRelayAddr, Remote: pathPeerSrflx, RTT: 2 * time.Millisecond,
		Socket: pathRelaySocket, Kind: PathRelayed, Relay: pathRelayAddr}
	if sel != want {
		t.Fatalf("selected %+v, want %+v", sel, want)
	}
	for _, tx := range a.Transmits() {
		if tx.Socket != pathRelaySocket || tx.To != pathPeerSrflx {
			t.Fatalf("nomination %v", tx)
		}
	}
	a.HandleTimeout(machEpoch.Add(2 * time.Second))
	for _, tx := range a.Transmits() {
		if tx.Socket != pathRelaySocket {
			t.Fatalf("keepalive or nomination from socket %d", tx.Socket)
		}
	}

	// Through the peer's relay: the path names the peer's relayed address.
	b := machNew(t, pathConfig(PathRelayed), 3)
	b.Start(machEpoch)
	for _, tx := range b.Transmits() {
		if tx.Socket == MainSocket && tx.To == pathPeerRelay {
			p, _ := parsePacket(tx.Data)
			b.HandleDatagramOn(machEpoch, MainSocket, pathPeerRelay,
				packet{typ: typeReply, txid: p.txid, tag: b.tag, dst: machAddrA}.appendMarshal(nil, peer.mac))
		}
	}
	ev = b.Events()
	if len(ev) != 1 || ev[0].(PathSelected).Relay != pathPeerRelay || ev[0].(PathSelected).Socket != MainSocket {
		t.Fatalf("through the peer's relay: %v", ev)
	}
}

// TestIPv6Preferred: when both sides have global IPv6 addresses, the
// controlling side holds a working IPv4 pair for up to ipv6Grace and
// takes the IPv6 pair if it answers meanwhile, the IPv4 one otherwise.
func TestIPv6Preferred(t *testing.T) {
	cfg := pathConfig(PathDirect)
	cfg.Sockets, cfg.Remote = nil, cfg.Remote[:4]
	// answer makes the peer's reply (flags 0: the controlled side) to
	// m's probe to addr.
	answer := func(m *Machine, tx []Transmit, to netip.AddrPort, at time.Time) {
		t.Helper()
		for _, x := range tx {
			if x.To == to {
				p, _ := parsePacket(x.Data)
				m.HandleDatagram(at, to, packet{typ: typeReply, txid: p.txid, tag: m.tag, dst: machAddrA}.appendMarshal(nil, m.mac))
				return
			}
		}
		t.Fatalf("no probe to %v", to)
	}
	for _, v6answers := range []bool{true, false} {
		m := machNew(t, cfg, 1)
		m.Start(machEpoch)
		tx := m.Transmits()
		answer(m, tx, pathPeerSrflx, machEpoch.Add(5*time.Millisecond))
		if ev := m.Events(); len(ev) != 0 {
			t.Fatalf("IPv4 pair selected at once although IPv6 may answer: %v", ev)
		}
		if end := machEpoch.Add(5*time.Millisecond + ipv6Grace); m.Deadline().After(end) {
			t.Fatalf("deadline %v, after the end of the grace", m.Deadline().Sub(machEpoch))
		}
		want := pathPeerSrflx
		if v6answers {
			answer(m, tx, pathPeerV6, machEpoch.Add(20*time.Millisecond))
			want = pathPeerV6
		} else {
			m.HandleTimeout(machEpoch.Add(5*time.Millisecond + ipv6Grace))
		}
		ev := m.Events()
		if len(ev) != 1 || ev[0].(PathSelected).Remote != want {
			t.Fatalf("IPv6 answers %v: selected %v, want %v", v6answers, ev, want)
		}
		if tx := m.Transmits(); len(tx) == 0 || tx[0].To != want {
			t.Fatalf("no nomination to %v: %v", want, tx)
		}
	}

	// Without a global IPv6 address of its own, nothing is held back.
	cfg.Local = cfg.Local[1:]
	m := machNew(t, cfg, 2)
	m.Start(machEpoch)
	answer(m, m.Transmits(), pathPeerSrflx, machEpoch.Add(5*time.Millisecond))
	if ev := m.Events(); len(ev) != 1 || ev[0].(PathSelected).Remote != pathPeerSrflx {
		t.Fatalf("without IPv6 of our own: %v", ev)
	}
}

func TestPredictionSide(t *testing.T) {
	sym := NATBehavior{Mapping: MappingAddressAndPortDependent}
	port := NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringAddressAndPortDependent}
	cone := NATBehavior{Mapping: MappingEndpointIndependent}
	addr := NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringAddressDependent}
	full := NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringEndpointIndependent}
	none := NATBehavior{Mapping: MappingNone}
	cases := []struct {
		local, remote NATBehavior
		symmetric, ok bool
	}{
		{sym, port, true, true},
		{sym, cone, true, true},
		{port, sym, false, true},
		{cone, sym, false, true},
		{sym, sym, false, false},
		{sym, addr, false, false},
		{sym, full, false, false},
		{sym, none, false, false},
		{port, port, false, false},
		{NATBehavior{}, sym, false, false},
	}
	for _, c := range cases {
		s, ok := PredictionSide(c.local, c.remote)
		if s != c.symmetric || ok != c.ok {
			t.Errorf("%+v facing %+v: %v %v, want %v %v", c.local, c.remote, s, ok, c.symmetric, c.ok)
		}
		cfg := Config{Role: Controlling, Kind: PathPredicted, SessionID: "p", LocalNAT: c.local, RemoteNAT: c.remote,
			Rand: machSeeded(1)}
		if _, err := NewMachine(cfg); (err == nil) != c.ok {
			t.Errorf("%+v facing %+v: NewMachine err %v", c.local, c.remote, err)
		}
	}
}

func birthdayConfig(symmetric bool) Config {
	sym := NATBehavior{Mapping: MappingAddressAndPortDependent}
	port := NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringAddressAndPortDependent}
	cfg := Config{Role: Controlling, Kind: PathPredicted, SessionID: "bd", Secret: [32]byte{5},
		Remote: []Candidate{{Type: CandidateHost, Addr: pathPeerHost, Priority: 9}, {Type: CandidateServerReflexive, Addr: pathPeerSrflx}}}
	if symmetric {
		cfg.LocalNAT, cfg.RemoteNAT = sym, port
	} else {
		cfg.LocalNAT, cfg.RemoteNAT = port, sym
	}
	return cfg
}

// TestBirthdayOpener: the symmetric side asks for its sockets once, sends
// from each to the peer's reflexive address at once and in rounds,
// hands back what it cannot use, and on selection every socket but the
// path's; the path's goes back when the path is lost.
func TestBirthdayOpener(t *testing.T) {
	m := machNew(t, birthdayConfig(true), 1)
	m.Start(machEpoch)
	ev := m.Events()
	if len(ev) != 1 || ev[0] != (SocketsWanted{Count: birthdaySockets}) || len(m.Transmits()) != 0 {
		t.Fatalf("start: %v", ev)
	}
	var ids []SocketID
	for i := range birthdaySockets + 3 {
		ids = append(ids, SocketID(100+i))
	}
	now := machEpoch.Add(10 * time.Millisecond)
	m.SocketsOpened(now, ids)
	tx := m.Transmits()
	if len(tx) != birthdaySockets {
		t.Fatalf("%d probes after opening, want one per socket (%d)", len(tx), birthdaySockets)
	}
	for i, x := range tx {
		if x.Socket != ids[i] || x.To != pathPeerSrflx {
			t.Fatalf("probe %d: %v from %d", i, x.To, x.Socket)
		}
	}
	if ev := m.Events(); len(ev) != 1 || !slices.Equal(ev[0].(SocketsDone).IDs, ids[birthdaySockets:]) {
		t.Fatalf("the sockets beyond the bound: %v", ev)
	}
	if got := m.Sockets(); len(got) != birthdaySockets {
		t.Fatalf("holds %d sockets", len(got))
	}
	// Rounds: 500 ms, then doubling, capped.
	var rounds []time.Duration
	for m.Deadline().Before(now.Add(9 * time.Second)) {
		d := m.Deadline()
		m.HandleTimeout(d)
		if n := len(m.Transmits()); n != 0 {
			if n != birthdaySockets {
				t.Fatalf("round of %d probes", n)
			}
			rounds = append(rounds, d.Sub(now))
		}
	}
	if fmt.Sprint(rounds) != "[500ms 1.5s 3.5s 7.5s]" {
		t.Errorf("rounds at %v", rounds)
	}
	// The cone side's probe arrives on socket 150: it is answered there
	// and selected; the rest go back.
	probe := packet{typ: typeProbe, txid: 77, tag: m.tag, dst: pathPeerSrflx}.appendMarshal(nil, m.mac)
	at := now.Add(9 * time.Second)
	m.HandleDatagramOn(at, 150, pathPeerSrflx, probe)
	ev = m.Events()
	if len(ev) != 2 {
		t.Fatalf("events %v", ev)
	}
	if sel := ev[0].(PathSelected); sel.Socket != 150 || sel.Kind != PathPredicted || sel.Remote != pathPeerSrflx {
		t.Fatalf("selected %+v", sel)
	}
	done := ev[1].(SocketsDone).IDs
	if len(done) != birthdaySockets-1 || slices.Contains(done, 150) {
		t.Fatalf("handed back %d sockets (150 among them: %v)", len(done), slices.Contains(done, 150))
	}
	if got := m.Sockets(); !slices.Equal(got, []SocketID{150}) {
		t.Fatalf("holds %v after selection", got)
	}
	for _, x := range m.Transmits() {
		if x.Socket != 150 {
			t.Fatalf("answer from socket %d", x.Socket)
		}
	}
	// Sockets arriving now are handed straight back.
	m.SocketsOpened(at, []SocketID{900})
	if ev := m.Events(); len(ev) != 1 || !slices.Equal(ev[0].(SocketsDone).IDs, []SocketID{900}) {
		t.Fatalf("late sockets: %v", ev)
	}
	// The path dies: its socket goes back too.
	m.HandleTimeout(at.Add(DefaultPathTimeout))
	ev = m.Events()
	var back []SocketID
	for _, e := range ev {
		if d, ok := e.(SocketsDone); ok {
			back = d.IDs
		}
	}
	if !slices.Equal(back, []SocketID{150}) || len(m.Sockets()) != 0 {
		t.Fatalf("after the path was lost: %v", ev)
	}
}

// TestBirthdayProber: the cone side probes ports of the peer's public IP
// at no more than birthdayRate a second and birthdayMaxProbes in all,
// each port once, never the peer's known mapping, all from the main
// socket; with a port step it tries the predicted ports first.
func TestBirthdayProber(t *testing.T) {
	for _, step := range []int{0, 1, -3} {
		cfg := birthdayConfig(false)
		cfg.RemoteNAT.PortStep = step
		m := machNew(t, cfg, 1)
		m.Start(machEpoch)
		var at []time.Time
		var ports []int
		now := machEpoch
		for {
			for _, x := range m.Transmits() {
				if x.Socket != MainSocket || x.To.Addr() != pathPeerSrflx.Addr() {
					t.Fatalf("probe to %v from socket %d", x.To, x.Socket)
				}
				at = append(at, now)
				ports = append(ports, int(x.To.Port()))
			}
			d := m.Deadline()
			if d.IsZero() || len(m.Events()) > 0 {
				break
			}
			now = d
			m.HandleTimeout(now)
		}
		if len(ports) != birthdayMaxProbes {
			t.Fatalf("step %d: %d probes, want %d", step, len(ports), birthdayMaxProbes)
		}
		seen := map[int]bool{}
		for i, p := range ports {
			if seen[p] || p < birthdayLowPort || p == int(pathPeerSrflx.Port()) || p == int(pathPeerSrflx.Port())+step {
				t.Fatalf("step %d: probe %d to port %d", step, i, p)
			}
			seen[p] = true
			// At most birthdayRate probes in any second.
			if i >= birthdayRate && at[i].Sub(at[i-birthdayRate]) < time.Second-birthdayTick {
				t.Fatalf("step %d: %d probes within %v", step, birthdayRate+1, at[i].Sub(at[i-birthdayRate]))
			}
		}
		if step != 0 {
			for k := range 10 {
				if want := int(pathPeerSrflx.Port()) + step*(k+2); ports[k] != want {
					t.Fatalf("step %d: probe %d to port %d, want predicted %d", step, k, ports[k], want)
				}
			}
		}
		last := at[len(at)-1].Sub(machEpoch)
		if last < 8*time.Second || last > DefaultPredictTimeout {
			t.Errorf("step %d: last probe after %v", step, last)
		}
	}
}
