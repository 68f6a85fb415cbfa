package punch

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
)

func TestCandidatesRoundTrip(t *testing.T) {
	in := []Candidate{
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("10.1.0.2:4000"), Priority: 100},
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("[2001:db8::1]:4000"), Priority: 90},
		{Type: CandidateServerReflexive, Addr: netip.MustParseAddrPort("203.0.113.7:61000"), Priority: 50},
	}
	nat := NATBehavior{Mapping: MappingAddressAndPortDependent, Filtering: FilteringAddressDependent}
	b := EncodeCandidates(in, nat)
	out, gotNAT, err := DecodeCandidates(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out, in) || gotNAT != nat {
		t.Fatalf("round trip: got %v %v, want %v %v", out, gotNAT, in, nat)
	}
	if got := in[0].String(); got != "host 10.1.0.2:4000" {
		t.Errorf("String() = %q", got)
	}
	if got := in[2].String(); got != "srflx 203.0.113.7:61000" {
		t.Errorf("String() = %q", got)
	}
}

// TestCandidatesRelayedAndPortStep: a relayed candidate and a sequential
// symmetric NAT's port step (negative too) survive the trip; a step the
// format cannot carry (out of range, or with a cone mapping) goes as 0.
func TestCandidatesRelayedAndPortStep(t *testing.T) {
	in := []Candidate{
		{Type: CandidateServerReflexive, Addr: netip.MustParseAddrPort("198.51.100.11:40000"), Priority: 7},
		{Type: CandidateRelayed, Addr: netip.MustParseAddrPort("203.0.113.20:50000"), Priority: 1},
	}
	for _, step := range []int{1, -3, MaxPortStep, -MaxPortStep} {
		nat := NATBehavior{Mapping: MappingAddressAndPortDependent, PortStep: step}
		out, got, err := DecodeCandidates(EncodeCandidates(in, nat))
		if err != nil || !reflect.DeepEqual(out, in) || got != nat {
			t.Fatalf("step %d: got %v %+v %v", step, out, got, err)
		}
	}
	if got := in[1].String(); got != "relay 203.0.113.20:50000" {
		t.Errorf("String() = %q", got)
	}
	for _, nat := range []NATBehavior{
		{Mapping: MappingAddressAndPortDependent, PortStep: MaxPortStep + 1},
		{Mapping: MappingEndpointIndependent, PortStep: 1},
	} {
		_, got, err := DecodeCandidates(EncodeCandidates(in, nat))
		if err != nil || got.PortStep != 0 || got.Mapping != nat.Mapping {
			t.Errorf("%+v: decoded %+v, %v; want the step dropped", nat, got, err)
		}
	}
}

func TestEncodeCandidatesSkipsUnusable(t *testing.T) {
	in := []Candidate{
		{Type: CandidateHost, Addr: netip.AddrPort{}},
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("0.0.0.0:4000")},
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("10.0.0.1:0")},
		{Type: CandidateType(7), Addr: netip.MustParseAddrPort("10.0.0.1:1")},
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("[::ffff:10.0.0.2]:5")},
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("[fe80::1%eth0]:6")},
	}
	out, _, err := DecodeCandidates(EncodeCandidates(in, NATBehavior{}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Candidate{
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("10.0.0.2:5")},
		{Type: CandidateHost, Addr: netip.MustParseAddrPort("[fe80::1]:6")},
	}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("got %v, want %v", out, want)
	}
}

func TestEncodeCandidatesCaps(t *testing.T) {
	var in []Candidate
	for i := range 40 {
		in = append(in, Candidate{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)}), 1)})
	}
	out, _, err := DecodeCandidates(EncodeCandidates(in, NATBehavior{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != MaxCandidates {
		t.Fatalf("got %d candidates, want %d", len(out), MaxCandidates)
	}
}

func TestDecodeCandidatesRejects(t *testing.T) {
	good := EncodeCandidates([]Candidate{{Addr: netip.MustParseAddrPort("10.0.0.1:9")}}, NATBehavior{})
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"empty":     {nil, ErrCandidatesMalformed},
		"short":     {good[:5], ErrCandidatesMalformed},
		"version":   {mut(func(b []byte) []byte { b[0] = 9; return b }), ErrCandidatesVersion},
		"version 1": {mut(func(b []byte) []byte { b[0] = 1; return b }), ErrCandidatesVersion},
		"mapping":   {mut(func(b []byte) []byte { b[1] = 99; return b }), ErrCandidatesMalformed},
		"filtering": {mut(func(b []byte) []byte { b[2] = 99; return b }), ErrCandidatesMalformed},
		// A port step needs a symmetric mapping, and a small one.
		"step without symmetric": {mut(func(b []byte) []byte { b[4] = 1; return b }), ErrCandidatesMalformed},
		"step too big": {mut(func(b []byte) []byte {
			b[1] = byte(MappingAddressAndPortDependent)
			b[4] = MaxPortStep + 1
			return b
		}), ErrCandidatesMalformed},
		"step too small": {mut(func(b []byte) []byte {
			b[1] = byte(MappingAddressAndPortDependent)
			b[3], b[4] = 0xff, byte(256-MaxPortStep-1)
			return b
		}), ErrCandidatesMalformed},
		"too many":  {mut(func(b []byte) []byte { b[5] = 17; return b }), ErrTooManyCandidates},
		"count":     {mut(func(b []byte) []byte { b[5] = 2; return b }), ErrCandidatesMalformed},
		"truncated": {good[:len(good)-1], ErrCandidatesMalformed},
		"trailing":  {append(bytes.Clone(good), 0), ErrCandidatesMalformed},
		"type":      {mut(func(b []byte) []byte { b[6] = 5; return b }), ErrCandidatesMalformed},
		"family":    {mut(func(b []byte) []byte { b[7] = 5; return b }), ErrCandidatesMalformed},
		"port 0":    {mut(func(b []byte) []byte { b[12], b[13] = 0, 0; return b }), ErrCandidatesMalformed},
	}
	for name, tc := range cases {
		if _, _, err := DecodeCandidates(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
}

func FuzzDecodeCandidates(f *testing.F) {
	f.Add(EncodeCandidates([]Candidate{
		{Addr: netip.MustParseAddrPort("10.0.0.1:9"), Priority: 3},
		{Type: CandidateServerReflexive, Addr: netip.MustParseAddrPort("[2001:db8::2]:9")},
	}, NATBehavior{Mapping: MappingEndpointIndependent}))
	f.Add(EncodeCandidates([]Candidate{
		{Type: CandidateRelayed, Addr: netip.MustParseAddrPort("203.0.113.20:50000"), Priority: 1},
	}, NATBehavior{Mapping: MappingAddressAndPortDependent, PortStep: -2}))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, nat, err := DecodeCandidates(b)
		if err != nil {
			return
		}
		if len(c) > MaxCandidates {
			t.Fatalf("%d candidates", len(c))
		}
		// Whatever decodes re-encodes to the same bytes.
		if again := EncodeCandidates(c, nat); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, b)
		}
	})
}

func TestNATBehaviorWords(t *testing.T) {
	cases := []struct {
		b               NATBehavior
		symmetric, open bool
		phrase          string
	}{
		{NATBehavior{Mapping: MappingNone}, false, true, "no NAT"},
		{NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringEndpointIndependent}, false, true, "full-cone NAT"},
		{NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringAddressAndPortDependent}, false, false, "port-restricted cone NAT"},
		{NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringAddressDependent}, false, false, "address-restricted cone NAT"},
		{NATBehavior{Mapping: MappingEndpointIndependent, Filtering: FilteringUnknown}, false, false, "cone NAT"},
		{NATBehavior{Mapping: MappingAddressDependent, Filtering: FilteringUnknown}, true, false, "symmetric NAT"},
		{NATBehavior{Mapping: MappingAddressAndPortDependent, Filtering: FilteringEndpointIndependent}, true, false, "symmetric NAT"},
		{NATBehavior{}, false, false, "NAT type unknown"},
	}
	for _, tc := range cases {
		if got := tc.b.Symmetric(); got != tc.symmetric {
			t.Errorf("%v Symmetric() = %v", tc.b, got)
		}
		if got := tc.b.Open(); got != tc.open {
			t.Errorf("%v Open() = %v", tc.b, got)
		}
		if got := tc.b.Phrase(); !bytes.HasPrefix([]byte(got), []byte(tc.phrase+":")) {
			t.Errorf("%v Phrase() = %q, want prefix %q", tc.b, got, tc.phrase)
		}
	}
	names := [][2]string{
		{MappingUnknown.String(), "unknown"},
		{MappingEndpointIndependent.String(), "endpoint-independent"},
		{MappingAddressDependent.String(), "address-dependent"},
		{MappingAddressAndPortDependent.String(), "address-and-port-dependent"},
		{MappingNone.String(), "none"},
		{FilteringUnknown.String(), "unknown"},
		{FilteringEndpointIndependent.String(), "endpoint-independent"},
		{FilteringAddressDependent.String(), "address-dependent"},
		{FilteringAddressAndPortDependent.String(), "address-and-port-dependent"},
	}
	for _, n := range names {
		if n[0] != n[1] {
			t.Errorf("String() = %q, want %q", n[0], n[1])
		}
	}
}
