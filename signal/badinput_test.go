package signal

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestBadInboxDocuments plants hostile and broken documents straight into an
// inbox, between good ones, the way a buggy or malicious client with write
// access to the database could. Each bad one must be refused with a logged
// reason and removed; the good ones must still arrive, in order.
func TestBadInboxDocuments(t *testing.T) {
	const me, peer = "bob00001", "alice001"
	now := time.Now()
	good := func(session string, at time.Time) map[string]any {
		return map[string]any{
			"v": int64(ProtocolVersion), "from": peer, "to": me, "kind": "offer",
			"sessionId": session, "payload": []byte("sealed"),
			"createdAt": at, "expiresAt": at.Add(time.Minute),
		}
	}
	with := func(at time.Time, change func(d map[string]any)) map[string]any {
		d := good("bad", at)
		change(d)
		return d
	}
	type doc struct {
		name   string
		fields map[string]any
		bad    bool
	}
	docs := []doc{
		{"good1", good("s1", now), false},
		{"wrongversion", with(now, func(d map[string]any) { d["v"] = int64(ProtocolVersion + 1) }), true},
		{"oversized", with(now, func(d map[string]any) { d["payload"] = make([]byte, MaxPayload+1) }), true},
		{"forgedrecipient", with(now, func(d map[string]any) { d["to"] = "mallory1" }), true},
		{"nosender", with(now, func(d map[string]any) { delete(d, "from") }), true},
		{"pathsender", with(now, func(d map[string]any) { d["from"] = "../../etc/passwd" }), true},
		{"badkind", with(now, func(d map[string]any) { d["kind"] = "exploit" }), true},
		{"badsession", with(now, func(d map[string]any) { d["sessionId"] = "a b\x1b[2J" }), true},
		{"good2", good("s2", now.Add(time.Millisecond)), false},
		{"payloadtype", with(now, func(d map[string]any) { d["payload"] = 42 }), true},
		{"timetype", with(now, func(d map[string]any) { d["createdAt"] = "yesterday" }), true},
		{"backwards", with(now, func(d map[string]any) { d["expiresAt"] = now.Add(-time.Hour); d["createdAt"] = now }), true},
		{"good3", good("s3", now.Add(2*time.Millisecond)), false},
	}
	for _, b := range backends() {
		if b.name == "memory" {
			continue // the hub only holds what Send accepted; nothing to plant
		}
		t.Run(b.name, func(t *testing.T) {
			e := b.newEnv(t)
			p := e.(planter)
			log, tl := newTestLogger(t)
			s := openLogged(t, e, me, log)
			extra := 0
			if le, ok := e.(*localEnv); ok {
				// Files can be broken in ways documents can't.
				le.plant(t, me, "garbage", map[string]any{"raw": []byte("{{{ not json")})
				le.plant(t, me, "huge", map[string]any{"raw": []byte(`{"v":1,"pad":"` + strings.Repeat("x", 100<<10) + `"}`)})
				extra = 2
			}
			for _, d := range docs {
				p.plant(t, me, d.name, d.fields)
			}
			ch := listen(t, s)
			wantBad := extra
			for _, d := range docs {
				if d.bad {
					wantBad++
				}
			}
			var got []string
			rejected := map[string]string{}
			deadline := time.After(wait)
			for len(got) < 3 || len(rejected) < wantBad {
				select {
				case ev := <-ch:
					switch ev := ev.(type) {
					case SignalEvent:
						got = append(got, ev.Signal.SessionID)
						if err := s.Ack(context.Background(), ev.Signal.ID); err != nil {
							t.Fatal(err)
						}
					case RejectedEvent:
						if ev.Reason == "" {
							t.Errorf("rejection of %s has no reason", ev.DocID)
						}
						rejected[ev.DocID] = ev.Reason
					}
				case <-deadline:
					t.Fatalf("after %v: delivered %v, rejected %d of %d: %v", wait, got, len(rejected), wantBad, rejected)
				}
			}
			if fmt.Sprint(got) != "[s1 s2 s3]" {
				t.Errorf("good signals delivered as %v, want [s1 s2 s3]", got)
			}
			for _, d := range docs {
				if !d.bad {
					continue
				}
				found := false
				for id, why := range rejected {
					if strings.HasPrefix(id, d.name) {
						found = true
						t.Logf("%s: %s", d.name, why)
					}
				}
				if !found {
					t.Errorf("%s was not rejected", d.name)
				}
			}
			if w := tl.warns.Load(); w < int64(wantBad) {
				t.Errorf("%d warnings logged for %d bad documents", w, wantBad)
			}
			eventually(t, wait, "inbox emptied of bad documents", func() bool { return e.inboxLen(t, me) == 0 })
		})
	}
}

// openLogged opens me on e with a logger the test watches.
func openLogged(t testing.TB, e env, me string, log *slog.Logger) Signaller {
	t.Helper()
	var s Signaller
	var err error
	switch e := e.(type) {
	case *localEnv:
		s, err = OpenLocal(e.dir, me, log)
	case *firestoreEnv:
		s, err = OpenFirestore(context.Background(), e.project, me, log, FirestoreOptions{})
	case *authEnv:
		s = e.openWith(t, me, log, FirestoreOptions{}, nil)
	default:
		t.Fatalf("no logged open for %T", e)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
