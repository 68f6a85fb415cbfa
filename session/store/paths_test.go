package store

import (
	"errors"
	"path/filepath"
	"testing"
)

// testEnv builds an Env for goos with the given variables, home and
// existing directories.
func testEnv(goos, home string, vars map[string]string, dirs ...string) Env {
	return Env{
		GOOS:   goos,
		Getenv: func(k string) string { return vars[k] },
		Home:   home,
		IsDir: func(p string) bool {
			for _, d := range dirs {
				if d == p {
					return true
				}
			}
			return false
		},
	}
}

func TestDataDir(t *testing.T) {
	const (
		lnx     = "/home/ann"
		mac     = "/Users/ann"
		macApp  = "/Users/ann/Library/Application Support/p2ptui"
		win     = `C:\Users\ann`
		roaming = `C:\Users\ann\AppData\Roaming`
	)
	j := filepath.Join
	cases := []struct {
		name    string
		env     Env
		dir     string
		native  string // "" means the same as dir
		wantErr error
	}{
		// Linux and the BSDs: XDG, then the config dir p2ptui always used.
		{name: "linux: XDG_DATA_HOME", env: testEnv("linux", lnx, map[string]string{"XDG_DATA_HOME": "/xdg", "XDG_CONFIG_HOME": "/cfg"}), dir: "/xdg/p2ptui"},
		{name: "linux: XDG_CONFIG_HOME", env: testEnv("linux", lnx, map[string]string{"XDG_CONFIG_HOME": "/cfg"}), dir: "/cfg/p2ptui"},
		{name: "linux: relative XDG ignored", env: testEnv("linux", lnx, map[string]string{"XDG_DATA_HOME": "xdg", "XDG_CONFIG_HOME": "cfg"}), dir: "/home/ann/.config/p2ptui"},
		{name: "linux: home", env: testEnv("linux", lnx, nil), dir: "/home/ann/.config/p2ptui"},
		{name: "linux: nothing to go on", env: testEnv("linux", "", nil), wantErr: ErrNoHome},
		{name: "freebsd like linux", env: testEnv("freebsd", "/home/bob", map[string]string{"XDG_DATA_HOME": "/x"}), dir: "/x/p2ptui"},
		{name: "openbsd home", env: testEnv("openbsd", "/home/bob", nil), dir: "/home/bob/.config/p2ptui"},

		// macOS: Application Support, XDG only to find older profiles.
		{name: "mac: first run", env: testEnv("darwin", mac, nil), dir: macApp},
		{name: "mac: XDG alone does not move new profiles", env: testEnv("darwin", mac, map[string]string{"XDG_DATA_HOME": "/Users/ann/.local/share"}), dir: macApp},
		{name: "mac: Linux-style profiles found", env: testEnv("darwin", mac, nil, "/Users/ann/.config/p2ptui/profiles"),
			dir: "/Users/ann/.config/p2ptui", native: macApp},
		{name: "mac: older XDG_DATA_HOME profiles found", env: testEnv("darwin", mac, map[string]string{"XDG_DATA_HOME": "/Users/ann/.local/share"},
			"/Users/ann/.local/share/p2ptui/profiles", "/Users/ann/.config/p2ptui/profiles"),
			dir: "/Users/ann/.local/share/p2ptui", native: macApp},
		{name: "mac: XDG_CONFIG_HOME profiles found", env: testEnv("darwin", mac, map[string]string{"XDG_CONFIG_HOME": "/cfg"}, "/cfg/p2ptui/profiles"),
			dir: "/cfg/p2ptui", native: macApp},
		{name: "mac: native profiles win over old ones", env: testEnv("darwin", mac, nil, macApp+"/profiles", "/Users/ann/.config/p2ptui/profiles"), dir: macApp},
		{name: "mac: an old directory without profiles is not used", env: testEnv("darwin", mac, nil, "/Users/ann/.config/p2ptui"), dir: macApp},
		{name: "mac: no home", env: testEnv("darwin", "", nil), wantErr: ErrNoHome},

		// Windows: %AppData%.
		{name: "windows: AppData", env: testEnv("windows", win, map[string]string{"AppData": roaming, "XDG_DATA_HOME": `C:\xdg`}), dir: j(roaming, "p2ptui")},
		{name: "windows: older XDG_DATA_HOME profiles found", env: testEnv("windows", win, map[string]string{"AppData": roaming, "XDG_DATA_HOME": `C:\xdg`}, j(`C:\xdg`, "p2ptui", "profiles")),
			dir: j(`C:\xdg`, "p2ptui"), native: j(roaming, "p2ptui")},
		{name: "windows: relative XDG_DATA_HOME ignored", env: testEnv("windows", win, map[string]string{"AppData": roaming, "XDG_DATA_HOME": `xdg`}, j(`xdg`, "p2ptui", "profiles")),
			dir: j(roaming, "p2ptui")},
		{name: "windows: no AppData", env: testEnv("windows", win, nil), wantErr: ErrNoHome},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			loc, err := DataDir(c.env)
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v; want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			native := c.native
			if native == "" {
				native = c.dir
			}
			if loc.Dir != c.dir || loc.Native != native {
				t.Fatalf("got %+v; want Dir %q, Native %q", loc, c.dir, native)
			}
			if loc.Legacy() != (c.native != "") {
				t.Fatalf("Legacy() = %v", loc.Legacy())
			}
		})
	}
}

func TestLogDir(t *testing.T) {
	j := filepath.Join
	cases := []struct {
		name    string
		env     Env
		want    string
		wantErr error
	}{
		{"linux: XDG_STATE_HOME", testEnv("linux", "/home/ann", map[string]string{"XDG_STATE_HOME": "/st"}), "/st/p2ptui", nil},
		{"linux: relative XDG_STATE_HOME ignored", testEnv("linux", "/home/ann", map[string]string{"XDG_STATE_HOME": "st"}), "/home/ann/.local/state/p2ptui", nil},
		{"netbsd: home", testEnv("netbsd", "/home/ann", nil), "/home/ann/.local/state/p2ptui", nil},
		{"linux: nothing to go on", testEnv("linux", "", nil), "", ErrNoHome},
		{"mac: Library/Logs", testEnv("darwin", "/Users/ann", map[string]string{"XDG_STATE_HOME": "/st"}), "/Users/ann/Library/Logs/p2ptui", nil},
		{"mac: no home", testEnv("darwin", "", nil), "", ErrNoHome},
		{"windows: LocalAppData", testEnv("windows", `C:\Users\ann`, map[string]string{"LocalAppData": `C:\Users\ann\AppData\Local`, "AppData": `C:\Users\ann\AppData\Roaming`}),
			j(`C:\Users\ann\AppData\Local`, "p2ptui", "logs"), nil},
		{"windows: no LocalAppData", testEnv("windows", `C:\Users\ann`, nil), "", ErrNoHome},
	}
	for _, c := range cases {
		got, err := LogDir(c.env)
		if c.wantErr != nil {
			if !errors.Is(err, c.wantErr) {
				t.Errorf("%s: err %v; want %v", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestIsAbsPerOS(t *testing.T) {
	for _, c := range []struct {
		goos, p string
		want    bool
	}{
		{"linux", "/a", true}, {"linux", "a/b", false}, {"linux", "", false}, {"linux", `C:\a`, false},
		{"windows", `C:\a`, true}, {"windows", `C:/a`, true}, {"windows", `\\srv\share`, true},
		{"windows", `C:a`, false}, {"windows", `\a`, false}, {"windows", "a", false}, {"windows", "", false},
	} {
		if got := isAbs(c.goos, c.p); got != c.want {
			t.Errorf("isAbs(%s, %q) = %v", c.goos, c.p, got)
		}
	}
}
