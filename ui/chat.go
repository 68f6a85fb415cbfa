package ui

import (
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// conversation is one contact's scrollback. Messages are sanitized once
// when they arrive; their wrapped, styled lines are cached per width so a
// redraw only touches the lines that are on screen, however long the
// history is.
type conversation struct {
	msgs   []MessageView
	index  map[string]int // Key -> position in msgs
	typing bool

	// scroll is how many lines the view is scrolled up from the newest
	// line; 0 follows new messages.
	scroll int
	// unseen counts lines added below the view while scrolled up.
	unseen int

	// peerName is the contact's current name, shown on their messages
	// (the list's name wins over what a message carried, so a rename
	// shows everywhere and a peer cannot pick its own label).
	peerName string

	width  int        // width the cache was built for
	blocks [][]string // blocks[i]: msgs[i]'s lines (with its day separator); nil: not built
}

// setPeerName changes the name on the peer's messages and drops the cache.
func (c *conversation) setPeerName(name string) {
	if name != c.peerName {
		c.peerName = name
		clear(c.blocks)
	}
}

func newConversation() *conversation {
	return &conversation{index: make(map[string]int)}
}

// set replaces the history.
func (c *conversation) set(ms []MessageView) {
	c.msgs = make([]MessageView, 0, len(ms))
	c.index = make(map[string]int, len(ms))
	for _, m := range ms {
		c.add(m)
	}
	c.blocks = make([][]string, len(c.msgs))
	c.scroll, c.unseen = 0, 0
}

// add appends m (sanitized) and returns false if its Key is already there
// (a duplicate push is ignored, so the engine may resend safely).
func (c *conversation) add(m MessageView) bool {
	if m.Key != "" {
		if _, dup := c.index[m.Key]; dup {
			return false
		}
		c.index[m.Key] = len(c.msgs)
	}
	m.Sender = sanitizeLine(m.Sender)
	m.Body = strings.ReplaceAll(sanitize(m.Body), "\t", "    ")
	c.msgs = append(c.msgs, m)
	return true
}

// appendMsg adds m at the end; a view scrolled up stays where it is.
func (c *conversation) appendMsg(m MessageView, l *chatLayout) {
	if !c.add(m) {
		return
	}
	c.blocks = append(c.blocks, nil)
	if c.scroll > 0 && c.width > 0 {
		// Measure at the width the scroll position was taken at: the chat
		// may be hidden right now (narrow screen, contacts focused).
		at := *l
		at.width = c.width
		n := len(c.block(len(c.msgs)-1, &at))
		c.scroll += n
		c.unseen += n
	}
}

// setMark changes one message's mark and drops its cached lines.
func (c *conversation) setMark(key string, mark Mark) {
	i, ok := c.index[key]
	if !ok || c.msgs[i].Mark == mark {
		return
	}
	c.msgs[i].Mark = mark
	c.blocks[i] = nil
}

// chatLayout is what rendering a message needs besides the message.
type chatLayout struct {
	st    *styles
	loc   *time.Location
	width int
	self  string // my name, on my messages ("" : the message's Sender, else "me")
}

// block returns message i's lines at l.width, building and caching them.
func (c *conversation) block(i int, l *chatLayout) []string {
	if c.width != l.width {
		c.width = l.width
		clear(c.blocks)
	}
	if b := c.blocks[i]; b != nil {
		return b
	}
	var prev *MessageView
	if i > 0 {
		prev = &c.msgs[i-1]
	}
	b := renderMessage(&c.msgs[i], prev, c.peerName, l)
	c.blocks[i] = b
	return b
}

// lines returns up to height lines ending scroll lines above the newest
// one, oldest first, and the scroll actually used (clamped at the top).
// Only the messages that reach the screen are rendered.
func (c *conversation) lines(height, scroll int, l *chatLayout) ([]string, int) {
	need := height + scroll
	var rev [][]string // blocks from the newest backwards
	got := 0
	for i := len(c.msgs) - 1; i >= 0 && got < need; i-- {
		b := c.block(i, l)
		rev = append(rev, b)
		got += len(b)
	}
	if got < need { // not enough history to scroll that far
		scroll = max(0, got-height)
		need = height + scroll
	}
	out := make([]string, 0, min(got, need))
	skipTop := max(0, got-need)
	for j := len(rev) - 1; j >= 0; j-- {
		for _, ln := range rev[j] {
			if skipTop > 0 {
				skipTop--
				continue
			}
			out = append(out, ln)
		}
	}
	return out[:len(out)-scroll], scroll
}

// lateAfter is how much later than written a message must arrive to be
// marked: longer than any path takes, short enough to catch one that
// waited in the sender's outbox while we were away.
const lateAfter = 5 * time.Minute

// maxClockAhead is how far in the future (by our clock) a sender's time
// may be and still be shown: beyond it the sender's clock is wrong, and
// the arrival time is more truthful.
const maxClockAhead = 2 * time.Minute

// shownAt is the time a message is shown with: when the sender wrote it,
// as its (encrypted) message says, unless unknown or implausible.
func shownAt(m *MessageView) time.Time {
	if m.SentAt.IsZero() || m.SentAt.After(m.At.Add(maxClockAhead)) {
		return m.At
	}
	return m.SentAt
}

// renderMessage draws one message: a day separator when the day changes,
// then "15:04 name: body" with the body wrapped under itself and, after
// the last word, the delivery mark (mine) or when it arrived (theirs,
// when that was much later than it was written).
func renderMessage(m, prev *MessageView, peerName string, l *chatLayout) []string {
	st, w := l.st, l.width
	var out []string
	at := shownAt(m).In(l.loc)
	if prev == nil || !sameDay(shownAt(prev).In(l.loc), at) {
		out = append(out, daySeparator(at, w, st))
	}

	if m.Notice {
		return append(out, renderNotice(m, at, l)...)
	}
	sender := m.Sender
	switch {
	case m.Mine && l.self != "":
		sender = l.self
	case !m.Mine && peerName != "":
		sender = peerName
	}
	if sender == "" {
		if m.Mine {
			sender = "me"
		} else {
			sender = "them"
		}
	}
	maxName := max(4, min(16, w/4))
	sender = ansi.Truncate(sender, maxName, "…")
	stamp := at.Format("15:04")
	nameStyle := st.peer
	if m.Mine {
		nameStyle = st.mine
	}
	prefix := st.stamp.Render(stamp) + " " + nameStyle.Render(sender) + ": "
	// The body hangs under itself after "15:04 name: "; when that prefix
	// would take more than half the width it gets a line of its own.
	indent, ownLine := len(stamp)+1+ansi.StringWidth(sender)+2, false
	if indent > w/2 {
		indent, ownLine = 2, true
	}
	avail := max(1, w-indent)

	mark, markW := "", 0
	if m.Mine {
		switch m.Mark {
		case MarkQueued:
			mark, markW = st.mark.Render("⏳"), ansi.StringWidth("⏳")
		case MarkSent:
			mark, markW = st.mark.Render("✓"), 1
		case MarkDelivered:
			mark, markW = st.markDone.Render("✓✓"), 2
		}
	} else if arrived := m.At.In(l.loc); !m.SentAt.IsZero() && arrived.Sub(m.SentAt) > lateAfter {
		words := "(arrived " + arrived.Format("15:04") + ")"
		if !sameDay(arrived, at) {
			words = "(arrived " + arrived.Format("2 Jan 15:04") + ")"
		}
		if ansi.StringWidth(words) > avail {
			words = "(late)"
		}
		mark, markW = st.mark.Render(words), ansi.StringWidth(words)
	}

	body := wrapBody(m.Body, avail)
	markOn := -1 // the body line the mark goes after
	if markW > 0 {
		markOn = len(body) - 1
		if ansi.StringWidth(body[markOn])+1+markW > avail {
			body = append(body, "")
			markOn++
		}
	}

	pad := strings.Repeat(" ", indent)
	if ownLine {
		out = append(out, ansi.Truncate(prefix, w, "…"))
	}
	for j, ln := range body {
		styled := st.body.Render(ln)
		if j == markOn {
			if ln != "" {
				styled += " "
			}
			styled += mark
		}
		if j == 0 && !ownLine {
			out = append(out, prefix+styled)
		} else {
			out = append(out, pad+styled)
		}
	}
	return out
}

// renderNotice draws a line about the chat (a file sent, received or
// stopped): "15:04 ↓ words", wrapped under itself.
func renderNotice(m *MessageView, at time.Time, l *chatLayout) []string {
	st, w := l.st, l.width
	style, glyph := st.note, "↓ "
	switch {
	case m.Failed:
		style, glyph = st.warn, "✗ "
	case m.Mine:
		glyph = "↑ "
	}
	stamp := at.Format("15:04")
	indent := len(stamp) + 1
	var out []string
	for j, ln := range wrapBody(glyph+m.Body, max(1, w-indent)) {
		if j == 0 {
			out = append(out, st.stamp.Render(stamp)+" "+style.Render(ln))
			continue
		}
		out = append(out, strings.Repeat(" ", indent)+style.Render(ln))
	}
	return out
}

// wrapBody word-wraps text to avail columns, breaking words longer than a
// line; a second, hard pass catches the edge cases of the word wrapper
// (leading spaces, a wide character at the end of a line).
func wrapBody(text string, avail int) []string {
	var out []string
	for _, para := range strings.Split(text, "\n") {
		for _, ln := range strings.Split(ansi.Wrap(para, avail, ""), "\n") {
			if ansi.StringWidth(ln) > avail {
				out = append(out, strings.Split(ansi.Hardwrap(ln, avail, true), "\n")...)
				continue
			}
			out = append(out, ln)
		}
	}
	return out
}

func sameDay(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// daySeparator is "──── Tuesday 24 November 2026 ────" across the width.
func daySeparator(t time.Time, w int, st *styles) string {
	label := " " + t.Format("Monday 2 January 2006") + " "
	if ansi.StringWidth(label) > w {
		label = ansi.Truncate(" "+t.Format("2 Jan 2006")+" ", w, "")
	}
	rest := max(0, w-ansi.StringWidth(label))
	left := rest / 2
	return st.daySep.Render(strings.Repeat("─", left) + label + strings.Repeat("─", rest-left))
}
