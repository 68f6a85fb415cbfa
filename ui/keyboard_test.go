package ui

import (
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
	qrcode "github.com/skip2/go-qrcode"
)

// deliveries splits text into key messages the ways Bubble Tea hands typed
// or pasted text to a program: one rune at a time (typing), runs of
// printable runes with each space on its own (an unbracketed paste, a slow
// link, tmux send-keys -l: its input parser splits at spaces and controls,
// and a short read can split a run anywhere), or bracketed-paste chunks
// that carry spaces too.
func deliveries(text string, rng *rand.Rand) []tea.Msg {
	runes := []rune(text)
	var out []tea.Msg
	switch rng.IntN(3) {
	case 0:
		for _, r := range runes {
			if r == ' ' {
				out = append(out, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
			} else {
				out = append(out, keyRunes(string(r)))
			}
		}
	case 1:
		for i := 0; i < len(runes); {
			if runes[i] == ' ' {
				out = append(out, tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}})
				i++
				continue
			}
			j := i
			for j < len(runes) && runes[j] != ' ' && j-i < 1+rng.IntN(12) {
				j++
			}
			out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: runes[i:j]})
			i = j
		}
	default:
		for i := 0; i < len(runes); {
			j := min(len(runes), i+1+rng.IntN(16))
			out = append(out, tea.KeyMsg{Type: tea.KeyRunes, Runes: runes[i:j], Paste: true})
			i = j
		}
	}
	return out
}

// TestTypingThroughRequests types every line of a corpus into an open chat
// while chat requests (from contacts and from unknown IDs) arrive at random
// moments: no request may be answered, nothing may quit or open a dialog,
// and every line must arrive whole, keystroke for keystroke.
func TestTypingThroughRequests(t *testing.T) {
	b, err := os.ReadFile("testdata/typing_corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for seed := range uint64(25) {
		rng := rand.New(rand.NewPCG(seed, 11))
		s, _ := newTestScreen(100, 30)
		seedSelf(s)
		s.SetContacts(allPresences())
		press(s, keyT(tea.KeyEnter))
		shown := 0
		for _, line := range lines {
			for _, m := range deliveries(line, rng) {
				if rng.IntN(5) == 0 {
					shown++
					o := OfferView{ContactID: idStranger, Name: "a", SessionID: "s" + itoa(shown)}
					if rng.IntN(2) == 0 {
						o = OfferView{ContactID: idBob, Name: "bob", Known: true, SessionID: "s" + itoa(shown)}
					}
					s.ShowOffer(o)
				}
				for _, in := range press(s, m) {
					if _, ok := in.(TypingIntent); !ok {
						t.Fatalf("seed %d, line %q: typing %#v produced %#v", seed, line, m, in)
					}
				}
				if s.dlg.kind != dlgNone || s.reqs.isOpen() || s.focus != focusChat {
					t.Fatalf("seed %d, line %q: typing %#v opened something (dialog %v, request %v, focus %v)", seed, line, m, s.dlg.kind, s.reqs.open, s.focus)
				}
			}
			if got := s.input.Value(); got != line {
				t.Fatalf("seed %d: typed %q, the input holds %q", seed, line, got)
			}
			want := SendIntent{ContactID: idAlice, Text: strings.TrimRight(line, " ")}
			got := press(s, keyT(tea.KeyEnter))
			if len(got) == 0 || got[0] != want {
				t.Fatalf("seed %d: enter after %q gave %#v, want %#v first", seed, line, got, want)
			}
		}
		if len(s.reqs.queue) != shown {
			t.Fatalf("seed %d: %d requests waiting, %d arrived: some were answered", seed, len(s.reqs.queue), shown)
		}
	}
}

// TestKeyNamesTypedAsTextAreText: words that name keys, arriving as one
// run the way Bubble Tea delivers them, are text in a field and nothing at
// all in the contacts pane; only the real keys act.
func TestKeyNamesTypedAsTextAreText(t *testing.T) {
	words := []string{"ctrl+c", "up", "esc", "enter", "tab", "ctrl+r", "ctrl+s", "f1", "alt+enter", "pgup", "backspace", "ctrl+u", "ctrl+k", "delete"}
	s, _ := newTestScreen(100, 30)
	s.SetContacts(allPresences())
	s.ShowOffer(OfferView{ContactID: idStranger, SessionID: "s1"})
	// The contacts pane: a run of several runes is not a key.
	for _, w := range words {
		if got := press(s, keyRunes(w)); len(got) != 0 || s.dlg.kind != dlgNone || s.reqs.isOpen() {
			t.Fatalf("contacts: %q as text gave %#v (dialog %v, request %v)", w, got, s.dlg.kind, s.reqs.open)
		}
	}
	if c, _ := s.contacts.selected(); c.ID != idAlice {
		t.Fatalf("contacts: text moved the highlight to %q", c.Name)
	}
	// The chat input.
	press(s, keyT(tea.KeyEnter))
	var want []string
	for _, w := range words {
		for _, in := range press(s, keyRunes(w), tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}) {
			if _, ok := in.(TypingIntent); !ok {
				t.Fatalf("chat: %q as text gave %#v", w, in)
			}
		}
		want = append(want, w)
	}
	if got, w := s.input.Value(), strings.Join(want, " ")+" "; got != w {
		t.Fatalf("chat input %q, want %q", got, w)
	}
	// A dialog field: the add dialog's name.
	press(s, keyT(tea.KeyEsc), keyRunes("a"))
	for _, w := range []string{"esc", "enter", "tab", "ctrl+c"} {
		press(s, keyRunes(w))
	}
	if s.dlg.kind != dlgAdd || s.dlg.fields[0].Value() != "escentertabctrl+c" {
		t.Fatalf("dialog %v, name field %q", s.dlg.kind, s.dlg.fields[0].Value())
	}
	// The real keys still work.
	if got := press(s, keyT(tea.KeyEsc), keyT(tea.KeyCtrlC)); !reflect.DeepEqual(got, []tea.Msg{QuitIntent{}}) {
		t.Fatalf("real esc, ctrl+c: %#v", got)
	}
	if len(s.reqs.queue) != 1 {
		t.Fatalf("the request was answered: %d waiting", len(s.reqs.queue))
	}
}

// TestLongMessages: the limit is what a session carries; near it the rule
// counts down, text that would not fit is refused whole with a message,
// and a full message is sent whole.
func TestLongMessages(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	s.SetContacts(allPresences())
	press(s, keyT(tea.KeyEnter))
	if v := s.View(); strings.Contains(v, " left ") {
		t.Fatalf("counter shown on an empty input:\n%s", v)
	}
	press(s, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(strings.Repeat("x", maxMessageBytes-10)), Paste: true})
	if v := s.View(); !strings.Contains(v, " 10 characters left ") {
		t.Fatalf("no countdown near the limit:\n%s", v)
	}
	press(s, keyRunes("é")) // two bytes: the count is in bytes now
	if v := s.View(); !strings.Contains(v, " 8 bytes left ") {
		t.Fatalf("countdown in bytes:\n%s", v)
	}
	press(s, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("0123456789"), Paste: true})
	if got := len(s.input.Value()); got != maxMessageBytes-8 {
		t.Fatalf("a paste that does not fit changed the input to %d bytes", got)
	}
	if v := s.View(); !strings.Contains(v, "⚠ That does not fit: a message holds at most 64 KiB") {
		t.Fatalf("refusal not said:\n%s", v)
	}
	press(s, typeText("12345678")...)
	if v := s.View(); !strings.Contains(v, "the message is full (64 KiB)") {
		t.Fatalf("full message not said:\n%s", v)
	}
	press(s, keyRunes("9"), keyT(tea.KeyCtrlJ))
	got := press(s, keyT(tea.KeyEnter))
	if len(got) == 0 {
		t.Fatal("a full message was not sent")
	}
	if send, ok := got[0].(SendIntent); !ok || len(send.Text) != maxMessageBytes || !strings.HasSuffix(send.Text, "é12345678") {
		t.Fatalf("sent %T of %d bytes", got[0], len(got[0].(SendIntent).Text))
	}
}

// allBindings is every key.Binding field of the key map.
func allBindings(km *keyMap) map[string]key.Binding {
	out := map[string]key.Binding{}
	v := reflect.ValueOf(km).Elem()
	for i := range v.NumField() {
		if b, ok := v.Field(i).Interface().(key.Binding); ok {
			out[v.Type().Field(i).Name] = b
		}
	}
	return out
}

func TestHelpIsCompleteAndFootersFit(t *testing.T) {
	s, _ := newTestScreen(60, 30)
	km := &s.keys
	inHelp := map[string]bool{}
	for _, sec := range km.helpSections() {
		for _, b := range sec.keys {
			inHelp[b.Help().Key] = true
		}
	}
	for name, b := range allBindings(km) {
		if !inHelp[b.Help().Key] {
			t.Errorf("binding %s (%s) is not in the help", name, b.Help().Key)
		}
	}
	for ctx := ctxContacts; ctx <= ctxTransfers; ctx++ {
		bs := km.footerKeys(ctx)
		line := ansi.Strip(s.keyLine(bs, 60))
		if ansi.StringWidth(line) > 60 || strings.Contains(line, "…") {
			t.Errorf("context %d: footer %q does not fit 60 columns whole", ctx, line)
		}
		for i, b := range bs {
			h := b.Help()
			if strings.Contains(h.Desc, " ") {
				t.Errorf("context %d: %q is described in more than one word: %q", ctx, h.Key, h.Desc)
			}
			if h.Key == "esc" && h.Desc != "back" {
				t.Errorf("context %d: esc is %q, not back", ctx, h.Desc)
			}
			if i < 4 && !strings.Contains(line, h.Key+" "+h.Desc) {
				t.Errorf("context %d: footer %q lacks %q at 60 columns", ctx, line, h.Key+" "+h.Desc)
			}
		}
	}
	// The help lists the mouse wheel, ctrl+j and A.
	s.SetSize(100, 60)
	press(s, keyRunes("?"))
	v := ansi.Strip(s.View())
	for _, want := range []string{"wheel", "ctrl+j", "A   accept and add", "ctrl+r answer", "Chat", "Contacts", "Anywhere", "Dialogs"} {
		if !strings.Contains(v, want) {
			t.Errorf("help lacks %q:\n%s", want, v)
		}
	}
}

// TestStatusLineShortensByWords: at every width the status line holds only
// whole words of what it has to say, the most important kept longest.
func TestStatusLineShortensByWords(t *testing.T) {
	s, _ := newTestScreen(200, 30)
	seedStatus(s)
	full := "signal: firestore ✓ │ direct, encrypted 10.0.0.2:4000 ⇄ 198.51.100.12:5000 │ NAT: cone NAT: direct connections work with most peers │ ctrl+s: all signal ✓"
	words := map[string]bool{}
	for _, w := range strings.Fields(full) {
		words[strings.TrimRight(w, ",:")] = true
	}
	for w := 20; w <= 200; w++ {
		line := strings.TrimSpace(ansi.Strip(s.statusView(w)))
		if ansi.StringWidth(s.statusView(w)) != w {
			t.Fatalf("width %d: status is %d wide", w, ansi.StringWidth(s.statusView(w)))
		}
		for _, word := range strings.Fields(line) {
			if !words[strings.TrimRight(word, ",:…")] && word != "…" {
				t.Fatalf("width %d: %q has a cut word %q", w, line, word)
			}
		}
		if w >= 40 && !strings.HasPrefix(line, "signal: firestore ✓") {
			t.Errorf("width %d: the backend is not first and whole: %q", w, line)
		}
		if w >= 80 && !strings.Contains(line, "10.0.0.2:4000 ⇄ 198.51.100.12:5000") {
			t.Errorf("width %d: the path was shortened before the NAT: %q", w, line)
		}
	}
	press(s, keyRunes("s"))
	v := ansi.Strip(s.View())
	for _, want := range []string{"cone NAT: direct connections work with most peers", "198.51.100.12:5000", "firestore"} {
		if !strings.Contains(v, want) {
			t.Errorf("details view lacks %q:\n%s", want, v)
		}
	}
}

// TestQRCodeReadsBack turns the drawn half-blocks back into modules and
// compares them with the encoder's, on both backgrounds.
func TestQRCodeReadsBack(t *testing.T) {
	id := realID(t, 3)
	q, err := qrcode.New(strings.ToUpper(id), qrcode.Low)
	if err != nil {
		t.Fatal(err)
	}
	q.DisableBorder = true
	want := q.Bitmap()
	for _, dark := range []bool{true, false} {
		lines, err := qrLines(id, dark)
		if err != nil {
			t.Fatal(err)
		}
		n := len(want) + 2*qrQuiet
		if len(lines) != (n+1)/2 {
			t.Fatalf("%d lines for %d modules", len(lines), n)
		}
		for y := 0; y < n; y++ {
			row := []rune(lines[y/2])
			if len(row) != n {
				t.Fatalf("line %d has %d cells, want %d", y/2, len(row), n)
			}
			for x := 0; x < n; x++ {
				c := row[x]
				ink := c == '█' || (y%2 == 0 && c == '▀') || (y%2 == 1 && c == '▄')
				isDark := ink != dark // on a dark background ink is light
				mx, my := x-qrQuiet, y-qrQuiet
				wantDark := mx >= 0 && my >= 0 && mx < len(want) && my < len(want) && want[my][mx]
				if isDark != wantDark {
					t.Fatalf("dark background %v: module (%d,%d) dark=%v, want %v", dark, mx, my, isDark, wantDark)
				}
			}
		}
	}
}

// TestCopyID: c writes my ID through the clipboard writer (from the
// command, not in Update) and says so.
func TestCopyID(t *testing.T) {
	var copied []string
	s, _ := newTestScreen(100, 30)
	s.clip = func(text string) error { copied = append(copied, text); return nil }
	seedSelf(s)
	_, cmd := s.Update(keyRunes("c"))
	if len(copied) != 0 || cmd == nil {
		t.Fatalf("copied in Update (%v) or no command", copied)
	}
	s.Update(cmd())
	if !reflect.DeepEqual(copied, []string{idMe}) {
		t.Fatalf("copied %q", copied)
	}
	if v := s.View(); !strings.Contains(v, "✓ Your ID was sent to the clipboard") {
		t.Fatalf("copy not said:\n%s", v)
	}
	// From the info view too.
	press(s, keyRunes("i"))
	_, cmd = s.Update(keyRunes("c"))
	s.Update(cmd())
	if len(copied) != 2 || s.dlg.kind != dlgInfo {
		t.Fatalf("copy from info: %q, dialog %v", copied, s.dlg.kind)
	}
}
