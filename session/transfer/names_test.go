package transfer

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeName(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"photo.jpg", "photo.jpg"},
		{"../../etc/passwd", "_.._etc_passwd"},
		{"..", "file"},
		{".", "file"},
		{"", "file"},
		{"   ", "file"},
		{"/", "_"},
		{`C:\Windows\system32`, "C__Windows_system32"},
		{".bashrc", "bashrc"},
		{"...hidden.txt", "hidden.txt"},
		{"name. . ", "name"},
		{"a\x00b\x1b[31mred\x07.txt", "ab[31mred.txt"},
		{"evil\u202Egnp.exe", "evilgnp.exe"}, // right-to-left override
		{"zero\u200Bwidth", "zerowidth"},
		{"tab\tand\nnewline", "tab and newline"},
		{"bad\xffutf8", "bad_utf8"},
		{`what?<is>this:"|*`, "what__is_this____"},
		{"CON", "_CON"},
		{"con.txt", "_con.txt"},
		{"Lpt1.tar.gz", "_Lpt1.tar.gz"},
		{"COM¹", "_COM¹"},
		{"nul .txt", "_nul .txt"},
		{"CONSOLE.txt", "CONSOLE.txt"},
		{"résumé – final.pdf", "résumé – final.pdf"},
	} {
		if got := SafeName(c.in); got != c.want {
			t.Errorf("SafeName(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSafeNameBounded(t *testing.T) {
	long := strings.Repeat("ä", 300) + ".tar.gz"
	got := SafeName(long)
	if len(got) > MaxNameBytes || !utf8.ValidString(got) || !strings.HasSuffix(got, ".gz") {
		t.Fatalf("SafeName of %d bytes gave %d bytes %q", len(long), len(got), got)
	}
	noExt := SafeName(strings.Repeat("x", 1000))
	if len(noExt) != MaxNameBytes {
		t.Fatalf("got %d bytes, want %d", len(noExt), MaxNameBytes)
	}
	hugeExt := SafeName("a." + strings.Repeat("e", 500))
	if len(hugeExt) > MaxNameBytes {
		t.Fatalf("got %d bytes", len(hugeExt))
	}
	for _, n := range []string{got, noExt, hugeExt} {
		for _, k := range []int{1, 99, 12345} {
			if s := numberedName(n, k); len(s) > MaxNameBytes || !utf8.ValidString(s) {
				t.Fatalf("numberedName(%d bytes, %d) gave %d bytes", len(n), k, len(s))
			}
		}
		if s := tempName(n, ID{1}); len(s) > 255 {
			t.Fatalf("temporary name of %d bytes", len(s))
		}
	}
}

// FuzzSafeName: whatever a peer offers, the name is one harmless path
// element within bounds.
func FuzzSafeName(f *testing.F) {
	for _, s := range []string{"photo.jpg", "../x", "CON.txt", "a\x00b", strings.Repeat("é", 200), "\u202E", ".", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s := SafeName(in)
		if s == "" || len(s) > MaxNameBytes || !utf8.ValidString(s) {
			t.Fatalf("SafeName(%q) = %q", in, s)
		}
		if strings.ContainsAny(s, "/\\<>:\"|?*") || s == "." || s == ".." || strings.HasPrefix(s, ".") ||
			strings.HasSuffix(s, ".") || strings.HasSuffix(s, " ") {
			t.Fatalf("SafeName(%q) = %q", in, s)
		}
		for _, r := range s {
			if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u202E' || r == '\u200B' {
				t.Fatalf("SafeName(%q) = %q keeps %U", in, s, r)
			}
		}
		base := strings.ToUpper(strings.TrimRight(strings.SplitN(s, ".", 2)[0], " "))
		if windowsReserved[base] {
			t.Fatalf("SafeName(%q) = %q, a Windows device name", in, s)
		}
		if n := numberedName(s, 3); len(n) > MaxNameBytes || !strings.Contains(n, " (3)") {
			t.Fatalf("numberedName(%q, 3) = %q", s, n)
		}
	})
}

func TestNumberedName(t *testing.T) {
	for _, c := range []struct {
		in   string
		k    int
		want string
	}{
		{"photo.jpg", 0, "photo.jpg"},
		{"photo.jpg", 1, "photo (1).jpg"},
		{"archive.tar.gz", 2, "archive.tar (2).gz"},
		{"README", 3, "README (3)"},
	} {
		if got := numberedName(c.in, c.k); got != c.want {
			t.Errorf("numberedName(%q, %d) = %q, want %q", c.in, c.k, got, c.want)
		}
	}
}
