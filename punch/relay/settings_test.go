package relay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testNow = time.Unix(1_700_000_000, 0)

func TestParseSettings(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := ParseSettings(Input{})
	if err != nil || s.Enabled() {
		t.Fatalf("nothing given: %+v, %v", s, err)
	}
	s, err = ParseSettings(Input{EnvPassword: "x", EnvSecret: "y"})
	if err != nil || s.Enabled() {
		t.Fatalf("environment alone must be ignored: %+v, %v", s, err)
	}

	s, err = ParseSettings(Input{URIs: []string{"turn:a.example,turn:b.example:3479", "turn:a.example"}, User: "alice", EnvPassword: "pw"})
	if err != nil || len(s.Servers) != 2 || s.Credentials.Shared() {
		t.Fatalf("two servers, password from the environment: %+v, %v", s, err)
	}
	if u, p := s.Credentials.forAllocation(testNow); u != "alice" || p != "pw" {
		t.Errorf("credentials %q %q", u, p)
	}
	// A file wins over the environment.
	s, err = ParseSettings(Input{URIs: []string{"turn:a.example"}, User: "alice", EnvPassword: "env", PasswordFile: pwFile})
	if _, p := s.Credentials.forAllocation(testNow); err != nil || p != "from-file" {
		t.Errorf("password file: %q, %v", p, err)
	}
	s, err = ParseSettings(Input{URIs: []string{"turn:a.example"}, SecretFile: pwFile})
	if err != nil || !s.Credentials.Shared() {
		t.Errorf("secret file: %+v, %v", s, err)
	}

	bad := []struct {
		in   Input
		want string
		is   error
	}{
		{Input{URIs: []string{"turns:a"}, User: "u", EnvPassword: "p"}, "TLS", ErrBadURI},
		{Input{URIs: []string{"turn:a"}}, "needs credentials", nil},
		{Input{URIs: []string{"turn:a"}, EnvPassword: "p"}, "needs a user name", ErrBadCredentials},
		{Input{URIs: []string{"turn:a"}, User: "u", EnvPassword: "p", EnvSecret: "s"}, "both", nil},
		{Input{URIs: []string{"turn:a"}, User: "u", PasswordFile: empty}, "empty", ErrBadCredentials},
		{Input{URIs: []string{"turn:a"}, User: "u", PasswordFile: filepath.Join(dir, "nope")}, "no such file", ErrBadCredentials},
		{Input{User: "u", PasswordFile: pwFile}, "--turn-user and --turn-password-file given without --turn", nil},
	}
	for _, c := range bad {
		_, err := ParseSettings(c.in)
		if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
			t.Errorf("%+v: %v; want %q", c.in, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "from-file") {
			t.Errorf("error %q shows a password", err)
		}
	}
}

func TestCheckArgs(t *testing.T) {
	for _, args := range [][]string{
		{"--turn-password=hunter2"}, {"-turn-password", "hunter2"}, {"--name", "x", "--turn-secret=s"},
	} {
		err := CheckArgs(args)
		if !errors.Is(err, ErrSettings) || !strings.Contains(err.Error(), EnvPassword) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: %v", args, err)
		}
	}
	for _, args := range [][]string{
		nil, {"--turn-password-file", "f"}, {"--turn-user", "turn-password"}, {"--", "--turn-password"},
	} {
		if err := CheckArgs(args); err != nil {
			t.Errorf("%q refused: %v", args, err)
		}
	}
}
