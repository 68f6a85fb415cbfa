package ui

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestSanitize(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"plain", "hello, world", "hello, world"},
		{"newline and tab kept", "a\nb\tc", "a\nb\tc"},
		{"csi colour", "\x1b[31mred\x1b[0m", "red"},
		{"csi cursor move", "a\x1b[2J\x1b[Hb", "ab"},
		{"csi private", "x\x1b[?25ly", "xy"},
		{"osc title bel", "\x1b]0;pwned\x07ok", "ok"},
		{"osc 52 clipboard st", "\x1b]52;c;ZXZpbA==\x1b\\ok", "ok"},
		{"osc unterminated", "ok\x1b]8;;http://evil", "ok"},
		{"dcs", "\x1bPq#0;2;0;0;0\x1b\\ok", "ok"},
		{"two byte esc", "a\x1bcb\x1b7c", "abc"},
		{"esc at end", "abc\x1b", "abc"},
		{"c1 csi", "a\u009b31mb", "ab"},
		{"c1 osc", "a\u009d0;t\u009cb", "ab"},
		{"c0 controls", "a\x00b\x07c\x08d\re\x7f", "abcde"},
		{"c1 controls", "a\u0085b\u008dc", "abc"},
		{"bidi override", "abc\u202etxt.exe", "abctxt.exe"},
		{"bidi isolates", "\u2066a\u2069\u200f", "a"},
		{"unicode kept", "héllo 世界 🙂", "héllo 世界 🙂"},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"zero width space, joiners, word joiner", "a\u200bb\u200cc\u200dd\u2060e", "abcde"},
		{"byte order mark and soft hyphen", "\ufeffsoft\u00adware", "software"},
		{"tag characters", "flag\U000E0067\U000E0062\U000E007F", "flag"},
		{"interlinear annotation", "a\ufff9b\ufffac\ufffbd", "abcd"},
		{"line and paragraph separators break lines", "one\u2028two\u2029three", "one\ntwo\nthree"},
		{"a few marks kept", "e\u0301\u0302\u0303\u0304", "e\u0301\u0302\u0303\u0304"},
		{"zalgo bounded per base", "z" + strings.Repeat("\u0336", 40) + "a" + strings.Repeat("\u0489", 9), "z" + strings.Repeat("\u0336", maxMarks) + "a" + strings.Repeat("\u0489", maxMarks)},
		{"marks split by a dropped format char still count", "e" + strings.Repeat("\u0301\u200b", 10), "e" + strings.Repeat("\u0301", maxMarks)},
		{"emoji keycap and variation selector kept", "1\ufe0f\u20e3 \u2764\ufe0f", "1\ufe0f\u20e3 \u2764\ufe0f"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := sanitize(c.in); got != c.want {
				t.Fatalf("sanitize(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestSanitizeLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{" bob\n\x1b[1mthe\tbuilder\x1b[0m ", "bob the builder"},
		{"one\u2028two", "one two"},
		{"Jose\u0301", "José"},         // NFC: one encoding per name
		{"\u200balice\u200d", "alice"}, // invisible padding gone
		{"\u0958", "\u0915\u093c"},     // decomposes for good under NFC
		{"\u3000bob\u00a0", "bob"},     // Unicode spaces trimmed
		{"a\u200b\u200b\u200bb", "ab"}, // a look-alike of "ab"
		{"\u202eevil\u202c", "evil"},   // no reversal
		{"\U000E0041\U000E0042", ""},   // tags only: nothing left
		{"x" + strings.Repeat("\u0301", 9), "x\u0301\u0301\u0301\u0301"},
	} {
		if got := sanitizeLine(c.in); got != c.want {
			t.Errorf("sanitizeLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHasVisible(t *testing.T) {
	for _, c := range []struct {
		in   string
		want bool
	}{
		{"bob", true}, {"日本", true}, {"🙂", true}, {"·", true},
		{"", false}, {"   ", false}, {"\u0301\u0302", false},
		{"\u3164", false}, {"\u115f\u1160", false}, {"\u2800\u2800", false}, {"\uffa0", false},
	} {
		if got := hasVisible(c.in); got != c.want {
			t.Errorf("hasVisible(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// FuzzSanitize checks the output never carries a control character other
// than newline and tab, a format character, a line or paragraph separator,
// or more than maxMarks combining marks in a row; that it is valid UTF-8;
// and that both sanitize and sanitizeLine are idempotent, sanitizeLine's
// output being NFC and on one line.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mx", "\x1b]0;t\x07", "\u009b1m", "\u202e", "\xff\x1b",
		"a\u200bb", "\U000E0041", "z\u0336\u0336\u0336\u0336\u0336\u0336", "\u0958\u0301\u0301\u0301\u0301", "x\u2028y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := sanitize(in)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", in, out)
		}
		marks := 0
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || isBidiControl(r) ||
				unicode.Is(unicode.Cf, r) || r == 0x2028 || r == 0x2029 {
				t.Fatalf("character %U left in %q (from %q)", r, out, in)
			}
			if isMark(r) {
				if marks++; marks > maxMarks {
					t.Fatalf("%d marks in a row in %q (from %q)", marks, out, in)
				}
			} else {
				marks = 0
			}
		}
		if sanitize(out) != out {
			t.Fatalf("not idempotent: %q", in)
		}
		line := sanitizeLine(in)
		if strings.ContainsAny(line, "\n\t") || !norm.NFC.IsNormalString(line) || sanitizeLine(line) != line {
			t.Fatalf("sanitizeLine(%q) = %q: not one NFC line, or not stable", in, line)
		}
	})
}
