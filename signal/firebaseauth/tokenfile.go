package firebaseauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// TokenFile is the name of the file in the profile directory that keeps the
// sign-ins. It holds refresh tokens, which are as good as the account: mode
// 0600, and refused when other users may read it.
const TokenFile = "firebase-auth.json"

// tokenFileVersion is the format written; others are refused, not
// overwritten (a newer p2ptui's sign-ins must survive an older one).
const tokenFileVersion = 1

// maxTokenFile bounds what is read; a file holds a few KB per project.
const maxTokenFile = 1 << 20

// tokens is the token file: one account per project (and per emulator), so
// joining another group and coming back keeps the first sign-in and with it
// the claim on the ID there.
type tokens struct {
	Version  int                 `json:"v"`
	Accounts map[string]*account `json:"accounts"`
}

// account is one project's sign-in.
type account struct {
	UID          string    `json:"uid"`
	RefreshToken string    `json:"refreshToken"`
	IDToken      string    `json:"idToken,omitempty"`
	Expires      time.Time `json:"expires,omitzero"`
	// Claimed lists the p2ptui IDs whose claim this account made (or found
	// to be its own), so later starts skip the claim.
	Claimed []string `json:"claimed,omitempty"`
}

func (a *account) claimed(id string) bool {
	for _, c := range a.Claimed {
		if c == id {
			return true
		}
	}
	return false
}

// loadTokens reads the token file; a missing file is an empty one.
func loadTokens(path string) (*tokens, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &tokens{Version: tokenFileVersion, Accounts: map[string]*account{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open sign-in tokens: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("sign-in tokens: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, failure(ErrTokenFile, fmt.Sprintf("%s is not a regular file", path))
	}
	// Windows reports synthetic mode bits that say nothing about ACLs.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, failure(ErrTokenFile, fmt.Sprintf("refusing to use %s: other users may read it (mode %04o); fix it with: chmod 600 %s", path, fi.Mode().Perm(), path))
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return nil, fmt.Errorf("read sign-in tokens: %w", err)
	}
	var t tokens
	if len(b) > maxTokenFile || json.Unmarshal(b, &t) != nil {
		return nil, failure(ErrTokenFile, fmt.Sprintf("%s is damaged; move it away to sign in afresh (an ID claimed with the old sign-in stays claimed by it)", path))
	}
	if t.Version != tokenFileVersion {
		return nil, failure(ErrTokenFile, fmt.Sprintf("%s has format version %d, this p2ptui knows %d", path, t.Version, tokenFileVersion))
	}
	if t.Accounts == nil {
		t.Accounts = map[string]*account{}
	}
	for k, a := range t.Accounts {
		if a == nil || a.UID == "" || a.RefreshToken == "" {
			delete(t.Accounts, k)
		}
	}
	return &t, nil
}

// save writes the file whole: to a temporary file, synced, renamed over
// the old one, so a crash leaves either version and never half of one.
func (t *tokens) save(path string) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".firebase-auth-*.tmp")
	if err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save sign-in tokens: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
