package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/hkdf"
)

// Signals (offer, answer, cancel) travel through a database both users and
// its operator can read and write. Sealing makes their content useless to
// anyone but the two contacts:
//
//   - the key comes from the static-static X25519 DH of the two identities,
//     so only the holder of either private key can make or open a seal, and
//     a seal that opens proves it came from the contact (or from ourselves);
//   - HKDF-SHA256 binds the key to the direction (sender key, recipient key),
//     the session ID and the kind, so a seal can't be reflected back to its
//     sender, replayed into another session or turned from an offer into an
//     answer;
//   - XChaCha20-Poly1305 with a random 24-byte nonce encrypts and
//     authenticates the invitation (name, candidates, punch secret).
//
// The static-static DH gives no forward secrecy: someone who later steals a
// private key can open old signals from the database. They only hold
// addresses and a punch secret for a session long over; the chat itself is
// protected by the Noise handshake's ephemeral keys.

// Seal format limits.
const (
	// MaxNameBytes bounds the display name carried in an invitation.
	MaxNameBytes = 64
	// MaxCandidatesBytes bounds the encoded candidates (punch allows 16
	// candidates of a few dozen bytes each; 2 KiB leaves room).
	MaxCandidatesBytes = 2 << 10
	// MaxSealedSize bounds a sealed invitation: every valid invitation
	// seals to at most this many bytes, and OpenInvitation refuses anything
	// larger before any work.
	MaxSealedSize = 8 << 10
	// MaxSessionIDBytes and MaxKindBytes bound the labels a seal binds.
	MaxSessionIDBytes = 255
	MaxKindBytes      = 255

	sealVersion       = 1
	invitationVersion = 1
	sealHKDFSalt      = "p2ptui seal v1"
	sealOverhead      = 1 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
)

var (
	// ErrSealBroken: a sealed signal did not open — tampered with, sealed
	// for another session, kind or recipient, not from this contact, or
	// not a seal at all. The UI drops it (an offer claiming to be from a
	// contact that does not open is a forgery).
	ErrSealBroken = errors.New("signal does not open: tampered with, or not from this contact")
	// ErrInvalidInvitation: SealInvitation was given an invitation that
	// breaks the format's limits.
	ErrInvalidInvitation = errors.New("invalid invitation")
)

// Invitation is what an offer or answer carries to the peer: the sender's
// display name, its address candidates (punch.EncodeCandidates output,
// opaque here) and the secret both punch machines key their probes with.
type Invitation struct {
	Name        string
	Candidates  []byte
	PunchSecret [32]byte
}

// validate checks the limits the encoding relies on.
func (inv *Invitation) validate() error {
	switch {
	case len(inv.Name) > MaxNameBytes:
		return fmt.Errorf("%w: name is %d bytes, at most %d", ErrInvalidInvitation, len(inv.Name), MaxNameBytes)
	case !utf8.ValidString(inv.Name):
		return fmt.Errorf("%w: name is not UTF-8", ErrInvalidInvitation)
	case len(inv.Candidates) > MaxCandidatesBytes:
		return fmt.Errorf("%w: candidates are %d bytes, at most %d", ErrInvalidInvitation, len(inv.Candidates), MaxCandidatesBytes)
	}
	return nil
}

// appendInvitation encodes: version(1) nameLen(1) name candLen(2) cand secret(32).
func appendInvitation(b []byte, inv *Invitation) []byte {
	b = append(b, invitationVersion, byte(len(inv.Name)))
	b = append(b, inv.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(inv.Candidates)))
	b = append(b, inv.Candidates...)
	return append(b, inv.PunchSecret[:]...)
}

// parseInvitation decodes strictly: every length is checked before it is
// used, and trailing bytes are an error.
func parseInvitation(b []byte) (Invitation, error) {
	var inv Invitation
	if len(b) < 2 || b[0] != invitationVersion {
		return inv, errors.New("unknown invitation version")
	}
	n := int(b[1])
	b = b[2:]
	if n > MaxNameBytes || len(b) < n+2 {
		return inv, errors.New("bad name length")
	}
	inv.Name = string(b[:n])
	b = b[n:]
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > MaxCandidatesBytes || len(b) != n+32 {
		return inv, errors.New("bad candidates length")
	}
	if n > 0 {
		inv.Candidates = append([]byte(nil), b[:n]...)
	}
	copy(inv.PunchSecret[:], b[n:])
	if err := inv.validate(); err != nil {
		return Invitation{}, err
	}
	return inv, nil
}

// sealKey derives the AEAD key for one direction, session and kind.
func sealKey(me Identity, peer [32]byte, sender, recipient [32]byte, sessionID, kind string) ([]byte, error) {
	if len(sessionID) == 0 || len(sessionID) > MaxSessionIDBytes || len(kind) == 0 || len(kind) > MaxKindBytes {
		return nil, errors.New("session id and kind must be 1-255 bytes")
	}
	if err := checkPublicKey(peer); err != nil {
		return nil, err
	}
	dh, err := curve25519.X25519(me.Private[:], peer[:])
	if err != nil {
		return nil, ErrIDBadKey
	}
	info := make([]byte, 0, 64+2+len(sessionID)+len(kind))
	info = append(info, sender[:]...)
	info = append(info, recipient[:]...)
	info = append(info, byte(len(sessionID)))
	info = append(info, sessionID...)
	info = append(info, byte(len(kind)))
	info = append(info, kind...)
	key := make([]byte, chacha20poly1305.KeySize)
	if _, err := io.ReadFull(hkdf.New(sha256.New, dh, []byte(sealHKDFSalt), info), key); err != nil {
		return nil, err
	}
	return key, nil
}

// SealInvitation encrypts and authenticates inv from me to peer for one
// session and kind ("offer", "answer", "cancel"...). random supplies the nonce
// (crypto/rand if nil). The result is at most MaxSealedSize bytes.
func SealInvitation(me Identity, peer [32]byte, sessionID string, kind string, inv Invitation, random io.Reader) ([]byte, error) {
	if err := inv.validate(); err != nil {
		return nil, err
	}
	key, err := sealKey(me, peer, me.Public, peer, sessionID, kind)
	if err != nil {
		return nil, fmt.Errorf("seal invitation: %w", err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, fmt.Errorf("seal invitation: %w", err)
	}
	if random == nil {
		random = rand.Reader
	}
	out := make([]byte, 1+aead.NonceSize(), sealOverhead+2+len(inv.Name)+2+len(inv.Candidates)+32)
	out[0] = sealVersion
	if _, err := io.ReadFull(random, out[1:]); err != nil {
		return nil, fmt.Errorf("seal invitation: nonce: %w", err)
	}
	plain := appendInvitation(nil, &inv)
	return aead.Seal(out, out[1:], plain, out[:1]), nil
}

// OpenInvitation authenticates and decrypts a seal that peer made for me
// with the same session ID and kind. Every failure wraps ErrSealBroken; it
// never panics, whatever the bytes.
func OpenInvitation(me Identity, peer [32]byte, sessionID string, kind string, sealed []byte) (Invitation, error) {
	if len(sealed) < sealOverhead || len(sealed) > MaxSealedSize || sealed[0] != sealVersion {
		return Invitation{}, fmt.Errorf("%w (not a sealed invitation)", ErrSealBroken)
	}
	key, err := sealKey(me, peer, peer, me.Public, sessionID, kind)
	if err != nil {
		return Invitation{}, fmt.Errorf("%w: %v", ErrSealBroken, err)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return Invitation{}, fmt.Errorf("%w: %v", ErrSealBroken, err)
	}
	nonce := sealed[1 : 1+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, sealed[1+aead.NonceSize():], sealed[:1])
	if err != nil {
		return Invitation{}, ErrSealBroken
	}
	inv, err := parseInvitation(plain)
	if err != nil {
		// Authentic but malformed: the contact's software is broken or
		// hostile; either way there is nothing to act on.
		return Invitation{}, fmt.Errorf("%w: %v", ErrSealBroken, err)
	}
	return inv, nil
}
