package main

import (
	"runtime/debug"
	"testing"
)

func TestReadVersion(t *testing.T) {
	vcs := func(rev, at, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "-compiler", Value: "gc"}, {Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: rev}, {Key: "vcs.time", Value: at}, {Key: "vcs.modified", Value: modified}}
	}
	info := func(version string, settings []debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{Main: debug.Module{Path: "github.com/p2ptui/p2ptui", Version: version}, Settings: settings}
	}
	cases := []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"go install module@version", info("v1.4.0", nil), true, "v1.4.0"},
		{"work tree, committed", info("(devel)", vcs("0123456789abcdef0123456789abcdef01234567", "2025-01-02T03:04:05Z", "false")), true,
			"devel (rev 0123456789ab, 2025-01-02T03:04:05Z)"},
		{"work tree, changed", info("v0.0.0-20250102030405-0123456789ab+dirty", vcs("0123456789abcdef0123456789abcdef01234567", "2025-01-02T03:04:05Z", "true")), true,
			"v0.0.0-20250102030405-0123456789ab+dirty (rev 0123456789ab, 2025-01-02T03:04:05Z, modified)"},
		{"no vcs stamp", info("(devel)", []debug.BuildSetting{{Key: "-compiler", Value: "gc"}}), true, "devel"},
		{"empty version", info("", nil), true, "devel"},
		{"short revision kept whole", info("(devel)", []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}}), true, "devel (rev abc)"},
		{"no build info", nil, false, "unknown"},
	}
	for _, c := range cases {
		if got := readVersion(c.info, c.ok).String(); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}
