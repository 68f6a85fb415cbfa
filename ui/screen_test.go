package ui

import (
	"bytes"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/signal"
)

// testClock is a settable clock for screens under test.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time { return c.t }

var baseTime = time.Date(2026, 11, 24, 14, 30, 0, 0, time.UTC)

// newTestScreen is a screen with an ASCII renderer, UTC and a fixed clock.
func newTestScreen(w, h int) (*Screen, *testClock) {
	clk := &testClock{t: baseTime}
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	r.SetHasDarkBackground(true)
	s := NewScreen(Options{Now: clk.now, Location: time.UTC, Renderer: r})
	s.SetSize(w, h)
	return s, clk
}

const (
	idAlice = "a3kq7zmxw2p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7ba"
	idBob   = "b7rt2mxq4kz6wp3nfy5dhc8vje2lsu6gaq4wk7xmz5pd6nrf2ty7bb"
	idMe    = "m4xq7zkrw2p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7cc"
	idDave  = "d2mz5kq7xw4p3fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7dd"
	idErin  = "e5kq2zmxw7p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7ee"
	idFrank = "f6xq4zkrw2p7fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7ff"

	idStranger = "s9tq7zmxw2p4fy6rdt5nbc8vhe3jsu2lgq4wk7xmz5pd6nrf2ty7zz"

	// idMeReal is a valid ID (the dialogs check the one pasted against it).
	idMeReal = "527oupahukt7mdwju35cxhagtjrzukrzoztakypgvysbbgiufbbyvx74"
)

// displayWidth is a line's width in terminal columns.
func displayWidth(s string) int { return ansi.StringWidth(s) }

// keyRunes is a key press that types s.
func keyRunes(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

// typeText turns text into key presses; '\t' is Tab and '\n' is Enter.
func typeText(text string) []tea.Msg {
	var out []tea.Msg
	for _, r := range text {
		switch r {
		case '\t':
			out = append(out, tea.KeyMsg{Type: tea.KeyTab})
		case '\n':
			out = append(out, tea.KeyMsg{Type: tea.KeyEnter})
		default:
			out = append(out, keyRunes(string(r)))
		}
	}
	return out
}

// collect runs cmd and every command batched inside it, and returns the
// intents they produce (other messages, like cursor blinks, are dropped).
func collect(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		var out []tea.Msg
		for _, c := range msg {
			out = append(out, collect(c)...)
		}
		return out
	case OpenChatIntent, SendIntent, TypingIntent, AcceptIntent, DeclineIntent,
		AddContactIntent, RenameContactIntent, RemoveContactIntent, QuitIntent,
		BlockIntent, UnblockIntent, JoinIntent, CancelIntent, AskEachTimeIntent,
		SendFileIntent, AcceptFileIntent, DeclineFileIntent, CancelFileIntent, completionMsg:
		return []tea.Msg{msg}
	}
	return nil
}

// press feeds msgs to s and returns every intent they produced, in order.
func press(s *Screen, msgs ...tea.Msg) []tea.Msg {
	var out []tea.Msg
	for _, m := range msgs {
		var cmd tea.Cmd
		s, cmd = s.Update(m)
		out = append(out, collect(cmd)...)
	}
	return out
}

func keyT(t tea.KeyType) tea.KeyMsg { return tea.KeyMsg{Type: t} }

// realID is the ID of a deterministic test key (the dialogs check IDs
// the way the engine does, so fakes do not get through them).
func realID(t testing.TB, seed byte) string {
	t.Helper()
	var b [32]byte
	for i := range b {
		b[i] = seed + byte(i)*11
	}
	id, err := identity.NewIdentity(bytes.NewReader(b[:]))
	if err != nil {
		t.Fatal(err)
	}
	return id.ID()
}

func TestKeysProduceIntents(t *testing.T) {
	enter, tab, esc := keyT(tea.KeyEnter), keyT(tea.KeyTab), keyT(tea.KeyEsc)
	down := keyT(tea.KeyDown)
	altEnter := tea.KeyMsg{Type: tea.KeyEnter, Alt: true}
	ctrlJ := keyT(tea.KeyCtrlJ)
	ctrlU := keyT(tea.KeyCtrlU)
	ctrlR := keyT(tea.KeyCtrlR)
	dave := realID(t, 4)
	seq := func(parts ...any) []tea.Msg {
		var out []tea.Msg
		for _, p := range parts {
			switch p := p.(type) {
			case string:
				out = append(out, typeText(p)...)
			case tea.Msg:
				out = append(out, p)
			}
		}
		return out
	}
	bobOffer := func(s *Screen, _ *testClock) {
		s.ShowOffer(OfferView{ContactID: idBob, Name: "bob", Known: true, SessionID: "s1"})
	}
	strangerOffer := func(name string) func(*Screen, *testClock) {
		return func(s *Screen, _ *testClock) {
			s.ShowOffer(OfferView{ContactID: idStranger, Name: name, SessionID: "s2"})
		}
	}
	cases := []struct {
		name  string
		setup func(*Screen, *testClock)
		keys  []tea.Msg
		want  []tea.Msg
	}{
		{"enter opens the highlighted contact", nil, seq(enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}}},
		{"down then enter opens the next", nil, seq(down, enter),
			[]tea.Msg{OpenChatIntent{ContactID: idBob}}},
		{"j/k move too", nil, seq("jjk", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idBob}}},
		{"enter on no contacts does nothing", func(s *Screen, _ *testClock) { s.SetContacts(nil) }, seq(enter), nil},
		{"typing then enter sends and stops typing", nil, seq(enter, "hi", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				SendIntent{ContactID: idAlice, Text: "hi"}, TypingIntent{ContactID: idAlice, Active: false}}},
		{"typing reported once, and its end when erased", nil, seq(enter, "ab", keyT(tea.KeyBackspace), keyT(tea.KeyBackspace)),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				TypingIntent{ContactID: idAlice, Active: false}}},
		{"enter on an empty input sends nothing", nil, seq(enter, "   ", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}}},
		{"alt+enter and ctrl+j insert new lines", nil, seq(enter, "a", altEnter, "b", ctrlJ, "c", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				SendIntent{ContactID: idAlice, Text: "a\nb\nc"}, TypingIntent{ContactID: idAlice, Active: false}}},
		{"q quits from the contacts", nil, seq("q"), []tea.Msg{QuitIntent{}}},
		{"q is text in the chat; ctrl+c quits anywhere", nil, seq(enter, "q", keyT(tea.KeyCtrlC)),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true}, QuitIntent{}}},
		{"esc leaves the chat, tab comes back, draft kept", nil, seq(enter, "dr", esc, tab, "aft", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				SendIntent{ContactID: idAlice, Text: "draft"}, TypingIntent{ContactID: idAlice, Active: false}}},
		{"switching chats ends typing in the old one", nil, seq(enter, "x", esc, down, enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				TypingIntent{ContactID: idAlice, Active: false}, OpenChatIntent{ContactID: idBob}}},
		{"add contact: name, tab, ID with spaces and case as pasted", nil, seq("a", "dave", tab, " "+strings.ToUpper(dave[:20])+"\n"+dave[20:]+" \n"),
			[]tea.Msg{AddContactIntent{Name: "dave", ID: dave}}},
		{"add contact: enter on name moves to ID", nil, seq("a", "dave\n", dave+"\n"),
			[]tea.Msg{AddContactIntent{Name: "dave", ID: dave}}},
		{"add contact: nothing without an ID", nil, seq("a", "dave\n\n"), nil},
		{"add contact: nothing with a bad ID", nil, seq("a", "dave\n", dave[:55]+"a\n"), nil},
		{"add contact: nothing with an invisible name", nil, seq("a", "\u200b\u3164\t", dave+"\n"), nil},
		{"add contact: esc goes back", nil, seq("a", "dave", esc, "q"), []tea.Msg{QuitIntent{}}},
		{"rename", nil, seq(down, "r", ctrlU, "robert\n"),
			[]tea.Msg{RenameContactIntent{ID: idBob, Name: "robert"}}},
		{"rename: the name is cleaned", nil, seq(down, "r", ctrlU, " Jose\u0301\u200b \n"),
			[]tea.Msg{RenameContactIntent{ID: idBob, Name: "José"}}},
		{"remove asks first: y removes", nil, seq("x", "y"), []tea.Msg{RemoveContactIntent{ID: idAlice}}},
		{"g: a join code is checked, then joined", nil, seq("g", "p2ptui1.nope\n", ctrlU, testJoinCode+"\n"), []tea.Msg{JoinIntent{Code: testJoinCode}}},
		{"ctrl+x stops connecting to the highlighted contact", nil, seq(down, keyT(tea.KeyCtrlX)), []tea.Msg{CancelIntent{ContactID: idBob}}},
		{"ctrl+x in the chat stops connecting to its contact", nil, seq(enter, keyT(tea.KeyCtrlX)), []tea.Msg{OpenChatIntent{ContactID: idAlice}, CancelIntent{ContactID: idAlice}}},
		{"t asks about the highlighted contact each time", func(s *Screen, _ *testClock) {
			cs := allPresences()
			for i := range cs {
				cs[i].Contact = true
			}
			cs[1].AskEachTime = true
			s.SetContacts(cs)
		}, seq("e", down, "e"), []tea.Msg{AskEachTimeIntent{ContactID: idAlice, Ask: true}, AskEachTimeIntent{ContactID: idBob, Ask: false}}},
		{"g: esc goes back without joining", nil, seq("g", testJoinCode, esc, "q"), []tea.Msg{QuitIntent{}}},
		{"remove asks first: n keeps", nil, seq("x", "n"), nil},
		{"remove and block", nil, seq("x", "b"), []tea.Msg{BlockIntent{ID: idAlice, Name: "alice"}, RemoveContactIntent{ID: idAlice}}},
		{"b blocks after asking", nil, seq(down, "b", "y"), []tea.Msg{BlockIntent{ID: idBob, Name: "bob"}}},
		{"b on a blocked contact unblocks after asking", func(s *Screen, _ *testClock) {
			cs := allPresences()
			cs[0].Blocked = true
			s.SetContacts(cs)
		}, seq("b", "y"), []tea.Msg{UnblockIntent{ID: idAlice}}},
		{"B lists the blocked, u unblocks", func(s *Screen, _ *testClock) {
			s.SetBlocked([]BlockedView{{ID: idDave, Name: "dave"}, {ID: idStranger}})
		}, seq("B", "j", "u", esc), []tea.Msg{UnblockIntent{ID: idStranger}}},

		{"a request does not take the keys: a adds a contact", bobOffer, seq("a", esc), nil},
		{"a request does not take the keys: d and a are text in the chat", bobOffer, seq(enter, "da", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				SendIntent{ContactID: idAlice, Text: "da"}, TypingIntent{ContactID: idAlice, Active: false}}},
		{"ctrl+r opens it, a accepts", bobOffer, seq(ctrlR, "a"), []tea.Msg{AcceptIntent{From: idBob, SessionID: "s1"}}},
		{"ctrl+r from the chat, d declines", bobOffer, seq(enter, ctrlR, "d"),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, DeclineIntent{From: idBob, SessionID: "s1"}}},
		{"ctrl+r from a dialog keeps the dialog", bobOffer, seq("a", "da", ctrlR, "d", "ve", tab, dave+"\n"),
			[]tea.Msg{DeclineIntent{From: idBob, SessionID: "s1"}, AddContactIntent{Name: "dave", ID: dave}}},
		{"one request answered per ctrl+r", func(s *Screen, c *testClock) {
			bobOffer(s, c)
			strangerOffer("")(s, c)
		}, seq(ctrlR, "d", "d", ctrlR, "d"), []tea.Msg{DeclineIntent{From: idBob, SessionID: "s1"}, DeclineIntent{From: idStranger, SessionID: "s2"}}},
		{"esc leaves a request waiting", bobOffer, seq(ctrlR, esc, enter, ctrlR, "a"),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, AcceptIntent{From: idBob, SessionID: "s1"}}},
		{"a paste answers nothing", bobOffer, seq(ctrlR, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("a"), Paste: true}, esc), nil},
		{"b blocks the caller", strangerOffer("mallory"), seq(ctrlR, "b"), []tea.Msg{BlockIntent{ID: idStranger, Name: "mallory"}}},
		{"unknown: A asks a name, enter accepts and adds", strangerOffer(""), seq(ctrlR, "A", "\n", "dave\n"),
			[]tea.Msg{AcceptIntent{From: idStranger, SessionID: "s2", AddAs: "dave"}}},
		{"unknown: the name it gave is offered", strangerOffer("mallory"), seq(ctrlR, "A", "\n"),
			[]tea.Msg{AcceptIntent{From: idStranger, SessionID: "s2", AddAs: "mallory"}}},
		{"unknown: esc from the name goes back", strangerOffer(""), seq(ctrlR, "A", "da", esc, "a"),
			[]tea.Msg{AcceptIntent{From: idStranger, SessionID: "s2"}}},
		{"known: A is not offered", bobOffer, seq(ctrlR, "A"), nil},
		{"ctrl+r with nothing waiting does nothing", nil, seq(ctrlR, "a", esc), nil},
		{"a request hidden by the engine closes", func(s *Screen, c *testClock) {
			bobOffer(s, c)
			press(s, ctrlR)
			s.HideOffer(idBob, "s1")
		}, seq(enter), []tea.Msg{OpenChatIntent{ContactID: idAlice}}},
		{"help: esc closes it", nil, seq("?", esc, "q"), []tea.Msg{QuitIntent{}}},
		{"f1 and ctrl+s open help and status from the chat", nil, seq(enter, keyT(tea.KeyF1), esc, keyT(tea.KeyCtrlS), esc, "x", enter),
			[]tea.Msg{OpenChatIntent{ContactID: idAlice}, TypingIntent{ContactID: idAlice, Active: true},
				SendIntent{ContactID: idAlice, Text: "x"}, TypingIntent{ContactID: idAlice, Active: false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, clk := newTestScreen(100, 30)
			seedSelf(s)
			s.SetContacts(allPresences())
			if tc.setup != nil {
				tc.setup(s, clk)
			}
			got := press(s, tc.keys...)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("intents:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestFocusAndDialogState(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	s.SetContacts(allPresences())
	if s.Focused() != "" {
		t.Fatalf("Focused before opening = %q", s.Focused())
	}
	press(s, keyT(tea.KeyDown), keyT(tea.KeyEnter))
	if s.Focused() != idBob || s.focus != focusChat {
		t.Fatalf("after enter: Focused %q focus %v", s.Focused(), s.focus)
	}
	// Removing the open contact closes its chat.
	s.SetContacts(allPresences()[:1])
	if s.Focused() != "" || s.focus != focusContacts {
		t.Fatalf("after removal: Focused %q focus %v", s.Focused(), s.focus)
	}
	// An add dialog with a missing name says so and stays open.
	press(s, typeText("a\n")...)
	if s.dlg.kind != dlgAdd || s.dlg.err == "" {
		t.Fatalf("dialog %v err %q", s.dlg.kind, s.dlg.err)
	}
	if v := s.View(); !strings.Contains(v, "Name: type what you call them.") {
		t.Errorf("dialog error not shown:\n%s", v)
	}
}

// TestDialogsKeepInputAndNameTheField: a mistake in a dialog leaves it
// open with everything typed, and the error says which field and what to
// do.
func TestDialogsKeepInputAndNameTheField(t *testing.T) {
	dave := realID(t, 4)
	typo := dave[:10] + map[bool]string{true: "b", false: "a"}[dave[10] == 'a'] + dave[11:]
	for _, c := range []struct {
		name, typedName, typedID, want string
	}{
		{"typo in the ID", "dave", typo, "ID: this ID looks like a typo"},
		{"not an ID", "dave", "hello there", "ID: not a p2ptui ID"},
		{"my own ID", "me", idMeReal, "ID: that is your own ID"},
		{"already a contact", "again", realID(t, 9), "ID: already in your contacts, as nine."},
		{"invisible name", "\u3164", dave, "Name: it shows nothing"},
		{"long name", strings.Repeat("ü", 40), dave, "Name: too long, at most 64 bytes (this one has 80)."},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newTestScreen(100, 30)
			s.SetSelf(Self{ID: idMeReal, Name: "carol"})
			s.SetContacts(append(allPresences(), ContactView{ID: realID(t, 9), Name: "nine"}))
			got := press(s, append(append([]tea.Msg{keyRunes("a")}, typeText(c.typedName+"\t"+c.typedID)...), keyT(tea.KeyEnter))...)
			if len(got) != 0 {
				t.Fatalf("intents %#v; want none", got)
			}
			if s.dlg.kind != dlgAdd || !strings.HasPrefix(s.dlg.err, c.want) {
				t.Fatalf("dialog %v, error %q; want one starting %q", s.dlg.kind, s.dlg.err, c.want)
			}
			if s.dlg.fields[0].Value() != c.typedName || s.dlg.fields[1].Value() != c.typedID {
				t.Fatalf("fields %q, %q; want what was typed", s.dlg.fields[0].Value(), s.dlg.fields[1].Value())
			}
			if v := s.View(); !strings.Contains(v, c.want[:10]) {
				t.Errorf("error not shown:\n%s", v)
			}
		})
	}
}

func TestErrorsShowAndClear(t *testing.T) {
	s, _ := newTestScreen(80, 24)
	s.ShowError("That ID has a typo.")
	if v := s.View(); !strings.Contains(v, "⚠ That ID has a typo.") {
		t.Fatalf("error not shown:\n%s", v)
	}
	s.ShowError("")
	if v := s.View(); strings.Contains(v, "⚠") {
		t.Fatalf("error still shown:\n%s", v)
	}
	s.SetStatus(StatusView{Backend: "local", Err: "signalling unreachable: retrying"})
	if v := s.View(); !strings.Contains(v, "⚠ signalling unreachable") || !strings.Contains(v, "signal: local ✗ unreachable") {
		t.Fatalf("status error not shown:\n%s", v)
	}
}

// TestEverySizeFillsTheFrame resizes through many sizes, in every state,
// and checks the frame is exactly the terminal's size each time.
func TestEverySizeFillsTheFrame(t *testing.T) {
	states := map[string]func(*Screen, *testClock){
		"contacts": func(*Screen, *testClock) {},
		"chat":     func(s *Screen, _ *testClock) { press(s, keyT(tea.KeyEnter)) },
		"offer": func(s *Screen, _ *testClock) {
			s.ShowOffer(OfferView{ContactID: idStranger, Name: "x", Fingerprint: "1 2 3", SessionID: "s"})
			s.ShowOffer(OfferView{ContactID: idBob, SessionID: "t"})
		},
		"help":  func(s *Screen, _ *testClock) { press(s, keyRunes("?")) },
		"info":  func(s *Screen, _ *testClock) { press(s, keyRunes("i")) },
		"add":   func(s *Screen, _ *testClock) { press(s, keyRunes("a")) },
		"error": func(s *Screen, _ *testClock) { s.ShowError(strings.Repeat("long error ", 30)) },
	}
	for name, setup := range states {
		t.Run(name, func(t *testing.T) {
			s, clk := newTestScreen(100, 30)
			seedSelf(s)
			seedStatus(s)
			s.SetContacts(allPresences())
			s.SetMessages(idAlice, conversationWithReceipts())
			setup(s, clk)
			// 60×16 is the smallest supported size; below it the frame
			// must still be exact (if cramped) down to the 20×8 floor.
			for _, w := range []int{1, 10, 19, 20, 33, 59, 60, 61, 71, 72, 80, 100, 133, 200} {
				for _, h := range []int{1, 7, 8, 11, 15, 16, 17, 23, 24, 40} {
					s, _ = s.Update(tea.WindowSizeMsg{Width: w, Height: h})
					v := s.View()
					checkFrame(t, v, w, h)
					if again := s.View(); again != v {
						t.Fatalf("%dx%d: a second View differs:\n%s\n---\n%s", w, h, v, again)
					}
				}
			}
		})
	}
}

func TestMouseWheelScrollsTheChat(t *testing.T) {
	s, _ := newTestScreen(80, 24)
	s.SetContacts(allPresences())
	var ms []MessageView
	for i := range 100 {
		ms = append(ms, MessageView{Key: strconv.Itoa(i), Sender: "alice", Body: "message " + strconv.Itoa(i), At: baseTime.Add(time.Duration(i) * time.Second)})
	}
	s.SetMessages(idAlice, ms)
	press(s, keyT(tea.KeyEnter))
	if v := s.View(); !strings.Contains(v, "message 99") {
		t.Fatalf("newest message not shown:\n%s", v)
	}
	press(s, tea.MouseMsg{X: 60, Y: 10, Action: tea.MouseActionPress, Button: tea.MouseButtonWheelUp})
	if got := s.convs[idAlice].scroll; got != wheelLines {
		t.Fatalf("scroll after wheel up = %d, want %d", got, wheelLines)
	}
	if v := s.View(); strings.Contains(v, "message 99") || !strings.Contains(v, "message 96") {
		t.Fatalf("wheel up did not scroll:\n%s", v)
	}
	// A new message while scrolled up keeps the view and says so.
	s.AppendMessage(idAlice, MessageView{Key: "new", Sender: "alice", Body: "fresh", At: baseTime.Add(time.Hour)})
	if v := s.View(); strings.Contains(v, "fresh") || !strings.Contains(v, "message 96") || !strings.Contains(v, "new messages below") {
		t.Fatalf("append while scrolled moved the view:\n%s", v)
	}
	press(s, keyT(tea.KeyPgUp), keyT(tea.KeyPgUp))
	for range 100 {
		press(s, keyT(tea.KeyPgUp))
	}
	if v := s.View(); !strings.Contains(v, "message 0") {
		t.Fatalf("pgup did not reach the top:\n%s", v)
	}
	for range 100 {
		press(s, tea.MouseMsg{X: 60, Y: 10, Action: tea.MouseActionPress, Button: tea.MouseButtonWheelDown})
	}
	if v := s.View(); !strings.Contains(v, "fresh") || strings.Contains(v, "new messages below") {
		t.Fatalf("wheel down did not return to the newest:\n%s", v)
	}
}

func TestAcceptingOpensTheChat(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	s.SetContacts(allPresences())
	ctrlR := keyT(tea.KeyCtrlR)
	s.ShowOffer(OfferView{ContactID: idBob, Name: "bob", Known: true, SessionID: "s1"})
	press(s, ctrlR, keyRunes("a"))
	if s.Focused() != idBob || s.focus != focusChat {
		t.Fatalf("after accepting bob: Focused %q focus %v", s.Focused(), s.focus)
	}
	// Accepting an unknown ID once opens its chat, and a contact list
	// without it does not close it.
	s.ShowOffer(OfferView{ContactID: idStranger, SessionID: "s2"})
	press(s, ctrlR, keyRunes("a"))
	s.SetContacts(allPresences())
	if s.Focused() != idStranger {
		t.Fatalf("after accepting a stranger: Focused %q", s.Focused())
	}
	if v := s.View(); !strings.Contains(v, "not in your contacts") {
		t.Fatalf("stranger's chat title:\n%s", v)
	}
	// Once the engine lists it (accept and add), it is the highlighted row.
	s.SetContacts(append(allPresences(), ContactView{ID: idStranger, Name: "stranger"}))
	if c, _ := s.contacts.selected(); c.ID != idStranger {
		t.Fatalf("highlighted %q after the open chat's contact was added", c.Name)
	}
}

func TestShownErrorClearsOnTheNextAction(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	s.SetContacts(allPresences())
	s.ShowError("That ID has a typo.")
	press(s, typeText("jk")...) // moving around keeps it
	if s.errorText() == "" {
		t.Fatal("error cleared by moving the cursor")
	}
	press(s, keyT(tea.KeyEnter)) // opening a chat is a new action
	if s.errorText() != "" {
		t.Fatalf("error still shown: %q", s.errorText())
	}
}

func TestLongContactListKeepsTheCursorVisible(t *testing.T) {
	s, _ := newTestScreen(80, 20)
	var cs []ContactView
	for i := range 50 {
		cs = append(cs, ContactView{ID: "id" + strconv.Itoa(i), Name: "contact-" + strconv.Itoa(i)})
	}
	s.SetContacts(cs)
	for range 40 {
		press(s, keyT(tea.KeyDown))
	}
	v := s.View()
	if !strings.Contains(v, "› contact-40") || strings.Contains(v, "contact-0 ") {
		t.Fatalf("cursor row not scrolled into view:\n%s", v)
	}
	checkFrame(t, v, 80, 20)
}

func TestMouseClicksPickAContact(t *testing.T) {
	s, _ := newTestScreen(100, 30)
	s.SetContacts(allPresences())
	click := func(x, y int) tea.Msg {
		return tea.MouseMsg{X: x, Y: y, Action: tea.MouseActionPress, Button: tea.MouseButtonLeft}
	}
	press(s, click(3, 6)) // dave's second line (rows: alice 2-3, bob 4-5, dave 6-7)
	if c, _ := s.contacts.selected(); c.ID != idDave {
		t.Fatalf("clicked row selected %q", c.Name)
	}
	if got := press(s, keyT(tea.KeyEnter)); !reflect.DeepEqual(got, []tea.Msg{OpenChatIntent{ContactID: idDave}}) {
		t.Fatalf("enter after click: %#v", got)
	}
	press(s, click(3, 2)) // back to the contacts, alice
	if c, _ := s.contacts.selected(); c.ID != idAlice || s.focus != focusContacts {
		t.Fatalf("click: selected %q focus %v", c.Name, s.focus)
	}
	press(s, click(60, 10)) // the chat pane
	if s.focus != focusChat {
		t.Fatal("click on the chat did not focus it")
	}
	press(s, tea.MouseMsg{X: 3, Y: 5, Action: tea.MouseActionPress, Button: tea.MouseButtonWheelDown})
	if c, _ := s.contacts.selected(); c.ID != idBob {
		t.Fatalf("wheel over contacts selected %q", c.Name)
	}
}

// testJoinCode is a well-formed join code (made by signal.NewJoinCode).
var testJoinCode = func() string {
	c, err := signal.NewJoinCode("my-group-chat", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
	if err != nil {
		panic(err)
	}
	return c.String()
}()
