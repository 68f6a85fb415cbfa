//go:build unix

package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityKeyMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	if _, err := LoadOrCreateIdentity(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o; want 0600", fi.Mode().Perm())
	}
	fi, err = os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("profile directory mode %04o; want 0700", fi.Mode().Perm())
	}
}

func TestIdentityRefusesOpenPermissions(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreateIdentity(dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, IdentityFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateIdentity(dir)
		if !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %04o: err %v; want ErrKeyPermissions", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: message %q does not tell how to fix it", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateIdentity(dir); err != nil {
		t.Fatalf("a read-only owner key must load: %v", err)
	}
}
