package punch

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v2"
)

var (
	// stunAOther is stunA's RFC 5780 alternate address (coturn's layout:
	// the second listening IP, the port + 1).
	stunAOther = netip.MustParseAddrPort("203.0.113.11:3479")
	// stunAPortOnly is where test III's answer comes from.
	stunAPortOnly = netip.MustParseAddrPort("203.0.113.10:3479")
	mappedX       = netip.MustParseAddrPort("198.51.100.11:40000")
)

// otherAttr is an OTHER-ADDRESS attribute with a raw value.
type otherAttr []byte

func (o otherAttr) AddTo(m *stun.Message) error {
	m.Add(attrOtherAddress, o)
	return nil
}

// otherValue encodes addr in the RFC 5780 / MAPPED-ADDRESS layout.
func otherValue(addr netip.AddrPort) otherAttr {
	v := []byte{0, 1, 0, 0}
	binary.BigEndian.PutUint16(v[2:], addr.Port())
	a := addr.Addr().As4()
	return append(v, a[:]...)
}

// answerOther is a success response carrying mapped and OTHER-ADDRESS.
func answerOther(t *testing.T, id [stun.TransactionIDSize]byte, mapped netip.AddrPort, other otherAttr) []byte {
	t.Helper()
	m, err := stun.Build(stun.BindingSuccess, stun.NewTransactionIDSetter(id),
		&stun.XORMappedAddress{IP: mapped.Addr().AsSlice(), Port: int(mapped.Port())}, other, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// errorAnswer is a Binding error response with code.
func errorAnswer(t *testing.T, id [stun.TransactionIDSize]byte, code stun.ErrorCode) []byte {
	t.Helper()
	m, err := stun.Build(stun.NewType(stun.MethodBinding, stun.ClassErrorResponse),
		stun.NewTransactionIDSetter(id), code, stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

// filterRequests splits transmits into the filtering tests by their
// CHANGE-REQUEST flags (checking each goes to stunA), and the rest.
func filterRequests(t *testing.T, txs []Transmit) (byFlags map[uint32]Transmit, other []Transmit) {
	t.Helper()
	byFlags = make(map[uint32]Transmit)
	for _, tx := range txs {
		m := request(t, tx)
		v, err := m.Get(attrChangeRequest)
		if err != nil {
			other = append(other, tx)
			continue
		}
		if len(v) != 4 {
			t.Fatalf("CHANGE-REQUEST of %d bytes", len(v))
		}
		if tx.To != stunA {
			t.Errorf("filtering request sent to %v, want the first server %v", tx.To, stunA)
		}
		f := binary.BigEndian.Uint32(v)
		if _, dup := byFlags[f]; dup {
			t.Fatalf("two filtering requests with flags %#x in one batch", f)
		}
		byFlags[f] = tx
	}
	return byFlags, other
}

func txid(t *testing.T, tx Transmit) [stun.TransactionIDSize]byte {
	t.Helper()
	return request(t, tx).TransactionID
}

// startFiltered runs discovery against stunA (advertising OTHER-ADDRESS)
// and stunB up to both mapping answers at t0+10ms, and returns the two
// filtering requests: test II (change IP and port) and test III (port).
func startFiltered(t *testing.T, cfg DiscoveryConfig) (d *Discovery, testII, testIII Transmit) {
	t.Helper()
	cfg.Servers = []netip.AddrPort{stunA, stunB}
	cfg.Rand = seeded(21)
	d = NewDiscovery(cfg)
	d.Start(t0)
	ids := requests(t, d.Transmits())
	at := t0.Add(10 * time.Millisecond)
	d.HandleDatagram(at, stunA, answerOther(t, ids[stunA], mappedX, otherValue(stunAOther)))
	d.HandleDatagram(at, stunB, answer(t, ids[stunB], mappedX))
	byFlags, rest := filterRequests(t, d.Transmits())
	if len(rest) != 0 || len(byFlags) != 2 {
		t.Fatalf("after the first server's answer: %d filtering requests %v and %d others, want tests II and III", len(byFlags), byFlags, len(rest))
	}
	testII, ok2 := byFlags[changeIP|changePort]
	testIII, ok3 := byFlags[changePort]
	if !ok2 || !ok3 {
		t.Fatalf("filtering requests with flags %v, want 0x6 and 0x2", byFlags)
	}
	if txid(t, testII) == txid(t, testIII) {
		t.Fatal("tests II and III share a transaction ID")
	}
	return d, testII, testIII
}

// finish runs HandleTimeout at each deadline until Result is ready (at
// most a few seconds of fake time) and returns it with when it was ready.
func finish(t *testing.T, d *Discovery, now time.Time) (DiscoveryResult, time.Time) {
	t.Helper()
	for range 50 {
		if res, ok := d.Result(); ok {
			return res, now
		}
		dl := d.Deadline()
		if dl.IsZero() {
			t.Fatal("no result and no deadline")
		}
		now = dl
		d.HandleTimeout(now)
		d.Transmits()
	}
	t.Fatal("discovery never finished")
	return DiscoveryResult{}, time.Time{}
}

func TestDiscoveryFiltering(t *testing.T) {
	at := t0.Add(50 * time.Millisecond)
	for _, tc := range []struct {
		name      string
		answerII  bool
		answerIII bool
		want      FilteringBehavior
		readyAt   time.Time // when Result must become ready
	}{
		{"test II answered: endpoint-independent", true, false, FilteringEndpointIndependent, at},
		{"tests II and III answered", true, true, FilteringEndpointIndependent, at},
		{"only test III answered: address-dependent", false, true, FilteringAddressDependent, t0.Add(10*time.Millisecond + 900*time.Millisecond)},
		{"nothing answered: address-and-port-dependent", false, false, FilteringAddressAndPortDependent, t0.Add(10*time.Millisecond + 900*time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, testII, testIII := startFiltered(t, DiscoveryConfig{})
			if _, ok := d.Result(); ok {
				t.Fatal("Result ready before the filtering tests concluded")
			}
			// The mapping is available at once, without the filtering.
			if m, ok := d.Mapped(); !ok || m.Err != nil || m.Reflexive.Addr != mappedX ||
				m.NAT != (NATBehavior{Mapping: MappingEndpointIndependent}) {
				t.Errorf("Mapped() = %v %+v, want the mapping now with unknown filtering", ok, m)
			}
			// Test III first: a lone test III answer must not conclude.
			if tc.answerIII {
				d.HandleDatagram(at, stunAPortOnly, answer(t, txid(t, testIII), mappedX))
			}
			if tc.answerII {
				d.HandleDatagram(at, stunAOther, answer(t, txid(t, testII), mappedX))
			}
			res, ready := finish(t, d, at)
			if !ready.Equal(tc.readyAt) {
				t.Errorf("Result ready at +%v, want +%v", ready.Sub(t0), tc.readyAt.Sub(t0))
			}
			if res.Err != nil || res.NAT.Mapping != MappingEndpointIndependent || res.Reflexive.Addr != mappedX {
				t.Errorf("mapping result %+v", res)
			}
			if res.NAT.Filtering != tc.want {
				t.Errorf("filtering %v, want %v", res.NAT.Filtering, tc.want)
			}
			if !d.Deadline().IsZero() {
				t.Errorf("deadline %v after the result", d.Deadline())
			}
			if m, ok := d.Mapped(); !ok || m.NAT != res.NAT {
				t.Errorf("Mapped() after the result = %v %+v, want %+v", ok, m.NAT, res.NAT)
			}
		})
	}
}

// A NAT that drops the changed-address answers costs exactly
// FilteringTries requests of each test, FilteringRTO apart, identical bytes,
// and nothing after.
func TestDiscoveryFilteringRetransmissionBounded(t *testing.T) {
	for _, cfg := range []DiscoveryConfig{
		{},
		{FilteringRTO: 100 * time.Millisecond, FilteringTries: 2},
	} {
		rto, tries := cfg.FilteringRTO, cfg.FilteringTries
		if rto == 0 {
			rto, tries = 300*time.Millisecond, 3
		}
		d, testII, testIII := startFiltered(t, cfg)
		start := t0.Add(10 * time.Millisecond)
		sent := map[uint32][]time.Time{changeIP | changePort: {start}, changePort: {start}}
		now := start
		for range 20 {
			dl := d.Deadline()
			if dl.IsZero() {
				break
			}
			now = dl
			d.HandleTimeout(now)
			byFlags, rest := filterRequests(t, d.Transmits())
			if len(rest) != 0 {
				t.Fatalf("mapping requests retransmitted after both answered: %v", rest)
			}
			for f, tx := range byFlags {
				first := map[uint32]Transmit{changeIP | changePort: testII, changePort: testIII}[f]
				if !bytes.Equal(tx.Data, first.Data) {
					t.Errorf("retransmission of test %#x differs from the first request", f)
				}
				sent[f] = append(sent[f], now)
			}
		}
		for f, times := range sent {
			if len(times) != tries {
				t.Errorf("cfg %+v: test %#x sent %d times, want %d", cfg, f, len(times), tries)
			}
			for i, at := range times {
				if want := start.Add(time.Duration(i) * rto); !at.Equal(want) {
					t.Errorf("cfg %+v: test %#x request %d at +%v, want +%v", cfg, f, i, at.Sub(t0), want.Sub(t0))
				}
			}
		}
		res, ok := d.Result()
		if !ok || res.NAT.Filtering != FilteringAddressAndPortDependent {
			t.Errorf("cfg %+v: result %v %+v, want address-and-port-dependent", cfg, ok, res.NAT)
		}
		if want := start.Add(time.Duration(tries) * rto); !now.Equal(want) {
			t.Errorf("cfg %+v: concluded at +%v, want +%v", cfg, now.Sub(t0), want.Sub(t0))
		}
	}
}

// Answers that are not the expected ones are ignored: right transaction ID
// from the wrong source (the primary address, the other test's address,
// a stranger), the right source with an unknown transaction ID, swapped
// IDs, a damaged fingerprint.
func TestDiscoveryFilteringIgnoresForgedAnswers(t *testing.T) {
	d, testII, testIII := startFiltered(t, DiscoveryConfig{})
	at := t0.Add(20 * time.Millisecond)
	idII, idIII := txid(t, testII), txid(t, testIII)
	stranger := netip.MustParseAddrPort("192.0.2.66:3479")
	var unknown [stun.TransactionIDSize]byte
	copy(unknown[:], "not-ours-123")
	damaged := answer(t, idII, mappedX)
	damaged[len(damaged)-1] ^= 0xff
	for _, p := range []struct {
		from netip.AddrPort
		data []byte
	}{
		{stunA, answer(t, idII, mappedX)},         // test II answer from the primary address
		{stunAPortOnly, answer(t, idII, mappedX)}, // ... from test III's address
		{stunB, answer(t, idII, mappedX)},         // ... from the other IP, primary port
		{stranger, answer(t, idII, mappedX)},      // ... from anyone
		{stunAOther, answer(t, unknown, mappedX)}, // right source, wrong ID
		{stunAOther, answer(t, idIII, mappedX)},   // test III's ID at test II's address
		{stunAPortOnly, answer(t, unknown, mappedX)},
		{stunA, answer(t, idIII, mappedX)},                          // test III answer from the primary address
		{stunAOther, damaged},                                       // bad fingerprint
		{stranger, errorAnswer(t, idII, stun.CodeUnknownAttribute)}, // error from a stranger
	} {
		d.HandleDatagram(at, p.from, p.data)
	}
	res, _ := finish(t, d, at)
	if res.NAT.Filtering != FilteringAddressAndPortDependent {
		t.Errorf("filtering %v after forged answers only, want address-and-port-dependent", res.NAT.Filtering)
	}
}

// A server without RFC 5780 answers CHANGE-REQUEST (comprehension-required)
// with 420 Unknown Attribute from its primary address: filtering unknown,
// at once.
func TestDiscoveryFilteringErrorResponse(t *testing.T) {
	for _, from := range []netip.AddrPort{stunA, stunAOther} {
		d, testII, _ := startFiltered(t, DiscoveryConfig{})
		at := t0.Add(20 * time.Millisecond)
		d.HandleDatagram(at, from, errorAnswer(t, txid(t, testII), stun.CodeUnknownAttribute))
		res, ok := d.Result()
		if !ok {
			t.Fatalf("error from %v: Result not ready at once", from)
		}
		if res.Err != nil || res.NAT.Mapping != MappingEndpointIndependent || res.NAT.Filtering != FilteringUnknown {
			t.Errorf("error from %v: result %+v, want endpoint-independent mapping, unknown filtering", from, res)
		}
		if len(d.Transmits()) != 0 || !d.Deadline().IsZero() {
			t.Errorf("error from %v: still sending after the server declined", from)
		}
	}
}

// Without a usable OTHER-ADDRESS in the first server's answer no filtering
// request is sent and the result is ready as soon as the mapping is.
func TestDiscoveryFilteringNeedsOtherAddress(t *testing.T) {
	v6 := append([]byte{0, 2, 0x0d, 0x97}, netip.MustParseAddr("2001:db8::1").AsSlice()...)
	for _, tc := range []struct {
		name  string
		other otherAttr // nil: attribute absent
	}{
		{"absent", nil},
		{"empty", otherAttr{}},
		{"header only", otherAttr{0, 1, 0x0d, 0x97}},
		{"truncated IPv4", otherAttr{0, 1, 0x0d, 0x97, 203, 0, 113}},
		{"truncated IPv6", otherAttr(v6[:12])},
		{"IPv6", otherAttr(v6)},
		{"unknown family", otherAttr{0, 3, 0x0d, 0x97, 203, 0, 113, 11}},
		{"port zero", otherValue(netip.MustParseAddrPort("203.0.113.11:0"))},
		{"unspecified", otherValue(netip.MustParseAddrPort("0.0.0.0:3479"))},
		{"same as the server", otherValue(stunA)},
		{"same IP", otherValue(stunAPortOnly)},
		{"same port", otherValue(stunB)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDiscovery(DiscoveryConfig{Rand: seeded(22), Servers: []netip.AddrPort{stunA, stunB}})
			d.Start(t0)
			ids := requests(t, d.Transmits())
			at := t0.Add(10 * time.Millisecond)
			if tc.other == nil {
				d.HandleDatagram(at, stunA, answer(t, ids[stunA], mappedX))
			} else {
				d.HandleDatagram(at, stunA, answerOther(t, ids[stunA], mappedX, tc.other))
			}
			d.HandleDatagram(at, stunB, answer(t, ids[stunB], mappedX))
			if txs := d.Transmits(); len(txs) != 0 {
				t.Errorf("sent %d requests, want none", len(txs))
			}
			res, ok := d.Result()
			if !ok || res.NAT != (NATBehavior{Mapping: MappingEndpointIndependent}) {
				t.Errorf("result %v %+v, want endpoint-independent mapping, unknown filtering at once", ok, res)
			}
		})
	}
}

// Only the first configured server's OTHER-ADDRESS starts the tests (and
// the second server's answer arriving first does not change that).
func TestDiscoveryFilteringFirstServerOnly(t *testing.T) {
	d := NewDiscovery(DiscoveryConfig{Rand: seeded(23), Servers: []netip.AddrPort{stunA, stunB}})
	d.Start(t0)
	ids := requests(t, d.Transmits())
	at := t0.Add(10 * time.Millisecond)
	d.HandleDatagram(at, stunB, answerOther(t, ids[stunB], mappedX, otherValue(netip.MustParseAddrPort("203.0.113.12:3479"))))
	if txs := d.Transmits(); len(txs) != 0 {
		t.Fatalf("the second server's OTHER-ADDRESS started %d requests", len(txs))
	}
	d.HandleDatagram(at, stunA, answer(t, ids[stunA], mappedX))
	if res, ok := d.Result(); !ok || res.NAT.Filtering != FilteringUnknown || len(d.Transmits()) != 0 {
		t.Errorf("result %v %+v, want ready with unknown filtering", ok, res.NAT)
	}
}
