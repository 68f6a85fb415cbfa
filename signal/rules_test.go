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

// TestSecurityRulesUnauthenticated loads the shipped rules into a private
// emulator and checks, through the REST API, what the signed-in client
// cannot show: a request without an ID token is refused everything, and a
// valid token whose account holds no claim cannot act as any ID. (What a
// signed-in client may and may not do is in auth_test.go, through the real
// client.)
func TestSecurityRulesUnauthenticated(t *testing.T) {
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
	signalDoc := map[string]any{"fields": map[string]any{
		"v":         map[string]any{"integerValue": "1"},
		"from":      map[string]any{"stringValue": "alice001"},
		"to":        map[string]any{"stringValue": "bob00001"},
		"kind":      map[string]any{"stringValue": "offer"},
		"sessionId": map[string]any{"stringValue": "s1"},
		"payload":   map[string]any{"bytesValue": base64.StdEncoding.EncodeToString([]byte("sealed"))},
		"createdAt": map[string]any{"timestampValue": now.Format(time.RFC3339)},
		"expiresAt": map[string]any{"timestampValue": now.Add(2 * time.Minute).Format(time.RFC3339)},
	}}
	presenceDoc := map[string]any{"fields": map[string]any{
		"v":           map[string]any{"integerValue": "1"},
		"displayName": map[string]any{"stringValue": "Alice"},
		"publicKey":   map[string]any{"bytesValue": base64.StdEncoding.EncodeToString(make([]byte, 32))},
		"uid":         map[string]any{"stringValue": "uid-alice"},
	}}
	claimDoc := func(uid string) map[string]any {
		return map[string]any{"fields": map[string]any{"uid": map[string]any{"stringValue": uid}}}
	}
	do := func(as, method, path string, body map[string]any) (int, string) {
		t.Helper()
		var b bytes.Buffer
		if body != nil {
			if err := json.NewEncoder(&b).Encode(body); err != nil {
				t.Fatal(err)
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, &b)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		switch as {
		case "":
		case "owner":
			req.Header.Set("Authorization", "Bearer owner")
		default:
			req.Header.Set("Authorization", "Bearer "+emulatorIDToken(project, as))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		return resp.StatusCode, strings.TrimSpace(msg.String())
	}
	// The world as the admin set it up: alice001 is claimed by uid-alice,
	// with her presence and one signal in her inbox.
	for _, w := range []struct {
		path string
		body map[string]any
	}{
		{"/claims?documentId=alice001", claimDoc("uid-alice")},
		{"/peers?documentId=alice001", presenceDoc},
		{"/peers/alice001/inbox?documentId=sig1", signalDoc},
	} {
		if code, msg := do("owner", "POST", w.path, w.body); code != 200 {
			t.Fatalf("set-up %s: %d %s", w.path, code, msg)
		}
	}
	cases := []struct {
		name   string
		as     string // uid of the caller; "" is no token
		method string
		path   string
		body   map[string]any
	}{
		{"anonymous look-up", "", "GET", "/peers/alice001", nil},
		{"anonymous list of peers", "", "GET", "/peers", nil},
		{"anonymous claim", "", "POST", "/claims?documentId=carol001", claimDoc("")},
		{"anonymous presence", "", "PATCH", "/peers/carol001", presenceDoc},
		{"anonymous offer", "", "POST", "/peers/alice001/inbox?documentId=anon", signalDoc},
		{"anonymous inbox read", "", "GET", "/peers/alice001/inbox", nil},
		{"anonymous delete", "", "DELETE", "/peers/alice001/inbox/sig1", nil},
		{"unclaimed account reads an inbox", "uid-nobody", "GET", "/peers/alice001/inbox", nil},
		{"unclaimed account sends as alice", "uid-nobody", "POST", "/peers/bob00001/inbox?documentId=forged", signalDoc},
		{"unclaimed account writes alice's presence", "uid-nobody", "PATCH", "/peers/alice001", presenceDoc},
		{"claim for another account", "uid-nobody", "POST", "/claims?documentId=carol001", claimDoc("uid-carol")},
		{"claim of a path-like ID", "uid-nobody", "POST", "/claims?documentId=CAROL", claimDoc("uid-nobody")},
		{"read of another's claim", "uid-nobody", "GET", "/claims/alice001", nil},
		{"list of claims", "uid-alice", "GET", "/claims", nil},
	}
	for _, c := range cases {
		if code, msg := do(c.as, c.method, c.path, c.body); code != http.StatusForbidden {
			t.Errorf("%s: %s %s as %q: status %d, want 403: %s", c.name, c.method, c.path, c.as, code, msg)
		}
	}
	// The same calls by the right account go through: the refusals above
	// are the rules' doing, not a broken set-up.
	for _, c := range []struct{ name, as, method, path string }{
		{"owner reads her inbox", "uid-alice", "GET", "/peers/alice001/inbox"},
		{"owner reads her claim", "uid-alice", "GET", "/claims/alice001"},
		{"signed-in look-up", "uid-nobody", "GET", "/peers/alice001"},
	} {
		if code, msg := do(c.as, c.method, c.path, nil); code != 200 {
			t.Errorf("%s: status %d, want 200: %s", c.name, code, msg)
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
