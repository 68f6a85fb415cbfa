package identity

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
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
	// MaxInstanceBytes bounds Invitation.Instance.
	MaxInstanceBytes = 32
	// MaxSessionIDBytes and MaxKindBytes bound the labels a seal binds.
	MaxSessionIDBytes = 255
	MaxKindBytes      = 255

	sealVersion = 1
	// invitationVersion 2 added the creation time, the instance and the
	// flags; version 1 (no time) is refused, since without a sealed time an
	// old offer cannot be told from a new one.
	invitationVersion = 2
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
	// Created is when the sender sealed it, by the sender's clock (kept to
	// the millisecond). Sealed, so a replayed signal carries its true age:
	// the reader refuses old ones and can tell which of two is newer.
	Created time.Time
	// Instance names the sender's running process (its presence carries
	// the same), so a signal left behind by a process that has gone can be
	// told from one of the process that is online now. At most
	// MaxInstanceBytes of [a-z0-9]; may be empty.
	Instance string
	// Auto marks an offer the sender's program made by itself (reconnecting
	// a contact) rather than one its user asked for; a recipient that does
	// not reconnect automatically with the sender declines it unseen.
	Auto bool
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
	case len(inv.Instance) > MaxInstanceBytes:
		return fmt.Errorf("%w: instance is %d bytes, at most %d", ErrInvalidInvitation, len(inv.Instance), MaxInstanceBytes)
	case inv.Created.IsZero() || inv.Created.UnixMilli() <= 0:
		return fmt.Errorf("%w: no creation time", ErrInvalidInvitation)
	}
	for i := 0; i < len(inv.Instance); i++ {
		if c := inv.Instance[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("%w: instance has a character outside a-z and 0-9", ErrInvalidInvitation)
		}
	}
	return nil
}

// invitationFlagAuto is Invitation.Auto on the wire; other bits are refused.
const invitationFlagAuto = 1

// appendInvitation encodes: version(1) created(8, Unix ms) flags(1)
// instanceLen(1) instance nameLen(1) name candLen(2) cand secret(32).
func appendInvitation(b []byte, inv *Invitation) []byte {
	b = append(b, invitationVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(inv.Created.UnixMilli()))
	var flags byte
	if inv.Auto {
		flags |= invitationFlagAuto
	}
	b = append(b, flags, byte(len(inv.Instance)))
	b = append(b, inv.Instance...)
	b = append(b, byte(len(inv.Name)))
	b = append(b, inv.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(inv.Candidates)))
	b = append(b, inv.Candidates...)
	return append(b, inv.PunchSecret[:]...)
}

// parseInvitation decodes strictly: every length is checked before it is
// used, and trailing bytes are an error.
func parseInvitation(b []byte) (Invitation, error) {
	var inv Invitation
	if len(b) < 1+8+1+1 || b[0] != invitationVersion {
		return inv, errors.New("unknown invitation version")
	}
	ms := binary.BigEndian.Uint64(b[1:])
	if ms == 0 || ms > math.MaxInt64 {
		return inv, errors.New("bad creation time")
	}
	inv.Created = time.UnixMilli(int64(ms))
	flags := b[9]
	if flags&^invitationFlagAuto != 0 {
		return inv, errors.New("unknown flags")
	}
	inv.Auto = flags&invitationFlagAuto != 0
	n := int(b[10])
	b = b[11:]
	if n > MaxInstanceBytes || len(b) < n+1 {
		return inv, errors.New("bad instance length")
	}
	inv.Instance = string(b[:n])
	b = b[n:]
	n = int(b[0])
	b = b[1:]
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

// sharedSecret is the static-static X25519 DH of me and peer, after the
// peer's key is checked: the expensive part of every seal.
func sharedSecret(me Identity, peer [32]byte) ([]byte, error) {
	if err := checkPublicKey(peer); err != nil {
		return nil, err
	}
	dh, err := curve25519.X25519(me.Private[:], peer[:])
	if err != nil {
		return nil, ErrIDBadKey
	}
	return dh, nil
}

// sealKey derives the AEAD key for one direction, session and kind from
// the pair's shared secret.
func sealKey(dh []byte, sender, recipient [32]byte, sessionID, kind string) ([]byte, error) {
	if len(sessionID) == 0 || len(sessionID) > MaxSessionIDBytes || len(kind) == 0 || len(kind) > MaxKindBytes {
		return nil, errors.New("session id and kind must be 1-255 bytes")
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

// Sealer seals and opens invitations for one identity, remembering the
// shared secret of each peer it has dealt with (a check of the peer's key
// and an X25519 each time otherwise). It is not safe for concurrent use;
// the connection engine owns one.
type Sealer struct {
	me     Identity
	shared map[[32]byte][]byte
}

// maxSealerPeers bounds the remembered shared secrets: offers from many
// strangers cannot grow the cache without bound.
const maxSealerPeers = 1024

// NewSealer returns a Sealer for me.
func NewSealer(me Identity) *Sealer { return &Sealer{me: me, shared: map[[32]byte][]byte{}} }

func (s *Sealer) secret(peer [32]byte) ([]byte, error) {
	if dh, ok := s.shared[peer]; ok {
		return dh, nil
	}
	dh, err := sharedSecret(s.me, peer)
	if err != nil {
		return nil, err
	}
	if len(s.shared) >= maxSealerPeers {
		clear(s.shared)
	}
	s.shared[peer] = dh
	return dh, nil
}

// Seal is SealInvitation with the shared secret remembered.
func (s *Sealer) Seal(peer [32]byte, sessionID, kind string, inv Invitation, random io.Reader) ([]byte, error) {
	dh, err := s.secret(peer)
	if err != nil {
		return nil, fmt.Errorf("seal invitation: %w", err)
	}
	return seal(dh, s.me.Public, peer, sessionID, kind, inv, random)
}

// Open is OpenInvitation with the shared secret remembered.
func (s *Sealer) Open(peer [32]byte, sessionID, kind string, sealed []byte) (Invitation, error) {
	if len(sealed) < sealOverhead || len(sealed) > MaxSealedSize || sealed[0] != sealVersion {
		return Invitation{}, fmt.Errorf("%w (not a sealed invitation)", ErrSealBroken)
	}
	dh, err := s.secret(peer)
	if err != nil {
		return Invitation{}, fmt.Errorf("%w: %v", ErrSealBroken, err)
	}
	return open(dh, peer, s.me.Public, sessionID, kind, sealed)
}

// SealInvitation encrypts and authenticates inv from me to peer for one
// session and kind ("offer", "answer", "cancel"...). random supplies the nonce
// (crypto/rand if nil). The result is at most MaxSealedSize bytes.
func SealInvitation(me Identity, peer [32]byte, sessionID string, kind string, inv Invitation, random io.Reader) ([]byte, error) {
	if err := inv.validate(); err != nil {
		return nil, err
	}
	dh, err := sharedSecret(me, peer)
	if err != nil {
		return nil, fmt.Errorf("seal invitation: %w", err)
	}
	return seal(dh, me.Public, peer, sessionID, kind, inv, random)
}

func seal(dh []byte, sender, recipient [32]byte, sessionID, kind string, inv Invitation, random io.Reader) ([]byte, error) {
	if err := inv.validate(); err != nil {
		return nil, err
	}
	key, err := sealKey(dh, sender, recipient, sessionID, kind)
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
	out := make([]byte, 1+aead.NonceSize(), sealOverhead+11+len(inv.Instance)+1+len(inv.Name)+2+len(inv.Candidates)+32)
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
	dh, err := sharedSecret(me, peer)
	if err != nil {
		return Invitation{}, fmt.Errorf("%w: %v", ErrSealBroken, err)
	}
	return open(dh, peer, me.Public, sessionID, kind, sealed)
}

func open(dh []byte, sender, recipient [32]byte, sessionID, kind string, sealed []byte) (Invitation, error) {
	key, err := sealKey(dh, sender, recipient, sessionID, kind)
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
