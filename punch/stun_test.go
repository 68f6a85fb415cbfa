package punch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v2"

	"github.com/p2ptui/p2ptui/punch/internal/coturntest"
)

var (
	stunA = netip.MustParseAddrPort("203.0.113.10:3478")
	stunB = netip.MustParseAddrPort("203.0.113.11:3478")
	t0    = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

// request decodes a transmit as a Binding request.
func request(t *testing.T, tx Transmit) *stun.Message {
	t.Helper()
	m := &stun.Message{Raw: append([]byte(nil), tx.Data...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("transmit to %v is not STUN: %v", tx.To, err)
	}
	if m.Type != stun.BindingRequest {
		t.Fatalf("transmit to %v is %v, want a Binding request", tx.To, m.Type)
	}
	if err := stun.Fingerprint.Check(m); err != nil {
		t.Fatalf("request fingerprint: %v", err)
	}
	if Classify(tx.Data) != ClassSTUN {
		t.Fatalf("request classifies as %v", Classify(tx.Data))
	}
	return m
}

// answer is a server's success response carrying mapped.
func answer(t *testing.T, id [stun.TransactionIDSize]byte, mapped netip.AddrPort) []byte {
	t.Helper()
	m, err := stun.Build(stun.BindingSuccess, stun.NewTransactionIDSetter(id),
		&stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())}, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// requests maps each server to the transaction ID of its request in txs.
func requests(t *testing.T, txs []Transmit) map[netip.AddrPort][stun.TransactionIDSize]byte {
	t.Helper()
	ids := make(map[netip.AddrPort][stun.TransactionIDSize]byte)
	for _, tx := range txs {
		ids[tx.To] = request(t, tx).TransactionID
	}
	return ids
}

func TestDiscoveryMappingBehaviour(t *testing.T) {
	mappedA := netip.MustParseAddrPort("198.51.100.11:40000")
	cases := []struct {
		name     string
		servers  []netip.AddrPort
		mapped   []netip.AddrPort // per server
		local    []netip.AddrPort
		want     MappingBehavior
		wantRefl netip.AddrPort
	}{
		{"same mapping: endpoint-independent", []netip.AddrPort{stunA, stunB},
			[]netip.AddrPort{mappedA, mappedA}, nil, MappingEndpointIndependent, mappedA},
		{"new port per server: symmetric", []netip.AddrPort{stunA, stunB},
			[]netip.AddrPort{mappedA, netip.MustParseAddrPort("198.51.100.11:51234")}, nil,
			MappingAddressAndPortDependent, mappedA},
		{"same IP other port agrees, other IP differs: address-dependent",
			[]netip.AddrPort{stunA, netip.AddrPortFrom(stunA.Addr(), 3479), stunB},
			[]netip.AddrPort{mappedA, mappedA, netip.MustParseAddrPort("198.51.100.11:51234")}, nil,
			MappingAddressDependent, mappedA},
		{"mapped is our own address: no NAT", []netip.AddrPort{stunA, stunB},
			[]netip.AddrPort{netip.MustParseAddrPort("198.51.100.21:4000"), netip.MustParseAddrPort("198.51.100.21:4000")},
			[]netip.AddrPort{netip.MustParseAddrPort("10.9.9.9:4000"), netip.MustParseAddrPort("198.51.100.21:4000")},
			MappingNone, netip.MustParseAddrPort("198.51.100.21:4000")},
		{"one server: mapping unknown", []netip.AddrPort{stunA},
			[]netip.AddrPort{mappedA}, nil, MappingUnknown, mappedA},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDiscovery(DiscoveryConfig{Rand: seeded(1), Servers: c.servers, Local: c.local})
			d.Start(t0)
			ids := requests(t, d.Transmits())
			if len(ids) != len(c.servers) {
				t.Fatalf("%d requests, want one per server (%d)", len(ids), len(c.servers))
			}
			// Answer in reverse order: the reflexive candidate still comes
			// from the first configured server.
			for i := len(c.servers) - 1; i >= 0; i-- {
				if _, done := d.Result(); done {
					t.Fatalf("done before server %v answered", c.servers[i])
				}
				s := c.servers[i]
				d.HandleDatagram(t0.Add(time.Duration(10+i)*time.Millisecond), s, answer(t, ids[s], c.mapped[i]))
			}
			res, done := d.Result()
			if !done {
				t.Fatal("not done after every server answered")
			}
			if res.Err != nil {
				t.Fatalf("Err %v", res.Err)
			}
			if res.NAT.Mapping != c.want {
				t.Errorf("mapping %v, want %v", res.NAT.Mapping, c.want)
			}
			if res.NAT.Filtering != FilteringUnknown {
				t.Errorf("filtering %v, want unknown", res.NAT.Filtering)
			}
			if res.Reflexive.Addr != c.wantRefl || res.Reflexive.Type != CandidateServerReflexive || res.Reflexive.Priority == 0 {
				t.Errorf("reflexive %+v, want srflx %v with a priority", res.Reflexive, c.wantRefl)
			}
			if len(res.Servers) != len(c.servers) || res.Servers[0].RTT != 10*time.Millisecond {
				t.Errorf("server answers %+v", res.Servers)
			}
			if !d.Deadline().IsZero() {
				t.Errorf("deadline %v after done, want none", d.Deadline())
			}
		})
	}
}

func TestDiscoveryIgnoresStrayPackets(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Servers: []netip.AddrPort{stunA}, Rand: seeded(2)})
	d.Start(t0)
	ids := requests(t, d.Transmits())
	id := ids[stunA]
	mapped := netip.MustParseAddrPort("198.51.100.11:40000")
	forged := netip.MustParseAddrPort("192.0.2.66:6666")

	badID := id
	badID[0] ^= 1
	req, _ := stun.Build(stun.BindingRequest, stun.NewTransactionIDSetter(id))
	errResp, _ := stun.Build(stun.NewType(stun.MethodAllocate, stun.ClassSuccessResponse), stun.NewTransactionIDSetter(id),
		&stun.XORMappedAddress{IP: forged.Addr().AsSlice(), Port: int(forged.Port())})
	broken := answer(t, id, forged)
	broken[len(broken)-1] ^= 0xff // fingerprint no longer matches
	strays := []struct {
		name string
		from netip.AddrPort
		b    []byte
	}{
		{"wrong transaction ID", stunA, answer(t, badID, forged)},
		{"right ID from another address", netip.MustParseAddrPort("192.0.2.66:3478"), answer(t, id, forged)},
		{"a request, not a response", stunA, req.Raw},
		{"another method", stunA, errResp.Raw},
		{"bad fingerprint", stunA, broken},
		{"garbage", stunA, []byte("\x01\x01\x00\x00garbage")},
		{"truncated", stunA, answer(t, id, forged)[:30]},
		{"empty", stunA, nil},
	}
	for _, s := range strays {
		d.HandleDatagram(t0.Add(time.Millisecond), s.from, s.b)
		if _, done := d.Result(); done {
			t.Fatalf("%s: discovery finished on a stray packet", s.name)
		}
	}
	d.HandleDatagram(t0.Add(2*time.Millisecond), stunA, answer(t, id, mapped))
	res, done := d.Result()
	if !done || res.Err != nil || res.Reflexive.Addr != mapped {
		t.Fatalf("after the real answer: done %v, %+v", done, res)
	}
	// A late duplicate answer changes nothing.
	d.HandleDatagram(t0.Add(3*time.Millisecond), stunA, answer(t, id, forged))
	if res, _ := d.Result(); res.Reflexive.Addr != mapped {
		t.Errorf("a duplicate answer replaced the address with %v", res.Reflexive.Addr)
	}
}

func TestDiscoveryRetransmissionSchedule(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Servers: []netip.AddrPort{stunA, stunB}, Rand: seeded(3)})
	d.Start(t0)
	first := d.Transmits()
	ids := requests(t, first)
	var sends []time.Duration
	sends = append(sends, 0)
	now := t0
	for {
		dl := d.Deadline()
		if dl.IsZero() {
			break
		}
		if !dl.After(now) {
			t.Fatalf("deadline %v does not move forward from %v", dl.Sub(t0), now.Sub(t0))
		}
		now = dl
		d.HandleTimeout(now)
		txs := d.Transmits()
		if len(txs) == 0 {
			continue
		}
		if len(txs) != 2 {
			t.Fatalf("at %v: %d transmits, want one per server", now.Sub(t0), len(txs))
		}
		for _, tx := range txs {
			// A retransmission is the same request (RFC 8489 6.2.1).
			if request(t, tx).TransactionID != ids[tx.To] {
				t.Errorf("at %v: retransmission to %v has a new transaction ID", now.Sub(t0), tx.To)
			}
			if !bytes.Equal(tx.Data, first[0].Data) && !bytes.Equal(tx.Data, first[1].Data) {
				t.Errorf("at %v: retransmission differs from the request", now.Sub(t0))
			}
		}
		sends = append(sends, now.Sub(t0))
		if len(sends) > 20 {
			t.Fatal("retransmitting forever")
		}
	}
	want := []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3100 * time.Millisecond,
		4700 * time.Millisecond, 6300 * time.Millisecond, 7900 * time.Millisecond}
	if fmt.Sprint(sends) != fmt.Sprint(want) {
		t.Errorf("requests at %v, want %v", sends, want)
	}
	if gaveUp := now.Sub(t0); gaveUp != 9500*time.Millisecond {
		t.Errorf("gave up at %v, want 9.5s", gaveUp)
	}
	res, done := d.Result()
	if !done {
		t.Fatal("not done after the schedule ran out")
	}
	if !errors.Is(res.Err, ErrNoSTUNAnswer) || !errors.Is(res.Err, ErrSTUNTimeout) {
		t.Errorf("Err %v, want ErrNoSTUNAnswer and ErrSTUNTimeout", res.Err)
	}
}

func TestDiscoveryConfiguredSchedule(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{
		Rand:    seeded(4),
		Servers: []netip.AddrPort{stunA}, InitialRTO: 10 * time.Millisecond, MaxRTO: 25 * time.Millisecond, Tries: 3,
	})
	d.Start(t0)
	var sends []time.Duration
	for now := t0; !now.IsZero(); now = d.Deadline() {
		d.HandleTimeout(now)
		if len(d.Transmits()) > 0 {
			sends = append(sends, now.Sub(t0))
		}
	}
	if got := fmt.Sprint(sends); got != "[0s 10ms 30ms]" {
		t.Errorf("requests at %v, want [0s 10ms 30ms]", got)
	}
	if _, done := d.Result(); !done {
		t.Error("not done")
	}
}

func TestDiscoveryGraceAfterFirstAnswer(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Servers: []netip.AddrPort{stunA, stunB}, Rand: seeded(5)})
	d.Start(t0)
	ids := requests(t, d.Transmits())
	mapped := netip.MustParseAddrPort("198.51.100.11:40000")
	d.HandleDatagram(t0.Add(100*time.Millisecond), stunB, answer(t, ids[stunB], mapped))
	now := t0.Add(100 * time.Millisecond)
	for {
		dl := d.Deadline()
		if dl.IsZero() {
			break
		}
		now = dl
		d.HandleTimeout(now)
	}
	if got := now.Sub(t0); got != 2100*time.Millisecond {
		t.Errorf("silent server given up at %v, want 2.1s (2 s after the other's answer)", got)
	}
	res, done := d.Result()
	if !done || res.Err != nil || res.Reflexive.Addr != mapped || res.NAT.Mapping != MappingUnknown {
		t.Errorf("done %v, %+v: want the one answer used, mapping unknown", done, res)
	}
	if !errors.Is(res.Servers[0].Err, ErrSTUNTimeout) {
		t.Errorf("silent server's error %v", res.Servers[0].Err)
	}
}

func TestDiscoveryErrorResponse(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Servers: []netip.AddrPort{stunA, stunB}, Rand: seeded(6)})
	d.Start(t0)
	ids := requests(t, d.Transmits())
	rej, err := stun.Build(stun.BindingError, stun.NewTransactionIDSetter(ids[stunA]), stun.CodeBadRequest)
	if err != nil {
		t.Fatal(err)
	}
	d.HandleDatagram(t0.Add(time.Millisecond), stunA, rej.Raw)
	mapped := netip.MustParseAddrPort("198.51.100.11:40000")
	d.HandleDatagram(t0.Add(2*time.Millisecond), stunB, answer(t, ids[stunB], mapped))
	res, done := d.Result()
	if !done || res.Err != nil || res.Reflexive.Addr != mapped {
		t.Fatalf("done %v, %+v", done, res)
	}
	if !errors.Is(res.Servers[0].Err, ErrSTUNRejected) {
		t.Errorf("rejecting server's error %v, want ErrSTUNRejected", res.Servers[0].Err)
	}
}

func TestDiscoveryNoServers(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Servers: nil, Rand: seeded(7)})
	if _, done := d.Result(); done {
		t.Error("done before Start")
	}
	d.Start(t0)
	res, done := d.Result()
	if !done || !errors.Is(res.Err, ErrNoSTUNServers) {
		t.Errorf("done %v, Err %v: want ErrNoSTUNServers", done, res.Err)
	}
	if !d.Deadline().IsZero() || len(d.Transmits()) != 0 {
		t.Error("no servers, yet a deadline or transmits")
	}
}

func TestDiscoveryDistinctTransactionIDs(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Servers: []netip.AddrPort{stunA, stunB, stunA}, Rand: seeded(8)})
	d.Start(t0)
	txs := d.Transmits()
	if len(txs) != 2 {
		t.Fatalf("%d requests for two distinct servers", len(txs))
	}
	if request(t, txs[0]).TransactionID == request(t, txs[1]).TransactionID {
		t.Error("two servers got one transaction ID")
	}
}

func TestDefaultSTUNServersParse(t *testing.T) {
	for _, s := range DefaultSTUNServers() {
		if _, _, err := net.SplitHostPort(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestResolveSTUNServers(t *testing.T) {
	got, err := ResolveSTUNServers(context.Background(), []string{"127.0.0.1:3478", "no-port", "localhost:3479"})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:3478"), netip.MustParseAddrPort("127.0.0.1:3479")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := ResolveSTUNServers(context.Background(), []string{"bad"}); err == nil {
		t.Error("no name resolved, yet no error")
	}
	got, err = ResolveSTUNServers6(context.Background(), []string{"127.0.0.1:3478", "[::1]:3479"})
	if err != nil || fmt.Sprint(got) != "[[::1]:3479]" {
		t.Errorf("IPv6: got %v, %v; want [::1]:3479 alone", got, err)
	}
	if _, err := ResolveSTUNServers6(context.Background(), []string{"127.0.0.1:3478"}); err == nil ||
		!strings.Contains(err.Error(), "IPv6") {
		t.Errorf("no IPv6 server: err %v", err)
	}
}

// freeUDPPort finds a port free for UDP on every address given, and the
// port after it (coturn's RFC 5780 alternate port).
func freeUDPPort(t *testing.T, ips ...string) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp4", ips[0]+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		ok := port < 65535
		for _, ip := range ips {
			for _, p := range []int{port, port + 1} {
				if !ok {
					break
				}
				c, err := net.ListenPacket("udp4", net.JoinHostPort(ip, strconv.Itoa(p)))
				if err != nil {
					ok = false
					break
				}
				c.Close()
			}
		}
		if ok {
			return port
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// startCoturn runs a real STUN server on 127.0.0.1 and 127.0.0.2 for the
// test and returns its two addresses once both answer.
func startCoturn(t *testing.T) []netip.AddrPort {
	t.Helper()
	port := freeUDPPort(t, "127.0.0.1", "127.0.0.2")
	srv := coturntest.Start(t, "--stun-only", "--no-tcp", "--no-auth", "-L", "127.0.0.1", "-L", "127.0.0.2",
		"--listening-port="+strconv.Itoa(port), "--relay-threads=1")
	servers := []netip.AddrPort{
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port)),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)),
	}
	srv.WaitAnswering(t, servers...)
	return servers
}

// runDiscovery drives d over a real socket until it has a result.
func runDiscovery(t *testing.T, sock *Socket, d *Discovery) DiscoveryResult {
	t.Helper()
	d.Start(time.Now())
	timer := time.NewTimer(0)
	defer timer.Stop()
	limit := time.After(15 * time.Second)
	for {
		for _, tx := range d.Transmits() {
			if err := sock.WriteTo(tx.Data, tx.To); err != nil {
				t.Fatal(err)
			}
		}
		if res, done := d.Result(); done {
			return res
		}
		timer.Reset(time.Until(d.Deadline()))
		select {
		case dg := <-sock.Datagrams():
			if Classify(dg.Data) == ClassSTUN {
				d.HandleDatagram(dg.At, dg.From, dg.Data)
			}
		case now := <-timer.C:
			d.HandleTimeout(now)
		case <-limit:
			t.Fatal("discovery did not finish within 15 s")
		}
	}
}

func TestDiscoveryAgainstCoturn(t *testing.T) {
	servers := startCoturn(t)
	checkNoLeak(t)
	sock, err := ListenUDP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()

	// On loopback there is no NAT: both servers see the socket's address.
	res := runDiscovery(t, sock, NewDiscovery(DiscoveryConfig{
		Rand:    seeded(9),
		Servers: servers, Local: []netip.AddrPort{sock.LocalAddr()},
	}))
	if res.Err != nil {
		t.Fatalf("discovery: %v", res.Err)
	}
	if res.Reflexive.Addr != sock.LocalAddr() {
		t.Errorf("mapped %v, want the socket's own %v", res.Reflexive.Addr, sock.LocalAddr())
	}
	if res.NAT.Mapping != MappingNone {
		t.Errorf("mapping %v, want none", res.NAT.Mapping)
	}
	// coturn with two -L addresses runs RFC 5780: its OTHER-ADDRESS lets
	// the filtering tests run, and loopback filters nothing.
	if res.NAT.Filtering != FilteringEndpointIndependent {
		t.Errorf("filtering %v, want endpoint-independent (coturn answers CHANGE-REQUEST)", res.NAT.Filtering)
	}
	for _, a := range res.Servers {
		if a.Err != nil || a.Mapped != sock.LocalAddr() || a.RTT <= 0 {
			t.Errorf("server answer %+v", a)
		}
	}

	// Without knowing its own addresses, equal answers read as a cone NAT.
	res = runDiscovery(t, sock, NewDiscovery(DiscoveryConfig{Servers: servers, Rand: seeded(10)}))
	if res.Err != nil || res.NAT.Mapping != MappingEndpointIndependent {
		t.Errorf("without local addresses: mapping %v, err %v; want endpoint-independent", res.NAT.Mapping, res.Err)
	}
}

// TestDiscoveryPortStep: a symmetric NAT whose two mappings are a few
// ports apart is reported as sequential with that step (either way);
// ports far apart, or a cone NAT, give no step.
func TestDiscoveryPortStep(t *testing.T) {
	pub := netip.MustParseAddr("198.51.100.11")
	cases := []struct {
		first, second uint16
		want          int
	}{
		{40000, 40001, 1},
		{40000, 39998, -2},
		{40000, 40000 + MaxPortStep, MaxPortStep},
		{40000, 40000 + MaxPortStep + 1, 0},
		{40000, 51234, 0},
		{40000, 40000, 0}, // a cone NAT
	}
	for _, c := range cases {
		d := NewDiscovery(DiscoveryConfig{Rand: seeded(2), Servers: []netip.AddrPort{stunA, stunB}})
		d.Start(t0)
		ids := requests(t, d.Transmits())
		d.HandleDatagram(t0, stunA, answer(t, ids[stunA], netip.AddrPortFrom(pub, c.first)))
		d.HandleDatagram(t0, stunB, answer(t, ids[stunB], netip.AddrPortFrom(pub, c.second)))
		res, ok := d.Result()
		if !ok || res.Err != nil || res.NAT.PortStep != c.want {
			t.Errorf("mapped %d then %d: step %d (%v), want %d", c.first, c.second, res.NAT.PortStep, res.Err, c.want)
		}
	}
}

// TestDiscoveryBothFamilies: IPv4 and IPv6 servers asked from one
// dual-stack socket are judged apart (an IPv6 answer differing from the
// IPv4 ones is no sign of a symmetric NAT); the filtering tests go to the
// first IPv4 server even when an IPv6 one is listed first; every request
// leaves from the configured socket.
func TestDiscoveryBothFamilies(t *testing.T) {
	stun6 := netip.MustParseAddrPort("[2001:db8:ffff::20]:3478")
	own6 := netip.MustParseAddrPort("[2001:db8:a::2]:4000")
	mapped4 := netip.MustParseAddrPort("198.51.100.11:40000")
	d := NewDiscovery(DiscoveryConfig{Rand: seeded(3), Servers: []netip.AddrPort{stun6, stunA, stunB},
		Local: []netip.AddrPort{own6, netip.MustParseAddrPort("10.1.0.2:4000")}, Socket: 7})
	d.Start(t0)
	txs := d.Transmits()
	for _, tx := range txs {
		if tx.Socket != 7 {
			t.Fatalf("request to %v from socket %d, want 7", tx.To, tx.Socket)
		}
	}
	ids := requests(t, txs)
	other := netip.MustParseAddrPort("203.0.113.99:3479")
	d.HandleDatagram(t0, stun6, answer(t, ids[stun6], own6))
	d.HandleDatagram(t0, stunA, answerOther(t, ids[stunA], mapped4, otherValue(other)))
	d.HandleDatagram(t0, stunB, answer(t, ids[stunB], mapped4))
	filt := d.Transmits()
	if len(filt) != 2 || filt[0].To != stunA || filt[0].Socket != 7 {
		t.Fatalf("filtering requests %v, want two to %v from socket 7", filt, stunA)
	}
	res, ok := d.Mapped()
	if !ok || res.Err != nil {
		t.Fatalf("Mapped: %v %v", ok, res.Err)
	}
	if res.Reflexive.Addr != mapped4 || res.NAT.Mapping != MappingEndpointIndependent {
		t.Errorf("IPv4: %v %v, want %v endpoint-independent", res.Reflexive.Addr, res.NAT.Mapping, mapped4)
	}
	if res.Reflexive6.Addr != own6 || res.NAT6.Mapping != MappingNone {
		t.Errorf("IPv6: %v %v, want %v none", res.Reflexive6.Addr, res.NAT6.Mapping, own6)
	}

	// IPv6 alone: no IPv4 reflexive address, no error.
	d = NewDiscovery(DiscoveryConfig{Rand: seeded(4), Servers: []netip.AddrPort{stun6}})
	d.Start(t0)
	ids = requests(t, d.Transmits())
	d.HandleDatagram(t0, stun6, answer(t, ids[stun6], own6))
	res, ok = d.Result()
	if !ok || res.Err != nil || res.Reflexive.Addr.IsValid() || res.Reflexive6.Addr != own6 || res.NAT6.Mapping != MappingUnknown {
		t.Errorf("IPv6 only: %+v", res)
	}
}
