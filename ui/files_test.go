package ui

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// openChatWith is a screen with alice's chat open and the keyboard in it.
func openChatWith(t *testing.T, w, h int) *Screen {
	t.Helper()
	s, _ := newTestScreen(w, h)
	seedSelf(s)
	s.SetContacts(allPresences())
	s.SetDownloads("/home/carol/Downloads")
	press(s, keyT(tea.KeyEnter))
	if s.Focused() != idAlice || s.focus != focusChat {
		t.Fatal("alice's chat did not open")
	}
	return s
}

// A file offer waits as a notice: letters typed in the chat are text,
// never an answer, however they arrive; ctrl+r opens it, and only then
// do a, s and d answer it.
func TestFileOfferNeverTakesTheKeyboard(t *testing.T) {
	s := openChatWith(t, 100, 30)
	s.ShowFileOffer(FileOfferView{Peer: idBob, PeerName: "bob", ID: "f1", Name: "report.pdf", Size: 1000})
	if v := ansi.Strip(s.View()); !strings.Contains(v, "bob offers report.pdf (1000 B) · ctrl+r answer") {
		t.Fatalf("no notice:\n%s", v)
	}
	got := press(s, keyRunes("a"), keyRunes("d"), keyRunes("s"), keyRunes("asd"), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("a"), Paste: true}, keyT(tea.KeyEnter))
	var sent []string
	for _, m := range got {
		switch m := m.(type) {
		case AcceptFileIntent, DeclineFileIntent:
			t.Fatalf("typed text answered the offer: %#v", m)
		case SendIntent:
			sent = append(sent, m.Text)
		}
	}
	if !reflect.DeepEqual(sent, []string{"adsasda"}) {
		t.Fatalf("sent %q, want the letters as one message", sent)
	}
	if got := press(s, keyT(tea.KeyCtrlR), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("a"), Paste: true}); len(got) != 0 {
		t.Fatalf("a pasted letter answered the opened offer: %#v", got)
	}
	got = press(s, keyRunes("a"))
	if want := []tea.Msg{AcceptFileIntent{Peer: idBob, ID: "f1", Dir: "/home/carol/Downloads"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("a on the opened offer gave %#v, want %#v", got, want)
	}
	if len(s.files.queue) != 0 || s.files.isOpen() {
		t.Fatal("the answered offer still waits")
	}

	// Another: saved in a folder the person types; then one declined.
	s.ShowFileOffer(FileOfferView{Peer: idBob, PeerName: "bob", ID: "f2", Name: "b.bin", Size: 1})
	s.ShowFileOffer(FileOfferView{Peer: idBob, PeerName: "bob", ID: "f3", Name: "c.bin", Size: 1})
	press(s, keyT(tea.KeyCtrlR), keyRunes("s"), keyT(tea.KeyCtrlU))
	got = press(s, append(typeText("/tmp/elsewhere"), keyT(tea.KeyEnter))...)
	if want := []tea.Msg{AcceptFileIntent{Peer: idBob, ID: "f2", Dir: "/tmp/elsewhere"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("save in… gave %#v, want %#v", got, want)
	}
	got = press(s, keyT(tea.KeyCtrlR), keyRunes("d"))
	if want := []tea.Msg{DeclineFileIntent{Peer: idBob, ID: "f3"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("d gave %#v, want %#v", got, want)
	}
	// A chat request waits first: ctrl+r opens it before any file offer.
	s.ShowFileOffer(FileOfferView{Peer: idBob, PeerName: "bob", ID: "f4", Name: "d.bin", Size: 1})
	s.ShowOffer(OfferView{ContactID: idDave, Name: "dave", Known: true, SessionID: "s1"})
	press(s, keyT(tea.KeyCtrlR))
	if !s.reqs.isOpen() || s.files.isOpen() {
		t.Fatal("ctrl+r did not open the chat request first")
	}
	// Withdrawn while open: it closes and says so.
	press(s, keyT(tea.KeyEscape))
	s.reqs.remove(reqKey{from: idDave, sid: "s1"})
	press(s, keyT(tea.KeyCtrlR))
	s.HideFileOffer(idBob, "f4")
	if s.files.isOpen() || !strings.Contains(s.note, "withdrawn") {
		t.Fatalf("withdrawn offer: open %v, note %q", s.files.isOpen(), s.note)
	}
}

// noTyping drops the typing indicators from intents.
func noTyping(ms []tea.Msg) []tea.Msg {
	var out []tea.Msg
	for _, m := range ms {
		if _, ok := m.(TypingIntent); !ok {
			out = append(out, m)
		}
	}
	return out
}

// /send PATH in the input offers a file; /send alone asks for one; //send
// is the text "/send"; tab completes the path.
func TestSendCommand(t *testing.T) {
	s := openChatWith(t, 100, 30)
	got := noTyping(press(s, append(typeText("/send ~/a b.txt"), keyT(tea.KeyEnter))...))
	if want := []tea.Msg{SendFileIntent{ContactID: idAlice, Path: "~/a b.txt"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("/send gave %#v, want %#v", got, want)
	}
	got = noTyping(press(s, append(typeText("//send is how"), keyT(tea.KeyEnter))...))
	if len(got) == 0 || got[0] != (SendIntent{ContactID: idAlice, Text: "/send is how"}) {
		t.Fatalf("//send gave %#v", got)
	}
	got = noTyping(press(s, append(typeText("/sender"), keyT(tea.KeyEnter))...))
	if len(got) == 0 || got[0] != (SendIntent{ContactID: idAlice, Text: "/sender"}) {
		t.Fatalf("/sender gave %#v", got)
	}
	press(s, append(typeText("/send"), keyT(tea.KeyEnter))...)
	if s.dlg.kind != dlgSendFile || s.dlg.contactID != idAlice {
		t.Fatalf("/send alone opened dialog %v for %q", s.dlg.kind, s.dlg.contactID)
	}
	got = noTyping(press(s, keyT(tea.KeyEnter)))
	if len(got) != 0 || !strings.Contains(s.dlg.err, "type the path") {
		t.Fatalf("empty path: %#v, error %q", got, s.dlg.err)
	}
	press(s, keyT(tea.KeyEscape))

	dir := t.TempDir()
	for _, n := range []string{"report-2025.pdf", "report-2026.pdf", "zeta"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	press(s, typeText("/send "+dir+"/ze")...)
	for _, m := range press(s, keyT(tea.KeyTab)) {
		press(s, m)
	}
	if v := s.input.Value(); v != "/send "+dir+"/zeta" {
		t.Fatalf("tab made %q", v)
	}
	if s.focus != focusChat {
		t.Fatal("tab after /send left the chat")
	}
}

func TestCompletePath(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"report-2025.pdf", "report-2026.pdf", ".hidden", "readme"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "reports"), 0o755); err != nil {
		t.Fatal(err)
	}
	sep := string(filepath.Separator)
	for _, c := range []struct {
		typed    string
		dirsOnly bool
		want     string
		choices  []string
	}{
		{dir + sep + "rep", false, dir + sep + "report", []string{"report-2025.pdf", "report-2026.pdf", "reports" + sep}},
		{dir + sep + "rea", false, dir + sep + "readme", nil},
		{dir + sep + "report-2026", false, dir + sep + "report-2026.pdf", nil},
		{dir + sep + "rep", true, dir + sep + "reports" + sep, nil},
		{dir + sep + ".h", false, dir + sep + ".hidden", nil},
		{dir + sep + "x", false, dir + sep + "x", nil},
		{dir + sep + "nowhere" + sep + "x", false, dir + sep + "nowhere" + sep + "x", nil},
	} {
		got, choices := completePath(c.typed, c.dirsOnly)
		if got != c.want || !reflect.DeepEqual(choices, c.choices) {
			t.Errorf("completePath(%q, %v) = %q %q, want %q %q", c.typed, c.dirsOnly, got, choices, c.want, c.choices)
		}
	}
}

// The send-file dialog completes with tab, says what matched, and offers
// the file to the chat it was opened from.
func TestSendFileDialog(t *testing.T) {
	s := openChatWith(t, 100, 30)
	dir := t.TempDir()
	for _, n := range []string{"a1.txt", "a2.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	press(s, keyT(tea.KeyCtrlO))
	press(s, typeText(dir+"/a")...)
	for _, m := range press(s, keyT(tea.KeyTab)) {
		press(s, m)
	}
	if v := s.dlg.fields[0].Value(); v != dir+"/a" || !strings.Contains(s.dlg.hint, "a1.txt  a2.txt") {
		t.Fatalf("after tab: %q, hint %q", v, s.dlg.hint)
	}
	press(s, keyRunes("2"))
	for _, m := range press(s, keyT(tea.KeyTab)) {
		press(s, m)
	}
	got := press(s, keyT(tea.KeyEnter))
	if want := []tea.Msg{SendFileIntent{ContactID: idAlice, Path: dir + "/a2.txt"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("enter gave %#v, want %#v", got, want)
	}
	if s.dlg.kind != dlgNone {
		t.Fatal("the dialog stayed open")
	}
}

// The transfers list cancels the highlighted transfer; an ended transfer
// leaves the transfer lines and says how it ended in its chat.
func TestTransfersListAndEnd(t *testing.T) {
	s := openChatWith(t, 100, 30)
	seedTransfers(s)
	if n := s.transferLineCount(); n != 3 {
		t.Fatalf("%d transfer lines for alice, want 3", n)
	}
	press(s, keyT(tea.KeyCtrlL), keyRunes("j"), keyRunes("j"), keyRunes("j"))
	got := press(s, keyRunes("x"))
	if want := []tea.Msg{CancelFileIntent{Peer: idBob, ID: "b1"}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("x gave %#v, want %#v", got, want)
	}
	s.EndTransfer(TransferView{Peer: idBob, ID: "b1"}, "you cancelled thesis-final-final.odt", false)
	if s.dlg.cursor != 2 {
		t.Fatalf("cursor %d after the last row went, want 2", s.dlg.cursor)
	}
	press(s, keyT(tea.KeyEscape))
	s.EndTransfer(TransferView{Peer: idAlice, ID: "a1", Outgoing: true}, "holiday photos.tar (734.0 MiB) sent to alice", true)
	v := ansi.Strip(s.View())
	if strings.Contains(v, "holiday photos.tar █") || !strings.Contains(v, "14:30 ↑ holiday photos.tar (734.0 MiB) sent to alice") {
		t.Fatalf("after the end:\n%s", v)
	}
	if n := s.transferLineCount(); n != 2 {
		t.Fatalf("%d transfer lines, want 2", n)
	}
}

// A transfer line never outgrows its width; wide, it has the bar, the
// share, the rate and the time left.
func TestTransferLineFits(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	v := TransferView{Peer: idAlice, PeerName: "alice", ID: "x", Outgoing: true, Name: strings.Repeat("long name ", 8),
		Size: 100 << 20, Done: 25 << 20, Rate: 5 << 20, Phase: TransferActive}
	for w := 10; w <= 120; w++ {
		if got := ansi.StringWidth(s.transferLine(v, w, true)); got > w {
			t.Fatalf("at %d columns the line is %d wide", w, got)
		}
	}
	line := ansi.Strip(s.transferLine(v, 120, true))
	for _, want := range []string{"↑ long", "█", "25%", "25.0 MiB of 100.0 MiB", "5.0 MiB/s", "15 s left"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func TestHumanBytesAndTimeLeft(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
	for _, c := range []struct {
		left uint64
		rate float64
		want string
	}{{100, 0, ""}, {10, 100, "1 s left"}, {4500, 100, "45 s left"}, {30000, 100, "5 min left"}, {3 * 3600 * 100, 100, "3 h 0 min left"}} {
		if got := timeLeft(c.left, c.rate); got != c.want {
			t.Errorf("timeLeft(%d, %v) = %q, want %q", c.left, c.rate, got, c.want)
		}
	}
}

func TestDownloadsFor(t *testing.T) {
	none := func(string) ([]byte, error) { return nil, os.ErrNotExist }
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	dirs := func(content string) func(string) ([]byte, error) {
		return func(p string) ([]byte, error) {
			if p != filepath.Join("/home/u/.config", "user-dirs.dirs") {
				return nil, os.ErrNotExist
			}
			return []byte(content), nil
		}
	}
	for _, c := range []struct {
		name, goos string
		env        map[string]string
		read       func(string) ([]byte, error)
		want       string
	}{
		{"plain Linux", "linux", nil, none, "/home/u/Downloads"},
		{"environment", "linux", map[string]string{"XDG_DOWNLOAD_DIR": "/data/in"}, none, "/data/in"},
		{"relative environment ignored", "linux", map[string]string{"XDG_DOWNLOAD_DIR": "in"}, none, "/home/u/Downloads"},
		{"user-dirs", "linux", nil, dirs("# comment\nXDG_DESKTOP_DIR=\"$HOME/Desktop\"\nXDG_DOWNLOAD_DIR=\"$HOME/Téléchargements\"\n"), "/home/u/Téléchargements"},
		{"user-dirs absolute", "freebsd", nil, dirs(`XDG_DOWNLOAD_DIR="/srv/dl"`), "/srv/dl"},
		{"user-dirs off", "linux", nil, dirs(`XDG_DOWNLOAD_DIR="$HOME/"`), "/home/u/Downloads"},
		{"macOS", "darwin", map[string]string{"XDG_DOWNLOAD_DIR": "/data/in"}, none, "/home/u/Downloads"},
	} {
		if got := downloadsFor(c.goos, env(c.env), "/home/u", c.read); got != filepath.FromSlash(c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if d := DownloadsDir(); !filepath.IsAbs(d) {
		t.Errorf("DownloadsDir() = %q, not absolute", d)
	}
}
