package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/signal"
	"github.com/p2ptui/p2ptui/signal/emulator"
	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

// A group member whose sign-in the admin disables while chatting: once
// the ID token has to be refreshed, the status says "signed out of
// signalling: ..." in words, and the open chat goes on both ways (it never
// needed the signalling service once connected).
func TestEndToEndSignedOutKeepsOpenChats(t *testing.T) {
	fsHost, authHost := emulator.Need(t)
	// Signed-in clients must not see the variable (it would bypass the
	// rules); they are given the address.
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	checkGoroutines(t)
	project := fmt.Sprintf("p2ptui-ui-auth-%d", time.Now().UnixNano()%1e9)
	rules, err := os.ReadFile(filepath.Join("..", "signal", "deploy", "firestore.rules"))
	if err != nil {
		t.Fatal(err)
	}
	if err := emulator.LoadRules(fsHost, project, string(rules)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emulator.Reset(fsHost, project) })

	// Alice's sign-in runs on a clock the test moves; the rest is real.
	var offset atomic.Int64
	aliceClock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	auths := map[string]*firebaseauth.Auth{}
	opener := func(clock func() time.Time) opener {
		return func(t testing.TB, id string) signal.Signaller {
			a, err := firebaseauth.New(firebaseauth.Config{ProjectID: project, APIKey: "test-api-key-0001", Emulator: authHost, Dir: t.TempDir(), Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			auths[id] = a
			s, err := signal.OpenFirestore(context.Background(), project, id, nil, signal.FirestoreOptions{
				Auth: a, Emulator: fsHost, Heartbeat: 200 * time.Millisecond,
			})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	patient := func(d *Deps) {
		d.Timers.OfferTimeout = conn.DefaultOfferTimeout
		d.Timers.PresenceEvery = 5 * time.Second // presence goes through the emulator too
	}
	a := startE2EPeerOn(t, opener(aliceClock), t.TempDir(), "alice", patient)
	b := startE2EPeerOn(t, opener(nil), t.TempDir(), "bob", patient)
	connectPair(t, a, b, "bob")
	a.cmd("send bob signed in")
	if m := b.log.expect("message", ev("message")); m.Body != "signed in" {
		t.Fatalf("bob got %+v", m)
	}

	tok, err := auths[a.id.ID()].Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	authProject, err := emulator.TokenProject(tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := emulator.DisableUser(authHost, authProject, auths[a.id.ID()].UID()); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(time.Hour))
	h := a.log.expect("signed out", func(e Event) bool {
		return e.Ev == "health" && e.OK != nil && !*e.OK && strings.Contains(e.Words, "signed out of signalling")
	})
	if !strings.Contains(h.Words, "signed out of signalling: the group's admin disabled this profile's sign-in") || strings.Contains(h.Words, "rpc error") {
		t.Errorf("health words %q", h.Words)
	}
	t.Logf("alice's status: %s", h.Words)

	a.cmd("send bob still here")
	if m := b.log.expect("message after sign-out", ev("message")); m.Body != "still here" {
		t.Fatalf("bob got %+v", m)
	}
	a.log.expect("receipt", func(e Event) bool { return e.Ev == "receipt" })
	b.cmd("send alice me too")
	if m := a.log.expect("message after sign-out", ev("message")); m.Body != "me too" {
		t.Fatalf("alice got %+v", m)
	}
}
