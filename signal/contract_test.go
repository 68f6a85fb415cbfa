package signal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The contract: every backend passes the same assertions.

const (
	alice = "alice0000000001"
	bob   = "bob0000000000002"
	carol = "carol000000000003"
	// wait bounds a delivery the test expects. It is a correctness limit,
	// not a speed claim (the benchmarks measure speed): a freshly started
	// emulator JVM on a loaded CI machine takes seconds to serve its first
	// listener.
	wait = 30 * time.Second
)

func TestContract(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"RoundTrip", contractRoundTrip},
		{"ConcurrentSenders", contractConcurrentSenders},
		{"Expiry", contractExpiry},
		{"AckDeletes", contractAckDeletes},
		{"OrderByCreatedAt", contractOrder},
		{"Presence", contractPresence},
		{"WatchPresence", contractWatchPresence},
		{"ListeningFirst", contractListeningFirst},
		{"BadRequests", contractBadRequests},
		{"CloseNoLeak", contractCloseNoLeak},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.newEnv(t)) })
			}
		})
	}
}

func listen(t testing.TB, s Signaller) <-chan Event {
	t.Helper()
	ch, err := s.Listen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d < time.Microsecond && d > -time.Microsecond
}

func contractRoundTrip(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	aIn, bIn := listen(t, a), listen(t, b)
	ctx := context.Background()

	offer := Signal{To: bob, Kind: KindOffer, SessionID: "sess-1", Payload: []byte("sealed offer \x00\xff")}
	id, err := a.Send(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	got := next(t, bIn, wait)
	if got.ID != id || got.From != alice || got.To != bob || got.Kind != KindOffer || got.SessionID != "sess-1" || !bytes.Equal(got.Payload, offer.Payload) {
		t.Fatalf("offer arrived as %+v (sent ID %s)", got, id)
	}
	if _, ok := e.(serverStamped); ok {
		// Created at the server's time of the write, expiring the TTL
		// after the sender's estimate of it, taken just before.
		if life := got.ExpiresAt.Sub(got.CreatedAt); got.CreatedAt.IsZero() || life > DefaultTTL+time.Second || life < DefaultTTL-wait {
			t.Fatalf("offer timestamps: created %v expires %v", got.CreatedAt, got.ExpiresAt)
		}
	} else if got.CreatedAt.IsZero() || !sameTime(got.ExpiresAt, got.CreatedAt.Add(DefaultTTL)) {
		t.Fatalf("offer timestamps: created %v expires %v", got.CreatedAt, got.ExpiresAt)
	}
	if err := b.Ack(ctx, got.ID); err != nil {
		t.Fatal(err)
	}

	if _, err := b.Send(ctx, Signal{To: alice, Kind: KindAnswer, SessionID: "sess-1", Payload: []byte("sealed answer")}); err != nil {
		t.Fatal(err)
	}
	ans := next(t, aIn, wait)
	if ans.From != bob || ans.Kind != KindAnswer || string(ans.Payload) != "sealed answer" {
		t.Fatalf("answer arrived as %+v", ans)
	}
	if err := a.Ack(ctx, ans.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "both inboxes empty", func() bool { return e.inboxLen(t, alice) == 0 && e.inboxLen(t, bob) == 0 })
	quiet(t, aIn, 100*time.Millisecond)
	quiet(t, bIn, 100*time.Millisecond)
}

func contractConcurrentSenders(t *testing.T, e env) {
	const n = 20
	rx := e.open(t, carol)
	in := listen(t, rx)
	senders := make([]Signaller, n)
	for i := range senders {
		senders[i] = e.open(t, fmt.Sprintf("sender%04d", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Send(context.Background(), Signal{To: carol, Kind: KindOffer, SessionID: fmt.Sprintf("s%d", i)})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	from := map[string]bool{}
	ids := map[string]bool{}
	for range n {
		s := next(t, in, wait)
		if ids[s.ID] {
			t.Fatalf("signal %s delivered twice", s.ID)
		}
		ids[s.ID] = true
		from[s.From] = true
	}
	if len(from) != n {
		t.Fatalf("got signals from %d senders, want %d", len(from), n)
	}
	quiet(t, in, 200*time.Millisecond)
	if got := e.inboxLen(t, carol); got != n {
		t.Fatalf("inbox holds %d unacked signals, want %d", got, n)
	}
}

func contractExpiry(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	ctx := context.Background()
	now := time.Now()
	life := 300 * time.Millisecond
	if _, ok := e.(serverStamped); ok {
		// The rules refuse a signal that expires before the server
		// stores it: leave a slow write under load its time.
		life = 3 * time.Second
	}
	if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "stale", CreatedAt: now, ExpiresAt: now.Add(life)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "fresh"}); err != nil {
		t.Fatal(err)
	}
	// An already expired signal is refused at the sender.
	if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "dead", CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sending an expired signal: err = %v, want ErrInvalid", err)
	}
	time.Sleep(life + 200*time.Millisecond)
	in := listen(t, b)
	if got := next(t, in, wait); got.SessionID != "fresh" {
		t.Fatalf("got %q, want only the fresh signal", got.SessionID)
	}
	quiet(t, in, 200*time.Millisecond)
	// The stale one was deleted, the fresh one stays until acked.
	eventually(t, wait, "expired signal deleted", func() bool { return e.inboxLen(t, bob) == 1 })
}

func contractAckDeletes(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	ctx := context.Background()
	for _, sid := range []string{"one", "two"} {
		if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: sid}); err != nil {
			t.Fatal(err)
		}
	}
	lctx, stop := context.WithCancel(ctx)
	in, err := b.Listen(lctx)
	if err != nil {
		t.Fatal(err)
	}
	first, second := next(t, in, wait), next(t, in, wait)
	if err := b.Ack(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, wait, "acked signal deleted", func() bool { return e.inboxLen(t, bob) == 1 })
	stop()
	for range in {
	}
	// A second listener (the app restarted) gets only what was not acked.
	b2 := e.open(t, bob)
	in2 := listen(t, b2)
	if got := next(t, in2, wait); got.ID != second.ID {
		t.Fatalf("after restart got %s (%s), want the unacked %s", got.ID, got.SessionID, second.ID)
	}
	quiet(t, in2, 200*time.Millisecond)
	if err := b2.Ack(ctx, "../../etc/passwd"); err == nil {
		t.Fatal("ack with a path-like ID succeeded")
	}
}

func contractOrder(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	ctx := context.Background()
	base := time.Now().Add(-10 * time.Second)
	_, stamped := e.(serverStamped)
	// Sent out of order; delivered by created-at (which the server sets
	// for a stamped backend: then the order of sending).
	sent := []int{3, 1, 4, 2, 5, 0}
	for _, off := range sent {
		c := base.Add(time.Duration(off) * time.Second)
		if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: fmt.Sprintf("s%d", off), CreatedAt: c, ExpiresAt: c.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	in := listen(t, b)
	for i := range 6 {
		want := i
		if stamped {
			want = sent[i]
		}
		if got := next(t, in, wait); got.SessionID != fmt.Sprintf("s%d", want) {
			t.Fatalf("position %d: got %s, want s%d", i, got.SessionID, want)
		}
	}
}

func contractPresence(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	ctx := context.Background()
	if _, err := b.LookupPresence(ctx, alice); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup before publish: err = %v, want ErrNotFound", err)
	}
	key := bytes.Repeat([]byte{7}, 32)
	if err := a.PublishPresence(ctx, Presence{ID: alice, DisplayName: "Alice", PublicKey: key, Instance: "run1"}); err != nil {
		t.Fatal(err)
	}
	p, err := b.LookupPresence(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != alice || p.DisplayName != "Alice" || !bytes.Equal(p.PublicKey, key) || p.Version != ProtocolVersion || p.Instance != "run1" || p.Offline {
		t.Fatalf("presence = %+v", p)
	}
	if p.LastSeen.IsZero() || time.Since(p.LastSeen) > time.Minute {
		t.Fatalf("last seen %v", p.LastSeen)
	}
	if err := a.PublishPresence(ctx, Presence{ID: alice, DisplayName: "Alice B.", PublicKey: key}); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.LookupPresence(ctx, alice); p.DisplayName != "Alice B." || p.Instance != "" {
		t.Fatalf("refreshed presence = %+v", p)
	}
	// A clean quit says so, whatever the last-seen time.
	if err := a.PublishPresence(ctx, Presence{ID: alice, DisplayName: "Alice", PublicKey: key, Instance: "run1", Offline: true}); err != nil {
		t.Fatal(err)
	}
	if p, _ := b.LookupPresence(ctx, alice); !p.Offline || p.Instance != "run1" {
		t.Fatalf("presence after a clean quit = %+v, want offline", p)
	}
	for _, bad := range []string{"UPPER", "has space", strings.Repeat("a", MaxInstanceLen+1), "../x"} {
		if err := a.PublishPresence(ctx, Presence{ID: alice, Instance: bad}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("publish with instance %q: err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := b.LookupPresence(ctx, "../peers"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("lookup of a path: err = %v, want ErrInvalid", err)
	}
}

// contractListeningFirst: a stream starts with ListeningEvent, before the
// signals already waiting, and a signal sent right after it arrives.
func contractListeningFirst(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	ctx := context.Background()
	if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "before"}); err != nil {
		t.Fatal(err)
	}
	in := listen(t, b)
	select {
	case ev, ok := <-in:
		if _, listening := ev.(ListeningEvent); !ok || !listening {
			t.Fatalf("first event %#v, want ListeningEvent", ev)
		}
	case <-time.After(wait):
		t.Fatalf("no ListeningEvent within %v", wait)
	}
	if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "after"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for len(got) < 2 {
		s := next(t, in, wait)
		got[s.SessionID] = true
	}
	if !got["before"] || !got["after"] {
		t.Fatalf("got %v, want the signals sent before and after listening", got)
	}
}

// contractWatchPresence: a watch reports the peer's absence, then its
// arrival and its clean quit as they happen, and ends with its context or
// with Close.
func contractWatchPresence(t *testing.T, e env) {
	a, b := e.open(t, alice), e.open(t, bob)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := b.WatchPresence(ctx, "../peers"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("watching a path: err = %v, want ErrInvalid", err)
	}
	ch, err := b.WatchPresence(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	// awaitReading skips readings until one satisfies ok: a watch set up
	// again may repeat one.
	awaitReading := func(what string, ok func(PresenceUpdate) bool) {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case u, open := <-ch:
				if !open {
					t.Fatalf("watch closed while waiting for %s", what)
				}
				if ok(u) {
					return
				}
			case <-deadline:
				t.Fatalf("no reading of %s within %v", what, wait)
			}
		}
	}
	awaitReading("no presence yet", func(u PresenceUpdate) bool { return errors.Is(u.Err, ErrNotFound) })
	key := bytes.Repeat([]byte{7}, 32)
	if err := a.PublishPresence(context.Background(), Presence{ID: alice, DisplayName: "Alice", PublicKey: key, Instance: "run1"}); err != nil {
		t.Fatal(err)
	}
	awaitReading("alice online", func(u PresenceUpdate) bool {
		return u.Err == nil && u.Presence.ID == alice && u.Presence.DisplayName == "Alice" && bytes.Equal(u.Presence.PublicKey, key) &&
			u.Presence.Instance == "run1" && !u.Presence.Offline
	})
	if err := a.PublishPresence(context.Background(), Presence{ID: alice, DisplayName: "Alice", PublicKey: key, Instance: "run1", Offline: true}); err != nil {
		t.Fatal(err)
	}
	awaitReading("alice's clean quit", func(u PresenceUpdate) bool { return u.Err == nil && u.Presence.Offline })
	cancel()
	awaitClosed := func(ch <-chan PresenceUpdate, by string) {
		t.Helper()
		deadline := time.After(wait)
		for {
			select {
			case _, open := <-ch:
				if !open {
					return
				}
			case <-deadline:
				t.Fatalf("watch not closed by %s", by)
			}
		}
	}
	awaitClosed(ch, "its context")
	ch2, err := b.WatchPresence(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	awaitClosed(ch2, "Close")
	if _, err := b.WatchPresence(context.Background(), alice); !errors.Is(err, ErrClosed) {
		t.Fatalf("watch after Close: err = %v, want ErrClosed", err)
	}
}

func contractBadRequests(t *testing.T, e env) {
	a := e.open(t, alice)
	ctx := context.Background()
	bad := []Signal{
		{To: "Bob", Kind: KindOffer, SessionID: "x"},
		{To: "../../../tmp", Kind: KindOffer, SessionID: "x"},
		{To: bob, Kind: "hello", SessionID: "x"},
		{To: bob, Kind: KindOffer, SessionID: ""},
		{To: bob, Kind: KindOffer, SessionID: "x", Payload: make([]byte, MaxPayload+1)},
	}
	for _, s := range bad {
		if _, err := a.Send(ctx, s); !errors.Is(err, ErrInvalid) {
			t.Errorf("Send(%+v): err = %v, want ErrInvalid", s.To, err)
		}
	}
	if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "x", Payload: make([]byte, MaxPayload)}); err != nil {
		t.Errorf("payload of exactly MaxPayload refused: %v", err)
	}
	if _, err := a.Listen(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Listen(ctx); !errors.Is(err, ErrAlreadyListening) {
		t.Errorf("second Listen: err = %v, want ErrAlreadyListening", err)
	}
}

func contractCloseNoLeak(t *testing.T, e env) {
	// Let goroutines of earlier tests (and a client's first-use set-up) end.
	runtime.GC()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()
	for round := range 2 {
		a, b := e.open(t, alice), e.open(t, bob)
		in := listen(t, b)
		if _, err := a.Send(context.Background(), Signal{To: bob, Kind: KindOffer, SessionID: fmt.Sprintf("r%d", round)}); err != nil {
			t.Fatal(err)
		}
		s := next(t, in, wait)
		if err := b.Ack(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case _, ok := <-in:
			if ok {
				for range in {
				}
			}
		case <-time.After(wait):
			t.Fatal("stream not closed by Close")
		}
		if _, err := a.Send(context.Background(), Signal{To: bob, Kind: KindOffer, SessionID: "late"}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Send after Close: err = %v, want ErrClosed", err)
		}
		if err := a.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	}
	checkNoLeak(t, base)
}
