package identity

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIdentityCreatedOnceWithMode0600(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	a, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o; want 0600", fi.Mode().Perm())
	}
	b, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("second run produced a different identity")
	}
	var zero [32]byte
	if a.Public == zero || a.Private == zero {
		t.Fatal("empty key")
	}
	if pub, err := ParseID(a.ID()); err != nil || pub != a.Public {
		t.Fatalf("own ID does not parse back: %v", err)
	}
	other, err := LoadOrCreateIdentity(t.TempDir())
	if err != nil || other == a {
		t.Fatalf("a second profile must get its own key (err %v)", err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".identity-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
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

func TestIdentityDamagedFileIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, IdentityFile)
	for _, body := range []string{"", "garbage\n", identityHeader + "zz\n", identityHeader + strings.Repeat("g", 64) + "\n"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateIdentity(dir); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("body %q: err %v; want a damaged-key error", body, err)
		}
		got, _ := os.ReadFile(path)
		if string(got) != body {
			t.Fatal("a damaged key file was overwritten; the user may want to recover it")
		}
	}
}
