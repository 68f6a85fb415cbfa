package firebaseauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The two Google APIs a Firebase client signs in with. The Auth emulator
// serves both under its own address, each below a path named after the
// host (http://HOST:PORT/identitytoolkit.googleapis.com/v1/...).
const (
	identityToolkit = "identitytoolkit.googleapis.com"
	secureToken     = "securetoken.googleapis.com"
)

// maxResponse bounds what is read of an answer: a token response is about
// 2 KB, an error well under that.
const maxResponse = 64 << 10

// grant is what a sign-up or a refresh hands out.
type grant struct {
	uid          string
	idToken      string
	refreshToken string
	lifetime     time.Duration // of idToken, as the service said
	issuedAt     time.Time     // the token's iat: the service's clock
	audience     string        // the token's aud: the project it is for
}

func (a *Auth) endpoint(host, path string) string {
	q := "?key=" + url.QueryEscape(a.cfg.APIKey)
	if a.cfg.Emulator != "" {
		return "http://" + a.cfg.Emulator + "/" + host + path + q
	}
	return "https://" + host + path + q
}

// signUp creates a new anonymous account (Identity Toolkit
// accounts:signUp with no credentials and returnSecureToken).
func (a *Auth) signUp(ctx context.Context) (grant, error) {
	a.signUps.Add(1)
	var out struct {
		LocalID      string `json:"localId"`
		IDToken      string `json:"idToken"`
		RefreshToken string `json:"refreshToken"`
		ExpiresIn    string `json:"expiresIn"`
	}
	body := bytes.NewBufferString(`{"returnSecureToken":true}`)
	if err := a.post(ctx, "sign in", a.endpoint(identityToolkit, "/v1/accounts:signUp"), "application/json", body, &out); err != nil {
		return grant{}, err
	}
	return a.makeGrant(out.LocalID, out.IDToken, out.RefreshToken, out.ExpiresIn)
}

// refresh exchanges a refresh token for a new ID token (Secure Token API,
// grant_type refresh_token).
func (a *Auth) refresh(ctx context.Context, refreshToken string) (grant, error) {
	a.refreshes.Add(1)
	var out struct {
		UserID       string `json:"user_id"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    string `json:"expires_in"`
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if err := a.post(ctx, "refresh the sign-in", a.endpoint(secureToken, "/v1/token"), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &out); err != nil {
		return grant{}, err
	}
	if out.RefreshToken == "" {
		out.RefreshToken = refreshToken
	}
	return a.makeGrant(out.UserID, out.IDToken, out.RefreshToken, out.ExpiresIn)
}

func (a *Auth) post(ctx context.Context, what, u, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := a.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return failure(ErrUnreachable, fmt.Sprintf("cannot reach Firebase Authentication to %s (%s)", what, netWords(err)))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return failure(ErrUnreachable, fmt.Sprintf("Firebase Authentication's answer to %s broke off (%s)", what, netWords(err)))
	}
	if resp.StatusCode != http.StatusOK {
		return a.classify(what, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return failure(ErrRefused, fmt.Sprintf("Firebase Authentication answered %s with something that is not a token", what))
	}
	return nil
}

// netWords is a transport error without the request URL, which carries the
// API key and says nothing a person needs.
func netWords(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// makeGrant checks a token response and reads the claims it needs from the
// ID token. The token's signature is not checked: the client only reads
// what the service just told it over TLS; Firestore checks the signature.
func (a *Auth) makeGrant(uid, idToken, refreshToken, expiresIn string) (grant, error) {
	bad := func(why string) (grant, error) {
		return grant{}, failure(ErrRefused, "Firebase Authentication sent an unusable token ("+why+")")
	}
	if idToken == "" || refreshToken == "" {
		return bad("a token is missing")
	}
	secs, err := strconv.Atoi(expiresIn)
	if err != nil || secs <= 0 {
		return bad("no lifetime")
	}
	claims, err := readClaims(idToken)
	if err != nil {
		return bad(err.Error())
	}
	if uid == "" {
		uid = claims.Subject
	}
	if uid == "" || uid != claims.Subject || len(uid) > 128 {
		return bad("its user ID does not match")
	}
	return grant{
		uid: uid, idToken: idToken, refreshToken: refreshToken,
		lifetime: time.Duration(secs) * time.Second,
		issuedAt: time.Unix(claims.IssuedAt, 0), audience: claims.Audience,
	}, nil
}

// idClaims are the ID token claims the client reads.
type idClaims struct {
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	IssuedAt int64  `json:"iat"`
}

func readClaims(jwt string) (idClaims, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return idClaims{}, errors.New("not a JWT")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return idClaims{}, errors.New("undecodable claims")
	}
	var c idClaims
	if err := json.Unmarshal(raw, &c); err != nil {
		return idClaims{}, errors.New("undecodable claims")
	}
	if c.IssuedAt <= 0 {
		return idClaims{}, errors.New("no issue time")
	}
	return c, nil
}

// apiError is Google's JSON error body.
type apiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

// classify turns a refusal into words. Identity Toolkit and Secure Token
// put a code word first in the message ("USER_DISABLED",
// "TOO_MANY_ATTEMPTS_TRY_LATER : ..."); an API key problem comes from the
// API front end instead, as "API key not valid..." with an API_KEY_*
// reason.
func (a *Auth) classify(what string, code int, body []byte) error {
	var e apiError
	_ = json.Unmarshal(body, &e)
	msg := e.Error.Message
	word := msg
	if i := strings.IndexAny(word, " :"); i >= 0 {
		word = word[:i]
	}
	project := a.cfg.ProjectID
	for _, d := range e.Error.Details {
		if strings.HasPrefix(d.Reason, "API_KEY_") {
			word = "API_KEY"
		}
	}
	if strings.Contains(msg, "API key") {
		word = "API_KEY"
	}
	switch word {
	case "USER_DISABLED":
		return failure(ErrSignedOut, "the group's admin disabled this profile's sign-in")
	case "USER_NOT_FOUND":
		return failure(ErrSignedOut, "the group's admin deleted this profile's sign-in")
	case "TOKEN_EXPIRED", "CREDENTIAL_TOO_OLD_LOGIN_AGAIN":
		return failure(ErrSignedOut, "this profile's sign-in was revoked")
	case "INVALID_REFRESH_TOKEN", "MISSING_REFRESH_TOKEN", "INVALID_GRANT_TYPE":
		return failure(ErrSignedOut, "the sign-in saved in the profile is not valid (damaged, or deleted by the group's admin)")
	case "PROJECT_NUMBER_MISMATCH":
		return failure(ErrSignedOut, "the sign-in saved in the profile belongs to another project")
	case "ADMIN_ONLY_OPERATION", "OPERATION_NOT_ALLOWED":
		return failure(ErrAnonymousDisabled, fmt.Sprintf("project %s does not allow anonymous sign-in (its admin can turn it on: Firebase console, Authentication, Sign-in method, Anonymous)", project))
	case "CONFIGURATION_NOT_FOUND", "PROJECT_NOT_FOUND":
		return failure(ErrNotConfigured, fmt.Sprintf("Firebase Authentication is not set up in project %s (its admin must open Authentication in the Firebase console once)", project))
	case "API_KEY":
		return failure(ErrAPIKey, fmt.Sprintf("project %s refused the Web API key of the join code (mistyped, deleted, or restricted so that it may not call Firebase Authentication)", project))
	case "TOO_MANY_ATTEMPTS_TRY_LATER", "QUOTA_EXCEEDED":
		return failure(ErrUnreachable, "Firebase Authentication is limiting sign-ins from this address for now; p2ptui tries again later")
	}
	switch {
	case code == http.StatusTooManyRequests || code >= 500:
		return failure(ErrUnreachable, fmt.Sprintf("Firebase Authentication could not %s just now (HTTP %d)", what, code))
	case word == "":
		return failure(ErrRefused, fmt.Sprintf("Firebase Authentication refused to %s (HTTP %d)", what, code))
	}
	return failure(ErrRefused, fmt.Sprintf("Firebase Authentication refused to %s: %s", what, printable(word, 60)))
}

// printable keeps a service-supplied word safe to show: letters, digits,
// '_' and '-', at most n of them.
func printable(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= n {
			break
		}
		if r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}
