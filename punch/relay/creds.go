package relay

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// DefaultCredentialLifetime is how long time-limited credentials made from
// a shared secret are valid: the TURN REST convention's usual day, longer
// than a chat session, since the client sends the same user name with
// every refresh of the allocation.
const DefaultCredentialLifetime = 24 * time.Hour

// ErrBadCredentials is wrapped by the errors of NewCredentials and
// ReadSecretFile.
var ErrBadCredentials = errors.New("bad TURN credentials")

// Credentials authenticate to a TURN server with the long-term credential
// mechanism (RFC 8489 section 9.2). Either a password (a user the server
// knows: coturn's --user or user database) or a secret shared with the
// server (coturn's use-auth-secret / static-auth-secret), from which
// time-limited credentials are made for each allocation as the TURN REST
// convention has it: user name "EXPIRY:USER" (EXPIRY in Unix seconds; just
// "EXPIRY" without a user), password base64(HMAC-SHA1(secret, user
// name)). The password and the secret never appear in any string or
// error this package makes.
type Credentials struct {
	user     string
	password string
	secret   string
	lifetime time.Duration
}

// NewCredentials checks a user and either a password or a shared secret
// (the other empty). A password needs a user; with a secret the user is
// optional. lifetime applies to credentials made from the secret (zero:
// DefaultCredentialLifetime).
func NewCredentials(user, password, secret string, lifetime time.Duration) (Credentials, error) {
	switch {
	case password != "" && secret != "":
		return Credentials{}, fmt.Errorf("%w: give a password or a shared secret, not both", ErrBadCredentials)
	case password == "" && secret == "":
		return Credentials{}, fmt.Errorf("%w: a password or a shared secret is needed", ErrBadCredentials)
	case password != "" && user == "":
		return Credentials{}, fmt.Errorf("%w: a password needs a user name (--turn-user)", ErrBadCredentials)
	case lifetime < 0:
		return Credentials{}, fmt.Errorf("%w: negative lifetime", ErrBadCredentials)
	}
	for what, v := range map[string]string{"user name": user, "password": password, "shared secret": secret} {
		if err := checkText(what, v); err != nil {
			return Credentials{}, err
		}
	}
	if secret != "" && strings.Contains(user, ":") {
		return Credentials{}, fmt.Errorf("%w: with a shared secret the user name cannot contain ':' (it separates the expiry)", ErrBadCredentials)
	}
	if lifetime == 0 {
		lifetime = DefaultCredentialLifetime
	}
	return Credentials{user: user, password: password, secret: secret, lifetime: lifetime}, nil
}

// checkText refuses what a STUN USERNAME or a password file should not
// hold: control characters, invalid UTF-8, more than RFC 8489's 509 bytes.
func checkText(what, s string) error {
	if !utf8.ValidString(s) || len(s) > 509 {
		return fmt.Errorf("%w: the %s is not valid UTF-8 of at most 509 bytes", ErrBadCredentials, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: the %s contains a control character", ErrBadCredentials, what)
		}
	}
	return nil
}

// Shared reports whether the credentials come from a shared secret.
func (c Credentials) Shared() bool { return c.secret != "" }

// forAllocation is the user name and password to allocate with at now.
func (c Credentials) forAllocation(now time.Time) (user, password string) {
	if c.secret == "" {
		return c.user, c.password
	}
	return RESTCredentials(c.secret, c.user, now.Add(c.lifetime))
}

// describe names the credential in an error: the user name, and where
// the password came from; never the password or the secret.
func (c Credentials) describe(now time.Time) string {
	if c.secret != "" {
		user, _ := c.forAllocation(now)
		return fmt.Sprintf("time-limited user %q made from the shared secret", user)
	}
	return fmt.Sprintf("user %q with its password", c.user)
}

// String names the credentials without the password or secret, so that
// printing them by mistake reveals nothing.
func (c Credentials) String() string {
	if c.secret != "" {
		return fmt.Sprintf("shared-secret credentials for %q", c.user)
	}
	return fmt.Sprintf("password credentials for %q", c.user)
}

// RESTCredentials makes TURN REST time-limited credentials: user name
// "EXPIRY:USER" ("EXPIRY" when user is empty), password
// base64(HMAC-SHA1(secret, user name)), as coturn's use-auth-secret
// checks them.
func RESTCredentials(secret, user string, expiry time.Time) (username, password string) {
	username = strconv.FormatInt(expiry.Unix(), 10)
	if user != "" {
		username += ":" + user
	}
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ReadSecretFile reads a password or shared secret from a file: its first
// line without the line ending (so "echo pass > f" works). An empty file,
// a file of more than one non-empty line, or control characters are an
// error naming the file, never its content.
func ReadSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%w: %s is %d bytes; a password file holds one line", ErrBadCredentials, path, len(b))
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case s == "":
		return "", fmt.Errorf("%w: %s is empty", ErrBadCredentials, path)
	case strings.ContainsAny(s, "\r\n"):
		return "", fmt.Errorf("%w: %s has more than one line; it must hold the password alone", ErrBadCredentials, path)
	}
	if err := checkText("content of "+path, s); err != nil {
		return "", err
	}
	return s, nil
}
