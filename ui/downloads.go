package ui

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// DownloadsDir is where accepted files are saved unless the person picks
// another folder: on Windows the user's Downloads known folder; on macOS
// ~/Downloads; elsewhere $XDG_DOWNLOAD_DIR, else the XDG_DOWNLOAD_DIR of
// the user-dirs.dirs file that desktop environments keep, else
// ~/Downloads.
func DownloadsDir() string {
	if d := knownDownloads(); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return downloadsFor(runtime.GOOS, os.Getenv, home, os.ReadFile)
}

// downloadsFor is DownloadsDir with its sources passed in, for tests.
func downloadsFor(goos string, getenv func(string) string, home string, readFile func(string) ([]byte, error)) string {
	fallback := filepath.Join(home, "Downloads")
	if goos == "windows" || goos == "darwin" || goos == "ios" {
		return fallback
	}
	if d := getenv("XDG_DOWNLOAD_DIR"); filepath.IsAbs(d) {
		return d
	}
	conf := getenv("XDG_CONFIG_HOME")
	if !filepath.IsAbs(conf) {
		conf = filepath.Join(home, ".config")
	}
	b, err := readFile(filepath.Join(conf, "user-dirs.dirs"))
	if err != nil {
		return fallback
	}
	if d := userDirsDownload(b, home); d != "" {
		return d
	}
	return fallback
}

// userDirsDownload reads XDG_DOWNLOAD_DIR from a user-dirs.dirs file: a
// shell fragment of lines XDG_NAME_DIR="$HOME/..." or "/absolute". A
// folder equal to the home folder means "none" (xdg-user-dirs' rule).
func userDirsDownload(b []byte, home string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		v, ok := strings.CutPrefix(line, "XDG_DOWNLOAD_DIR=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch {
		case v == "$HOME" || v == "$HOME/":
			return ""
		case strings.HasPrefix(v, "$HOME/"):
			return filepath.Join(home, v[len("$HOME/"):])
		case filepath.IsAbs(v):
			return filepath.Clean(v)
		}
	}
	return ""
}
