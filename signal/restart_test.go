package signal

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/signal/emulator"
)

// TestFirestoreSurvivesOutage stops the emulator under a live listener and
// starts it again: the app must be told the backend went away and came back,
// and signals sent after the restart must still arrive on the same stream.
// It runs its own emulator, because stopping the shared one would break the
// other tests.
func TestFirestoreSurvivesOutage(t *testing.T) {
	if err := emulator.Available(); err != nil {
		missing(t, "cannot run a private Firestore emulator: "+err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	em, err := emulator.Start(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Stop()
	t.Setenv("FIRESTORE_EMULATOR_HOST", em.Host)

	const project = "p2ptui-outage"
	const me, peer = "bob00001", "alice001"
	opts := FirestoreOptions{Heartbeat: 300 * time.Millisecond, RetryMin: 100 * time.Millisecond, RetryMax: time.Second}
	log, _ := newTestLogger(t)
	bob, err := OpenFirestore(ctx, project, me, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	alice, err := OpenFirestore(ctx, project, peer, log, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if err := bob.PublishPresence(ctx, Presence{ID: me, DisplayName: "Bob"}); err != nil {
		t.Fatal(err)
	}
	ch, err := bob.Listen(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(session string) {
		t.Helper()
		if _, err := alice.Send(ctx, Signal{From: peer, To: me, Kind: KindOffer, SessionID: session, Payload: []byte("x")}); err != nil {
			t.Fatalf("send %s: %v", session, err)
		}
	}
	send("before")
	if got := next(t, ch, wait); got.SessionID != "before" {
		t.Fatalf("got %q before the outage", got.SessionID)
	}

	if err := em.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The restarted emulator holds no data: what matters is that the
	// listener noticed the outage and is connected again.
	sawDown, sawUp := false, false
	deadline := time.After(30 * time.Second)
	for !sawUp {
		select {
		case ev := <-ch:
			if h, ok := ev.(HealthEvent); ok {
				t.Logf("health: %v", h.Err)
				if h.Err != nil {
					if !errors.Is(h.Err, ErrUnavailable) {
						t.Logf("outage reported without ErrUnavailable: %v", h.Err)
					}
					sawDown = true
				} else if sawDown {
					sawUp = true
				}
			}
		case <-deadline:
			t.Fatalf("no health events for the outage (down seen: %v)", sawDown)
		}
	}
	// A signal written while the listener is still rebuilding is in the
	// rebuilt iterator's first snapshot, so it cannot slip between the two.
	send("after")
	if got := next(t, ch, 20*time.Second); got.SessionID != "after" {
		t.Fatalf("got %q after the outage", got.SessionID)
	}
}

// TestFirestoreStalledListenerIsRebuilt gives the watchdog no time for a
// first snapshot: every listener counts as stalled, so the app must hear
// that the inbox is deaf rather than wait forever in silence.
func TestFirestoreStalledListenerIsRebuilt(t *testing.T) {
	e := newFirestoreEnv(t).(*firestoreEnv)
	log, _ := newTestLogger(t)
	s, err := OpenFirestore(context.Background(), e.project, "bob00001", log, FirestoreOptions{FirstSnapshot: time.Nanosecond, RetryMin: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ch, err := s.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(wait)
	for {
		select {
		case ev := <-ch:
			if h, ok := ev.(HealthEvent); ok && h.Err != nil {
				if !errors.Is(h.Err, ErrUnavailable) {
					t.Fatalf("stall reported as %v, want ErrUnavailable", h.Err)
				}
				return
			}
		case <-deadline:
			t.Fatal("a listener that never got its first snapshot was not reported")
		}
	}
}

// TestFirestoreCatchUpDeliversOnce reads the inbox the way the catch-up
// does after a listener starts and on every heartbeat: what a listener
// missed is delivered, and nothing is delivered twice.
func TestFirestoreCatchUpDeliversOnce(t *testing.T) {
	e := newFirestoreEnv(t).(*firestoreEnv)
	log, _ := newTestLogger(t)
	f, err := OpenFirestore(context.Background(), e.project, "bob00001", log, FirestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Now()
	for i, session := range []string{"s1", "s2"} {
		at := now.Add(time.Duration(i) * time.Millisecond)
		e.plant(t, "bob00001", session, map[string]any{
			"v": int64(ProtocolVersion), "from": "alice001", "to": "bob00001", "kind": "offer",
			"sessionId": session, "payload": []byte("x"), "createdAt": at, "expiresAt": at.Add(time.Minute),
		})
	}
	st := newStream()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { st.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	in := &inboxState{delivered: map[string]time.Time{}}
	for range 2 {
		if err := f.catchUp(ctx, st, in); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	timeout := time.After(wait)
	for len(got) < 2 {
		select {
		case ev := <-st.out:
			if se, ok := ev.(SignalEvent); ok {
				got = append(got, se.Signal.SessionID)
			}
		case <-timeout:
			t.Fatalf("catch-up delivered %v", got)
		}
	}
	if fmt.Sprint(got) != "[s1 s2]" {
		t.Errorf("catch-up delivered %v, want [s1 s2]", got)
	}
	quiet(t, st.out, 300*time.Millisecond)
}
