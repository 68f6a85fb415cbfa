package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// This file draws the read-only dialogs: help, my ID (info), the details
// of the status line, and the blocked IDs. The first three scroll when
// they are taller than the screen.

// viewer shows lines in inner width w and height h from the dialog's
// scroll position, with a last line saying there is more.
func (s *Screen) viewer(lines []string, w, h int) string {
	if len(lines) <= h {
		return strings.Join(lines, "\n")
	}
	show := max(1, h-1)
	top := min(s.dlg.scroll, len(lines)-show)
	more := fmt.Sprintf("↑↓ lines %d–%d of %d · esc back", top+1, top+show, len(lines))
	return strings.Join(lines[top:top+show], "\n") + "\n" + s.st.muted.Render(wordCut(more, w))
}

// viewerSize is the inner size a dialog gets at the current screen size.
func (s *Screen) viewerSize() (w, h int) {
	L := s.chatLayout()
	return max(10, min(s.w-2, 64)-4), max(1, L.bodyH-2)
}

// clampScroll keeps a viewer's scroll within its content.
func (s *Screen) clampScroll() {
	w, h := s.viewerSize()
	var n int
	switch s.dlg.kind {
	case dlgHelp:
		n = len(s.helpLines(w))
	case dlgInfo:
		n = len(s.infoLines(w))
	case dlgDetails:
		n = len(s.detailsLines(w))
	default:
		return
	}
	s.dlg.scroll = min(s.dlg.scroll, max(0, n-max(1, h-1)))
}

// helpLines is the whole help: every key, grouped by what has the
// keyboard, in two columns when there is room.
func (s *Screen) helpLines(w int) []string {
	st := &s.st
	render := func(sec helpSection, colW int) []string {
		kw := 0
		for _, b := range sec.keys {
			kw = max(kw, ansi.StringWidth(b.Help().Key))
		}
		out := []string{st.section.Render(wordCut(sec.title, colW))}
		for _, b := range sec.keys {
			h := b.Help()
			pad := strings.Repeat(" ", kw-ansi.StringWidth(h.Key))
			out = append(out, st.keyHint.Render(h.Key)+pad+" "+st.muted.Render(wordCut(h.Desc, max(1, colW-kw-1))))
		}
		return out
	}
	secs := s.keys.helpSections()
	head := []string{st.modalTitle.Render("Keys") + st.muted.Render(wordCut(" · a request never takes the keyboard: ctrl+r opens it", max(1, w-4))), ""}
	if w < 56 {
		out := head
		for i, sec := range secs {
			if i > 0 {
				out = append(out, "")
			}
			out = append(out, render(sec, w)...)
		}
		return out
	}
	colW := (w - 2) / 2
	var left, right []string
	for i, sec := range secs {
		col := &left
		if i >= 2 {
			col = &right
		}
		if len(*col) > 0 {
			*col = append(*col, "")
		}
		*col = append(*col, render(sec, colW)...)
	}
	out := head
	for i := 0; i < max(len(left), len(right)); i++ {
		var l, r string
		if i < len(left) {
			l = left[i]
		}
		if i < len(right) {
			r = right[i]
		}
		out = append(out, fit(l, colW)+"  "+r)
	}
	return out
}

// infoLines is "who am I": my ID to share (copy key, QR code for a
// phone), and the highlighted contact's ID and safety number to compare
// out of band.
func (s *Screen) infoLines(w int) []string {
	st := &s.st
	var out []string
	add := func(text string) { out = append(out, strings.Split(text, "\n")...) }
	add(st.modalTitle.Render("Your ID") + " " + st.muted.Render(wordCut("(share it so others can add you)", max(1, w-8))))
	id := s.self.ID
	if id == "" {
		add("(not ready yet)")
	} else {
		add(st.headerID.Render(hardWrap(id, w)))
		add(st.muted.Render(wrapText("c copies it to the clipboard; a phone can read the code below.", w)))
	}
	if s.self.Fingerprint != "" {
		add(wrapText("Key fingerprint: "+s.self.Fingerprint, w))
	}
	if id != "" {
		if qr, err := qrLines(id, s.st.r.HasDarkBackground()); err == nil && ansi.StringWidth(qr[0]) <= w {
			out = append(out, "")
			for _, ln := range qr {
				out = append(out, lipgloss.PlaceHorizontal(w, lipgloss.Center, ln))
			}
		}
	}
	if c, ok := s.contacts.selected(); ok {
		out = append(out, "")
		add(st.modalTitle.Render(ansi.Truncate(c.Name, w, "…")))
		add(st.muted.Render(hardWrap(c.ID, w)))
		if c.Fingerprint != "" {
			add(wrapText("Safety number: "+c.Fingerprint, w))
			add(st.muted.Render(wrapText("Compare it with theirs in person or on a call.", w)))
		}
	}
	return out
}

// detailsLines is the whole status: what the status line shortens, and
// what it has no room for.
func (s *Screen) detailsLines(w int) []string {
	st := &s.st
	var out []string
	labelW := 8
	row := func(label, value string) {
		if value == "" {
			return
		}
		if label == "" {
			for _, ln := range strings.Split(wrapText(value, max(1, w-2)), "\n") {
				out = append(out, "  "+ln)
			}
			return
		}
		lines := strings.Split(wrapText(value, max(1, w-labelW-2)), "\n")
		for i, ln := range lines {
			l := ""
			if i == 0 {
				l = label
			}
			out = append(out, "  "+st.muted.Render(fit(l, labelW))+ln)
		}
	}
	head := func(title string) {
		if len(out) > 0 {
			out = append(out, "")
		}
		out = append(out, st.section.Render(wordCut(title, w)))
	}
	out = append(out, st.modalTitle.Render("Status"))
	d, v := s.details, s.status
	if !s.detailsSet {
		d = DetailsView{Backend: v.Backend, BackendOK: v.BackendHealthy, NAT: v.NAT}
		if v.Backend != "" {
			d.BackendHealth = "reachable"
			if !v.BackendHealthy {
				d.BackendHealth = "unreachable"
			}
		}
	}
	head("Signalling")
	row("service", d.Backend)
	health := d.BackendHealth
	if health != "" && d.BackendOK {
		health += " ✓"
	} else if health != "" {
		health += " ✗"
	}
	row("health", health)
	if d.Backend == "" && health == "" {
		row("", "starting…")
	}
	head("My NAT")
	row("", d.NAT)
	if d.NAT == "" {
		row("", "not known yet")
	}
	if len(d.STUN) > 0 {
		head("STUN servers")
		for _, x := range d.STUN {
			server := x.Server
			if x.Addr != "" && x.Addr != x.Server {
				server += " (" + x.Addr + ")"
			}
			row("server", server)
			row("answer", x.Answer)
		}
	}
	switch {
	case d.Chat != nil:
		c := d.Chat
		head("Chat with " + c.Peer)
		row("state", c.State)
		path := c.Path
		if c.Encrypted && path != "" {
			path += ", encrypted"
		}
		row("path", path)
		row("local", c.Local)
		row("remote", c.Remote)
		if c.RTT > 0 {
			row("RTT", c.RTT.Round(100*time.Microsecond).String())
		}
		if c.Sent > 0 || c.Received > 0 {
			row("traffic", thousands(int(c.Sent))+" bytes sent · "+thousands(int(c.Received))+" received")
		}
		if !c.Since.IsZero() {
			row("since", c.Since.In(s.loc).Format("15:04:05, Mon 2 Jan"))
		}
	case s.openID != "" && v.Path != "":
		name := shortID(s.openID)
		if c, ok := s.contacts.find(s.openID); ok && c.Name != "" {
			name = c.Name
		}
		head("Chat with " + name)
		row("path", v.Path)
	}
	if e := s.errorText(); e != "" {
		head("Error")
		row("", e)
	}
	return out
}

// blockedName names a blocked ID for people.
func blockedName(b BlockedView) string {
	if b.Name != "" {
		return b.Name
	}
	return shortID(b.ID)
}

// blockedView lists the blocked IDs, u unblocking the highlighted one.
func (s *Screen) blockedView(w, h int) string {
	st := &s.st
	out := []string{st.modalTitle.Render("Blocked") + " " + st.muted.Render(wordCut("(their requests are dropped unseen)", max(1, w-8))), ""}
	if len(s.blocked) == 0 {
		out = append(out, strings.Split(wrapText("Nobody is blocked. b blocks the highlighted contact, or the caller of an opened request.", w), "\n")...)
		return strings.Join(out, "\n")
	}
	rows := max(1, h-4)
	first := max(0, min(s.dlg.cursor-rows+1, len(s.blocked)-rows))
	for i := first; i < len(s.blocked) && i < first+rows; i++ {
		b := s.blocked[i]
		marker, style := "  ", st.name
		if i == s.dlg.cursor {
			marker, style = "› ", st.selected
		}
		when := ""
		if !b.Since.IsZero() {
			when = " since " + b.Since.In(s.loc).Format("2 Jan")
		}
		name := ansi.Truncate(blockedName(b), max(1, w-2-ansi.StringWidth(when)-10), "…")
		line := marker + style.Render(name) + st.muted.Render(" "+shortID(b.ID)+when)
		out = append(out, ansi.Truncate(line, w, "…"))
	}
	out = append(out, "", hints(st, "u", "unblock", "esc", "back"))
	return strings.Join(out, "\n")
}
