package ui

import (
	"strings"

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

// statusView is the bottom status line: signalling backend and its health,
// the connection path, and the NAT in words.
func (s *Screen) statusView(w int) string {
	st := &s.st
	v := s.status
	var parts []string
	if v.Backend != "" {
		if v.BackendHealthy {
			parts = append(parts, st.status.Render("signal: "+v.Backend+" ✓"))
		} else {
			parts = append(parts, st.statusBad.Render("signal: "+v.Backend+" ✗ unreachable"))
		}
	}
	if v.Path != "" {
		parts = append(parts, st.status.Render(v.Path))
	}
	if v.NAT != "" {
		parts = append(parts, st.status.Render("NAT: "+v.NAT))
	}
	if len(parts) == 0 {
		return fit(st.status.Render("starting…"), w)
	}
	return fit(ansi.Truncate(strings.Join(parts, st.muted.Render(" │ ")), w, "…"), w)
}

// errorText is the error to show, if any: one set by ShowError wins over
// the status's own.
func (s *Screen) errorText() string {
	if s.shownErr != "" {
		return s.shownErr
	}
	return s.status.Err
}

func (s *Screen) errorView(w int) string {
	return fit(s.st.errLine.Render(ansi.Truncate("⚠ "+s.errorText(), w, "…")), w)
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
