package signal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/p2ptui/p2ptui/signal/emulator"
	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

// The signed-in Firestore client against both official emulators: the
// Firebase Auth emulator signs in, the Firestore emulator judges every
// request by the shipped rules. (TestContract runs the whole backend
// contract this way too, as "firestore-auth".)

// plainWords fails t when err's message shows a raw gRPC status or JSON.
func plainWords(t testing.TB, err error) {
	t.Helper()
	for _, raw := range []string{"rpc error", "code =", "desc =", "{", "PermissionDenied", "Unauthenticated"} {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("message %q shows %q", err, raw)
		}
	}
}

// Attacks, each made by a signed-in account with a claimed ID of its own,
// through the real Firestore client carrying its real ID token: every one
// must be refused by the rules, and the victim's data must be unchanged.
// Each refused write is also tried in a correct form that the rules accept,
// so a refusal is the rules' doing and not a broken set-up.
func TestAuthAttacksRefused(t *testing.T) {
	e := newAuthEnv(t).(*authEnv)
	ctx := context.Background()
	const victim, friend, mallory = "victim0000000001", "friend000000002", "mallory00000003"
	v, f, m := e.openWith(t, victim, nil, FirestoreOptions{}, nil), e.openWith(t, friend, nil, FirestoreOptions{}, nil), e.openWith(t, mallory, nil, FirestoreOptions{}, nil)
	key := make([]byte, 32)
	if err := v.PublishPresence(ctx, Presence{ID: victim, DisplayName: "Victim", PublicKey: key}); err != nil {
		t.Fatal(err)
	}
	sigID, err := f.Send(ctx, Signal{To: victim, Kind: KindOffer, SessionID: "s1", Payload: []byte("sealed")})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	mc := m.client
	peers := mc.Collection("peers")
	victimInbox := peers.Doc(victim).Collection("inbox")
	signalFrom := func(from, to string, change func(map[string]any)) map[string]any {
		d := map[string]any{
			fVersion: ProtocolVersion, fFrom: from, fTo: to, fKind: "offer", fSession: "s2",
			fPayload: []byte("sealed"), fCreatedAt: firestore.ServerTimestamp, fExpiresAt: time.Now().Add(2 * time.Minute),
		}
		if change != nil {
			change(d)
		}
		return d
	}
	presenceAs := func(uid string) map[string]any {
		return map[string]any{fVersion: ProtocolVersion, fName: "Victim", fPublicKey: make([]byte, 32), fLastSeen: firestore.ServerTimestamp, fUID: uid}
	}
	create := func(ref *firestore.DocumentRef, d map[string]any) error { _, err := ref.Create(ctx, d); return err }

	// What mallory may do, for the controls.
	if err := create(peers.Doc(friend).Collection("inbox").NewDoc(), signalFrom(mallory, friend, nil)); err != nil {
		t.Fatalf("control: a correct signal from mallory was refused: %v", err)
	}
	if err := m.PublishPresence(ctx, Presence{ID: mallory, DisplayName: "M", PublicKey: key}); err != nil {
		t.Fatalf("control: mallory's own presence: %v", err)
	}
	if _, err := m.LookupPresence(ctx, victim); err != nil {
		t.Fatalf("control: looking up a known ID: %v", err)
	}
	ownSignal := peers.Doc(friend).Collection("inbox").NewDoc()
	if err := create(ownSignal, signalFrom(mallory, friend, nil)); err != nil {
		t.Fatal(err)
	}

	// A second profile (another account) that wants the victim's ID.
	squatterAuth, err := firebaseauth.New(firebaseauth.Config{ProjectID: e.project, APIKey: testAPIKey, Emulator: e.authHost, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	squatter, err := OpenFirestore(ctx, e.project, victim, nil, FirestoreOptions{Auth: squatterAuth, Emulator: e.fsHost})
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close()

	attacks := []struct {
		name string
		do   func() error
	}{
		{"read another's inbox", func() error { _, err := victimInbox.Documents(ctx).GetAll(); return err }},
		{"read a signal in another's inbox by its ID", func() error { _, err := victimInbox.Doc(sigID).Get(ctx); return err }},
		{"listen to another's inbox", func() error {
			it := victimInbox.Snapshots(ctx)
			defer it.Stop()
			_, err := it.Next()
			return err
		}},
		{"delete from another's inbox", func() error { _, err := victimInbox.Doc(sigID).Delete(ctx); return err }},
		{"list peers", func() error { _, err := peers.Documents(ctx).GetAll(); return err }},
		{"query every inbox", func() error { _, err := mc.CollectionGroup("inbox").Documents(ctx).GetAll(); return err }},
		{"list claims", func() error { _, err := mc.Collection("claims").Documents(ctx).GetAll(); return err }},
		{"read another's claim", func() error { _, err := mc.Collection("claims").Doc(victim).Get(ctx); return err }},
		{"send as another ID through Send", func() error {
			_, err := m.Send(ctx, Signal{From: victim, To: friend, Kind: KindOffer, SessionID: "s3"})
			return err
		}},
		{"send as another ID", func() error {
			return create(peers.Doc(friend).Collection("inbox").NewDoc(), signalFrom(victim, friend, nil))
		}},
		{"claim an ID already claimed, through the client", func() error { return squatter.Check(ctx) }},
		{"claim an ID already claimed", func() error {
			err := create(mc.Collection("claims").Doc(victim), map[string]any{fClaimUID: m.auth.UID()})
			if status.Code(err) == codes.AlreadyExists {
				// The rules let a well-formed claim through to the
				// create, which finds the ID taken: refused as well.
				return status.Error(codes.PermissionDenied, "exists")
			}
			return err
		}},
		{"take over a claim", func() error {
			_, err := mc.Collection("claims").Doc(victim).Set(ctx, map[string]any{fClaimUID: m.auth.UID()})
			return err
		}},
		{"delete a claim", func() error { _, err := mc.Collection("claims").Doc(victim).Delete(ctx); return err }},
		{"claim an ID for another account", func() error {
			return create(mc.Collection("claims").Doc("free00000000009"), map[string]any{fClaimUID: v.auth.UID()})
		}},
		{"overwrite someone's presence", func() error { _, err := peers.Doc(victim).Set(ctx, presenceAs(m.auth.UID())); return err }},
		{"overwrite someone's presence naming their account", func() error { _, err := peers.Doc(victim).Set(ctx, presenceAs(v.auth.UID())); return err }},
		{"delete someone's presence", func() error { _, err := peers.Doc(victim).Delete(ctx); return err }},
		{"presence for an unclaimed ID", func() error { _, err := peers.Doc("free00000000009").Set(ctx, presenceAs(m.auth.UID())); return err }},
		{"own presence with a made-up last-seen", func() error {
			d := presenceAs(m.auth.UID())
			d[fLastSeen] = time.Now().Add(time.Hour)
			_, err := peers.Doc(mallory).Set(ctx, d)
			return err
		}},
		{"backdate createdAt", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d[fCreatedAt] = time.Now().Add(-time.Hour) }))
		}},
		{"createdAt in the future", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d[fCreatedAt] = time.Now().Add(time.Minute) }))
		}},
		{"oversize a payload", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d[fPayload] = make([]byte, MaxPayload+1) }))
		}},
		{"expiry beyond ten minutes", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d[fExpiresAt] = time.Now().Add(time.Hour) }))
		}},
		{"signal expired on arrival", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d[fExpiresAt] = time.Now().Add(-time.Minute) }))
		}},
		{"extra field", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d["note"] = "hi" }))
		}},
		{"wrong recipient field", func() error { return create(victimInbox.NewDoc(), signalFrom(mallory, friend, nil)) }},
		{"unknown kind", func() error {
			return create(victimInbox.NewDoc(), signalFrom(mallory, victim, func(d map[string]any) { d[fKind] = "spam" }))
		}},
		{"edit a signal", func() error {
			_, err := ownSignal.Update(ctx, []firestore.Update{{Path: fPayload, Value: []byte("changed")}})
			return err
		}},
		{"overwrite a signal", func() error { _, err := ownSignal.Set(ctx, signalFrom(mallory, friend, nil)); return err }},
		{"recipient edits a signal", func() error {
			_, err := v.client.Collection("peers").Doc(victim).Collection("inbox").Doc(sigID).Update(ctx, []firestore.Update{{Path: fPayload, Value: []byte("x")}})
			return err
		}},
	}
	for _, a := range attacks {
		err := a.do()
		switch {
		case err == nil:
			t.Errorf("%s: allowed", a.name)
		case errors.Is(err, ErrRefused) || errors.Is(err, ErrIDTaken):
			plainWords(t, err)
		case status.Code(err) != codes.PermissionDenied:
			t.Errorf("%s: %v, want a refusal by the rules", a.name, err)
		}
	}

	// The victim's world is as it was.
	snap, err := e.raw.Collection("peers").Doc(victim).Get(ctx)
	if err != nil || snap.Data()[fUID] != v.auth.UID() || snap.Data()[fName] != "Victim" {
		t.Errorf("victim's presence now %v, %v", snap.Data(), err)
	}
	claim, err := e.raw.Collection("claims").Doc(victim).Get(ctx)
	if err != nil || claim.Data()[fClaimUID] != v.auth.UID() {
		t.Errorf("victim's claim now %v, %v", claim.Data(), err)
	}
	if n := e.inboxLen(t, victim); n != 1 {
		t.Errorf("victim's inbox holds %d signals, want the 1 sent", n)
	}
	in := listen(t, v)
	if got := next(t, in, wait); got.ID != sigID || string(got.Payload) != "sealed" || got.From != friend {
		t.Errorf("victim received %+v", got)
	}
}

// ruleGets is how often the rules of project have evaluated get() (the
// claim look-up in owns), from the emulator's coverage report: each is a
// document read that Firestore bills.
func ruleGets(t testing.TB, host, project string) int {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/emulator/v1/projects/%s:ruleCoverage", host, project))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	type node struct {
		Pos struct {
			Start int `json:"currentOffset"`
			End   int `json:"endOffset"`
		} `json:"sourcePosition"`
		Values []struct {
			Value map[string]json.RawMessage `json:"value"`
			Count int                        `json:"count"`
		} `json:"values"`
		Children []json.RawMessage `json:"children"`
	}
	var cov struct {
		Rules struct {
			Files []struct {
				Content string `json:"content"`
			} `json:"files"`
		} `json:"rules"`
		Report []json.RawMessage `json:"report"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cov); err != nil || len(cov.Rules.Files) != 1 {
		t.Fatalf("rule coverage: %v", err)
	}
	src := cov.Rules.Files[0].Content
	// The call is the innermost expression starting at a "get(" (its
	// parents are .data, .data.uid, ... == ...); its counts are its
	// evaluations by what they returned. The emulator evaluates a rule
	// that reads documents once without them (the value "undefined") to
	// learn which it needs, then with them: only the second is a read.
	total := 0
	var walk func(raw json.RawMessage) bool
	walk = func(raw json.RawMessage) (isGet bool) {
		var n node
		if json.Unmarshal(raw, &n) != nil {
			return false
		}
		inner := false
		for _, c := range n.Children {
			inner = walk(c) || inner
		}
		if n.Pos.Start >= len(src) || !strings.HasPrefix(src[n.Pos.Start:], "get(") {
			return inner
		}
		if !inner {
			for _, v := range n.Values {
				if _, undefined := v.Value["undefined"]; !undefined {
					total += v.Count
				}
			}
		}
		return true
	}
	for _, r := range cov.Report {
		walk(r)
	}
	return total
}

// The cost of signalling through the rules, counted: per connection (offer
// and answer, each delivered by a listener and acked) 2 writes, 2 reads and
// 2 deletes by the clients, plus 8 claim look-ups by the rules (one per
// create, one per delete, and one each time a listened inbox gains or loses
// a signal, when the emulator judges the listener's query again); the claim
// once per identity; one sign-up per identity and no refresh within the
// hour; a restart with the same profile signs in and claims nothing again.
func TestAuthOperationsPerConnection(t *testing.T) {
	e := newAuthEnv(t).(*authEnv)
	ctx := context.Background()
	opts := FirestoreOptions{Heartbeat: time.Hour} // heartbeats are per minute, not per connection
	a, b := e.openWith(t, alice, nil, opts, nil), e.openWith(t, bob, nil, opts, nil)
	ain, bin := listen(t, a), listen(t, b)
	// Each listener's start reads the inbox once more, a second later
	// (the catch-up); wait for it so it is not counted below.
	eventually(t, wait, "the listeners' catch-up reads", func() bool { return a.Ops().Reads >= 1 && b.Ops().Reads >= 1 })
	time.Sleep(catchUpDelay)
	base := [2]OpCounts{a.Ops(), b.Ops()}
	baseGets := ruleGets(t, e.fsHost, e.project)
	const n = 4
	for i := range n {
		session := fmt.Sprint("x", i)
		if _, err := a.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: session, Payload: []byte("offer")}); err != nil {
			t.Fatal(err)
		}
		offer := next(t, bin, wait)
		if err := b.Ack(ctx, offer.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Send(ctx, Signal{To: alice, Kind: KindAnswer, SessionID: session, Payload: []byte("answer")}); err != nil {
			t.Fatal(err)
		}
		answer := next(t, ain, wait)
		if err := a.Ack(ctx, answer.ID); err != nil {
			t.Fatal(err)
		}
	}
	ao, bo := a.Ops(), b.Ops()
	per := func(f func(OpCounts) int64) float64 {
		return float64(f(ao)+f(bo)-f(base[0])-f(base[1])) / n
	}
	w, r, d := per(func(o OpCounts) int64 { return o.Writes }), per(func(o OpCounts) int64 { return o.Reads }), per(func(o OpCounts) int64 { return o.Deletes })
	gets := float64(ruleGets(t, e.fsHost, e.project)-baseGets) / n
	t.Logf("per connection: %.1f writes, %.1f reads, %.1f deletes by the clients; %.1f claim look-ups by the rules", w, r, d, gets)
	if w != 2 || r != 2 || d != 2 {
		t.Errorf("per connection %.2f writes, %.2f reads, %.2f deletes; want 2, 2, 2", w, r, d)
	}
	if gets != 8 {
		t.Errorf("%.2f claim look-ups by the rules per connection, want 8", gets)
	}
	for _, s := range []*FirestoreSignaller{a, b} {
		if o := s.Ops(); o.Claims != 1 {
			t.Errorf("%s: %d claims, want 1", s.me, o.Claims)
		}
		if st := s.auth.Stats(); st.SignUps != 1 || st.Refreshes != 0 {
			t.Errorf("%s: auth calls %+v, want 1 sign-up, 0 refreshes", s.me, st)
		}
	}
	// A restart: the saved sign-in and claim are used as they are.
	a.Close()
	again := e.openWith(t, alice, nil, opts, nil)
	if err := again.PublishPresence(ctx, Presence{ID: alice, DisplayName: "A", PublicKey: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	if o, st := again.Ops(), again.auth.Stats(); o.Claims != 0 || o.Writes != 1 || st.SignUps != 0 || st.Refreshes != 0 {
		t.Errorf("restart spent %+v and auth calls %+v, want 1 write and nothing else", o, st)
	}
}

// Three hours of running on a moved clock: one refresh per hour (every 55
// minutes), each write in between carrying a valid token; the refreshed
// tokens are accepted by the Firestore emulator.
func TestAuthRefreshOncePerHour(t *testing.T) {
	e := newAuthEnv(t).(*authEnv)
	ctx := context.Background()
	var clock fakeClock
	a := e.openWith(t, alice, nil, FirestoreOptions{Heartbeat: time.Hour}, clock.now)
	p := Presence{ID: alice, DisplayName: "A", PublicKey: make([]byte, 32)}
	for minute := 0; minute <= 180; minute += 10 {
		if err := a.PublishPresence(ctx, p); err != nil {
			t.Fatalf("minute %d: %v", minute, err)
		}
		clock.advance(10 * time.Minute)
	}
	if st := a.auth.Stats(); st.SignUps != 1 || st.Refreshes != 3 {
		t.Errorf("in three hours: %+v, want 1 sign-up and 3 refreshes", st)
	}
}

// A local clock off by twenty minutes either way: signals still meet the
// rules' bounds on expiresAt (within ten minutes of the server's time),
// because they are anchored on the service's clock as the ID token tells
// it.
func TestAuthClockSkew(t *testing.T) {
	for _, off := range []time.Duration{20 * time.Minute, -20 * time.Minute} {
		t.Run(fmt.Sprint(off), func(t *testing.T) {
			e := newAuthEnv(t).(*authEnv)
			var clock fakeClock
			clock.advance(off)
			a := e.openWith(t, alice, nil, FirestoreOptions{}, clock.now)
			b := e.openWith(t, bob, nil, FirestoreOptions{}, nil)
			if _, err := a.Send(context.Background(), Signal{To: bob, Kind: KindOffer, SessionID: "skewed"}); err != nil {
				t.Fatal(err)
			}
			got := next(t, listen(t, b), wait)
			if life := got.ExpiresAt.Sub(got.CreatedAt); life > DefaultTTL+time.Second || life < DefaultTTL-wait {
				t.Errorf("lifetime on the server's clock %v, want about %v", life, DefaultTTL)
			}
		})
	}
}

// A revoked or broken sign-in surfaces as the listener's health going down
// with "signed out of signalling: ..." in plain words, once the ID token
// has to be refreshed; the stream stays open and recovers when the account
// works again.
func TestAuthSignedOutHealth(t *testing.T) {
	for _, c := range []struct {
		name  string
		spoil func(t *testing.T, e *authEnv, s *FirestoreSignaller)
		words string
	}{
		{"disabled by the admin", func(t *testing.T, e *authEnv, s *FirestoreSignaller) {
			if err := emulator.DisableUser(e.authHost, authProjectOf(t, s), s.auth.UID()); err != nil {
				t.Fatal(err)
			}
		}, "signed out of signalling: the group's admin disabled this profile's sign-in"},
		{"deleted by the admin", func(t *testing.T, e *authEnv, s *FirestoreSignaller) {
			if err := emulator.DeleteUser(e.authHost, authProjectOf(t, s), s.auth.UID()); err != nil {
				t.Fatal(err)
			}
		}, "signed out of signalling: the sign-in saved in the profile is not valid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newAuthEnv(t).(*authEnv)
			var clock fakeClock
			s := e.openWith(t, alice, nil, FirestoreOptions{Heartbeat: 100 * time.Millisecond}, clock.now)
			if err := s.PublishPresence(context.Background(), Presence{ID: alice, DisplayName: "A", PublicKey: make([]byte, 32)}); err != nil {
				t.Fatal(err)
			}
			in := listen(t, s)
			c.spoil(t, e, s)
			// Nothing happens while the ID token lasts; an hour later it
			// must be refreshed, and that fails.
			clock.advance(time.Hour)
			h := nextHealth(t, in, func(h HealthEvent) bool { return h.Err != nil && errors.Is(h.Err, ErrSignedOut) })
			if !strings.HasPrefix(h.Err.Error(), c.words) {
				t.Errorf("health %q, want it to start %q", h.Err, c.words)
			}
			plainWords(t, h.Err)
		})
	}
}

// nextHealth waits for a health event that ok accepts.
func nextHealth(t testing.TB, ch <-chan Event, ok func(HealthEvent) bool) HealthEvent {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case ev, open := <-ch:
			if !open {
				t.Fatal("event stream closed")
			}
			if h, is := ev.(HealthEvent); is {
				t.Logf("health: %v", h.Err)
				if ok(h) {
					return h
				}
			}
		case <-deadline:
			t.Fatalf("no such health event within %v", wait)
		}
	}
}

// authProjectOf is the project the Auth emulator made s's account in (the
// audience of its token), which its admin endpoints need.
func authProjectOf(t testing.TB, s *FirestoreSignaller) string {
	t.Helper()
	tok, err := s.auth.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p, err := emulator.TokenProject(tok)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A profile whose saved refresh token is damaged is signed out at its next
// start, in words, and signs up no new account behind the user's back (a
// new account could not act as the claimed ID anyway).
func TestAuthBrokenRefreshTokenAtStart(t *testing.T) {
	e := newAuthEnv(t).(*authEnv)
	ctx := context.Background()
	var clock fakeClock
	s := e.openWith(t, alice, nil, FirestoreOptions{}, clock.now)
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	path := filepath.Join(e.profile(t, alice), firebaseauth.TokenFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, acct := range f["accounts"].(map[string]any) {
		acct.(map[string]any)["refreshToken"] = "garbage"
		delete(acct.(map[string]any), "idToken")
	}
	b, _ = json.Marshal(f)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s2 := e.openWith(t, alice, nil, FirestoreOptions{}, clock.now)
	err = s2.PublishPresence(ctx, Presence{ID: alice, DisplayName: "A", PublicKey: make([]byte, 32)})
	if !errors.Is(err, ErrSignedOut) || !strings.Contains(err.Error(), "signed out of signalling: the sign-in saved in the profile is not valid") {
		t.Fatalf("err = %v", err)
	}
	plainWords(t, err)
	if st := s2.auth.Stats(); st.SignUps != 0 {
		t.Errorf("%d new accounts made", st.SignUps)
	}
}

// What the group's admin can get wrong, named in words in the errors and
// in the listener's health: a Web API key the project refuses, anonymous
// sign-in turned off (both as the real service answers them, from a stand-
// in for Firebase Authentication beside the real Firestore emulator: the
// Auth emulator accepts any key and always allows anonymous sign-in), and
// rules that refuse p2ptui (the real emulators).
func TestAuthSetUpProblemsInWords(t *testing.T) {
	fake := func(status int, body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
			fmt.Fprint(w, body)
		}))
		t.Cleanup(srv.Close)
		return strings.TrimPrefix(srv.URL, "http://")
	}
	denyAll := `rules_version = '2';
service cloud.firestore { match /databases/{database}/documents { match /{doc=**} { allow read, write: if false; } } }`
	cases := []struct {
		name     string
		authHost func(e *authEnv) string
		rules    string
		kind     error
		words    string
	}{
		{"wrong API key", func(*authEnv) string {
			return fake(400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}`)
		}, "", ErrSignIn, "cannot sign in to signalling: project %s refused the Web API key of the join code"},
		{"anonymous sign-in off", func(*authEnv) string {
			return fake(400, `{"error":{"code":400,"message":"ADMIN_ONLY_OPERATION"}}`)
		}, "", ErrSignIn, "cannot sign in to signalling: project %s does not allow anonymous sign-in"},
		{"rules refuse the client", func(e *authEnv) string { return e.authHost }, denyAll,
			ErrRefused, "refused by the signalling project's security rules: they would not let this profile claim this profile's ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rules := c.rules
			if rules == "" {
				rules = shippedRules(t)
			}
			e := newAuthEnvRules(t, rules)
			a, err := firebaseauth.New(firebaseauth.Config{ProjectID: e.project, APIKey: testAPIKey, Emulator: c.authHost(e), Dir: e.profile(t, alice)})
			if err != nil {
				t.Fatal(err)
			}
			log, _ := newTestLogger(t)
			s, err := OpenFirestore(context.Background(), e.project, alice, log, FirestoreOptions{Auth: a, Emulator: e.fsHost, RetryMin: time.Second, RetryMax: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			words := c.words
			if strings.Contains(words, "%s") {
				words = fmt.Sprintf(words, e.project)
			}
			err = s.Check(context.Background())
			if !errors.Is(err, c.kind) || !strings.HasPrefix(err.Error(), words) {
				t.Fatalf("Check: %v\nwant %v starting %q", err, c.kind, words)
			}
			plainWords(t, err)
			in := listen(t, s)
			h := nextHealth(t, in, func(h HealthEvent) bool { return h.Err != nil })
			if !errors.Is(h.Err, c.kind) || !strings.HasPrefix(h.Err.Error(), words) {
				t.Errorf("health: %v, want it to start %q", h.Err, words)
			}
			plainWords(t, h.Err)
			if _, err := s.Send(context.Background(), Signal{To: bob, Kind: KindOffer, SessionID: "s"}); !errors.Is(err, c.kind) {
				t.Errorf("Send: %v", err)
			}
		})
	}
}

// The Auth emulator's tokens are only good for a Firestore emulator, and
// the client library's emulator variable would bypass the rules: both
// mistakes are refused at open, in words.
func TestAuthOpenRefusesBypass(t *testing.T) {
	a, err := firebaseauth.New(firebaseauth.Config{ProjectID: "demo-group", APIKey: testAPIKey, Emulator: "127.0.0.1:1", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:2")
	if _, err := OpenFirestore(context.Background(), "demo-group", alice, nil, FirestoreOptions{Auth: a, Emulator: "127.0.0.1:2"}); err == nil || !strings.Contains(err.Error(), "past the security rules") {
		t.Errorf("with FIRESTORE_EMULATOR_HOST set: %v", err)
	}
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	if _, err := OpenFirestore(context.Background(), "demo-group", alice, nil, FirestoreOptions{Auth: a}); err == nil || !strings.Contains(err.Error(), "only a Firestore emulator accepts them") {
		t.Errorf("emulator tokens for the real Firestore: %v", err)
	}
	if _, err := OpenFirestore(context.Background(), "other-group", alice, nil, FirestoreOptions{Auth: a, Emulator: "127.0.0.1:2"}); err == nil {
		t.Error("a sign-in for another project was accepted")
	}
}

// A caller waiting for another's claim stops when its own context ends.
func TestAuthClaimWaitHonoursContext(t *testing.T) {
	t.Setenv("FIRESTORE_EMULATOR_HOST", "")
	a, err := firebaseauth.New(firebaseauth.Config{ProjectID: "demo-group", APIKey: testAPIKey, Emulator: "127.0.0.1:1", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenFirestore(context.Background(), "demo-group", alice, nil, FirestoreOptions{Auth: a, Emulator: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.claimLock <- struct{}{} // a claim in progress, stuck
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Send(ctx, Signal{To: bob, Kind: KindOffer, SessionID: "s"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send behind a stuck claim: %v", err)
	}
	<-s.claimLock
}
