package ui

import (
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

func testLayout(w int) *chatLayout {
	s, _ := newTestScreen(100, 30)
	return &chatLayout{st: &s.st, loc: time.UTC, width: w}
}

func manyMessages(n int) []MessageView {
	ms := make([]MessageView, n)
	for i := range ms {
		ms[i] = MessageView{
			Key:    strconv.Itoa(i),
			Mine:   i%3 == 0,
			Sender: []string{"carol", "alice", "alice"}[i%3],
			Body:   "message number " + strconv.Itoa(i) + strings.Repeat(" and some more words", i%5),
			At:     baseTime.Add(time.Duration(i-n) * time.Minute),
			Mark:   Mark(i % 4),
		}
	}
	return ms
}

func TestWrappedLinesFitTheWidth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"a", "word", " ", " ", "\n", "verylongwordwithoutanyspacesatallthatmustbebroken", "日本語", "😀", "é", "\t", "tab"}
	for trial := range 300 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		w := 10 + rng.IntN(110)
		c := newConversation()
		c.set([]MessageView{{Key: "k", Mine: trial%2 == 0, Sender: strings.Repeat("n", rng.IntN(30)), Body: b.String(), At: baseTime, Mark: MarkDelivered}})
		lines, _ := c.lines(1000, 0, testLayout(w))
		for _, ln := range lines {
			if got := ansi.StringWidth(ln); got > w {
				t.Fatalf("width %d: line %q is %d wide (body %q)", w, ln, got, b.String())
			}
		}
	}
}

func TestOnlyVisibleMessagesAreRendered(t *testing.T) {
	c := newConversation()
	c.set(manyMessages(10000))
	l := testLayout(80)
	lines, _ := c.lines(20, 0, l)
	if len(lines) != 20 {
		t.Fatalf("got %d lines, want 20", len(lines))
	}
	built := 0
	for _, b := range c.blocks {
		if b != nil {
			built++
		}
	}
	if built > 20 {
		t.Fatalf("%d messages rendered for a 20-line view", built)
	}
	// A width change drops the cache; the next view re-wraps only what it shows.
	c.lines(20, 0, testLayout(50))
	built = 0
	for _, b := range c.blocks {
		if b != nil {
			built++
		}
	}
	if built == 0 || built > 20 {
		t.Fatalf("after resize %d messages rendered", built)
	}
}

func TestScrollClampsAtTheTop(t *testing.T) {
	c := newConversation()
	c.set(manyMessages(5))
	l := testLayout(200)
	lines, used := c.lines(3, 1000, l)
	if len(lines) != 3 || used == 0 || used >= 1000 {
		t.Fatalf("lines %d, scroll used %d", len(lines), used)
	}
	if !strings.Contains(lines[0], "──") { // the first day separator
		t.Fatalf("top of history not reached: %q", lines)
	}
	short := newConversation()
	short.set(manyMessages(1))
	if lines, used := short.lines(10, 5, l); used != 0 || len(lines) != 2 {
		t.Fatalf("short history: %d lines, scroll %d", len(lines), used)
	}
}

func TestMarksAndDuplicates(t *testing.T) {
	s, _ := newTestScreen(80, 20)
	s.SetContacts(allPresences())
	s.SetMessages(idAlice, nil)
	press(s, keyT(tea.KeyEnter))
	s.AppendMessage(idAlice, MessageView{Key: "k1", Mine: true, Sender: "carol", Body: "ping", At: baseTime, Mark: MarkQueued})
	if v := s.View(); !strings.Contains(v, "ping ⏳") {
		t.Fatalf("queued mark missing:\n%s", v)
	}
	s.SetMark(idAlice, "k1", MarkSent)
	if v := s.View(); !strings.Contains(v, "ping ✓ ") {
		t.Fatalf("sent mark missing:\n%s", v)
	}
	s.SetMark(idAlice, "k1", MarkDelivered)
	if v := s.View(); !strings.Contains(v, "ping ✓✓") {
		t.Fatalf("delivered mark missing:\n%s", v)
	}
	s.AppendMessage(idAlice, MessageView{Key: "k1", Mine: true, Body: "ping again", At: baseTime})
	if got := len(s.convs[idAlice].msgs); got != 1 {
		t.Fatalf("duplicate key appended: %d messages", got)
	}
	s.SetMark(idAlice, "nope", MarkSent) // unknown key: ignored
	s.SetMark("nobody", "k1", MarkSent)  // unknown contact: ignored
}

func TestDaySeparatorsFollowTheLocation(t *testing.T) {
	// 23:30 and 00:30 UTC fall on one day two hours west of UTC.
	a := time.Date(2026, 11, 24, 23, 30, 0, 0, time.UTC)
	ms := []MessageView{{Key: "1", Body: "late", At: a}, {Key: "2", Body: "later", At: a.Add(time.Hour)}}
	count := func(loc *time.Location) int {
		c := newConversation()
		c.set(ms)
		l := testLayout(60)
		l.loc = loc
		lines, _ := c.lines(10, 0, l)
		n := 0
		for _, ln := range lines {
			if strings.HasPrefix(ln, "──") {
				n++
			}
		}
		return n
	}
	if got := count(time.UTC); got != 2 {
		t.Errorf("UTC: %d separators, want 2", got)
	}
	if got := count(time.FixedZone("west", -2*3600)); got != 1 {
		t.Errorf("UTC-2: %d separators, want 1", got)
	}
}

// BenchmarkKeypressRedraw100k is one keypress in the input followed by a
// full redraw, with 100,000 messages in the open chat.
func BenchmarkKeypressRedraw100k(b *testing.B) {
	s, _ := newTestScreen(120, 40)
	seedSelf(s)
	seedStatus(s)
	s.SetContacts(allPresences())
	s.SetMessages(idAlice, manyMessages(100_000))
	press(s, keyT(tea.KeyEnter))
	s.View()
	keys := []tea.Msg{keyRunes("x"), keyT(tea.KeyBackspace)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s, _ = s.Update(keys[i%2])
		_ = s.View()
	}
}

// BenchmarkOpenChat100k is the first redraw of a 100,000-message chat
// (nothing cached yet).
func BenchmarkOpenChat100k(b *testing.B) {
	ms := manyMessages(100_000)
	b.ReportAllocs()
	for b.Loop() {
		s, _ := newTestScreen(120, 40)
		s.SetContacts(allPresences())
		s.SetMessages(idAlice, ms)
		press(s, keyT(tea.KeyEnter))
		_ = s.View()
	}
}

func TestAppendWhileScrolledAndHidden(t *testing.T) {
	s, _ := newTestScreen(60, 16)
	s.SetContacts(allPresences())
	s.SetMessages(idAlice, manyMessages(50))
	press(s, keyT(tea.KeyEnter), keyT(tea.KeyPgUp))
	before := s.View()
	press(s, keyT(tea.KeyEsc)) // narrow: the chat is hidden now
	s.AppendMessage(idAlice, MessageView{Key: "new", Sender: "alice", Body: "fresh", At: baseTime})
	press(s, keyT(tea.KeyTab))
	after := s.View()
	// Same scrollback lines on screen (the line under them now says there
	// is something new).
	if b, a := strings.Split(before, "\n")[2:9], strings.Split(after, "\n")[2:9]; !reflect.DeepEqual(a, b) {
		t.Fatalf("scroll position moved:\nbefore\n%s\nafter\n%s", before, after)
	}
	if !strings.Contains(after, "new messages below") {
		t.Fatalf("no hint of the new message:\n%s", after)
	}
}

func TestNamesComeFromTheContactsAndFollowRenames(t *testing.T) {
	s, _ := newTestScreen(80, 20)
	s.SetSelf(Self{ID: idMe, Name: "carol"})
	s.SetContacts(allPresences())
	// History from the store carries no names; a live message carries
	// whatever the sender put in.
	s.SetMessages(idAlice, []MessageView{
		{Key: "1", Body: "from history", At: baseTime},
		{Key: "2", Mine: true, Body: "mine from history", At: baseTime, Mark: MarkDelivered},
		{Key: "3", Sender: "the-real-bob", Body: "spoofed label", At: baseTime},
	})
	press(s, keyT(tea.KeyEnter))
	v := s.View()
	for _, want := range []string{"alice: from history", "carol: mine from history", "alice: spoofed label"} {
		if !strings.Contains(v, want) {
			t.Errorf("missing %q:\n%s", want, v)
		}
	}
	cs := allPresences()
	cs[0].Name = "alicia"
	s.SetContacts(cs)
	s.SetSelf(Self{ID: idMe, Name: "caroline"})
	v = s.View()
	for _, want := range []string{"alicia: from history", "caroline: mine from history"} {
		if !strings.Contains(v, want) {
			t.Errorf("after rename, missing %q:\n%s", want, v)
		}
	}
}

// TestSenderTimeAndLateArrival: a message shows when its sender wrote it;
// one that arrived much later says when it arrived; a sender clock in the
// future is not believed.
func TestSenderTimeAndLateArrival(t *testing.T) {
	l := testLayout(80)
	for _, c := range []struct {
		name     string
		m        MessageView
		want     string
		notWant  string
		wantLate bool
	}{
		{"on time", MessageView{Body: "hi", SentAt: baseTime.Add(-time.Minute), At: baseTime}, "14:29 them: hi", "arrived", false},
		{"late", MessageView{Body: "hi", SentAt: baseTime.Add(-50 * time.Minute), At: baseTime}, "13:40 them: hi (arrived 14:30)", "", true},
		{"late, another day", MessageView{Body: "hi", SentAt: baseTime.Add(-26 * time.Hour), At: baseTime}, "12:30 them: hi (arrived 24 Nov 14:30)", "", true},
		{"no sender time", MessageView{Body: "hi", At: baseTime}, "14:30 them: hi", "arrived", false},
		{"sender clock ahead", MessageView{Body: "hi", SentAt: baseTime.Add(time.Hour), At: baseTime}, "14:30 them: hi", "15:30", false},
		{"mine are never late", MessageView{Mine: true, Body: "hi", SentAt: baseTime.Add(-time.Hour), At: baseTime, Mark: MarkSent}, "13:30 me: hi ✓", "arrived", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := renderMessage(&c.m, nil, "", l)
			got := strings.Join(lines, "\n")
			if !strings.Contains(got, c.want) || (c.notWant != "" && strings.Contains(got, c.notWant)) {
				t.Fatalf("rendered:\n%s\nwant %q, not %q", got, c.want, c.notWant)
			}
		})
	}
}
