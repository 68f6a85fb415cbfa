package relay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseURI(t *testing.T) {
	good := []struct {
		in   string
		want Server
		str  string
	}{
		{"turn:203.0.113.20", Server{"203.0.113.20", 3478}, "turn:203.0.113.20:3478"},
		{"turn:203.0.113.20:3479", Server{"203.0.113.20", 3479}, "turn:203.0.113.20:3479"},
		{"TURN:turn.example.org?transport=udp", Server{"turn.example.org", 3478}, "turn:turn.example.org:3478"},
		{"turn:turn.example.org:443?transport=UDP", Server{"turn.example.org", 443}, "turn:turn.example.org:443"},
		{"turn:[2001:db8::20]:3478", Server{"2001:db8::20", 3478}, "turn:[2001:db8::20]:3478"},
		{"turn:[2001:db8::20]", Server{"2001:db8::20", 3478}, "turn:[2001:db8::20]:3478"},
		{"turn:relay_1.lan.", Server{"relay_1.lan.", 3478}, "turn:relay_1.lan.:3478"},
	}
	for _, c := range good {
		got, err := ParseURI(c.in)
		if err != nil || got != c.want || got.String() != c.str {
			t.Errorf("ParseURI(%q) = %+v (%q), %v; want %+v (%q)", c.in, got, got.String(), err, c.want, c.str)
		}
	}
	bad := map[string]string{
		"":                                "empty",
		"203.0.113.20:3478":               "want turn:",
		"turn.example.org:3478":           "want turn:",
		"turns:turn.example.org":          "TLS",
		"stun:stun.example.org":           "cannot relay",
		"http:x":                          "unknown scheme",
		"turn://turn.example.org":         `no "//"`,
		"turn:alice:pw@turn.example.org":  "--turn-user",
		"turn:turn.example.org/path":      "path",
		"turn:turn.example.org#frag":      "fragment",
		"turn:turn.example.org?transport": "unknown parameter",
		"turn:x?transport=tcp":            "transport=tcp is not supported",
		"turn:x?transport=sctp":           "unknown transport",
		"turn:x?foo=bar":                  "unknown parameter",
		"turn:":                           "no host",
		"turn::3478":                      "no host",
		"turn:x:":                         "not a number",
		"turn:x:0":                        "out of range",
		"turn:x:65536":                    "out of range",
		"turn:x:34a":                      "not a number",
		"turn:x:-1":                       "not a number",
		"turn:2001:db8::1":                "needs brackets",
		"turn:[2001:db8::1":               "missing ]",
		"turn:[203.0.113.1]":              "not an IPv6 address",
		"turn:[fe80::1%eth0]":             "not an IPv6 address",
		"turn:[2001:db8::1]x":             "unexpected",
		"turn:bad..name":                  "not a host name",
		"turn:-bad.name":                  "not a host name",
		"turn:bad name":                   "not a host name",
		"turn:" + strings.Repeat("a", 64): "not a host name",
	}
	for in, want := range bad {
		_, err := ParseURI(in)
		if !errors.Is(err, ErrBadURI) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseURI(%q): %v; want ErrBadURI saying %q", in, err, want)
		}
	}
}

func TestParseURIs(t *testing.T) {
	got, err := ParseURIs("turn:a.example, turn:b.example:3479,turn:A.example")
	if err != nil || len(got) != 2 || got[0].Host != "a.example" || got[1].Port != 3479 {
		t.Errorf("got %+v, %v", got, err)
	}
	for _, in := range []string{"", "turn:a,", "turn:a,,turn:b", "turn:a,turns:b"} {
		if _, err := ParseURIs(in); !errors.Is(err, ErrBadURI) {
			t.Errorf("ParseURIs(%q): %v", in, err)
		}
	}
}

// TestRESTCredentials: the user name is EXPIRY:USER, the password
// base64(HMAC-SHA1(secret, user name)); the expected values come from
// Python's hmac module, not from this code.
func TestRESTCredentials(t *testing.T) {
	exp := time.Unix(1_700_000_000, 0)
	user, pass := RESTCredentials("north", "alice", exp)
	if user != "1700000000:alice" || pass != "Cd/49soE35ICqcJF/bCTn8Z4OyE=" {
		t.Errorf("got %q %q", user, pass)
	}
	user, pass = RESTCredentials("north", "", exp)
	if user != "1700000000" || pass != "CWyHi3zCeWqXBir9thl4m+iZPRY=" {
		t.Errorf("without a user: got %q %q", user, pass)
	}
	c, err := NewCredentials("alice", "", "north", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if u, p := c.forAllocation(exp.Add(-time.Hour)); u != "1700000000:alice" || p != "Cd/49soE35ICqcJF/bCTn8Z4OyE=" {
		t.Errorf("forAllocation: %q %q", u, p)
	}
	if !c.Shared() || strings.Contains(c.String()+c.describe(exp), "north") {
		t.Errorf("shared credentials described as %q / %q", c.String(), c.describe(exp))
	}
}

func TestNewCredentials(t *testing.T) {
	lt, err := NewCredentials("alice", "s3cret", "", 0)
	if err != nil || lt.Shared() {
		t.Fatalf("long-term: %v", err)
	}
	if s := lt.String() + lt.describe(time.Now()); strings.Contains(s, "s3cret") || !strings.Contains(s, "alice") {
		t.Errorf("described as %q", s)
	}
	bad := []struct {
		user, password, secret string
		lifetime               time.Duration
		want                   string
	}{
		{"alice", "", "", 0, "password or a shared secret is needed"},
		{"alice", "p", "s", 0, "not both"},
		{"", "p", "", 0, "needs a user name"},
		{"a:b", "", "s", 0, "cannot contain ':'"},
		{"alice", "p", "", -time.Second, "negative"},
		{"al\x00ice", "p", "", 0, "control character"},
		{"alice", "p\n", "", 0, "control character"},
		{"alice", "\xff", "", 0, "UTF-8"},
	}
	for _, c := range bad {
		_, err := NewCredentials(c.user, c.password, c.secret, c.lifetime)
		if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewCredentials(%q, %q, %q): %v; want %q", c.user, c.password, c.secret, err, c.want)
		}
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for content, want := range map[string]string{"pass\n": "pass", "pass": "pass", "pa ss\r\n": "pa ss"} {
		if got, err := ReadSecretFile(write("ok", content)); err != nil || got != want {
			t.Errorf("%q: got %q, %v", content, got, err)
		}
	}
	for content, want := range map[string]string{
		"":                         "empty",
		"\n":                       "empty",
		"one\ntwo\n":               "more than one line",
		"tab\there":                "control character",
		strings.Repeat("x", 5000):  "one line",
		"ok\x00hidden-password-xx": "control character",
	} {
		p := write("bad", content)
		_, err := ReadSecretFile(p)
		if !errors.Is(err, ErrBadCredentials) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v; want %q", content, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "hidden-password") {
			t.Errorf("error %q shows the file's content", err)
		}
	}
	if _, err := ReadSecretFile(filepath.Join(dir, "missing")); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseURI: any input is accepted or refused without panic, and what
// is accepted prints as a URI that parses to the same server.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"turn:203.0.113.20:3478", "turn:[2001:db8::1]?transport=udp", "turns:x", "turn:a.b:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		srv, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrBadURI) {
				t.Fatalf("%q: error %v does not wrap ErrBadURI", s, err)
			}
			return
		}
		again, err := ParseURI(srv.String())
		if err != nil || again != srv {
			t.Fatalf("%q parsed to %+v, whose URI %q parses to %+v, %v", s, srv, srv.String(), again, err)
		}
	})
}
