package identity

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// idTestKey is a deterministic valid key pair.
func idTestKey(t testing.TB, seed byte) Identity {
	t.Helper()
	var priv [32]byte
	for i := range priv {
		priv[i] = seed + byte(i)*7
	}
	id, err := identityFromPrivate(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestIDRoundTripAndShape(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z2-7]{56}$`)
	for seed := byte(1); seed < 40; seed++ {
		id := idTestKey(t, seed)
		s := id.ID()
		if !shape.MatchString(s) {
			t.Fatalf("ID %q does not have 56 characters of [a-z2-7]", s)
		}
		pub, err := ParseID(s)
		if err != nil || pub != id.Public {
			t.Fatalf("ParseID(%q) = %x, %v; want %x", s, pub, err, id.Public)
		}
	}
}

func TestIDParseToleratesPaste(t *testing.T) {
	id := idTestKey(t, 3)
	s := id.ID()
	var grouped strings.Builder
	for i, c := range strings.ToUpper(s) {
		if i > 0 && i%8 == 0 {
			grouped.WriteString([]string{" ", "-", "\n", "\t"}[i/8%4])
		}
		grouped.WriteRune(c)
	}
	for _, in := range []string{strings.ToUpper(s), "  " + s + "\n", grouped.String()} {
		pub, err := ParseID(in)
		if err != nil || pub != id.Public {
			t.Errorf("ParseID(%q) = %v; want the key back", in, err)
		}
	}
}

func TestIDParseErrors(t *testing.T) {
	id := idTestKey(t, 4)
	s := id.ID()
	flip := func(i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	var zero [32]byte
	// A low-order point of order 8 (RFC 7748 §6.1 / the well-known list).
	lowOrder := [32]byte{0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
		0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}
	var one [32]byte
	one[0] = 1
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrIDMalformed},
		{s[:55], ErrIDMalformed},
		{s + "a", ErrIDMalformed},
		{s[:10] + "1" + s[11:], ErrIDMalformed}, // '1' is not base32
		{s[:10] + "é" + s[12:], ErrIDMalformed},
		{s[:20] + "_" + s[21:], ErrIDMalformed},
		{flip(0), ErrIDTypo},
		{flip(30), ErrIDTypo},
		{flip(55), ErrIDTypo},
		{s[:1] + s[2:3] + s[1:2] + s[3:], ErrIDTypo}, // transposition (s[1] != s[2] for this key)
		{IDFromPublic(zero), ErrIDBadKey},
		{IDFromPublic(one), ErrIDBadKey},
		{IDFromPublic(lowOrder), ErrIDBadKey},
	}
	if s[1] == s[2] {
		t.Fatal("test key has equal characters at 1 and 2; pick another seed")
	}
	for _, c := range cases {
		_, err := ParseID(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("ParseID(%q) = %v; want %v", c.in, err, c.want)
		}
	}
}

// TestIDEverySingleTypoCaught changes every character of an ID to every
// other alphabet character: the checksum must refuse all of them.
func TestIDEverySingleTypoCaught(t *testing.T) {
	s := idTestKey(t, 5).ID()
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	for i := range s {
		for _, c := range alphabet {
			if byte(c) == s[i] {
				continue
			}
			in := s[:i] + string(c) + s[i+1:]
			_, err := ParseID(in)
			// The last character carries 0 spare bits (280 = 56·5), so every
			// substitution changes the decoded bytes.
			if !errors.Is(err, ErrIDTypo) && !errors.Is(err, ErrIDBadKey) {
				t.Fatalf("typo at %d (%c) not caught: %v", i, c, err)
			}
		}
	}
}

func TestIDFingerprint(t *testing.T) {
	a, b, c := idTestKey(t, 1).Public, idTestKey(t, 2).Public, idTestKey(t, 3).Public
	fab, fba := Fingerprint(a, b), Fingerprint(b, a)
	if fab != fba {
		t.Fatalf("fingerprint depends on order: %q vs %q", fab, fba)
	}
	if !regexp.MustCompile(`^(\d{5} ){11}\d{5}$`).MatchString(fab) {
		t.Fatalf("fingerprint %q is not 12 groups of 5 digits", fab)
	}
	if Fingerprint(a, c) == fab || Fingerprint(b, c) == fab {
		t.Fatal("different pairs share a fingerprint")
	}
	short := KeyFingerprint(a)
	if !regexp.MustCompile(`^(\d{5} ){3}\d{5}$`).MatchString(short) || short == KeyFingerprint(b) {
		t.Fatalf("short fingerprint %q malformed or not distinct", short)
	}
}

// FuzzParseID: any text either parses to a key whose ID is the text's
// normalised form, or fails with one of the three ID errors; never panics.
func FuzzParseID(f *testing.F) {
	s := idTestKey(f, 1).ID()
	for _, seed := range []string{s, strings.ToUpper(s), s[:28] + " - " + s[28:], s[:55], s + "a", "", "-- --", s[:10] + "é" + s[12:]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		pub, err := ParseID(in)
		if err != nil {
			if !errors.Is(err, ErrIDMalformed) && !errors.Is(err, ErrIDTypo) && !errors.Is(err, ErrIDBadKey) {
				t.Fatalf("ParseID(%q): unexpected error %v", in, err)
			}
			return
		}
		norm := strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "", "\n", "", "\r", "").Replace(in))
		if IDFromPublic(pub) != norm {
			t.Fatalf("ParseID(%q) accepted a key whose ID is %q", in, IDFromPublic(pub))
		}
	})
}
