package main

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// runForTest runs the command with args and no terminal check failure
// unless noTTY; it returns the exit status and what was written to stderr.
func runForTest(t *testing.T, noTTY bool, args ...string) (int, string) {
	t.Helper()
	var stderr bytes.Buffer
	terminal := func(io.Reader) error { return nil }
	if noTTY {
		terminal = func(io.Reader) error { return errNoTerminal }
	}
	rc := run(args, strings.NewReader(""), io.Discard, &stderr, terminal)
	return rc, stderr.String()
}

func TestFlagErrorsBlameTheRightFlag(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--data-dir", filepath.Join(dir, "data"), "--signal-dir", filepath.Join(dir, "sig"), "--log", filepath.Join(dir, "log"), "--stun", "none"}
	for _, c := range []struct {
		name  string
		args  []string
		noTTY bool
		env   map[string]string
		want  string
		not   []string
	}{
		{name: "empty profile", args: []string{"--profile", ""}, env: map[string]string{"USER": ""},
			want: `--profile "": a profile needs a name`, not: []string{"--name"}},
		{name: "bad profile", args: []string{"--profile", "../x"}, want: "--profile: invalid name: profile \"../x\""},
		{name: "stun port not a number", args: []string{"--stun", "foo:bar"}, want: `--stun "foo:bar": the port of "foo:bar" must be a number from 1 to 65535`},
		{name: "stun port out of range", args: []string{"--stun", "stun.example.org:3478,x:70000"}, want: `the port of "x:70000" must be a number from 1 to 65535`},
		{name: "stun port zero", args: []string{"--stun", "x:0"}, want: `the port of "x:0" must be a number`},
		{name: "stun without host", args: []string{"--stun", ":3478"}, want: `":3478" is not host:port`},
		{name: "stun without port", args: []string{"--stun", "stun.example.org"}, want: `"stun.example.org" is not host:port`},
		{name: "listen not an address", args: []string{"--listen", "nowhere"}, want: `--listen "nowhere": want IP:PORT`},
		{name: "listen on an address that is not ours", args: []string{"--headless", "--listen", "8.8.8.8:0"},
			want: "--listen 8.8.8.8:0: that IP is not an address of this machine"},
		{name: "no terminal suggests --headless", noTTY: true, want: "add --headless to read commands"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := append(append([]string{}, base...), c.args...)
			rc, out := runForTest(t, c.noTTY, args...)
			if rc != exitUsage || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", rc, out, exitUsage, c.want)
			}
			for _, bad := range c.not {
				if strings.Contains(out, bad) {
					t.Errorf("stderr %q blames %s", out, bad)
				}
			}
			if n := strings.Count(out, "\n"); n > 2 {
				t.Errorf("%d lines for one problem: %q", n, out)
			}
			if strings.Contains(c.want, "8.8.8.8") && strings.Count(out, "8.8.8.8") != 1 {
				t.Errorf("the address is repeated: %q", out)
			}
		})
	}
}

func TestGoodFlagsPass(t *testing.T) {
	for _, args := range [][]string{
		{"--stun", "none"},
		{"--stun", "stun.example.org:3478, 198.51.100.1:19302"},
		{"--stun", "[2001:db8::1]:3478"},
		{"--profile", "work-2", "--name", "Bob"},
	} {
		if _, err := parseFlags(args, io.Discard); err != nil {
			t.Errorf("parseFlags(%q): %v", args, err)
		}
	}
}
