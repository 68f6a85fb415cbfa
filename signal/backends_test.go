package signal

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/p2ptui/p2ptui/signal/emulator"
)

// TestMain starts a Firestore emulator for the package when none is
// configured and one can be started here (outside CI, where .ci/run starts
// it), so `go test ./signal` really exercises Firestore on a developer's
// machine too.
func TestMain(m *testing.M) {
	var own *emulator.Emulator
	var ownAuth *emulator.AuthEmulator
	var wg sync.WaitGroup
	if os.Getenv("FIREBASE_AUTH_EMULATOR_HOST") == "" && os.Getenv("CI") != "true" && emulator.AuthAvailable() == nil {
		// The Auth emulator starts slowly; start it beside the other.
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			e, err := emulator.StartAuth(ctx)
			cancel()
			if err != nil {
				fmt.Fprintln(os.Stderr, "signal tests: could not start an Auth emulator:", err)
				return
			}
			ownAuth = e
		}()
	}
	if os.Getenv("FIRESTORE_EMULATOR_HOST") == "" && os.Getenv("CI") != "true" && emulator.Available() == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		e, err := emulator.Start(ctx, 0)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "signal tests: could not start a Firestore emulator:", err)
		} else {
			own = e
			os.Setenv("FIRESTORE_EMULATOR_HOST", e.Host)
		}
	}
	wg.Wait()
	if ownAuth != nil {
		os.Setenv("FIREBASE_AUTH_EMULATOR_HOST", ownAuth.Host)
	}
	code := m.Run()
	if own != nil {
		own.Stop()
	}
	if ownAuth != nil {
		ownAuth.Stop()
	}
	os.Exit(code)
}

// needEmulator returns the emulator host, or skips (fails under CI=true).
func needEmulator(t testing.TB) string {
	t.Helper()
	h := os.Getenv("FIRESTORE_EMULATOR_HOST")
	if h == "" {
		missing(t, "no Firestore emulator: set FIRESTORE_EMULATOR_HOST or install gcloud and a Java >= 21")
	}
	return h
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// testLogger sends backend logs to the test log and counts warnings, so a
// test can check that a rejection was logged with a reason.
type testLogger struct {
	t     testing.TB
	warns atomic.Int64
}

func (l *testLogger) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "level=WARN") {
		l.warns.Add(1)
	}
	l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newTestLogger(t testing.TB) (*slog.Logger, *testLogger) {
	tl := &testLogger{t: t}
	return slog.New(slog.NewTextHandler(tl, &slog.HandlerOptions{Level: slog.LevelInfo})), tl
}

// env is one isolated signalling store (a hub, a directory, an emulator
// project) on which several identities can be opened.
type env interface {
	open(t testing.TB, me string) Signaller
	// inboxLen counts the documents stored in me's inbox.
	inboxLen(t testing.TB, me string) int
}

// planter writes documents straight into an inbox, bypassing Send's checks,
// the way a hostile or broken client could.
type planter interface {
	plant(t testing.TB, to, name string, fields map[string]any)
}

type backend struct {
	name   string
	newEnv func(t testing.TB) env
}

func backends() []backend {
	return []backend{
		{"memory", func(t testing.TB) env { return memoryEnv{NewMemoryHub()} }},
		{"local", func(t testing.TB) env { return &localEnv{dir: t.TempDir()} }},
		{"firestore", newFirestoreEnv},
		{"firestore-auth", newAuthEnv},
	}
}

type memoryEnv struct{ hub *Hub }

func (e memoryEnv) open(t testing.TB, me string) Signaller {
	s := e.hub.Open(me)
	t.Cleanup(func() { s.Close() })
	return s
}

func (e memoryEnv) inboxLen(t testing.TB, me string) int {
	e.hub.mu.Lock()
	defer e.hub.mu.Unlock()
	return len(e.hub.inboxes[me])
}

type localEnv struct {
	dir string
}

func (e *localEnv) open(t testing.TB, me string) Signaller {
	t.Helper()
	log, _ := newTestLogger(t)
	s, err := OpenLocal(e.dir, me, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (e *localEnv) inboxLen(t testing.TB, me string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(e.dir, "inbox", me))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// plant writes a file into the inbox: fields as JSON, or the raw bytes of
// fields["raw"] when present.
func (e *localEnv) plant(t testing.TB, to, name string, fields map[string]any) {
	t.Helper()
	var b []byte
	if raw, ok := fields["raw"].([]byte); ok {
		b = raw
	} else {
		var err error
		if b, err = json.Marshal(fields); err != nil {
			t.Fatal(err)
		}
	}
	box := filepath.Join(e.dir, "inbox", to)
	if err := os.MkdirAll(box, 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(e.dir, "tmp", name)
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(box, name+".json")); err != nil {
		t.Fatal(err)
	}
}

type firestoreEnv struct {
	project string
	raw     *firestore.Client
}

var projectSeq atomic.Int64 // test-only: distinct emulator projects per env

func newFirestoreEnv(t testing.TB) env {
	t.Helper()
	host := needEmulator(t)
	project := fmt.Sprintf("p2ptui-test-%d-%d", time.Now().UnixNano()%1e9, projectSeq.Add(1))
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	raw, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		raw.Close()
		emulator.Reset(host, project)
	})
	return &firestoreEnv{project: project, raw: raw}
}

func (e *firestoreEnv) open(t testing.TB, me string) Signaller {
	t.Helper()
	log, _ := newTestLogger(t)
	s, err := OpenFirestore(context.Background(), e.project, me, log, FirestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (e *firestoreEnv) inboxLen(t testing.TB, me string) int {
	t.Helper()
	docs, err := e.raw.Collection("peers").Doc(me).Collection("inbox").Documents(context.Background()).GetAll()
	if err != nil {
		t.Fatal(err)
	}
	return len(docs)
}

func (e *firestoreEnv) plant(t testing.TB, to, name string, fields map[string]any) {
	t.Helper()
	if _, ok := fields["raw"]; ok {
		t.Fatal("firestore documents have fields, not raw bytes")
	}
	if _, err := e.raw.Collection("peers").Doc(to).Collection("inbox").Doc(name).Set(context.Background(), fields); err != nil {
		t.Fatal(err)
	}
}

// checkNoLeak fails t when goroutines started after base are still running
// once the system has had a few seconds to settle.
func checkNoLeak(t testing.TB, base int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines still running after Close (started with %d):\n%s", n, base, buf)
	}
}

// next waits for the next SignalEvent, skipping health events, and fails on
// a timeout or a closed stream.
func next(t testing.TB, ch <-chan Event, timeout time.Duration) Signal {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatal("event stream closed")
			}
			switch ev := ev.(type) {
			case SignalEvent:
				return ev.Signal
			case RejectedEvent:
				t.Fatalf("unexpected rejection of %s: %s", ev.DocID, ev.Reason)
			case HealthEvent:
				t.Logf("health while waiting: %s: %v", ev.Backend, ev.Err)
			}
		case <-tm.C:
			t.Fatalf("no signal within %v", timeout)
		}
	}
}

// quiet fails t if a signal arrives within d.
func quiet(t testing.TB, ch <-chan Event, d time.Duration) {
	t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	for {
		select {
		case ev := <-ch:
			if se, ok := ev.(SignalEvent); ok {
				t.Fatalf("unexpected signal %+v", se.Signal)
			}
		case <-tm.C:
			return
		}
	}
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
