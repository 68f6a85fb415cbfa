package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/ui"
)

// runMainEnv makes the test binary run p2ptui's main instead of the tests,
// so tests can start the real program as a child process without a build.
const runMainEnv = "P2PTUI_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, haveTerminal))
	}
	os.Exit(m.Run())
}

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, strings.NewReader(""), &out, &errOut, func(io.Reader) error { return nil }); code != exitOK {
		t.Fatalf("exit %d; stderr %q", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "p2ptui ") || len(lines[0]) <= len("p2ptui ") {
		t.Fatalf("output %q; want \"p2ptui VERSION\" and a build line", out.String())
	}
	if want := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH; lines[1] != want {
		t.Fatalf("build line %q; want %q", lines[1], want)
	}
}

func TestRelayQuit(t *testing.T) {
	const limit = 30 * time.Second
	start := func(sigs ...os.Signal) (sent chan tea.Msg, killed chan struct{}, done, ended chan struct{}) {
		ch := make(chan os.Signal, len(sigs))
		for _, s := range sigs {
			ch <- s
		}
		sent, killed = make(chan tea.Msg, 4), make(chan struct{}, 4)
		done, ended = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(ended)
			relayQuit(ch, done, func(m tea.Msg) { sent <- m }, func() { killed <- struct{}{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
		return sent, killed, done, ended
	}
	within := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		case <-time.After(limit):
			t.Fatalf("%s did not happen within %v", what, limit)
		}
	}
	quitIntent := func(sent <-chan tea.Msg) {
		t.Helper()
		select {
		case m := <-sent:
			if m != (ui.QuitIntent{}) {
				t.Fatalf("sent %#v; want ui.QuitIntent{}", m)
			}
		case <-time.After(limit):
			t.Fatal("no quit intent sent")
		}
	}

	// One signal: a clean quit is asked for, nothing is killed, and the
	// relay runs until its owner stops it.
	sent, killed, done, ended := start(os.Interrupt)
	quitIntent(sent)
	close(done)
	within("the relay stopping", ended)
	if len(sent) != 0 || len(killed) != 0 {
		t.Fatalf("after one signal: %d more messages, %d kills; want none", len(sent), len(killed))
	}

	// A second signal while quitting ends the program without waiting,
	// and the relay ends by itself.
	sent, killed, _, ended = start(syscall.SIGTERM, os.Interrupt)
	quitIntent(sent)
	within("the kill", killed)
	within("the relay ending", ended)
	if len(sent) != 0 {
		t.Fatalf("the second signal sent %d more messages; want a kill only", len(sent))
	}
}

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
