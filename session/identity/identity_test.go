package identity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptui/p2ptui/session/private"
)

func TestIdentityCreatedOnceAndPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profile")
	a, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	err = private.CheckFile(f)
	f.Close()
	if err != nil {
		t.Fatalf("a new key file is not private: %v", err)
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
