package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// Env is everything the choice of p2ptui's directories depends on. Keeping
// it explicit makes DataDir and LogDir pure functions, so each OS's choice
// is tested on any OS.
type Env struct {
	GOOS   string              // runtime.GOOS of the machine the paths are for
	Getenv func(string) string // environment lookup ("" when unset)
	Home   string              // the user's home directory; "" when unknown
	// IsDir reports whether a directory exists. It is only used to find
	// profiles left in an older location; nil means none exist.
	IsDir func(path string) bool
}

// HostEnv is the Env of this process.
func HostEnv() Env {
	home, _ := os.UserHomeDir()
	return Env{GOOS: runtime.GOOS, Getenv: os.Getenv, Home: home, IsDir: isDir}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// ErrNoHome: neither the environment nor the system says where the user's
// files go, so the caller must be told explicitly (--data-dir, --log).
var ErrNoHome = errors.New("no home directory for p2ptui's files")

// DataLocation is the directory holding the profiles (in its "profiles"
// subdirectory).
type DataLocation struct {
	// Dir is the directory to use.
	Dir string
	// Native is where this OS expects it. It differs from Dir when
	// profiles were found in an older location and are used there; they
	// are never moved without the user doing it.
	Native string
}

// Legacy reports whether Dir is an older location kept because profiles
// already live there.
func (d DataLocation) Legacy() bool { return d.Dir != d.Native }

// DataDir chooses where the profiles live:
//   - Windows: %AppData%\p2ptui (roaming application data, os.UserConfigDir);
//   - macOS: ~/Library/Application Support/p2ptui;
//   - Linux, the BSDs and other Unix: $XDG_DATA_HOME/p2ptui, else
//     $XDG_CONFIG_HOME/p2ptui, else ~/.config/p2ptui (where p2ptui always
//     kept them, so existing profiles stay put).
//
// On Windows and macOS, when the native place holds no profiles yet but a
// Linux-style one does ($XDG_DATA_HOME/p2ptui, $XDG_CONFIG_HOME/p2ptui or
// ~/.config/p2ptui, e.g. copied from a Linux machine or made by an older
// p2ptui that honoured $XDG_DATA_HOME everywhere), that one is used and
// Legacy reports it, so the caller can say so.
func DataDir(e Env) (DataLocation, error) {
	native, err := nativeDataDir(e)
	if err != nil {
		return DataLocation{}, err
	}
	loc := DataLocation{Dir: native, Native: native}
	if (e.GOOS != "windows" && e.GOOS != "darwin") || e.IsDir == nil || e.IsDir(filepath.Join(native, "profiles")) {
		return loc, nil
	}
	for _, old := range []string{xdg(e, "XDG_DATA_HOME"), xdg(e, "XDG_CONFIG_HOME"), homeJoin(e, ".config")} {
		if old == "" {
			continue
		}
		if d := filepath.Join(old, "p2ptui"); e.IsDir(filepath.Join(d, "profiles")) {
			loc.Dir = d
			return loc, nil
		}
	}
	return loc, nil
}

func nativeDataDir(e Env) (string, error) {
	switch e.GOOS {
	case "windows":
		if d := e.Getenv("AppData"); d != "" {
			return filepath.Join(d, "p2ptui"), nil
		}
		return "", fmt.Errorf("%w: %%AppData%% is not set", ErrNoHome)
	case "darwin", "ios":
		if e.Home == "" {
			return "", fmt.Errorf("%w: $HOME is not set", ErrNoHome)
		}
		return filepath.Join(e.Home, "Library", "Application Support", "p2ptui"), nil
	}
	for _, d := range []string{xdg(e, "XDG_DATA_HOME"), xdg(e, "XDG_CONFIG_HOME"), homeJoin(e, ".config")} {
		if d != "" {
			return filepath.Join(d, "p2ptui"), nil
		}
	}
	return "", fmt.Errorf("%w: neither $XDG_DATA_HOME nor $HOME is set", ErrNoHome)
}

// LogDir chooses where the log files go:
//   - Windows: %LocalAppData%\p2ptui\logs (local, not roaming: os.UserCacheDir);
//   - macOS: ~/Library/Logs/p2ptui, where Console.app looks;
//   - Linux, the BSDs and other Unix: $XDG_STATE_HOME/p2ptui, else
//     ~/.local/state/p2ptui.
func LogDir(e Env) (string, error) {
	switch e.GOOS {
	case "windows":
		if d := e.Getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "p2ptui", "logs"), nil
		}
		return "", fmt.Errorf("%w: %%LocalAppData%% is not set", ErrNoHome)
	case "darwin", "ios":
		if e.Home == "" {
			return "", fmt.Errorf("%w: $HOME is not set", ErrNoHome)
		}
		return filepath.Join(e.Home, "Library", "Logs", "p2ptui"), nil
	}
	if d := xdg(e, "XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "p2ptui"), nil
	}
	if d := homeJoin(e, ".local", "state"); d != "" {
		return filepath.Join(d, "p2ptui"), nil
	}
	return "", fmt.Errorf("%w: neither $XDG_STATE_HOME nor $HOME is set", ErrNoHome)
}

// xdg reads an XDG base directory variable; the specification says a
// relative path is invalid and is to be ignored.
func xdg(e Env, name string) string {
	d := e.Getenv(name)
	if d == "" || !isAbs(e.GOOS, d) {
		return ""
	}
	return d
}

// isAbs judges an absolute path by the rules of goos rather than of the
// machine running the code, so tests of Windows paths run anywhere.
func isAbs(goos, p string) bool {
	if goos != "windows" {
		return len(p) > 0 && p[0] == '/'
	}
	// C:\x, C:/x, \\server\share
	drive := len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
	unc := len(p) >= 2 && (p[:2] == `\\` || p[:2] == "//")
	return drive || unc
}

func homeJoin(e Env, elem ...string) string {
	if e.Home == "" {
		return ""
	}
	return filepath.Join(append([]string{e.Home}, elem...)...)
}
