package firebaseauth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeService plays Identity Toolkit and Secure Token for unit tests: it
// issues tokens like the real service (one-hour ID tokens whose claims
// carry the account, project and issue time), or answers with a canned
// error body recorded from the real one.
type fakeService struct {
	t       *testing.T
	project string // aud of the tokens it issues
	clock   func() time.Time

	mu        sync.Mutex
	fail      map[string]failReply // by path: answer with this instead
	accounts  map[string]string    // refresh token -> uid
	lifetime  time.Duration
	calls     map[string]int
	lastQuery url.Values
}

type failReply struct {
	status int
	body   string
}

const (
	signUpPath  = "/identitytoolkit.googleapis.com/v1/accounts:signUp"
	refreshPath = "/securetoken.googleapis.com/v1/token"
)

func newFakeService(t *testing.T, clock func() time.Time) (*fakeService, *httptest.Server) {
	f := &fakeService{t: t, project: "demo-group", clock: clock, fail: map[string]failReply{}, accounts: map[string]string{}, lifetime: time.Hour, calls: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func (f *fakeService) idToken(uid string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	now := f.clock().Unix()
	return enc(map[string]any{"alg": "none"}) + "." + enc(map[string]any{"sub": uid, "user_id": uid, "aud": f.project, "iat": now, "exp": now + int64(f.lifetime/time.Second)}) + "."
}

func (f *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[r.URL.Path]++
	f.lastQuery = r.URL.Query()
	if fr, ok := f.fail[r.URL.Path]; ok {
		w.WriteHeader(fr.status)
		io.WriteString(w, fr.body)
		return
	}
	secs := fmt.Sprint(int(f.lifetime / time.Second))
	switch r.URL.Path {
	case signUpPath:
		uid := fmt.Sprintf("uid%04d", len(f.accounts)+1)
		rt := "refresh-" + uid
		f.accounts[rt] = uid
		json.NewEncoder(w).Encode(map[string]string{"localId": uid, "idToken": f.idToken(uid), "refreshToken": rt, "expiresIn": secs})
	case refreshPath:
		r.ParseForm()
		uid, ok := f.accounts[r.PostForm.Get("refresh_token")]
		if r.PostForm.Get("grant_type") != "refresh_token" || !ok {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":{"code":400,"message":"INVALID_REFRESH_TOKEN","status":"INVALID_ARGUMENT"}}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"user_id": uid, "id_token": f.idToken(uid), "refresh_token": r.PostForm.Get("refresh_token"), "expires_in": secs})
	default:
		w.WriteHeader(404)
	}
}

func (f *fakeService) failWith(path string, status int, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[path] = failReply{status, body}
}

func (f *fakeService) heal(path string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fail, path)
}

func (f *fakeService) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[path]
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newClock() *testClock { return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

// newTestAuth signs in to the fake service as if it were the emulator at
// its address (plain HTTP, no audience check).
func newTestAuth(t *testing.T, srv *httptest.Server, dir string, clock *testClock) *Auth {
	t.Helper()
	a, err := New(Config{ProjectID: "demo-group", APIKey: "key-0123456789", Emulator: strings.TrimPrefix(srv.URL, "http://"), Dir: dir, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSignUpOnceKeptInProfileWithMode0600(t *testing.T) {
	clock := newClock()
	svc, srv := newFakeService(t, clock.now)
	dir := t.TempDir()
	a := newTestAuth(t, srv, dir, clock)
	tok, err := a.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.UID() != "uid0001" || tok != svc.idToken("uid0001") {
		t.Fatalf("signed in as %q with %q", a.UID(), tok)
	}
	if got := svc.lastQuery.Get("key"); got != "key-0123456789" {
		t.Errorf("API key sent as %q", got)
	}
	path := filepath.Join(dir, TokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %04o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "refresh-uid0001") {
		t.Errorf("token file lacks the refresh token:\n%s", b)
	}
	// The next start uses the saved account and its still valid token:
	// no call at all.
	b2 := newTestAuth(t, srv, dir, clock)
	tok2, err := b2.Token(context.Background())
	if err != nil || tok2 != tok || b2.UID() != "uid0001" {
		t.Fatalf("second start: %q %q %v", b2.UID(), tok2, err)
	}
	// Once the saved token is old, it refreshes the same account.
	clock.advance(56 * time.Minute)
	b3 := newTestAuth(t, srv, dir, clock)
	if _, err := b3.Token(context.Background()); err != nil || b3.UID() != "uid0001" {
		t.Fatalf("third start: %q %v", b3.UID(), err)
	}
	if n := svc.count(signUpPath); n != 1 {
		t.Errorf("%d sign-ups, want 1", n)
	}
	if n := svc.count(refreshPath); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// One refresh per hour of running: an ID token is replaced RefreshMargin
// before its expiry, never used past it, never replaced early.
func TestRefreshOncePerTokenLifetime(t *testing.T) {
	clock := newClock()
	svc, srv := newFakeService(t, clock.now)
	a := newTestAuth(t, srv, t.TempDir(), clock)
	ctx := context.Background()
	var prev string
	changes := 0
	const hours = 5
	for minute := 0; minute <= hours*60; minute++ {
		tok, err := a.Token(ctx)
		if err != nil {
			t.Fatalf("minute %d: %v", minute, err)
		}
		claims, err := readClaims(tok)
		if err != nil {
			t.Fatal(err)
		}
		if left := time.Unix(claims.IssuedAt, 0).Add(time.Hour).Sub(clock.now()); left < RefreshMargin {
			t.Fatalf("minute %d: a token with %v left was handed out", minute, left)
		}
		if tok != prev {
			changes++
			prev = tok
		}
		clock.advance(time.Minute)
	}
	// Sign-up at 0, then a new token at 55, 110, 165, 220, 275 minutes.
	if n := svc.count(refreshPath); n != hours {
		t.Errorf("%d refreshes in %d hours, want %d", n, hours, hours)
	}
	if changes != hours+1 {
		t.Errorf("token changed %d times, want %d", changes, hours+1)
	}
	if s := a.Stats(); s.SignUps != 1 || s.Refreshes != hours {
		t.Errorf("stats %+v", s)
	}
}

func TestConcurrentCallersShareOneSignUp(t *testing.T) {
	clock := newClock()
	svc, srv := newFakeService(t, clock.now)
	a := newTestAuth(t, srv, t.TempDir(), clock)
	var wg sync.WaitGroup
	toks := make([]string, 16)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := a.Token(context.Background())
			if err != nil {
				t.Error(err)
			}
			toks[i] = tok
		}()
	}
	wg.Wait()
	for _, tok := range toks {
		if tok != toks[0] {
			t.Fatal("callers got different tokens")
		}
	}
	if n := svc.count(signUpPath); n != 1 {
		t.Fatalf("%d sign-ups for 16 concurrent callers, want 1", n)
	}
}

// The service's refusals, as recorded from it, each named in words and of
// the kind a caller branches on; nothing of the raw JSON shows.
func TestRefusalsInWords(t *testing.T) {
	cases := []struct {
		name   string
		path   string
		status int
		body   string
		kind   error
		words  string
	}{
		{"wrong API key", signUpPath, 400, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`,
			ErrAPIKey, "refused the Web API key"},
		{"key restricted to other APIs", signUpPath, 403, `{"error":{"code":403,"message":"Requests to this API identitytoolkit method are blocked.","status":"PERMISSION_DENIED","details":[{"reason":"API_KEY_SERVICE_BLOCKED"}]}}`,
			ErrAPIKey, "refused the Web API key"},
		{"anonymous sign-in off", signUpPath, 400, `{"error":{"code":400,"message":"ADMIN_ONLY_OPERATION","errors":[{"message":"ADMIN_ONLY_OPERATION","domain":"global","reason":"invalid"}]}}`,
			ErrAnonymousDisabled, "does not allow anonymous sign-in"},
		{"anonymous sign-in off, older wording", signUpPath, 400, `{"error":{"code":400,"message":"OPERATION_NOT_ALLOWED : Anonymous user sign-in is disabled for this project."}}`,
			ErrAnonymousDisabled, "does not allow anonymous sign-in"},
		{"auth not set up", signUpPath, 400, `{"error":{"code":400,"message":"CONFIGURATION_NOT_FOUND"}}`,
			ErrNotConfigured, "not set up in project demo-group"},
		{"rate limited", signUpPath, 400, `{"error":{"code":400,"message":"TOO_MANY_ATTEMPTS_TRY_LATER : Too many attempts."}}`,
			ErrUnreachable, "limiting sign-ins"},
		{"outage", signUpPath, 503, `<html>Service Unavailable</html>`,
			ErrUnreachable, "HTTP 503"},
		{"unknown refusal", signUpPath, 400, `{"error":{"code":400,"message":"WEIRD_THING\u001b[2J"}}`,
			ErrRefused, "WEIRD_THING"},
		{"not JSON", signUpPath, 400, `<<<`,
			ErrRefused, "HTTP 400"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clock := newClock()
			svc, srv := newFakeService(t, clock.now)
			svc.failWith(c.path, c.status, c.body)
			dir := t.TempDir()
			a := newTestAuth(t, srv, dir, clock)
			_, err := a.Token(context.Background())
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want kind %v", err, c.kind)
			}
			if !strings.Contains(err.Error(), c.words) {
				t.Errorf("words %q lack %q", err, c.words)
			}
			for _, raw := range []string{"{", "\"error\"", "\x1b", "key-0123456789"} {
				if strings.Contains(err.Error(), raw) {
					t.Errorf("words %q contain %q", err, raw)
				}
			}
			if a.Failure() == nil {
				t.Error("Failure() is nil after a failure")
			}
			// A failed sign-up leaves nothing in the profile.
			if _, err := os.Stat(filepath.Join(dir, TokenFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("token file after a failed sign-up: %v", err)
			}
		})
	}
}

// A revoked or damaged sign-in is ErrSignedOut, reported at once to every
// caller without asking again until RetrySignedOut has passed; if the
// admin restores the account, the next try after that works.
func TestSignedOutRetriedOnlyAfterAPeriod(t *testing.T) {
	for _, c := range []struct{ code, words string }{
		{"USER_DISABLED", "disabled this profile's sign-in"},
		{"USER_NOT_FOUND", "deleted this profile's sign-in"},
		{"TOKEN_EXPIRED", "revoked"},
		{"INVALID_REFRESH_TOKEN", "not valid"},
	} {
		t.Run(c.code, func(t *testing.T) {
			clock := newClock()
			svc, srv := newFakeService(t, clock.now)
			a := newTestAuth(t, srv, t.TempDir(), clock)
			if _, err := a.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			svc.failWith(refreshPath, 400, fmt.Sprintf(`{"error":{"code":400,"message":%q}}`, c.code))
			clock.advance(56 * time.Minute)
			_, err := a.Token(context.Background())
			if !errors.Is(err, ErrSignedOut) || !strings.Contains(err.Error(), c.words) {
				t.Fatalf("err = %v, want ErrSignedOut saying %q", err, c.words)
			}
			for range 10 {
				if _, err := a.Token(context.Background()); !errors.Is(err, ErrSignedOut) {
					t.Fatalf("err = %v", err)
				}
				clock.advance(RetrySignedOut / 20)
			}
			if n := svc.count(refreshPath); n != 1 {
				t.Fatalf("%d refresh calls within the retry period, want 1", n)
			}
			svc.heal(refreshPath)
			clock.advance(RetrySignedOut)
			if _, err := a.Token(context.Background()); err != nil {
				t.Fatalf("after the admin restored it: %v", err)
			}
			if a.Failure() != nil {
				t.Errorf("Failure() = %v after a success", a.Failure())
			}
		})
	}
}

// While the service cannot be reached, a token still valid is used; only
// when it has expired does the caller see ErrUnreachable, and every call
// tries again (it is not remembered like a refusal).
func TestUnreachableKeepsTheValidToken(t *testing.T) {
	clock := newClock()
	svc, srv := newFakeService(t, clock.now)
	a := newTestAuth(t, srv, t.TempDir(), clock)
	tok, err := a.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	svc.failWith(refreshPath, 503, "")
	clock.advance(57 * time.Minute)
	got, err := a.Token(context.Background())
	if err != nil || got != tok {
		t.Fatalf("during an outage before expiry: %v (same token: %v)", err, got == tok)
	}
	clock.advance(4 * time.Minute)
	if _, err := a.Token(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("after expiry: %v, want ErrUnreachable", err)
	}
	before := svc.count(refreshPath)
	a.Token(context.Background())
	if svc.count(refreshPath) != before+1 {
		t.Error("an outage was remembered instead of retried")
	}
	svc.heal(refreshPath)
	if _, err := a.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestNetworkFailureIsUnreachableWithoutTheKey(t *testing.T) {
	clock := newClock()
	_, srv := newFakeService(t, clock.now)
	host := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	a, err := New(Config{ProjectID: "demo-group", APIKey: "key-0123456789", Emulator: host, Dir: t.TempDir(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Token(context.Background())
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "key-0123456789") {
		t.Fatalf("err = %v", err)
	}
}

// Against Google's service the token's audience must be the project named
// in the join code: the API key decides where an account is made.
func TestWrongProjectCaught(t *testing.T) {
	clock := newClock()
	svc, srv := newFakeService(t, clock.now)
	svc.project = "someone-elses"
	target, _ := url.Parse(srv.URL)
	// The real endpoints (https://identitytoolkit.googleapis.com/...) are
	// sent to the fake service.
	client := &http.Client{Transport: rewrite{target: target}}
	dir := t.TempDir()
	a, err := New(Config{ProjectID: "demo-group", APIKey: "key-0123456789", Dir: dir, HTTP: client, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Token(context.Background())
	if !errors.Is(err, ErrWrongProject) || !strings.Contains(err.Error(), `belongs to project "someone-elses", not "demo-group"`) {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, TokenFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an account of the wrong project was saved: %v", err)
	}
	svc.project = "demo-group"
	if _, err := a.Token(context.Background()); !errors.Is(err, ErrWrongProject) {
		t.Errorf("retried at once: %v", err)
	}
}

type rewrite struct{ target *url.URL }

func (r rewrite) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return nil, fmt.Errorf("sign-in over %s", req.URL.Scheme)
	}
	req = req.Clone(req.Context())
	req.URL.Path = "/" + req.URL.Host + req.URL.Path
	req.URL.Scheme, req.URL.Host = r.target.Scheme, r.target.Host
	return http.DefaultTransport.RoundTrip(req)
}

func TestTokenFileRefusedWhenOthersCanRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits mean nothing on Windows")
	}
	clock := newClock()
	_, srv := newFakeService(t, clock.now)
	dir := t.TempDir()
	if _, err := newTestAuth(t, srv, dir, clock).Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, TokenFile)
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{ProjectID: "demo-group", APIKey: "k", Emulator: "x", Dir: dir})
		if !errors.Is(err, ErrTokenFile) || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("mode %04o: err = %v", mode, err)
		}
	}
}

func TestDamagedTokenFileIsNotOverwritten(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, TokenFile)
	for _, body := range []string{"{{{", `{"v":2,"accounts":{}}`, strings.Repeat(" ", maxTokenFile+10)} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := New(Config{ProjectID: "demo-group", APIKey: "k", Emulator: "x", Dir: dir})
		if !errors.Is(err, ErrTokenFile) {
			t.Errorf("%.10q: err = %v", body, err)
		}
		if b, _ := os.ReadFile(path); string(b) != body {
			t.Errorf("%.10q: file changed", body)
		}
	}
}

// Accounts of different projects, and of an emulator, live side by side:
// joining another group and coming back keeps the first account.
func TestAccountsKeptPerProject(t *testing.T) {
	clock := newClock()
	_, srv := newFakeService(t, clock.now)
	dir := t.TempDir()
	a := newTestAuth(t, srv, dir, clock)
	if _, err := a.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.MarkClaimed("alice001"); err != nil {
		t.Fatal(err)
	}
	other, err := New(Config{ProjectID: "other-group", APIKey: "key-0123456789", Emulator: strings.TrimPrefix(srv.URL, "http://"), Dir: dir, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if other.UID() == a.UID() || other.Claimed("alice001") {
		t.Fatalf("the other project shares the account %q or its claim", other.UID())
	}
	back := newTestAuth(t, srv, dir, clock)
	if back.UID() != a.UID() || !back.Claimed("alice001") {
		t.Fatalf("back in the first project as %q (claimed %v), want %q", back.UID(), back.Claimed("alice001"), a.UID())
	}
	real, err := New(Config{ProjectID: "demo-group", APIKey: "k", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if real.UID() != "" {
		t.Errorf("the real project got the emulator's account %q", real.UID())
	}
}

func TestCredentialsCarryTheTokenOrAStatus(t *testing.T) {
	clock := newClock()
	svc, srv := newFakeService(t, clock.now)
	a := newTestAuth(t, srv, t.TempDir(), clock)
	if !a.Credentials(true).RequireTransportSecurity() || a.Credentials(false).RequireTransportSecurity() {
		t.Error("transport security requirement not as asked")
	}
	md, err := a.Credentials(false).GetRequestMetadata(context.Background())
	if err != nil || md["authorization"] != "Bearer "+svc.idToken("uid0001") {
		t.Fatalf("metadata %v, %v", md, err)
	}
	svc.failWith(refreshPath, 400, `{"error":{"code":400,"message":"USER_DISABLED"}}`)
	clock.advance(time.Hour)
	_, err = a.Credentials(false).GetRequestMetadata(context.Background())
	if st := status.Convert(err); st.Code() != codes.Unauthenticated || !strings.Contains(st.Message(), "disabled") {
		t.Errorf("signed out: %v", err)
	}
	svc.failWith(refreshPath, 503, "")
	clock.advance(time.Hour)
	_, err = a.Credentials(false).GetRequestMetadata(context.Background())
	if status.Code(err) != codes.Unavailable {
		t.Errorf("outage: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.Credentials(false).GetRequestMetadata(ctx); status.Code(err) != codes.Canceled {
		t.Errorf("cancelled: %v", err)
	}
}

func TestServerClockLearntFromTheToken(t *testing.T) {
	clock := newClock()
	var serviceAhead atomic.Int64
	svc, srv := newFakeService(t, func() time.Time { return clock.now().Add(time.Duration(serviceAhead.Load())) })
	_ = svc
	a := newTestAuth(t, srv, t.TempDir(), clock)
	serviceAhead.Store(int64(3 * time.Minute))
	if _, err := a.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := a.ServerNow().Sub(clock.now()); d != 3*time.Minute {
		t.Errorf("server clock %v ahead, want 3m", d)
	}
	serviceAhead.Store(int64(2 * time.Second))
	clock.advance(time.Hour)
	if _, err := a.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := a.ServerNow().Sub(clock.now()); d != 0 {
		t.Errorf("a 2 s difference (within iat rounding) taken as %v", d)
	}
}

// FuzzReadClaims feeds the ID token decoder anything: it must refuse or
// decode, never panic, and a decoded token has an issue time.
func FuzzReadClaims(f *testing.F) {
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1IiwiYXVkIjoicCIsImlhdCI6MX0.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("x.eyJpYXQiOi0xfQ.y")
	f.Fuzz(func(t *testing.T, jwt string) {
		c, err := readClaims(jwt)
		if err == nil && c.IssuedAt <= 0 {
			t.Fatalf("accepted %q without an issue time", jwt)
		}
	})
}
