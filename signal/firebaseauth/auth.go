// Package firebaseauth signs a p2ptui profile in to Firebase Authentication
// by itself, anonymously, through the Identity Toolkit and Secure Token REST
// APIs, with nothing but a project's public Web API key. It keeps the
// refresh token in the profile directory, hands out an ID token that is
// replaced before it expires, and offers it as gRPC per-RPC credentials so
// that a Firestore client presenting it is judged by the project's security
// rules.
//
// The Firebase Auth emulator is used when Config.Emulator names it; it
// serves the same two APIs below its own address.
package firebaseauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// RefreshMargin is how long before its expiry an ID token is replaced, so
// that no request carries a token that expires on its way. Firebase's own
// SDKs use the same five minutes; with the service's one-hour tokens that
// is one refresh every 55 minutes.
const RefreshMargin = 5 * time.Minute

// RetrySignedOut is how long a failure that will not heal by itself
// (ErrSignedOut, ErrAPIKey, ...) is reported without asking the service
// again: if the group's admin fixes it, p2ptui notices within this time,
// and a program left running costs one call per period, not one per request.
const RetrySignedOut = 5 * time.Minute

// skewIgnored is the difference to the service's clock below which the
// local clock is trusted: iat has whole seconds, so smaller differences are
// mostly rounding and latency.
const skewIgnored = 10 * time.Second

// httpTimeout bounds one call to the service when the caller's context
// does not.
const httpTimeout = 30 * time.Second

// Config says which project to sign in to and where the profile lives.
type Config struct {
	// ProjectID and APIKey name the Firebase project and its public Web API
	// key (both come from the group's join code).
	ProjectID string
	APIKey    string
	// Emulator is the Auth emulator's host:port (the value of
	// FIREBASE_AUTH_EMULATOR_HOST); empty means Google's service.
	Emulator string
	// Dir is the profile directory; TokenFile is kept there.
	Dir string
	// HTTP is the client for the REST calls; nil means one with a timeout.
	HTTP *http.Client
	// Now is the clock; nil means time.Now. Tests move it to make tokens
	// expire.
	Now func() time.Time
}

// Stats counts calls to the service since New.
type Stats struct {
	SignUps   int64 // accounts:signUp calls
	Refreshes int64 // token refresh calls
}

// Auth is one profile's sign-in to one project. It is safe for concurrent
// use; concurrent callers that need a new token share one call.
type Auth struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
	path string // token file
	key  string // this project's entry in it

	mu        sync.Mutex
	file      *tokens
	acct      *account  // nil until the first sign-up
	refreshAt time.Time // when acct.IDToken is to be replaced
	fail      error     // the last failure, nil after a success
	failedAt  time.Time
	inflight  chan struct{} // closed when the running sign-in call ends
	skew      time.Duration // service clock minus local clock

	signUps, refreshes atomic.Int64
}

// New prepares a sign-in; it reads the token file but does not call the
// service (the first Token does).
func New(cfg Config) (*Auth, error) {
	if cfg.ProjectID == "" || cfg.APIKey == "" {
		return nil, errors.New("firebase sign-in: project ID and API key are both needed")
	}
	if cfg.Dir == "" {
		return nil, errors.New("firebase sign-in: no profile directory")
	}
	a := &Auth{cfg: cfg, http: cfg.HTTP, now: cfg.Now, path: filepath.Join(cfg.Dir, TokenFile), key: cfg.ProjectID}
	if a.http == nil {
		// One call an hour gains nothing from a kept-alive connection,
		// which would outlive its owner's Close as two goroutines.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.DisableKeepAlives = true
		a.http = &http.Client{Timeout: httpTimeout, Transport: tr}
	}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.Emulator != "" {
		// Emulator accounts are worthless against the real project and
		// the other way round: keep them apart.
		a.key = "emulator:" + cfg.ProjectID
	}
	f, err := loadTokens(a.path)
	if err != nil {
		return nil, err
	}
	a.file = f
	if acct := f.Accounts[a.key]; acct != nil {
		a.acct = acct
		a.refreshAt = acct.Expires.Add(-RefreshMargin)
	}
	return a, nil
}

// ProjectID is the project signed in to.
func (a *Auth) ProjectID() string { return a.cfg.ProjectID }

// Emulated reports whether the Auth emulator is used.
func (a *Auth) Emulated() bool { return a.cfg.Emulator != "" }

// UID is the signed-in account's user ID, empty before the first sign-in.
func (a *Auth) UID() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acct == nil {
		return ""
	}
	return a.acct.UID
}

// Stats reports the calls made to the service.
func (a *Auth) Stats() Stats {
	return Stats{SignUps: a.signUps.Load(), Refreshes: a.refreshes.Load()}
}

// Failure is the last sign-in failure, or nil when the last call (or none
// yet) succeeded.
func (a *Auth) Failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.fail
}

// ServerNow is the local clock corrected by the service's, as learnt from
// the issue time of the last ID token. Timestamps that the security rules
// compare with the request time are anchored on it.
func (a *Auth) ServerNow() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now().Add(a.skew)
}

// Token returns an ID token valid for at least RefreshMargin (or, while the
// service cannot be reached, the one still valid), signing up or refreshing
// first when needed.
func (a *Auth) Token(ctx context.Context) (string, error) {
	for {
		a.mu.Lock()
		now := a.now()
		if a.acct != nil && a.acct.IDToken != "" && now.Before(a.refreshAt) {
			tok := a.acct.IDToken
			a.mu.Unlock()
			return tok, nil
		}
		if permanent(a.fail) && now.Sub(a.failedAt) < RetrySignedOut && !now.Before(a.failedAt) {
			err := a.fail
			a.mu.Unlock()
			return "", err
		}
		if ch := a.inflight; ch != nil {
			a.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		ch := make(chan struct{})
		a.inflight = ch
		refreshToken := ""
		if a.acct != nil {
			refreshToken = a.acct.RefreshToken
		}
		a.mu.Unlock()
		return a.fetch(ctx, refreshToken, ch)
	}
}

// fetch makes the one call that the caller of Token won the right to make,
// and installs what it brings.
func (a *Auth) fetch(ctx context.Context, refreshToken string, done chan struct{}) (string, error) {
	var g grant
	var err error
	if refreshToken == "" {
		g, err = a.signUp(ctx)
	} else {
		g, err = a.refresh(ctx, refreshToken)
	}
	if err == nil && !a.Emulated() && g.audience != a.cfg.ProjectID {
		// The API key picks the project; a code that pairs one project's
		// name with another's key would sign in to the wrong one.
		err = failure(ErrWrongProject, fmt.Sprintf("the join code's Web API key belongs to project %q, not %q: the code is wrong", printable(g.audience, 40), a.cfg.ProjectID))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	defer close(done)
	a.inflight = nil
	now := a.now()
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return "", err // the caller gave up; that says nothing about the service
		}
		a.fail, a.failedAt = err, now
		if !permanent(err) && a.acct != nil && a.acct.IDToken != "" && now.Before(a.acct.Expires) {
			return a.acct.IDToken, nil
		}
		return "", err
	}
	margin := min(RefreshMargin, g.lifetime/2)
	skew := g.issuedAt.Sub(now)
	if skew < skewIgnored && skew > -skewIgnored {
		skew = 0
	}
	if a.acct == nil {
		acct := &account{UID: g.uid, RefreshToken: g.refreshToken, IDToken: g.idToken, Expires: now.Add(g.lifetime)}
		a.file.Accounts[a.key] = acct
		// Without its refresh token the account, and the ID it is about
		// to claim, would be lost at the next start: no token unsaved.
		if err := a.file.save(a.path); err != nil {
			delete(a.file.Accounts, a.key)
			return "", fmt.Errorf("keep the new sign-in in the profile: %w", err)
		}
		a.acct = acct
	} else {
		if g.uid != a.acct.UID {
			err := failure(ErrSignedOut, "the service answered the saved sign-in with another account")
			a.fail, a.failedAt = err, now
			return "", err
		}
		rotated := g.refreshToken != a.acct.RefreshToken
		a.acct.RefreshToken, a.acct.IDToken, a.acct.Expires = g.refreshToken, g.idToken, now.Add(g.lifetime)
		// Saving only spares a refresh at the next start, unless the
		// refresh token itself changed.
		if err := a.file.save(a.path); err != nil && rotated {
			return "", fmt.Errorf("keep the refreshed sign-in in the profile: %w", err)
		}
	}
	a.refreshAt = now.Add(g.lifetime - margin)
	a.fail = nil
	a.skew = skew
	return g.idToken, nil
}

// Claimed reports whether this account is known to hold the claim on id.
func (a *Auth) Claimed(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.acct != nil && a.acct.claimed(id)
}

// MarkClaimed records in the profile that this account holds the claim on
// id, so later starts need not claim it again.
func (a *Auth) MarkClaimed(id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.acct == nil {
		return errors.New("record the ID claim: not signed in")
	}
	if a.acct.claimed(id) {
		return nil
	}
	a.acct.Claimed = append(a.acct.Claimed, id)
	if err := a.file.save(a.path); err != nil {
		a.acct.Claimed = a.acct.Claimed[:len(a.acct.Claimed)-1]
		return fmt.Errorf("record the ID claim: %w", err)
	}
	return nil
}

// Credentials returns gRPC per-RPC credentials that put the ID token on
// every request. secure says whether the connection is TLS (it is, except
// to an emulator on loopback); the token is never sent over a plain one
// otherwise.
func (a *Auth) Credentials(secure bool) credentials.PerRPCCredentials {
	return rpcCredentials{a: a, secure: secure}
}

type rpcCredentials struct {
	a      *Auth
	secure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials. A failure
// is returned as a gRPC status (Unavailable while the service cannot be
// reached, so the Firestore client retries; Unauthenticated otherwise)
// whose message is the plain words.
func (c rpcCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	tok, err := c.a.Token(ctx)
	switch {
	case err == nil:
		return map[string]string{"authorization": "Bearer " + tok}, nil
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, ErrUnreachable):
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return nil, status.Error(codes.Unauthenticated, err.Error())
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (c rpcCredentials) RequireTransportSecurity() bool { return c.secure }
