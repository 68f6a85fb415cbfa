package signal

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/p2ptui/p2ptui/signal/emulator"
	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

// testAPIKey is the Web API key the tests present; the Auth emulator takes
// any.
const testAPIKey = "test-api-key-0001"

// needAuthEmulator returns the Auth emulator's host, or skips (fails under
// CI=true).
func needAuthEmulator(t testing.TB) string {
	t.Helper()
	h := os.Getenv("FIREBASE_AUTH_EMULATOR_HOST")
	if h == "" {
		missing(t, "no Firebase Auth emulator: set FIREBASE_AUTH_EMULATOR_HOST or install the firebase CLI (npm install -g firebase-tools)")
	}
	return h
}

// shippedRules is the rules file p2ptui ships.
func shippedRules(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("deploy", "firestore.rules"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// authEnv is one emulator project judged by the shipped rules, on which
// each ID is opened as a signed-in client with a profile of its own (the
// same profile, and so the same account, every time the ID is opened).
type authEnv struct {
	// firestoreEnv's raw client is the emulator's owner, past the rules:
	// it counts and plants as the project's admin would in the console.
	firestoreEnv
	fsHost   string
	authHost string
	base     string

	mu   sync.Mutex
	dirs map[string]string
}

// newAuthEnv makes a fresh project with the shipped rules.
func newAuthEnv(t testing.TB) env { return newAuthEnvRules(t, shippedRules(t)) }

func newAuthEnvRules(t testing.TB, rules string) *authEnv {
	t.Helper()
	fsHost := needEmulator(t)
	authHost := needAuthEmulator(t)
	project := fmt.Sprintf("p2ptui-auth-%d-%d", time.Now().UnixNano()%1e9, projectSeq.Add(1))
	if err := emulator.LoadRules(fsHost, project, rules); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", fsHost)
	raw, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	// Signed-in clients must not see the variable (see dialSignedIn); the
	// owner client above has its connection already.
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	t.Cleanup(func() {
		raw.Close()
		emulator.Reset(fsHost, project)
	})
	return &authEnv{firestoreEnv: firestoreEnv{project: project, raw: raw}, fsHost: fsHost, authHost: authHost, base: t.TempDir(), dirs: map[string]string{}}
}

func (*authEnv) serverStamped() {}

// profile is me's profile directory.
func (e *authEnv) profile(t testing.TB, me string) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if d, ok := e.dirs[me]; ok {
		return d
	}
	d := filepath.Join(e.base, me)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	e.dirs[me] = d
	return d
}

// newAuth is me's sign-in, on clock now (nil: the real one).
func (e *authEnv) newAuth(t testing.TB, me string, now func() time.Time) *firebaseauth.Auth {
	t.Helper()
	a, err := firebaseauth.New(firebaseauth.Config{ProjectID: e.project, APIKey: testAPIKey, Emulator: e.authHost, Dir: e.profile(t, me), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// openWith opens me signed in, with opts and the sign-in's clock now.
func (e *authEnv) openWith(t testing.TB, me string, log *slog.Logger, opts FirestoreOptions, now func() time.Time) *FirestoreSignaller {
	t.Helper()
	if log == nil {
		log, _ = newTestLogger(t)
	}
	opts.Auth = e.newAuth(t, me, now)
	opts.Emulator = e.fsHost
	s, err := OpenFirestore(context.Background(), e.project, me, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (e *authEnv) open(t testing.TB, me string) Signaller {
	t.Helper()
	return e.openWith(t, me, nil, FirestoreOptions{}, nil)
}

// serverStamped is an env whose backend stamps createdAt with the server's
// time of the write (a signed-in Firestore client, as the rules demand): a
// sender's CreatedAt is not kept, only its lifetime.
type serverStamped interface{ serverStamped() }

// fakeClock is the real clock moved forward by an offset that a test
// advances, so tokens expire without waiting an hour.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }
