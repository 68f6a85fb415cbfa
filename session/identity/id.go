package identity

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/curve25519"
)

// A user's ID is their X25519 public key followed by a 3-byte checksum,
// written in lowercase RFC 4648 base32 without padding: 35 bytes are exactly
// 280 bits, 56 characters of [a-z2-7]. The checksum catches a mistyped or
// truncated ID before anything is sent to it; 24 bits means a random typo
// slips through about once in 16 million.
const (
	// IDLength is the number of characters of an ID.
	IDLength = 56
	// idChecksumSize is the number of checksum bytes after the key.
	idChecksumSize = 3
	// idDomain separates the ID checksum from every other hash of a key.
	idDomain = "p2ptui id checksum v1"
	// fingerprintDomain separates safety numbers from every other hash.
	fingerprintDomain = "p2ptui safety number v1"
)

// Errors returned by ParseID, for the UI to branch on.
var (
	// ErrIDTypo: the ID has the right shape but its checksum does not
	// match, which almost always means a character was mistyped.
	ErrIDTypo = errors.New("this ID looks like a typo: its checksum does not match (check each character)")
	// ErrIDMalformed: the text is not an ID at all (wrong length or
	// characters outside a-z and 2-7).
	ErrIDMalformed = errors.New("not a p2ptui ID: an ID is 56 characters of a-z and 2-7")
	// ErrIDBadKey: the checksum is right but the key is unusable (zero or a
	// low-order point), so the ID was crafted, not generated.
	ErrIDBadKey = errors.New("this ID holds an invalid public key")
)

// idEncoding is lowercase RFC 4648 base32 without padding.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// idChecksum is the first idChecksumSize bytes of SHA-256(domain || pub).
func idChecksum(pub [32]byte) [idChecksumSize]byte {
	h := sha256.New()
	h.Write([]byte(idDomain))
	h.Write(pub[:])
	var sum [idChecksumSize]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// IDFromPublic returns the ID of a public key: 56 lowercase characters.
func IDFromPublic(pub [32]byte) string {
	var raw [32 + idChecksumSize]byte
	copy(raw[:], pub[:])
	sum := idChecksum(pub)
	copy(raw[32:], sum[:])
	return idEncoding.EncodeToString(raw[:])
}

// ParseID returns the public key an ID names. It accepts what a user may
// paste: any case, and spaces, tabs, newlines or dashes anywhere. Errors wrap
// ErrIDMalformed, ErrIDTypo or ErrIDBadKey.
func ParseID(s string) ([32]byte, error) {
	pub, err := DecodeID(s)
	if err != nil {
		return [32]byte{}, err
	}
	if err := checkPublicKey(pub); err != nil {
		return [32]byte{}, err
	}
	return pub, nil
}

// DecodeID is ParseID without the (comparatively slow) key check, for IDs
// the store already validated when the contact was added.
func DecodeID(s string) ([32]byte, error) {
	var pub [32]byte
	var clean [IDLength]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '-':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'):
		default:
			return pub, fmt.Errorf("%w (found %q)", ErrIDMalformed, idQuoteChar(s, i))
		}
		if n == IDLength {
			return pub, fmt.Errorf("%w (too long)", ErrIDMalformed)
		}
		clean[n] = c
		n++
	}
	if n != IDLength {
		return pub, fmt.Errorf("%w (got %d characters)", ErrIDMalformed, n)
	}
	var raw [32 + idChecksumSize]byte
	if m, err := idEncoding.Decode(raw[:], clean[:]); err != nil || m != len(raw) {
		// Unreachable for 56 alphabet characters, kept as a guard.
		return pub, fmt.Errorf("%w: %v", ErrIDMalformed, err)
	}
	copy(pub[:], raw[:32])
	sum := idChecksum(pub)
	if subtle.ConstantTimeCompare(sum[:], raw[32:]) != 1 {
		return [32]byte{}, ErrIDTypo
	}
	return pub, nil
}

// idQuoteChar returns the (possibly multi-byte) character at byte i of s,
// for an error message.
func idQuoteChar(s string, i int) string {
	for j, r := range s {
		if j >= i {
			return string(r)
		}
	}
	return s[i:]
}

// checkPublicKey refuses keys no honest peer has: a Diffie-Hellman with a
// zero or low-order point gives an all-zero shared secret whatever our
// private key is (RFC 7748 §6.1), so such a key would make every seal and
// MAC with it predictable. Multiplying by any clamped scalar (a multiple of
// the cofactor 8) sends exactly those points to zero, which X25519 reports
// as an error.
func checkPublicKey(pub [32]byte) error {
	var scalar [32]byte
	scalar[0] = 1 // clamped to 8·(2^254 + 1): nonzero, multiple of the cofactor
	if _, err := curve25519.X25519(scalar[:], pub[:]); err != nil {
		return ErrIDBadKey
	}
	return nil
}

// Fingerprint returns the safety number of a pair of keys: 60 digits in 12
// groups of 5, the same whichever side computes it. Two users who read the
// same number to each other (in person, on a call) know that no one
// substituted a key between them.
func Fingerprint(a, b [32]byte) string {
	lo, hi := a, b
	if bytes.Compare(a[:], b[:]) > 0 {
		lo, hi = b, a
	}
	h := sha512.New()
	h.Write([]byte(fingerprintDomain))
	h.Write(lo[:])
	h.Write(hi[:])
	return digitGroups(h.Sum(nil), 12)
}

// KeyFingerprint returns a short fingerprint of one key (4 groups of 5
// digits), for "your key" in the status bar; use Fingerprint to verify a
// contact.
func KeyFingerprint(pub [32]byte) string {
	h := sha512.New()
	h.Write([]byte(fingerprintDomain))
	h.Write(pub[:])
	return digitGroups(h.Sum(nil), 4)
}

// digitGroups renders groups of 5 digits, each from 5 bytes of sum taken
// modulo 100000 as in Signal's safety numbers (the bias of 2^40 mod 10^5 is
// negligible).
func digitGroups(sum []byte, groups int) string {
	var b strings.Builder
	for g := range groups {
		var chunk [8]byte
		copy(chunk[3:], sum[5*g:5*g+5])
		if g > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%05d", binary.BigEndian.Uint64(chunk[:])%100000)
	}
	return b.String()
}
