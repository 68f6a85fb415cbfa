package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
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
		os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, strings.NewReader(""), &out, &errOut); code != exitOK {
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
