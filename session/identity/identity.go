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
	"runtime"

	"golang.org/x/crypto/curve25519"
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

// LoadOrCreateIdentity reads dir/identity.key, or creates it (mode 0600,
// dir 0700) on first run. A key file that group or others may access is
// refused with an error telling the user the chmod that fixes it: a key
// other users could read lets them impersonate this user.
func LoadOrCreateIdentity(dir string) (Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	id, err := loadIdentity(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return id, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
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
	fi, err := f.Stat()
	if err != nil {
		return Identity{}, fmt.Errorf("identity key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Identity{}, fmt.Errorf("identity key %s is not a regular file", path)
	}
	// Windows reports synthetic mode bits (0666/0444) that say nothing
	// about ACLs; the check only means something on Unix.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return Identity{}, fmt.Errorf("%w: %s has mode %04o; fix it with: chmod 600 %s",
			ErrKeyPermissions, path, fi.Mode().Perm(), path)
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
	if err := tmp.Chmod(0o600); err != nil {
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
