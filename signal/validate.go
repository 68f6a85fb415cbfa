package signal

import (
	"fmt"
	"sort"
	"time"
)

// ValidID checks that id can name a peer: IDs become document and file
// names, so anything outside 8..64 characters of [a-z0-9] is refused before it
// can reach a path.
func ValidID(id string) error {
	if len(id) < 8 || len(id) > 64 {
		return fmt.Errorf("%w: ID must be 8 to 64 characters, got %d", ErrInvalid, len(id))
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("%w: ID has a character that is not a-z or 0-9 at position %d", ErrInvalid, i+1)
		}
	}
	return nil
}

// validSessionID keeps session IDs short and printable; they are bound into
// cryptographic transcripts and logged.
func validSessionID(id string) error {
	if len(id) < 1 || len(id) > 64 {
		return fmt.Errorf("%w: session ID must be 1 to 64 characters", ErrInvalid)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
		if !ok {
			return fmt.Errorf("%w: session ID has a character outside [A-Za-z0-9_-]", ErrInvalid)
		}
	}
	return nil
}

func validKind(k Kind) error {
	switch k {
	case KindOffer, KindAnswer, KindCancel:
		return nil
	}
	return fmt.Errorf("%w: unknown kind %q", ErrInvalid, truncate(string(k), 16))
}

// prepare validates an outgoing signal and fills in its timestamps.
func prepare(s Signal, now time.Time) (Signal, error) {
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.ExpiresAt.IsZero() {
		s.ExpiresAt = s.CreatedAt.Add(DefaultTTL)
	}
	if err := check(s); err != nil {
		return Signal{}, err
	}
	if !s.ExpiresAt.After(now) {
		return Signal{}, fmt.Errorf("%w: already expired", ErrInvalid)
	}
	return s, nil
}

// check is the shape every signal must have, outgoing or incoming.
func check(s Signal) error {
	if err := ValidID(s.From); err != nil {
		return fmt.Errorf("sender: %w", err)
	}
	if err := ValidID(s.To); err != nil {
		return fmt.Errorf("recipient: %w", err)
	}
	if err := validKind(s.Kind); err != nil {
		return err
	}
	if err := validSessionID(s.SessionID); err != nil {
		return err
	}
	if len(s.Payload) > MaxPayload {
		return fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrInvalid, len(s.Payload), MaxPayload)
	}
	if s.CreatedAt.IsZero() || s.ExpiresAt.IsZero() {
		return fmt.Errorf("%w: missing created-at or expires-at", ErrInvalid)
	}
	if !s.ExpiresAt.After(s.CreatedAt) {
		return fmt.Errorf("%w: expires before it was created", ErrInvalid)
	}
	return nil
}

// verdict is what a listener does with one inbox document.
type verdict int

const (
	deliver verdict = iota
	dropExpired
	reject
)

// judge decides about a decoded inbox document addressed to me. version is
// the protocol version the document claims.
func judge(s Signal, version int, me string, now time.Time) (verdict, string) {
	if version != ProtocolVersion {
		return reject, fmt.Sprintf("protocol version %d, want %d", version, ProtocolVersion)
	}
	if err := check(s); err != nil {
		return reject, err.Error()
	}
	if s.To != me {
		return reject, "addressed to another ID (forged recipient)"
	}
	if !s.ExpiresAt.After(now) {
		return dropExpired, "expired"
	}
	return deliver, ""
}

func sortByCreated(ss []Signal) {
	sort.SliceStable(ss, func(i, j int) bool {
		if !ss[i].CreatedAt.Equal(ss[j].CreatedAt) {
			return ss[i].CreatedAt.Before(ss[j].CreatedAt)
		}
		return ss[i].ID < ss[j].ID
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// MaxInstanceLen bounds Presence.Instance.
const MaxInstanceLen = 32

// validInstance accepts an empty instance or up to MaxInstanceLen
// characters of [a-z0-9].
func validInstance(s string) error {
	if len(s) > MaxInstanceLen {
		return fmt.Errorf("%w: presence instance must be at most %d characters", ErrInvalid, MaxInstanceLen)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return fmt.Errorf("%w: presence instance has a character that is not a-z or 0-9", ErrInvalid)
		}
	}
	return nil
}

// validPresence checks what a backend will publish.
func validPresence(p Presence) error {
	if err := ValidID(p.ID); err != nil {
		return err
	}
	return validInstance(p.Instance)
}
