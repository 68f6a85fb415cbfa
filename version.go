package main

import (
	"runtime/debug"
	"strings"
)

// buildVersion identifies a build for bug reports: the module version and,
// when the build recorded it, the commit it was built from.
type buildVersion struct {
	Module   string // "v1.2.3"; "devel" for a build from a work tree
	Revision string // the commit, shortened to 12 characters; "" when unknown
	Time     string // the commit's time (RFC 3339); "" when unknown
	Modified bool   // the work tree had uncommitted changes
}

// readVersion reads what `go build` and `go install` record in the binary
// (debug.ReadBuildInfo). A build without module information, one from a
// work tree ("(devel)") and one without VCS stamping (go run, -buildvcs=
// false, an installed module) each still give a usable answer.
func readVersion(info *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Module: "unknown"}
	if !ok || info == nil {
		return v
	}
	v.Module = info.Main.Version
	if v.Module == "" || v.Module == "(devel)" {
		v.Module = "devel"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
			if len(v.Revision) > 12 {
				v.Revision = v.Revision[:12]
			}
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one-line form for the log and the headless ready event:
// "v1.2.3", or "devel (rev 0123456789ab, 2025-01-02T03:04:05Z, modified)".
func (v buildVersion) String() string {
	var parts []string
	if v.Revision != "" {
		parts = append(parts, "rev "+v.Revision)
	}
	if v.Time != "" {
		parts = append(parts, v.Time)
	}
	if v.Modified {
		parts = append(parts, "modified")
	}
	if len(parts) == 0 {
		return v.Module
	}
	return v.Module + " (" + strings.Join(parts, ", ") + ")"
}
