package signal

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// logBuffer collects a backend's log for a test to read while the backend
// still writes to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openLocalWatching opens a local signaller for bob00001 whose inbox watcher
// is made by watch, and one for alice001 to send from.
func openLocalWatching(t *testing.T, watch func(string) (*fsnotify.Watcher, error)) (alice, bob *LocalSignaller, log *logBuffer) {
	t.Helper()
	dir := t.TempDir()
	log = &logBuffer{}
	var err error
	bob, err = OpenLocal(dir, "bob00001", slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	bob.watch = watch
	t.Cleanup(func() { bob.Close() })
	alice, err = OpenLocal(dir, "alice001", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { alice.Close() })
	return alice, bob, log
}

func sendAndReceive(t *testing.T, alice *LocalSignaller, ch <-chan Event, session string) {
	t.Helper()
	if _, err := alice.Send(context.Background(), Signal{To: "bob00001", Kind: KindOffer, SessionID: session, Payload: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	if s := next(t, ch, wait); s.SessionID != session {
		t.Fatalf("got session %q; want %q", s.SessionID, session)
	}
}

func TestLocalPollsWhenWatchingFails(t *testing.T) {
	alice, bob, log := openLocalWatching(t, func(string) (*fsnotify.Watcher, error) {
		return nil, errors.New("no watches left")
	})
	ch, err := bob.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sendAndReceive(t, alice, ch, "s1")
	sendAndReceive(t, alice, ch, "s2")
	if got := log.String(); !strings.Contains(got, "polling the local inbox") || !strings.Contains(got, "no watches left") {
		t.Fatalf("the fallback to polling was not logged with its reason; log:\n%s", got)
	}
}

func TestLocalPollsWhenWatcherStops(t *testing.T) {
	watchers := make(chan *fsnotify.Watcher, 1)
	alice, bob, log := openLocalWatching(t, func(dir string) (*fsnotify.Watcher, error) {
		w, err := watchInbox(dir)
		if err == nil {
			watchers <- w
		}
		return w, err
	})
	ch, err := bob.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sendAndReceive(t, alice, ch, "before")
	// Closing the watcher under the listener is what a watcher that dies
	// looks like: its channels close.
	(<-watchers).Close()
	deadline := time.Now().Add(wait)
	for !strings.Contains(log.String(), "watching the local inbox stopped") {
		if time.Now().After(deadline) {
			t.Fatalf("the listener did not notice its watcher stopped; log:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	sendAndReceive(t, alice, ch, "after")
}

func TestLocalDirFor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	const winLocal = `C:\Users\ann\AppData\Local`
	const winTemp = `C:\Users\ann\AppData\Local\Temp`
	cases := []struct {
		name, goos string
		getenv     func(string) string
		temp       string
		want       string
	}{
		{"override wins everywhere", "windows", env(LocalDirEnv, `D:\mbox`, "LocalAppData", winLocal), winTemp, `D:\mbox`},
		{"override on linux", "linux", env(LocalDirEnv, "/srv/mbox", "XDG_RUNTIME_DIR", "/run/user/1000"), "/tmp", "/srv/mbox"},
		{"windows: local app data", "windows", env("LocalAppData", winLocal), winTemp, filepath.Join(winLocal, "p2ptui", "signal")},
		{"windows: per-user temp without it", "windows", env(), winTemp, filepath.Join(winTemp, "p2ptui-signal")},
		{"windows ignores XDG", "windows", env("XDG_RUNTIME_DIR", "/run/user/1000", "LocalAppData", winLocal), winTemp, filepath.Join(winLocal, "p2ptui", "signal")},
		{"linux: runtime dir", "linux", env("XDG_RUNTIME_DIR", "/run/user/1000"), "/tmp", "/run/user/1000/p2ptui-signal"},
		{"linux: temp with uid", "linux", env(), "/tmp", "/tmp/p2ptui-signal-1000"},
		{"freebsd like linux", "freebsd", env(), "/tmp", "/tmp/p2ptui-signal-1000"},
		{"macos: per-user TMPDIR", "darwin", env(), "/var/folders/xy/abc/T", "/var/folders/xy/abc/T/p2ptui-signal-1000"},
	}
	for _, c := range cases {
		if got := localDirFor(c.goos, c.getenv, c.temp, 1000); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}
