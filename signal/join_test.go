package signal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

const sampleKey = "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"

func TestJoinCodeRoundTrip(t *testing.T) {
	c, err := NewJoinCode("my-group-chat", sampleKey)
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	if !strings.HasPrefix(s, "p2ptui1.my-group-chat."+sampleKey+".") || len(s) != len("p2ptui1.my-group-chat.")+len(sampleKey)+1+joinCheckLen {
		t.Fatalf("code %q", s)
	}
	for _, pasted := range []string{s, "  " + s + "\n", `"` + s + `"`, "<" + s + ">", "`" + s + "`"} {
		got, err := ParseJoinCode(pasted)
		if err != nil || got != c {
			t.Errorf("ParseJoinCode(%q) = %+v, %v", pasted, got, err)
		}
	}
}

// Every single-character change anywhere in a code is caught: as a typo
// when the shape survives, as malformed (or of another version) when it
// does not.
func TestJoinCodeEveryTypoCaught(t *testing.T) {
	c, _ := NewJoinCode("my-group-chat", sampleKey)
	s := c.String()
	alphabet := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
	caught := 0
	for i := range len(s) {
		for _, r := range alphabet {
			if byte(r) == s[i] {
				continue
			}
			typo := s[:i] + string(r) + s[i+1:]
			if _, err := ParseJoinCode(typo); err == nil {
				t.Fatalf("typo at %d accepted: %q", i, typo)
			} else if !errors.Is(err, ErrJoinTypo) && !errors.Is(err, ErrJoinMalformed) && !errors.Is(err, ErrJoinVersion) {
				t.Fatalf("typo at %d: %v", i, err)
			}
			caught++
		}
	}
	for _, cut := range []string{s[:len(s)-1], s[1:], s[:len(s)/2]} {
		if _, err := ParseJoinCode(cut); err == nil {
			t.Errorf("cut code %q accepted", cut)
		}
	}
	t.Logf("%d typos caught", caught)
}

func TestJoinCodeRefusals(t *testing.T) {
	good, _ := NewJoinCode("my-group-chat", sampleKey)
	body := func(project, key string) string {
		b := "p2ptui1." + project + "." + key
		return b + "." + joinCheck(b)
	}
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrJoinMalformed},
		{"hello", ErrJoinMalformed},
		{sampleKey, ErrJoinMalformed},
		{strings.Replace(good.String(), "p2ptui1", "p2ptui2", 1), ErrJoinVersion},
		{"p2ptui9.x.y.z", ErrJoinVersion},
		{"p2ptui1.a.b", ErrJoinMalformed},
		{good.String() + ".extra", ErrJoinMalformed},
		{strings.ToUpper(good.String()), ErrJoinMalformed},
		{body("Bad_Project", sampleKey), ErrJoinMalformed},
		{body("my-group-chat", "short"), ErrJoinMalformed},
		{body("my-group-chat", "has space in it"), ErrJoinMalformed},
		{body("my-group-chat", sampleKey) + "x", ErrJoinTypo},
		{body("my-group-chat", sampleKey)[:len(body("my-group-chat", sampleKey))-1] + "0", ErrJoinTypo},
	}
	for _, c := range cases {
		_, err := ParseJoinCode(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("ParseJoinCode(%q) = %v, want %v", c.in, err, c.want)
		}
	}
	for _, bad := range [][2]string{{"ab", sampleKey}, {"-group", sampleKey}, {"group-", sampleKey}, {"my-group-chat", ""}, {"my-group-chat", "AIza/../x"}} {
		if _, err := NewJoinCode(bad[0], bad[1]); err == nil {
			t.Errorf("NewJoinCode(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestJoinFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := LoadJoin(dir); ok || err != nil {
		t.Fatalf("fresh profile: joined %v, %v", ok, err)
	}
	c, _ := NewJoinCode("my-group-chat", sampleKey)
	if err := SaveJoin(dir, c); err != nil {
		t.Fatal(err)
	}
	got, ok, err := LoadJoin(dir)
	if err != nil || !ok || got != c {
		t.Fatalf("LoadJoin = %+v, %v, %v", got, ok, err)
	}
	for _, damaged := range []string{"{", `{"v":1,"join":"p2ptui1.x"}`, `{"v":7,"join":""}`} {
		if err := os.WriteFile(filepath.Join(dir, JoinFile), []byte(damaged), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadJoin(dir); err == nil {
			t.Errorf("damaged %q loaded", damaged)
		}
	}
}

// FuzzParseJoinCode: anything pasted is refused or parsed into a code that
// prints back to itself (modulo the trimming of surrounding space).
func FuzzParseJoinCode(f *testing.F) {
	c, _ := NewJoinCode("my-group-chat", sampleKey)
	f.Add(c.String())
	f.Add("p2ptui1.a.b.c")
	f.Add("p2ptui99999.")
	f.Add(" \"p2ptui1...\" ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseJoinCode(s)
		if err != nil {
			return
		}
		again, err := ParseJoinCode(c.String())
		if err != nil || again != c {
			t.Fatalf("%q parsed as %+v, which does not parse back (%v)", s, c, err)
		}
	})
}

// Join through both emulators: a code that works is stored and the ID
// claimed; a wrong code, or an ID someone else holds, is an error in words
// and the profile's group stays as it was.
func TestJoinStoresOnlyAWorkingCode(t *testing.T) {
	e := newAuthEnv(t).(*authEnv)
	ctx := context.Background()
	opts := JoinOptions{AuthEmulator: e.authHost, FirestoreEmulator: e.fsHost}
	dir := e.profile(t, alice)
	good := JoinCode{ProjectID: e.project, APIKey: testAPIKey}

	// A key the project refuses (from a stand-in for Firebase
	// Authentication: the emulator takes any key).
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","details":[{"reason":"API_KEY_INVALID"}]}}`)
	}))
	defer refuse.Close()
	bad := opts
	bad.AuthEmulator = strings.TrimPrefix(refuse.URL, "http://")
	err := Join(ctx, dir, alice, good, bad)
	if !errors.Is(err, ErrSignIn) || !errors.Is(err, firebaseauth.ErrAPIKey) || !strings.Contains(err.Error(), "refused the Web API key") {
		t.Fatalf("join with a refused key: %v", err)
	}
	plainWords(t, err)
	if _, ok, _ := LoadJoin(dir); ok {
		t.Fatal("a refused code was stored")
	}

	if err := Join(ctx, dir, alice, good, opts); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := LoadJoin(dir); !ok || err != nil || got != good {
		t.Fatalf("after joining: %+v %v %v", got, ok, err)
	}
	claim, err := e.raw.Collection("claims").Doc(alice).Get(ctx)
	if err != nil || claim.Data()[fClaimUID] == "" {
		t.Fatalf("claim after joining: %v %v", claim, err)
	}

	// Another profile with the same ID (a copied identity key) cannot
	// join: the ID is the first profile's. Its earlier group stays.
	other := t.TempDir()
	earlier, _ := NewJoinCode("earlier-group", sampleKey)
	if err := SaveJoin(other, earlier); err != nil {
		t.Fatal(err)
	}
	err = Join(ctx, other, alice, good, opts)
	if !errors.Is(err, ErrIDTaken) {
		t.Fatalf("join with a taken ID: %v", err)
	}
	plainWords(t, err)
	if got, _, _ := LoadJoin(other); got != earlier {
		t.Fatalf("the other profile's group became %+v", got)
	}
	// Joining again where it already belongs is fine and costs no claim.
	if err := Join(ctx, dir, alice, good, opts); err != nil {
		t.Fatalf("joining again: %v", err)
	}
}
