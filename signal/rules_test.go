package signal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/signal/emulator"
)

// TestSecurityRules loads the shipped rules into a private emulator and
// checks them the way a Firebase-authenticated client meets them: through
// the REST API with an ID token (unsigned, which only the emulator accepts)
// whose uid is the caller's p2ptui ID.
func TestSecurityRules(t *testing.T) {
	if err := emulator.Available(); err != nil {
		missing(t, "cannot run a private Firestore emulator: "+err.Error())
	}
	rules, err := filepath.Abs("deploy/firestore.rules")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	em, err := emulator.StartWithRules(ctx, 0, rules)
	if err != nil {
		t.Fatal(err)
	}
	defer em.Stop()

	const project = "p2ptui-rules"
	base := fmt.Sprintf("http://%s/v1/projects/%s/databases/(default)/documents", em.Host, project)
	now := time.Now().UTC()
	signalDoc := func(from string, change func(map[string]any)) map[string]any {
		f := map[string]any{
			"v":         map[string]any{"integerValue": "1"},
			"from":      map[string]any{"stringValue": from},
			"to":        map[string]any{"stringValue": "bob00001"},
			"kind":      map[string]any{"stringValue": "offer"},
			"sessionId": map[string]any{"stringValue": "s1"},
			"payload":   map[string]any{"bytesValue": base64.StdEncoding.EncodeToString([]byte("sealed"))},
			"createdAt": map[string]any{"timestampValue": now.Format(time.RFC3339)},
			"expiresAt": map[string]any{"timestampValue": now.Add(2 * time.Minute).Format(time.RFC3339)},
		}
		if change != nil {
			change(f)
		}
		return map[string]any{"fields": f}
	}
	presenceDoc := map[string]any{"fields": map[string]any{
		"v":           map[string]any{"integerValue": "1"},
		"displayName": map[string]any{"stringValue": "Alice"},
		"publicKey":   map[string]any{"bytesValue": base64.StdEncoding.EncodeToString(make([]byte, 32))},
	}}
	cases := []struct {
		name   string
		as     string // uid of the caller; "" is anonymous
		method string
		path   string
		body   map[string]any
		want   int
	}{
		{"offer from a signed-in sender", "alice001", "POST", "/peers/bob00001/inbox?documentId=ok1", signalDoc("alice001", nil), 200},
		{"anonymous offer", "", "POST", "/peers/bob00001/inbox?documentId=anon", signalDoc("alice001", nil), 403},
		{"offer in another's name", "alice001", "POST", "/peers/bob00001/inbox?documentId=forged", signalDoc("mallory1", nil), 403},
		{"wrong recipient field", "alice001", "POST", "/peers/bob00001/inbox?documentId=to", signalDoc("alice001", func(f map[string]any) { f["to"] = map[string]any{"stringValue": "carol001"} }), 403},
		{"oversized payload", "alice001", "POST", "/peers/bob00001/inbox?documentId=big", signalDoc("alice001", func(f map[string]any) {
			f["payload"] = map[string]any{"bytesValue": base64.StdEncoding.EncodeToString(make([]byte, MaxPayload+1))}
		}), 403},
		{"far-future expiry", "alice001", "POST", "/peers/bob00001/inbox?documentId=late", signalDoc("alice001", func(f map[string]any) {
			f["expiresAt"] = map[string]any{"timestampValue": now.Add(time.Hour).Format(time.RFC3339)}
		}), 403},
		{"unknown kind", "alice001", "POST", "/peers/bob00001/inbox?documentId=kind", signalDoc("alice001", func(f map[string]any) { f["kind"] = map[string]any{"stringValue": "spam"} }), 403},
		{"extra field", "alice001", "POST", "/peers/bob00001/inbox?documentId=extra", signalDoc("alice001", func(f map[string]any) { f["note"] = map[string]any{"stringValue": "hi"} }), 403},
		{"sender edits a sent signal", "alice001", "PATCH", "/peers/bob00001/inbox/ok1", signalDoc("alice001", nil), 403},
		{"sender reads the recipient's inbox", "alice001", "GET", "/peers/bob00001/inbox", nil, 403},
		{"recipient reads its inbox", "bob00001", "GET", "/peers/bob00001/inbox", nil, 200},
		{"sender deletes from the recipient's inbox", "alice001", "DELETE", "/peers/bob00001/inbox/ok1", nil, 403},
		{"recipient deletes a handled signal", "bob00001", "DELETE", "/peers/bob00001/inbox/ok1", nil, 200},
		{"own presence", "alice001", "PATCH", "/peers/alice001", presenceDoc, 200},
		{"someone else's presence", "alice001", "PATCH", "/peers/bob00001", presenceDoc, 403},
		{"look up a peer", "bob00001", "GET", "/peers/alice001", nil, 200},
		{"anonymous look-up", "", "GET", "/peers/alice001", nil, 403},
	}
	for _, c := range cases {
		var body bytes.Buffer
		if c.body != nil {
			if err := json.NewEncoder(&body).Encode(c.body); err != nil {
				t.Fatal(err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, c.method, base+c.path, &body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if c.as != "" {
			req.Header.Set("Authorization", "Bearer "+emulatorIDToken(project, c.as))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %s %s as %q: status %d, want %d: %s", c.name, c.method, c.path, c.as, resp.StatusCode, c.want, strings.TrimSpace(msg.String()))
		}
	}
}

// emulatorIDToken is an unsigned Firebase ID token for uid; the emulator
// accepts these so rules can be tested without a real sign-in.
func emulatorIDToken(project, uid string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := time.Now().Unix()
	return enc(map[string]any{"alg": "none", "typ": "JWT"}) + "." + enc(map[string]any{
		"sub": uid, "user_id": uid, "aud": project, "iss": "https://securetoken.google.com/" + project,
		"iat": now, "exp": now + 3600, "auth_time": now, "firebase": map[string]any{"sign_in_provider": "custom"},
	}) + "."
}
