package identity

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/curve25519"

	"github.com/p2ptui/p2ptui/session/private"
)

// Identity is a user's long-term X25519 key pair: the Noise static key of
// every session, the key signals are sealed with, and (through ID) the
// user's address book entry at their contacts.
type Identity struct {
	Private, Public [32]byte
}

// IdentityFile is the name of the key file inside a profile directory.
const IdentityFile = "identity.key"

// identityHeader starts the key file, so a future format can be told apart.
const identityHeader = "p2ptui identity v1\n"

// ErrKeyPermissions: the key file can be read or written by other users.
var ErrKeyPermissions = errors.New("identity key file is accessible to other users")

// ID returns the user's ID, the text they give to contacts.
func (id Identity) ID() string { return IDFromPublic(id.Public) }

// NewIdentity generates a key pair from r (crypto/rand if nil).
func NewIdentity(r io.Reader) (Identity, error) {
	if r == nil {
		r = rand.Reader
	}
	var id Identity
	for {
		if _, err := io.ReadFull(r, id.Private[:]); err != nil {
			return Identity{}, fmt.Errorf("generate identity key: %w", err)
		}
		pub, err := curve25519.X25519(id.Private[:], curve25519.Basepoint)
		if err != nil {
			continue // a zero scalar after clamping; never happens with a real source
		}
		copy(id.Public[:], pub)
		return id, nil
	}
}

// identityFromPrivate recomputes the public half.
func identityFromPrivate(priv [32]byte) (Identity, error) {
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return Identity{}, err
	}
	id := Identity{Private: priv}
	copy(id.Public[:], pub)
	return id, nil
}

// LoadOrCreateIdentity reads dir/identity.key, or creates it on first run,
// readable by this user only (Unix: mode 0600 in a 0700 directory;
// Windows: an access control list granting only this user). A key file
// other users may access is refused with an error telling the user the
// command that fixes it (chmod, icacls): a key other users could read lets
// them impersonate this user.
func LoadOrCreateIdentity(dir string) (Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	id, err := loadIdentity(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := private.MkdirAll(dir); err != nil {
		return Identity{}, fmt.Errorf("create profile directory: %w", err)
	}
	id, err = NewIdentity(nil)
	if err != nil {
		return Identity{}, err
	}
	if err := writeIdentity(dir, path, id); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our read and our link.
			return loadIdentity(path)
		}
		return Identity{}, err
	}
	return id, nil
}

func loadIdentity(path string) (Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return Identity{}, fmt.Errorf("open identity key: %w", err)
	}
	defer f.Close()
	// Unix: mode 0600 or stricter. Windows: an ACL granting no one but
	// this user (and the administrators) any access; its mode bits say
	// nothing about who may read it.
	if err := private.CheckFile(f); err != nil {
		if errors.Is(err, private.ErrExposed) {
			return Identity{}, fmt.Errorf("%w: %w", ErrKeyPermissions, err)
		}
		return Identity{}, fmt.Errorf("identity key: %w", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return Identity{}, fmt.Errorf("read identity key: %w", err)
	}
	rest, ok := bytes.CutPrefix(b, []byte(identityHeader))
	rest = bytes.TrimSpace(rest)
	var priv [32]byte
	if !ok || len(rest) != 64 {
		return Identity{}, fmt.Errorf("identity key %s is damaged (unknown format)", path)
	}
	if _, err := hex.Decode(priv[:], rest); err != nil {
		return Identity{}, fmt.Errorf("identity key %s is damaged: %v", path, err)
	}
	id, err := identityFromPrivate(priv)
	if err != nil {
		return Identity{}, fmt.Errorf("identity key %s is damaged: %v", path, err)
	}
	return id, nil
}

// writeIdentity writes the key to a temporary file, syncs it and links it
// into place: the key file appears complete or not at all, and an existing
// key is never overwritten (link fails with ErrExist).
func writeIdentity(dir, path string, id Identity) error {
	tmp, err := os.CreateTemp(dir, ".identity-*.tmp")
	if err != nil {
		return fmt.Errorf("create identity key: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := private.Restrict(tmp); err != nil {
		return fmt.Errorf("create identity key: %w", err)
	}
	body := identityHeader + hex.EncodeToString(id.Private[:]) + "\n"
	if _, err := tmp.WriteString(body); err != nil {
		return fmt.Errorf("write identity key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write identity key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write identity key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("install identity key: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable; failure only weakens crash
// safety of the entry, so it is not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
