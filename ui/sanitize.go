package ui

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// maxMarks bounds the combining marks (Mn, Me) kept after one base
// character. Living scripts stack at most three or four (Vietnamese two,
// Tibetan and some Indic clusters a few more); "Zalgo" text stacks dozens
// to spill over the lines above and below.
const maxMarks = 4

// sanitize makes text a peer controls safe to draw: it removes escape
// sequences (CSI, OSC, DCS, SOS, PM, APC and two-byte ESC sequences, in their
// 7-bit and 8-bit forms), every other C0 and C1 control except newline and
// tab, DEL, every format character (Unicode category Cf: zero-width spaces
// and joiners, the soft hyphen, the byte-order mark, bidirectional controls,
// tag characters), and combining marks beyond maxMarks per base character.
// The line and paragraph separators (U+2028, U+2029) become newlines, the
// break they stand for, since terminals and width measurements do not treat
// them as one. Invalid UTF-8 becomes U+FFFD. A peer could otherwise move the
// cursor, retitle the window, write to the clipboard (OSC 52), hide text or
// make a name look like another, or break the layout.
func sanitize(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	marks := 0 // combining marks written since the last base character
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			b.WriteRune(utf8.RuneError)
			marks = 0
			i++
			continue
		}
		switch {
		case r == 0x1b: // ESC
			i = skipEscape(s, i+size)
			continue
		case r == 0x9b: // C1 CSI
			i = skipCSI(s, i+size)
			continue
		case r == 0x9d || r == 0x90 || r == 0x98 || r == 0x9e || r == 0x9f: // C1 OSC, DCS, SOS, PM, APC
			i = skipString(s, i+size)
			continue
		case r == '\n' || r == '\t':
			b.WriteRune(r)
			marks = 0
		case r == 0x2028 || r == 0x2029:
			b.WriteByte('\n')
			marks = 0
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			// other controls: dropped
		case isFormat(r):
			// invisible: dropped
		case isMark(r):
			if marks < maxMarks {
				b.WriteString(s[i : i+size])
			}
			marks++
		default:
			b.WriteString(s[i : i+size])
			marks = 0
		}
		i += size
	}
	return b.String()
}

// sanitizeLine is sanitize for single-line fields (names, IDs, status
// words): newlines and tabs become spaces, the result is NFC-normalised
// (so one name has one encoding) and trimmed.
func sanitizeLine(s string) string {
	s = sanitize(s)
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if !isClean(s) {
		// A few characters decompose into a base and a mark that NFC does
		// not compose again (U+0958 and its kin), so the marks are bounded
		// once more after normalising; cutting marks off the end keeps a
		// string in NFC.
		s = sanitize(norm.NFC.String(s))
	}
	return strings.TrimSpace(s)
}

// isClean is the fast path: plain printable ASCII plus newline and tab needs
// no copy.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// isFormat reports the invisible format characters (category Cf), which
// include every bidirectional control and the tag characters.
func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

// isMark reports the non-spacing and enclosing combining marks, the ones
// drawn on top of the character before them.
func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Me) }

// isBidiControl reports the characters that reorder text (all of them Cf,
// so sanitize drops them; kept as its own test of that promise).
func isBidiControl(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e: // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= 0x2066 && r <= 0x2069: // LRI, RLI, FSI, PDI
		return true
	case r == 0x200e || r == 0x200f || r == 0x061c: // LRM, RLM, ALM
		return true
	}
	return false
}

// hasVisible reports whether a sanitized line draws anything: a graphic
// character that is not a space, not a lone combining mark and not one of
// the letters that render blank (Hangul fillers, the Braille blank), which
// are the usual way to make an "empty" name.
func hasVisible(s string) bool {
	for _, r := range s {
		switch r {
		case 0x115f, 0x1160, 0x3164, 0xffa0, 0x2800:
			continue
		}
		if unicode.IsGraphic(r) && !unicode.IsSpace(r) && !isMark(r) {
			return true
		}
	}
	return false
}

// skipEscape returns the index after the escape sequence whose ESC ended just
// before i (ECMA-48 section 5.3).
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_':
		return skipString(s, i+1)
	}
	// nF sequences: intermediates 0x20-0x2F then one final byte 0x30-0x7E.
	for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
		i++
	}
	if i < len(s) && s[i] >= 0x30 && s[i] <= 0x7e {
		i++
	}
	return i
}

// skipCSI skips parameter and intermediate bytes and the final byte.
func skipCSI(s string, i int) int {
	for i < len(s) {
		c := s[i]
		i++
		if c >= 0x40 && c <= 0x7e {
			return i
		}
		if c < 0x20 || c > 0x7e {
			// not a CSI byte: the sequence is broken; stop here and let
			// the caller treat the rest as text (still filtered).
			return i - 1
		}
	}
	return i
}

// skipString skips a control string up to and including its terminator: BEL,
// ESC \ or the 8-bit ST (U+009C). An unterminated string runs to the end, so
// a hostile OSC cannot leak its payload onto the screen.
func skipString(s string, i int) int {
	for i < len(s) {
		if s[i] == 0x07 {
			return i + 1
		}
		if s[i] == 0x1b {
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			return i + 1
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == 0x9c {
			return i + size
		}
		i += size
	}
	return i
}
