//go:build unix

package private

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMkdirAllIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %04o; want 0700", fi.Mode().Perm())
	}
	if err := CheckDir(dir); err != nil {
		t.Fatalf("a directory MkdirAll made fails the check: %v", err)
	}
}

func TestCheckDir(t *testing.T) {
	base := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := CheckDir(mk("readable", 0o755)); err != nil {
		t.Fatalf("others may read, not write: %v", err)
	}
	for _, mode := range []os.FileMode{0o770, 0o702, 0o777} {
		d := mk(strings.ReplaceAll(mode.String(), "-", "_"), mode)
		err := CheckDir(d)
		if !errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), "chmod 700 "+d) {
			t.Fatalf("mode %04o: err %v; want ErrExposed telling the chmod", mode, err)
		}
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(mk("target", 0o700), link); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(link); !errors.Is(err, ErrNotPlain) || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: err %v; want ErrNotPlain", err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(file); !errors.Is(err, ErrNotPlain) {
		t.Fatalf("file: err %v; want ErrNotPlain", err)
	}
	if err := CheckDir(filepath.Join(base, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing: err %v; want ErrNotExist", err)
	}
}

func TestCheckDirOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test needs root to give a directory away")
		}
		t.Skip("needs root to give a directory to another user")
	}
	d := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if err := CheckDir(d); !errors.Is(err, ErrNotOwner) || !strings.Contains(err.Error(), "uid 4242") {
		t.Fatalf("err %v; want ErrNotOwner naming the uid", err)
	}
}

func TestRestrictAndCheckFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Chmod(0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(f); !errors.Is(err, ErrExposed) || !strings.Contains(err.Error(), "has mode 0644; fix it with: chmod 600 "+path) {
		t.Fatalf("err %v; want ErrExposed with the chmod", err)
	}
	if err := Restrict(f); err != nil {
		t.Fatal(err)
	}
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o after Restrict; want 0600", fi.Mode().Perm())
	}
	if err := CheckFile(f); err != nil {
		t.Fatalf("after Restrict: %v", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := CheckFile(d); !errors.Is(err, ErrNotPlain) {
		t.Fatalf("directory: err %v; want ErrNotPlain", err)
	}
}
