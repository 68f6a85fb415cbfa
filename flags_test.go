package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptui/p2ptui/signal"
)

// The signalling flags: what combines, what is refused before anything
// is opened (exit 2, in words), and --invite's two sources.
func TestSignallingFlags(t *testing.T) {
	t.Setenv("GOOGLE_CLOUD_PROJECT", "")
	code, err := signal.NewJoinCode("my-group-chat", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
	if err != nil {
		t.Fatal(err)
	}
	s := code.String()
	refused := []struct {
		args  []string
		words string
	}{
		{[]string{"--join", s[:len(s)-1] + "0"}, "typo"},
		{[]string{"--join", "hello"}, "not a p2ptui join code"},
		{[]string{"--join", s, "--project", "other-project"}, "two ways"},
		{[]string{"--join", s, "--invite"}, "one at a time"},
		{[]string{"--api-key", "AIzaXXXXXXXXXX"}, "goes with --invite"},
		{[]string{"--invite", "--project", "my-group-chat"}, "give both"},
		{[]string{"--invite", "--api-key", "AIzaXXXXXXXXXX"}, "give both"},
	}
	for _, c := range refused {
		var stdout, stderr bytes.Buffer
		if got := run(c.args, strings.NewReader(""), &stdout, &stderr, noTerminalCheck); got != exitUsage || !strings.Contains(stderr.String(), c.words) {
			t.Errorf("%v: exit %d, %q; want %d saying %q", c.args, got, stderr.String(), exitUsage, c.words)
		}
	}

	// --downloads is made absolute; without it the system's folder is used.
	if o, err := parseFlags([]string{"--downloads", "in"}, &bytes.Buffer{}); err != nil || !filepath.IsAbs(o.downloads) || filepath.Base(o.downloads) != "in" {
		t.Errorf("--downloads in: %q, %v", o.downloads, err)
	}
	if o, err := parseFlags(nil, &bytes.Buffer{}); err != nil || o.downloads != "" {
		t.Errorf("no --downloads: %q, %v", o.downloads, err)
	}

	// $GOOGLE_CLOUD_PROJECT set for other tools gives way to --join.
	t.Setenv("GOOGLE_CLOUD_PROJECT", "some-project")
	o, err := parseFlags([]string{"--join", " " + s + "\n"}, &bytes.Buffer{})
	if err != nil || o.join != s || o.project != "" {
		t.Errorf("--join with $GOOGLE_CLOUD_PROJECT: %+v, %v", o, err)
	}

	// --invite: made from --project and --api-key, or the profile's.
	data := t.TempDir()
	var stdout, stderr bytes.Buffer
	if got := run([]string{"--invite", "--project", "my-group-chat", "--api-key", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"}, nil, &stdout, &stderr, noTerminalCheck); got != exitOK || strings.TrimSpace(stdout.String()) != s {
		t.Errorf("--invite --project --api-key: %d %q %q", got, stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	if got := run([]string{"--data-dir", data, "--profile", "p", "--invite"}, nil, &stdout, &stderr, noTerminalCheck); got != exitUsage || !strings.Contains(stderr.String(), "joined no group") {
		t.Errorf("--invite on an unjoined profile: %d %q", got, stderr.String())
	}
	dir := filepath.Join(data, "profiles", "p")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := signal.SaveJoin(dir, code); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if got := run([]string{"--data-dir", data, "--profile", "p", "--invite"}, nil, &stdout, &stderr, noTerminalCheck); got != exitOK || strings.TrimSpace(stdout.String()) != s {
		t.Errorf("--invite on a joined profile: %d %q", got, stdout.String())
	}
}

// noTerminalCheck stands in for the terminal check: the tests run the
// flags, not a screen.
func noTerminalCheck(io.Reader) error { return nil }
