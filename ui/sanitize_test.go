package ui

import (
	"testing"
	"unicode/utf8"
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
	if got := sanitizeLine(" bob\n\x1b[1mthe\tbuilder\x1b[0m "); got != "bob the builder" {
		t.Fatalf("got %q", got)
	}
}

// FuzzSanitize checks the output never carries a control character other
// than newline and tab, nor a bidi control, and is valid UTF-8.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mx", "\x1b]0;t\x07", "\u009b1m", "\u202e", "\xff\x1b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := sanitize(in)
		if !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 out of %q: %q", in, out)
		}
		for _, r := range out {
			if (r < 0x20 && r != '\n' && r != '\t') || (r >= 0x7f && r <= 0x9f) || isBidiControl(r) {
				t.Fatalf("control %U left in %q (from %q)", r, out, in)
			}
		}
		if sanitize(out) != out {
			t.Fatalf("not idempotent: %q", in)
		}
	})
}
