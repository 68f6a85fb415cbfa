package punch

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func wireKey(t testing.TB) (Tag, *macer) {
	t.Helper()
	var secret [32]byte
	secret[0] = 7
	tag, key := deriveKeys(secret, "wire-test", PathDirect)
	return tag, newMacer(&key)
}

func TestPacketRoundTrip(t *testing.T) {
	tag, key := wireKey(t)
	for _, p := range []packet{
		{typ: typeProbe, flags: flagControlling, tag: tag, txid: 1, dst: netip.MustParseAddrPort("203.0.113.9:4000")},
		{typ: typeReply, flags: flagSelected, tag: tag, txid: 1 << 63, dst: netip.MustParseAddrPort("[2001:db8::5]:1")},
		{typ: typeKeepalive, flags: flagControlling | flagSelected, tag: tag, txid: 42},
	} {
		b := p.appendMarshal(nil, key)
		if len(b) != packetLen || Classify(b) != ClassPunch {
			t.Fatalf("%v: %d bytes, class %v", p.typ, len(b), Classify(b))
		}
		got, err := parsePacket(b)
		if err != nil {
			t.Fatalf("%v: %v", p.typ, err)
		}
		if got != p {
			t.Fatalf("round trip: got %+v, want %+v", got, p)
		}
		if !verifyMAC(key, b) {
			t.Fatalf("%v: MAC does not verify", p.typ)
		}
		if tg, ok := PacketTag(b); !ok || tg != tag {
			t.Fatalf("PacketTag = %v %v", tg, ok)
		}
	}
}

func TestPacketIPv4MappedTravelsAsIPv4(t *testing.T) {
	tag, key := wireKey(t)
	b := packet{typ: typeProbe, tag: tag, dst: netip.MustParseAddrPort("[::ffff:10.0.0.1]:9")}.appendMarshal(nil, key)
	p, err := parsePacket(b)
	if err != nil || p.dst != netip.MustParseAddrPort("10.0.0.1:9") {
		t.Fatalf("got %v, %v", p.dst, err)
	}
}

func TestPacketMACCoversEveryHeaderByte(t *testing.T) {
	tag, key := wireKey(t)
	b := packet{typ: typeProbe, tag: tag, txid: 99, dst: netip.MustParseAddrPort("10.0.0.1:9")}.appendMarshal(nil, key)
	for i := range packetLen {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if verifyMAC(key, c) {
			t.Fatalf("flipping byte %d keeps the MAC valid", i)
		}
	}
	_, otherKey := deriveKeys([32]byte{7}, "wire-test2", PathDirect)
	if verifyMAC(newMacer(&otherKey), b) {
		t.Fatal("another session's key verifies the packet")
	}
}

func TestDeriveKeysDiffer(t *testing.T) {
	t1, k1 := deriveKeys([32]byte{1}, "a", PathDirect)
	t2, k2 := deriveKeys([32]byte{1}, "b", PathDirect)
	t3, k3 := deriveKeys([32]byte{2}, "a", PathDirect)
	if t1 == t2 || t1 == t3 || k1 == k2 || k1 == k3 {
		t.Fatal("keys do not depend on both secret and session")
	}
	// Each path kind has its own tag and key, so an owner running one
	// machine per kind routes every packet to one machine only.
	t4, k4 := deriveKeys([32]byte{1}, "a", PathRelayed)
	t5, k5 := deriveKeys([32]byte{1}, "a", PathPredicted)
	if t4 == t1 || t5 == t1 || t4 == t5 || k4 == k1 || k5 == k1 || k4 == k5 {
		t.Fatal("path kinds share keys")
	}
	if [8]byte(k1[:8]) == [8]byte(t1) {
		t.Fatal("the tag reveals the MAC key")
	}
}

func TestParsePacketRejects(t *testing.T) {
	tag, key := wireKey(t)
	good := packet{typ: typeProbe, tag: tag, txid: 5, dst: netip.MustParseAddrPort("10.0.0.1:9")}.appendMarshal(nil, key)
	mut := func(i int, v byte) []byte { c := bytes.Clone(good); c[i] = v; return c }
	cases := map[string]struct {
		b    []byte
		want error
	}{
		"empty":       {nil, errShort},
		"short":       {good[:packetLen-1], errShort},
		"long":        {append(bytes.Clone(good), 0), errShort},
		"magic":       {mut(0, 0x51), errMagic},
		"version":     {mut(1, 2), errVersion},
		"version len": {[]byte{PunchByte, 9, 1}, errVersion},
		"type 0":      {mut(2, 0), errType},
		"type 4":      {mut(2, 4), errType},
		"flags":       {mut(3, 4), errFlags},
		"family":      {mut(offFamily, 5), errAddr},
		"v4 tail":     {mut(offAddr+10, 1), errAddr},
		"none addr":   {func() []byte { c := mut(offFamily, 0); return c }(), errAddr},
		"v4 in v6": {func() []byte {
			c := mut(offFamily, famIPv6)
			copy(c[offAddr:], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1})
			return c
		}(), errAddr},
	}
	for name, tc := range cases {
		if _, err := parsePacket(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	if _, ok := PacketTag(good[:20]); ok {
		t.Error("PacketTag accepted a short packet")
	}
}

// FuzzProbe feeds arbitrary bytes to the packet parser and to a machine:
// nothing may panic, whatever parses re-encodes to the same header, and a
// packet that is not MAC'd with the machine's key never selects a path.
func FuzzProbe(f *testing.F) {
	tag, key := wireKey(f)
	for _, p := range []packet{
		{typ: typeProbe, tag: tag, txid: 1, dst: netip.MustParseAddrPort("10.0.0.1:9")},
		{typ: typeReply, flags: flagSelected, tag: tag, txid: 2, dst: netip.MustParseAddrPort("[2001:db8::1]:9")},
		{typ: typeKeepalive, flags: 3, tag: tag, txid: 3},
	} {
		f.Add(p.appendMarshal(nil, key))
	}
	f.Add([]byte{PunchByte})
	f.Add([]byte{PunchByte, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePacket(b)
		if err == nil {
			again := p.appendMarshal(nil, key)
			if !bytes.Equal(again[:headerLen], b[:headerLen]) {
				t.Fatalf("re-encoding differs:\n%x\n%x", again[:headerLen], b[:headerLen])
			}
		}
		// A machine of another secret sees only forgeries.
		m, err := NewMachine(Config{
			Rand: bytes.NewReader(make([]byte, 8)),
			Role: Controlled, SessionID: "fuzz", Secret: [32]byte{9},
			Remote: []Candidate{{Addr: netip.MustParseAddrPort("10.0.0.1:9")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		start := machEpoch
		m.Start(start)
		m.HandleDatagram(start, netip.MustParseAddrPort("10.0.0.1:9"), b)
		for _, ev := range m.Events() {
			t.Fatalf("a foreign packet produced %#v", ev)
		}
		if s := m.Stats(); s.Accepted != 0 || s.Ignored() != 1 {
			t.Fatalf("stats %+v", s)
		}
		// A machine of the right secret acts only on authentic packets.
		var secret [32]byte
		secret[0] = 7
		own, err := NewMachine(Config{
			Rand: bytes.NewReader(make([]byte, 8)),
			Role: Controlled, SessionID: "wire-test", Secret: secret,
			Remote: []Candidate{{Addr: netip.MustParseAddrPort("10.0.0.1:9")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		own.Start(start)
		own.HandleDatagram(start, netip.MustParseAddrPort("10.0.0.1:9"), b)
		if s := own.Stats(); s.Accepted+s.Ignored() != 1 || (s.Accepted == 1 && !verifyMAC(key, b)) {
			t.Fatalf("stats %+v for %x", s, b)
		}
	})
}
