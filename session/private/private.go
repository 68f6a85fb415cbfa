// Package private creates and checks the files and directories that only
// the user running p2ptui may use: profile directories, the identity key,
// the local signalling mailbox. Each OS has its own way to say "only me":
// on Unix the owner and the mode bits, on Windows the owner and the access
// control list. A check never passes silently because the OS is not
// understood; it fails with the reason and, where one exists, the command
// that fixes it.
package private

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Sentinels for what callers branch on; every check returns an *Error that
// wraps one of them.
var (
	// ErrExposed: other users may read or change it.
	ErrExposed = errors.New("other users can access it")
	// ErrNotOwner: it belongs to another user.
	ErrNotOwner = errors.New("it belongs to another user")
	// ErrNotPlain: a symbolic link, a junction or the wrong kind of file,
	// which could lead somewhere another user controls.
	ErrNotPlain = errors.New("it is not a plain file or directory")
)

// Error says which path is not private, why, and how to fix it.
type Error struct {
	Path    string
	Problem string // plain words: "has mode 0644", "is a symbolic link"
	Fix     string // a command that fixes it; empty when there is none
	Kind    error  // ErrExposed, ErrNotOwner or ErrNotPlain
}

func (e *Error) Error() string {
	s := e.Path + " " + e.Problem
	if e.Fix != "" {
		s += "; fix it with: " + e.Fix
	}
	return s
}

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// statRegular stats the open file f and refuses anything but a regular
// file.
func statRegular(f *os.File) (os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", f.Name(), err)
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{Path: f.Name(), Problem: "is not a regular file", Kind: ErrNotPlain}
	}
	return fi, nil
}

// shellQuote quotes p for a POSIX shell when it needs quoting (macOS paths
// have spaces: "Application Support").
func shellQuote(p string) string {
	safe := func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+:,@%=", r)
	}
	if p != "" && strings.IndexFunc(p, func(r rune) bool { return !safe(r) }) < 0 {
		return p
	}
	return "'" + strings.ReplaceAll(p, "'", `'\''`) + "'"
}
