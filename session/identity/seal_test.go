package identity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sealTestInvitation is a typical invitation.
func sealTestInvitation() Invitation {
	inv := Invitation{Name: "Alice ☕", Candidates: []byte("host 10.1.0.2:4000|srflx 203.0.113.7:5000"),
		Created: sealTestTime, Instance: "k3x9q0a1", Auto: true}
	for i := range inv.PunchSecret {
		inv.PunchSecret[i] = byte(i * 3)
	}
	return inv
}

// sealTestTime is a fixed creation time (millisecond precision, as sealed).
var sealTestTime = time.UnixMilli(1_795_000_000_123)

func sealInvEqual(a, b Invitation) bool {
	return a.Name == b.Name && bytes.Equal(a.Candidates, b.Candidates) && a.PunchSecret == b.PunchSecret &&
		a.Created.Equal(b.Created) && a.Instance == b.Instance && a.Auto == b.Auto
}

func TestSealRoundTrip(t *testing.T) {
	alice, bob := idTestKey(t, 1), idTestKey(t, 2)
	for _, inv := range []Invitation{
		sealTestInvitation(),
		{Created: time.UnixMilli(1)},
		{Name: strings.Repeat("é", MaxNameBytes/2), Candidates: bytes.Repeat([]byte{0xff}, MaxCandidatesBytes),
			Created: sealTestTime, Instance: strings.Repeat("z9", MaxInstanceBytes/2)},
	} {
		sealed, err := SealInvitation(alice, bob.Public, "sess-1", "offer", inv, simReader(7))
		if err != nil {
			t.Fatal(err)
		}
		if len(sealed) > MaxSealedSize {
			t.Fatalf("sealed %d bytes > %d", len(sealed), MaxSealedSize)
		}
		got, err := OpenInvitation(bob, alice.Public, "sess-1", "offer", sealed)
		if err != nil {
			t.Fatal(err)
		}
		if !sealInvEqual(got, inv) {
			t.Fatalf("opened %+v; want %+v", got, inv)
		}
	}
}

func TestSealRefusesEverythingElse(t *testing.T) {
	alice, bob, mallory := idTestKey(t, 1), idTestKey(t, 2), idTestKey(t, 3)
	inv := sealTestInvitation()
	sealed, err := SealInvitation(alice, bob.Public, "sess-1", "offer", inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	open := func(me Identity, peer [32]byte, sid, kind string, b []byte) error {
		_, err := OpenInvitation(me, peer, sid, kind, b)
		return err
	}
	cases := map[string]error{
		"wrong session":           open(bob, alice.Public, "sess-2", "offer", sealed),
		"wrong kind":              open(bob, alice.Public, "sess-1", "answer", sealed),
		"claimed by another":      open(bob, mallory.Public, "sess-1", "offer", sealed),
		"opened by a third party": open(mallory, alice.Public, "sess-1", "offer", sealed),
		// Reflection: Alice's own offer put back into Alice's inbox as if
		// Bob had sent it. The DH is symmetric; the direction binding is not.
		"reflected to sender": open(alice, bob.Public, "sess-1", "offer", sealed),
		"truncated":           open(bob, alice.Public, "sess-1", "offer", sealed[:len(sealed)-1]),
		"empty":               open(bob, alice.Public, "sess-1", "offer", nil),
		"too large":           open(bob, alice.Public, "sess-1", "offer", make([]byte, MaxSealedSize+1)),
	}
	for i := range sealed {
		for _, bit := range []byte{1, 0x80} {
			b := bytes.Clone(sealed)
			b[i] ^= bit
			cases[fmt.Sprintf("bit %#x of byte %d flipped", bit, i)] = open(bob, alice.Public, "sess-1", "offer", b)
		}
	}
	for name, err := range cases {
		if !errors.Is(err, ErrSealBroken) {
			t.Errorf("%s: err %v; want ErrSealBroken", name, err)
		}
	}
	if err := open(bob, alice.Public, "sess-1", "offer", sealed); err != nil {
		t.Fatalf("the genuine seal must still open: %v", err)
	}
}

func TestSealNoncesDiffer(t *testing.T) {
	alice, bob := idTestKey(t, 1), idTestKey(t, 2)
	a, _ := SealInvitation(alice, bob.Public, "s", "offer", sealTestInvitation(), nil)
	b, _ := SealInvitation(alice, bob.Public, "s", "offer", sealTestInvitation(), nil)
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same invitation are identical: nonce not random")
	}
}

func TestSealRefusesInvalidInput(t *testing.T) {
	alice, bob := idTestKey(t, 1), idTestKey(t, 2)
	var zero [32]byte
	for name, c := range map[string]struct {
		peer      [32]byte
		sid, kind string
		inv       Invitation
	}{
		"long name":        {bob.Public, "s", "offer", Invitation{Created: sealTestTime, Name: strings.Repeat("x", MaxNameBytes+1)}},
		"bad utf-8":        {bob.Public, "s", "offer", Invitation{Created: sealTestTime, Name: "\xff\xfe"}},
		"long candidates":  {bob.Public, "s", "offer", Invitation{Created: sealTestTime, Candidates: make([]byte, MaxCandidatesBytes+1)}},
		"no time":          {bob.Public, "s", "offer", Invitation{}},
		"time before 1970": {bob.Public, "s", "offer", Invitation{Created: time.UnixMilli(-5)}},
		"long instance":    {bob.Public, "s", "offer", Invitation{Created: sealTestTime, Instance: strings.Repeat("a", MaxInstanceBytes+1)}},
		"instance chars":   {bob.Public, "s", "offer", Invitation{Created: sealTestTime, Instance: "Ab/"}},
		"empty session":    {bob.Public, "", "offer", Invitation{Created: sealTestTime}},
		"empty kind":       {bob.Public, "s", "", Invitation{Created: sealTestTime}},
		"long session":     {bob.Public, strings.Repeat("s", 256), "offer", Invitation{Created: sealTestTime}},
		"zero peer key":    {zero, "s", "offer", Invitation{Created: sealTestTime}},
	} {
		if _, err := SealInvitation(alice, c.peer, c.sid, c.kind, c.inv, nil); err == nil {
			t.Errorf("%s: sealed without error", name)
		}
	}
}

// sealFuzzSeeds are sealed invitations from key 1 to key 2 for ("fuzz",
// "offer"), plus edge cases, deterministic for the corpus files.
func sealFuzzSeeds(tb testing.TB) [][]byte {
	alice := idTestKey(tb, 1)
	bob := idTestKey(tb, 2)
	var seeds [][]byte
	for i, inv := range []Invitation{
		sealTestInvitation(),
		{Created: time.UnixMilli(1)},
		{Name: strings.Repeat("n", MaxNameBytes), Candidates: bytes.Repeat([]byte{1}, 300), Created: sealTestTime},
	} {
		b, err := SealInvitation(alice, bob.Public, "fuzz", "offer", inv, simReader(uint64(i)))
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	seeds = append(seeds, []byte{}, []byte{sealVersion}, bytes.Repeat([]byte{sealVersion}, sealOverhead),
		appendInvitation(nil, &Invitation{Name: "plain", Candidates: []byte{1, 2, 3}, Created: sealTestTime}))
	return seeds
}

// FuzzOpenInvitation feeds arbitrary bytes to OpenInvitation: it must never
// panic, every failure must be ErrSealBroken, and whatever opens must be a
// valid invitation that seals again to something that opens to the same.
func FuzzOpenInvitation(f *testing.F) {
	for _, s := range sealFuzzSeeds(f) {
		f.Add(s)
	}
	alice := idTestKey(f, 1)
	bob := idTestKey(f, 2)
	f.Fuzz(func(t *testing.T, b []byte) {
		// The decoder sits behind the AEAD, out of the fuzzer's reach
		// through OpenInvitation; feed it directly too.
		if inv, err := parseInvitation(b); err == nil {
			if got := appendInvitation(nil, &inv); !bytes.Equal(got, b) {
				t.Fatalf("decode/encode not canonical: %x -> %x", b, got)
			}
		}
		inv, err := OpenInvitation(bob, alice.Public, "fuzz", "offer", b)
		if err != nil {
			if !errors.Is(err, ErrSealBroken) {
				t.Fatalf("error %v does not wrap ErrSealBroken", err)
			}
			return
		}
		if err := inv.validate(); err != nil {
			t.Fatalf("opened an invalid invitation: %v", err)
		}
		again, err := SealInvitation(alice, bob.Public, "fuzz", "offer", inv, nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := OpenInvitation(bob, alice.Public, "fuzz", "offer", again)
		if err != nil || !sealInvEqual(back, inv) {
			t.Fatalf("re-seal round trip: %v", err)
		}
	})
}

// TestSealWriteFuzzCorpus writes FuzzOpenInvitation's seeds under
// testdata/fuzz when SESSION_WRITE_CORPUS=1.
func TestSealWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SESSION_WRITE_CORPUS") != "1" {
		t.Skip("set SESSION_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzOpenInvitation")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range sealFuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// simReader is a seeded source of randomness for reproducible seals.
func simReader(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// The decoder refuses what the encoder never writes: the old version
// without a time, unknown flag bits, a zero time, bad instance bytes.
func TestInvitationDecoderIsStrict(t *testing.T) {
	good := appendInvitation(nil, &Invitation{Name: "n", Created: sealTestTime, Instance: "ab12"})
	if _, err := parseInvitation(good); err != nil {
		t.Fatalf("good encoding refused: %v", err)
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"version 1":         mutate(func(b []byte) []byte { b[0] = 1; return b }),
		"unknown flag":      mutate(func(b []byte) []byte { b[9] |= 0x80; return b }),
		"zero time":         mutate(func(b []byte) []byte { copy(b[1:9], make([]byte, 8)); return b }),
		"negative time":     mutate(func(b []byte) []byte { b[1] = 0x80; return b }),
		"instance upper":    mutate(func(b []byte) []byte { b[11] = 'A'; return b }),
		"instance too long": mutate(func(b []byte) []byte { b[10] = MaxInstanceBytes + 1; return b }),
		"trailing byte":     append(bytes.Clone(good), 0),
		"truncated":         good[:len(good)-1],
		"header only":       good[:10],
	} {
		if _, err := parseInvitation(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A Sealer is the same seal with the shared secret remembered: its seals
// open with OpenInvitation and the other way round, and it refuses what
// OpenInvitation refuses.
func TestSealerMatchesTheFunctions(t *testing.T) {
	alice, bob, mallory := idTestKey(t, 1), idTestKey(t, 2), idTestKey(t, 3)
	sa, sb := NewSealer(alice), NewSealer(bob)
	inv := sealTestInvitation()
	for i := range 3 { // the second and third use the remembered secret
		sealed, err := sa.Seal(bob.Public, "s1", "offer", inv, simReader(uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := OpenInvitation(bob, alice.Public, "s1", "offer", sealed)
		if err != nil || !sealInvEqual(got, inv) {
			t.Fatalf("round %d: Sealer's seal opened by OpenInvitation: %+v, %v", i, got, err)
		}
		if _, err := sb.Open(alice.Public, "s1", "answer", sealed); !errors.Is(err, ErrSealBroken) {
			t.Fatalf("round %d: opened as another kind: %v", i, err)
		}
		if _, err := sb.Open(mallory.Public, "s1", "offer", sealed); !errors.Is(err, ErrSealBroken) {
			t.Fatalf("round %d: opened as from mallory: %v", i, err)
		}
		plain, err := SealInvitation(alice, bob.Public, "s1", "offer", inv, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := sb.Open(alice.Public, "s1", "offer", plain); err != nil || !sealInvEqual(got, inv) {
			t.Fatalf("round %d: SealInvitation's seal opened by a Sealer: %+v, %v", i, got, err)
		}
	}
	var zero [32]byte
	if _, err := sa.Seal(zero, "s", "offer", inv, nil); err == nil {
		t.Fatal("sealed for a zero key")
	}
	if _, err := sa.Open(zero, "s", "offer", make([]byte, 100)); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("open from a zero key: %v", err)
	}
}
