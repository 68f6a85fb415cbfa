//go:build unix

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session/store"
)

// TestQuitSignalEndsCleanly runs p2ptui headless as a child process, sends
// it each quit signal once it is ready, and checks that it went through the
// clean quit: exit status 0, the request and the stop logged, the store
// closed (its PID file gone). On Windows the console's close and Ctrl+C
// events arrive as the same SIGTERM and os.Interrupt.
func TestQuitSignalEndsCleanly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			logPath := filepath.Join(dir, "p2ptui.log")
			cmd := exec.Command(os.Args[0], "--headless", "--profile", "sig", "--name", "sig",
				"--data-dir", filepath.Join(dir, "data"), "--signal-dir", filepath.Join(dir, "mailbox"),
				"--log", logPath, "--stun", "none", "--listen", "127.0.0.1:0")
			cmd.Env = append(os.Environ(), runMainEnv+"=1")
			// stdin stays open: its end would quit the program by itself.
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			ready := make(chan struct{})
			var myID string
			go func() {
				sc := bufio.NewScanner(stdout)
				signalled := false
				for sc.Scan() {
					if !signalled && strings.Contains(sc.Text(), `"ev":"ready"`) {
						var ev struct{ ID string }
						_ = json.Unmarshal(sc.Bytes(), &ev)
						myID = ev.ID
						signalled = true
						close(ready)
					}
				}
				exited <- cmd.Wait()
			}()
			select {
			case <-ready:
			case err := <-exited:
				t.Fatalf("p2ptui ended before it was ready: %v\nstderr: %s", err, stderr.String())
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("p2ptui not ready within 60 s\nstderr: %s", stderr.String())
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("exit after %v: %v\nstderr: %s", sig, err, stderr.String())
				}
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				<-exited
				t.Fatalf("p2ptui still running 60 s after %v", sig)
			}
			b, err := os.ReadFile(logPath)
			if err != nil {
				t.Fatal(err)
			}
			log := string(b)
			first, _, _ := strings.Cut(log, "\n")
			if !strings.Contains(first, "msg=p2ptui version=") {
				t.Errorf("the log's first line %q does not give the version", first)
			}
			for _, want := range []string{`msg="quit requested" signal=` + sig.String(), "msg=stop"} {
				if !strings.Contains(log, want) {
					t.Errorf("log lacks %s:\n%s", want, log)
				}
			}
			if strings.Contains(log, "second quit") {
				t.Errorf("one signal was taken for two:\n%s", log)
			}
			// The goodbye was written before the program ended: its presence
			// in the mailbox says offline.
			var pres struct {
				Offline bool `json:"offline"`
			}
			if b, err := os.ReadFile(filepath.Join(dir, "mailbox", "peers", myID+".json")); err != nil || json.Unmarshal(b, &pres) != nil || !pres.Offline {
				t.Errorf("presence after the quit: %s, %v; want offline", b, err)
			}
			pid := filepath.Join(dir, "data", "profiles", "sig", store.PIDFile)
			if _, err := os.Stat(pid); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the store was not closed: %s is still there (%v)", pid, err)
			}
		})
	}
}
