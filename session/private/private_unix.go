//go:build unix

package private

import (
	"fmt"
	"os"
	"syscall"
)

// MkdirAll creates dir and any missing parents with mode 0700. An existing
// dir is left as it is: CheckDir judges it.
func MkdirAll(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return nil
}

// CheckDir checks that dir is a real directory (not a symbolic link), owned
// by this user, that no one else can write to: others could plant or
// remove files in it.
func CheckDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return &Error{Path: dir, Problem: "is a symbolic link; use the directory it points to, or another one", Kind: ErrNotPlain}
	}
	if !fi.IsDir() {
		return &Error{Path: dir, Problem: "is not a directory", Kind: ErrNotPlain}
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("check %s: the system did not say who owns it", dir)
	}
	if int(st.Uid) != os.Getuid() {
		return &Error{Path: dir, Problem: fmt.Sprintf("belongs to another user (uid %d)", st.Uid), Kind: ErrNotOwner}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &Error{Path: dir, Problem: fmt.Sprintf("is writable by other users (mode %04o)", fi.Mode().Perm()), Fix: "chmod 700 " + shellQuote(dir), Kind: ErrExposed}
	}
	return nil
}

// Restrict makes f, a file this process just created, readable and
// writable by its owner only (mode 0600), before anything secret is
// written to it.
func Restrict(f *os.File) error {
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("restrict %s: %w", f.Name(), err)
	}
	return nil
}

// CheckFile checks that the open file f is a regular file that neither
// group nor others may access in any way (mode 0600 or stricter). Only the
// mode is judged: such a file is safe whoever owns it, since no one but
// its owner (and root) can read it.
func CheckFile(f *os.File) error {
	fi, err := statRegular(f)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return &Error{Path: f.Name(), Problem: fmt.Sprintf("has mode %04o", fi.Mode().Perm()), Fix: "chmod 600 " + shellQuote(f.Name()), Kind: ErrExposed}
	}
	return nil
}
