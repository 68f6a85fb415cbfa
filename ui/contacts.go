package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// contactList is the contacts pane: the rows the engine pushed (names
// sanitized) and which one is highlighted.
type contactList struct {
	items  []ContactView
	cursor int // index of the highlighted row
	offset int // first row drawn (the list scrolls to keep the cursor visible)
}

// set replaces the rows, keeping the highlight on the same contact.
func (l *contactList) set(cs []ContactView) {
	cur := l.selectedID()
	l.items = make([]ContactView, len(cs))
	for i, c := range cs {
		c.Name = sanitizeLine(c.Name)
		c.Detail = sanitizeLine(c.Detail)
		c.Fingerprint = sanitizeLine(c.Fingerprint)
		l.items[i] = c
	}
	l.cursor = 0
	for i, c := range l.items {
		if c.ID == cur {
			l.cursor = i
		}
	}
}

func (l *contactList) selected() (ContactView, bool) {
	if l.cursor < 0 || l.cursor >= len(l.items) {
		return ContactView{}, false
	}
	return l.items[l.cursor], true
}

func (l *contactList) selectedID() string {
	c, _ := l.selected()
	return c.ID
}

func (l *contactList) find(id string) (ContactView, bool) {
	for _, c := range l.items {
		if c.ID == id {
			return c, true
		}
	}
	return ContactView{}, false
}

func (l *contactList) move(d int) {
	if len(l.items) == 0 {
		return
	}
	l.cursor = min(max(l.cursor+d, 0), len(l.items)-1)
}

func (l *contactList) selectID(id string) {
	for i, c := range l.items {
		if c.ID == id {
			l.cursor = i
		}
	}
}

// presenceGlyph pairs a shape with the word so the state reads without colour.
func presenceGlyph(p Presence) string {
	switch p {
	case PresenceOnline:
		return "●"
	case PresenceConnecting:
		return "◌"
	case PresenceConnected:
		return "◆"
	case PresenceFailed:
		return "✗"
	}
	return "○"
}

// presenceWords is the glyph and the word, plus the detail for failures;
// a blocked contact says so first.
func presenceWords(c ContactView) string {
	s := presenceGlyph(c.Presence) + " " + c.Presence.String()
	if c.Blocked {
		s = "⊘ blocked · " + s
	}
	if c.Presence == PresenceConnecting {
		s += "…"
	}
	if c.Detail != "" {
		s += ": " + c.Detail
	}
	return s
}

// relTime is a short "when" for the contact list: now, 5m, 3h, Mon, 2 Jan.
func relTime(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	case d < 7*24*time.Hour:
		return t.In(loc).Format("Mon")
	}
	return t.In(loc).Format("2 Jan")
}

// view draws the pane's rows (two lines per contact) in w×h, the list
// scrolled so the cursor row is visible; a contact typing to us says so
// instead of its presence.
func (l *contactList) view(w, h int, focused bool, openID string, typing func(id string) bool, now time.Time, loc *time.Location, st *styles) []string {
	var out []string
	if len(l.items) == 0 {
		for _, ln := range []string{"No contacts yet.", "", "Press a to add one,", "or share your ID", "(press i) so others", "can add you."} {
			out = append(out, st.muted.Render(ansi.Truncate(ln, w, "…")))
		}
		return out
	}
	rows := max(1, h/2)
	if l.cursor < l.offset {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+rows {
		l.offset = l.cursor - rows + 1
	}
	l.offset = min(l.offset, max(0, len(l.items)-rows))
	for i := l.offset; i < len(l.items) && len(out)+2 <= h; i++ {
		c := l.items[i]
		marker := "  "
		nameStyle := st.name
		if i == l.cursor {
			marker = "› "
			if focused {
				nameStyle = st.selected
			}
		}
		if c.ID == openID && i != l.cursor {
			marker = "· "
		}
		badge := ""
		if c.Unread > 0 {
			badge = fmt.Sprintf(" %d", c.Unread)
			if c.Unread > 99 {
				badge = " 99+"
			}
		}
		name := c.Name
		if name == "" {
			name = shortID(c.ID)
		}
		name = ansi.Truncate(name, max(1, w-2-ansi.StringWidth(badge)), "…")
		gap := max(0, w-2-ansi.StringWidth(name)-ansi.StringWidth(badge))
		line1 := marker + nameStyle.Render(name) + strings.Repeat(" ", gap) + st.unread.Render(badge)

		when := relTime(c.LastActivity, now, loc)
		words := presenceWords(c)
		room := w - 2
		if when != "" {
			room -= ansi.StringWidth(when) + 1
		}
		words = ansi.Truncate(words, max(1, room), "…")
		gap = max(1, w-2-ansi.StringWidth(words)-ansi.StringWidth(when))
		wordStyle := st.presence[c.Presence]
		if c.Blocked {
			wordStyle = st.muted
		}
		if typing(c.ID) {
			words, wordStyle = ansi.Truncate("✎ typing…", max(1, room), "…"), st.typing
			gap = max(1, w-2-ansi.StringWidth(words)-ansi.StringWidth(when))
		}
		line2 := "  " + wordStyle.Render(words)
		if when != "" {
			line2 += strings.Repeat(" ", gap) + st.muted.Render(when)
		}
		out = append(out, line1, line2)
	}
	return out
}

// shortID is the start of an ID, enough to tell contacts apart at a glance.
func shortID(id string) string {
	id = sanitizeLine(id)
	if ansi.StringWidth(id) <= 8 {
		return id
	}
	return ansi.Truncate(id, 8, "") + "…"
}
