package transfer

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxNameBytes bounds a sanitised file name: NAME_MAX is 255 bytes on the
// common file systems, and the temporary name and a " (n)" suffix must
// still fit.
const MaxNameBytes = 200

// windowsReserved are the device names Windows refuses as a file name,
// with or without an extension, in any case.
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true, "CONIN$": true, "CONOUT$": true,
	"COM0": true, "COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"COM¹": true, "COM²": true, "COM³": true,
	"LPT0": true, "LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
	"LPT¹": true, "LPT²": true, "LPT³": true,
}

// SafeName turns a name a peer offered into one that is safe to create in
// the download directory on any system: a single path element (no
// separators, no "." or ".."), no control or invisible formatting
// characters, none of the characters Windows forbids, not a Windows device
// name, not hidden, valid UTF-8, at most MaxNameBytes bytes with its
// extension kept, and never empty.
func SafeName(name string) string {
	var b strings.Builder
	for i, w := 0, 0; i < len(name); i += w {
		r, size := utf8.DecodeRuneInString(name[i:])
		w = size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteByte('_')
		case r == '/' || r == '\\':
			b.WriteByte('_')
		case strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		case unicode.IsSpace(r):
			b.WriteByte(' ') // tabs and line breaks too
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError:
			// Dropped: terminal control, bidi overrides, zero-width tricks.
		default:
			b.WriteRune(r)
		}
	}
	// Leading dots hide a file (and make "." and ".."); Windows drops
	// trailing dots and spaces itself, which could merge two names.
	s := strings.TrimRight(strings.TrimLeft(strings.TrimSpace(b.String()), ". "), ". ")
	if s == "" {
		s = "file"
	}
	base := s
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if windowsReserved[strings.ToUpper(strings.TrimRight(base, " "))] {
		s = "_" + s
	}
	return truncateName(s, MaxNameBytes)
}

// maxExt is the longest extension kept when a name is shortened.
const maxExt = 16

// truncateName shortens name to at most n bytes at a rune boundary,
// keeping a short extension.
func truncateName(name string, n int) string {
	if len(name) <= n {
		return name
	}
	if n <= 0 {
		return ""
	}
	ext := filepath.Ext(name)
	if len(ext) > maxExt || len(ext) >= n/2 {
		ext = ""
	}
	stem := name[:len(name)-len(ext)]
	limit := n - len(ext)
	for limit > 0 && !utf8.RuneStart(stem[limit]) {
		limit--
	}
	return strings.TrimRight(stem[:limit], ". ") + ext
}

// numberedName is the k-th alternative to a sanitised name when it is
// taken: "name (k).ext" (k ≥ 1), still within MaxNameBytes.
func numberedName(name string, k int) string {
	if k == 0 {
		return name
	}
	ext := filepath.Ext(name)
	if ext == name || len(ext) > maxExt {
		ext = ""
	}
	suffix := fmt.Sprintf(" (%d)", k)
	stem := truncateName(name[:len(name)-len(ext)], MaxNameBytes-len(ext)-len(suffix))
	return stem + suffix + ext
}

// tempName is the name a file is received under until it is verified.
func tempName(name string, id ID) string {
	return truncateName(name, MaxNameBytes) + ".p2ptui-" + id.String()[:16] + ".part"
}
