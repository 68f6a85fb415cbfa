package ui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// headerView is the top line: my name and my whole ID, so it can be read
// off the screen and shared; at narrow widths the ID wins over the name.
func (s *Screen) headerView(w int) string {
	st := &s.st
	name, id := s.self.Name, s.self.ID
	if id == "" {
		return fit(st.header.Render("p2ptui"), w)
	}
	full := " " + name + " · ID " + id
	switch {
	case name != "" && ansi.StringWidth(full) <= w:
		return fit(" "+st.header.Render(name)+st.muted.Render(" · ID ")+st.headerID.Render(id), w)
	case ansi.StringWidth("ID "+id) <= w:
		return fit(st.muted.Render("ID ")+st.headerID.Render(id), w)
	}
	return fit(st.headerID.Render(ansi.Truncate(id, w, "…")), w)
}

// statusPart is one piece of the status line: its forms from the whole
// words down to the shortest, and how much it matters.
type statusPart struct {
	forms []string // plain text, longest first; "" (dropped) is implied last
	style lipgloss.Style
	rank  int // higher: shortened later
}

// statusView is the bottom status line: the signalling backend and its
// health, the open chat's path and my NAT. When they do not fit, the least
// important is shortened first, word by word, then left out; nothing is
// cut mid-word, and the details view (ctrl+s) has it all.
func (s *Screen) statusView(w int) string {
	st := &s.st
	v := s.status
	var parts []statusPart
	if v.Backend != "" {
		if v.BackendHealthy {
			parts = append(parts, statusPart{forms: []string{"signal: " + v.Backend + " ✓", "signal ✓"}, style: st.status, rank: 3})
		} else {
			parts = append(parts, statusPart{forms: []string{"signal: " + v.Backend + " ✗ unreachable", "signal ✗ unreachable", "signal ✗"}, style: st.statusBad, rank: 3})
		}
	}
	if v.Path != "" {
		parts = append(parts, statusPart{forms: wordForms(v.Path, 2), style: st.status, rank: 2})
	}
	if v.NAT != "" {
		nat := "NAT: " + v.NAT
		forms := []string{nat}
		if head, _, ok := strings.Cut(v.NAT, ":"); ok {
			forms = append(forms, "NAT: "+head)
		}
		parts = append(parts, statusPart{forms: forms, style: st.status, rank: 1})
	}
	if len(parts) == 0 {
		return fit(st.status.Render("starting…"), w)
	}
	return fit(s.fitParts(parts, w, " │ ", "ctrl+s: all"), w)
}

// wordForms is s and then s shortened by one word at a time (ending in
// "…"), down to keep words.
func wordForms(s string, keep int) []string {
	out := []string{s}
	words := strings.Fields(s)
	for n := len(words) - 1; n >= keep; n-- {
		out = append(out, strings.TrimRight(strings.Join(words[:n], " "), ",;:⇄ ")+"…")
	}
	return out
}

// fitParts lays parts out in w columns: every part in its longest form if
// they fit; otherwise the lowest-ranked part steps to a shorter form (or
// out) until they do. When anything was shortened, hint follows if it fits.
func (s *Screen) fitParts(parts []statusPart, w int, sep, hint string) string {
	form := make([]int, len(parts)) // index into forms; len(forms): left out
	text := func(i int) string {
		if form[i] < len(parts[i].forms) {
			return parts[i].forms[form[i]]
		}
		return ""
	}
	width := func() int {
		n, shown := 0, 0
		for i := range parts {
			if t := text(i); t != "" {
				if shown > 0 {
					n += ansi.StringWidth(sep)
				}
				n += ansi.StringWidth(t)
				shown++
			}
		}
		return n
	}
	shortened := false
	for width() > w {
		// the lowest rank that can still shrink; among equals, the last
		best := -1
		for i := range parts {
			if form[i] < len(parts[i].forms) && (best < 0 || parts[i].rank <= parts[best].rank) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		form[best]++
		shortened = true
	}
	st := &s.st
	var b strings.Builder
	shown := 0
	for i, p := range parts {
		if t := text(i); t != "" {
			if shown > 0 {
				b.WriteString(st.muted.Render(sep))
			}
			b.WriteString(p.style.Render(t))
			shown++
		}
	}
	if shortened && hint != "" && width()+ansi.StringWidth(sep+hint) <= w {
		b.WriteString(st.muted.Render(sep + hint))
	}
	return b.String()
}

// requestLine is the notice of waiting chat requests: who, and the key
// that opens them. It never takes the keyboard.
func (s *Screen) requestLine(w int) string {
	st := &s.st
	o := s.reqs.queue[0]
	who := "Unknown ID " + shortID(o.ContactID)
	if o.Known {
		who = requestFrom(o)
	}
	parts := []statusPart{
		{forms: []string{"✉ " + who + " wants to chat", "✉ " + who, "✉ request"}, style: st.warn, rank: 2},
		{forms: []string{"ctrl+r answer", "ctrl+r"}, style: st.keyHint, rank: 3},
	}
	if n := len(s.reqs.queue) - 1; n > 0 {
		parts = append(parts, statusPart{forms: []string{plural(n, "more waiting", "more waiting"), "+" + itoa(n)}, style: st.muted, rank: 1})
	}
	return fit(s.fitParts(parts, w, " · ", ""), w)
}

// lineText is what the line above the status shows: a remark the person
// caused (copied, blocked) wins over an error, which wins over nothing.
func (s *Screen) lineText() string {
	if s.note != "" {
		return s.note
	}
	return s.errorText()
}

// errorText is the error to show, if any: one set by ShowError wins over
// the status's own.
func (s *Screen) errorText() string {
	if s.shownErr != "" {
		return s.shownErr
	}
	return s.status.Err
}

// lineView draws lineText in w columns, shortened at a word boundary (the
// details view shows an error whole).
func (s *Screen) lineView(w int) string {
	if s.note != "" {
		return fit(s.st.note.Render(wordCut("✓ "+s.note, w)), w)
	}
	return fit(s.st.errLine.Render(wordCut("⚠ "+s.errorText(), w)), w)
}

// wordCut shortens s to w columns at a word boundary, ending in "…"; a
// first word longer than the line is cut as a last resort.
func wordCut(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	words := strings.Fields(s)
	for n := len(words) - 1; n >= 1; n-- {
		t := strings.TrimRight(strings.Join(words[:n], " "), ",;:") + "…"
		if ansi.StringWidth(t) <= w {
			return t
		}
	}
	return ansi.Truncate(s, w, "…")
}

// fit pads or cuts a (possibly styled) line to exactly w columns.
func fit(line string, w int) string {
	lw := ansi.StringWidth(line)
	switch {
	case lw == w:
		return line
	case lw < w:
		return line + strings.Repeat(" ", w-lw)
	}
	return ansi.Truncate(line, w, "")
}
