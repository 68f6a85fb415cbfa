package ui

import (
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// offerArmDelay is how long an offer prompt ignores its keys after it
// appears: someone typing a message when an offer pops up would otherwise
// answer it with whatever letter came next ("a" accepts).
const offerArmDelay = 600 * time.Millisecond

// maxNameRunes bounds contact names typed in dialogs.
const maxNameRunes = 64

// maxIDRunes leaves room for an ID pasted with spaces or line breaks.
const maxIDRunes = 200

// pendingOffer is a queued incoming-offer prompt.
type pendingOffer struct {
	OfferView
	shownAt time.Time
}

// offerPrompt is the queue of incoming offers; the oldest is on screen.
type offerPrompt struct {
	queue  []pendingOffer
	naming bool // "accept and add": asking for a name
	name   textinput.Model
	err    string
}

func (p *offerPrompt) current() (pendingOffer, bool) {
	if len(p.queue) == 0 {
		return pendingOffer{}, false
	}
	return p.queue[0], true
}

func (p *offerPrompt) remove(from, sessionID string) {
	for i, o := range p.queue {
		if o.ContactID == from && o.SessionID == sessionID {
			p.queue = append(p.queue[:i:i], p.queue[i+1:]...)
			if i == 0 {
				p.naming, p.err = false, ""
				p.name.Reset()
				p.name.Blur()
			}
			return
		}
	}
}

// handleOfferKey answers the offer on screen. Keys within offerArmDelay of
// it appearing are swallowed.
func (s *Screen) handleOfferKey(msg tea.KeyMsg) tea.Cmd {
	p := &s.offers
	o, _ := p.current()
	k := &s.keys
	if p.naming {
		switch {
		case key.Matches(msg, k.Cancel):
			p.naming, p.err = false, ""
			p.name.Blur()
			return nil
		case key.Matches(msg, k.Confirm):
			name := strings.TrimSpace(p.name.Value())
			if name == "" {
				p.err = "Type a name for this contact."
				return nil
			}
			p.remove(o.ContactID, o.SessionID)
			s.acted()
			return tea.Batch(emit(AcceptIntent{From: o.ContactID, SessionID: o.SessionID, AddAs: name}), s.openChat(o.ContactID))
		}
		var cmd tea.Cmd
		p.name, cmd = p.name.Update(msg)
		return cmd
	}
	if s.now().Sub(o.shownAt) < offerArmDelay {
		return nil
	}
	switch {
	case key.Matches(msg, k.Accept):
		p.remove(o.ContactID, o.SessionID)
		s.acted()
		// Accepting means "let's talk": the chat opens as it would on Enter.
		return tea.Batch(emit(AcceptIntent{From: o.ContactID, SessionID: o.SessionID}), s.openChat(o.ContactID))
	case key.Matches(msg, k.AcceptAndAdd) && !o.Known:
		p.naming, p.err = true, ""
		p.name.Reset()
		p.name.SetValue(o.Name) // the name it gave, for the user to keep or change
		return p.name.Focus()
	case key.Matches(msg, k.Decline):
		p.remove(o.ContactID, o.SessionID)
		s.acted()
		return emit(DeclineIntent{From: o.ContactID, SessionID: o.SessionID})
	}
	return nil
}

// offerView draws the prompt for the oldest offer in inner width w and at
// most h lines, dropping the explanations before the key hints.
func (s *Screen) offerView(w, h int) string {
	if v := s.offerContent(w, false); lipgloss.Height(v) <= h {
		return v
	}
	return s.offerContent(w, true)
}

func (s *Screen) offerContent(w int, compact bool) string {
	st := &s.st
	o, _ := s.offers.current()
	var b strings.Builder
	b.WriteString(st.modalTitle.Render("Incoming chat request") + "\n")
	if !compact {
		b.WriteString("\n")
	}
	if o.Known {
		name := o.Name
		if name == "" {
			name = shortID(o.ContactID)
		}
		b.WriteString(wrapText(st.modalTitle.Render(name)+" wants to talk.", w) + "\n")
	} else {
		b.WriteString(wrapText(st.warn.Render("Unknown ID "+shortID(o.ContactID))+" wants to talk.", w) + "\n")
		if !compact {
			b.WriteString(st.muted.Render(hardWrap(o.ContactID, w)) + "\n")
		}
		if o.Name != "" {
			b.WriteString(wrapText("Calls itself \""+o.Name+"\" (unverified).", w) + "\n")
		}
		if !compact {
			b.WriteString(wrapText("Not in your contacts. Nothing is sent to it unless you accept.", w) + "\n")
		}
	}
	if o.Fingerprint != "" {
		b.WriteString(wrapText("Safety number: "+o.Fingerprint, w) + "\n")
	}
	b.WriteString("\n")
	if s.offers.naming {
		b.WriteString(s.offers.name.View() + "\n")
		if s.offers.err != "" {
			b.WriteString(st.errLine.Render(s.offers.err) + "\n")
		}
		b.WriteString(hints(st, "enter", "accept & add", "esc", "back"))
	} else if o.Known {
		b.WriteString(hints(st, "a", "accept", "d", "decline"))
	} else {
		b.WriteString(hints(st, "a", "accept once", "A", "accept & add", "d", "decline"))
	}
	if n := len(s.offers.queue) - 1; n > 0 {
		b.WriteString("\n" + st.muted.Render(plural(n, "more request", "more requests")+" waiting"))
	}
	return b.String()
}

// dialogKind is which dialog is open over the panes.
type dialogKind int

const (
	dlgNone dialogKind = iota
	dlgAdd
	dlgRename
	dlgRemove
	dlgInfo
	dlgHelp
)

// dialog is the add/rename/remove/info/help box.
type dialog struct {
	kind      dialogKind
	contactID string // rename, remove
	fields    []textinput.Model
	focus     int
	err       string
}

func (s *Screen) openDialog(kind dialogKind) tea.Cmd {
	st := &s.st
	d := dialog{kind: kind}
	switch kind {
	case dlgAdd:
		d.fields = []textinput.Model{
			newField(st, "Name: ", "what you call them", maxNameRunes),
			newField(st, "ID:   ", "paste their ID", maxIDRunes),
		}
	case dlgRename, dlgRemove:
		c, ok := s.contacts.selected()
		if !ok {
			return nil
		}
		d.contactID = c.ID
		if kind == dlgRename {
			f := newField(st, "Name: ", "new name", maxNameRunes)
			f.SetValue(c.Name)
			d.fields = []textinput.Model{f}
		}
	}
	s.dlg = d
	s.layoutInputs()
	if len(s.dlg.fields) > 0 {
		return s.dlg.fields[0].Focus()
	}
	return nil
}

func (s *Screen) closeDialog() { s.dlg = dialog{} }

func (s *Screen) handleDialogKey(msg tea.KeyMsg) tea.Cmd {
	d := &s.dlg
	k := &s.keys
	switch d.kind {
	case dlgInfo, dlgHelp:
		s.closeDialog()
		return nil
	case dlgRemove:
		switch {
		case key.Matches(msg, k.Yes):
			id := d.contactID
			s.closeDialog()
			s.acted()
			return emit(RemoveContactIntent{ID: id})
		case key.Matches(msg, k.No):
			s.closeDialog()
		}
		return nil
	}
	switch {
	case key.Matches(msg, k.Cancel):
		s.closeDialog()
		return nil
	case key.Matches(msg, k.Confirm):
		if d.focus < len(d.fields)-1 && strings.TrimSpace(d.fields[d.focus].Value()) != "" {
			return d.move(1)
		}
		return s.submitDialog()
	case len(d.fields) > 1 && key.Matches(msg, k.NextField):
		return d.move(1)
	case len(d.fields) > 1 && key.Matches(msg, k.PrevField):
		return d.move(-1)
	}
	var cmd tea.Cmd
	d.fields[d.focus], cmd = d.fields[d.focus].Update(msg)
	d.err = ""
	return cmd
}

func (d *dialog) move(by int) tea.Cmd {
	d.fields[d.focus].Blur()
	d.focus = (d.focus + by + len(d.fields)) % len(d.fields)
	return d.fields[d.focus].Focus()
}

// submitDialog checks what only the screen can (something was typed) and
// emits the intent; whether an ID is valid is the engine's call.
func (s *Screen) submitDialog() tea.Cmd {
	s.acted()
	d := &s.dlg
	switch d.kind {
	case dlgAdd:
		name := strings.TrimSpace(d.fields[0].Value())
		id := strings.Join(strings.Fields(d.fields[1].Value()), "")
		switch {
		case name == "":
			d.err = "Type a name."
			return d.focusField(0)
		case id == "":
			d.err = "Paste their ID."
			return d.focusField(1)
		}
		s.closeDialog()
		return emit(AddContactIntent{Name: name, ID: id})
	case dlgRename:
		name := strings.TrimSpace(d.fields[0].Value())
		if name == "" {
			d.err = "Type a name."
			return nil
		}
		id := d.contactID
		s.closeDialog()
		return emit(RenameContactIntent{ID: id, Name: name})
	}
	return nil
}

func (d *dialog) focusField(i int) tea.Cmd {
	if d.focus == i {
		return nil
	}
	return d.move(i - d.focus)
}

// dialogView draws the open dialog, inner width w (h is not needed: every
// dialog fits the smallest supported screen).
func (s *Screen) dialogView(w, _ int) string {
	st := &s.st
	d := &s.dlg
	var b strings.Builder
	switch d.kind {
	case dlgAdd:
		b.WriteString(st.modalTitle.Render("Add a contact") + "\n\n")
		for _, f := range d.fields {
			b.WriteString(f.View() + "\n")
		}
	case dlgRename:
		c, _ := s.contacts.find(d.contactID)
		b.WriteString(st.modalTitle.Render("Rename "+ansi.Truncate(c.Name, max(1, w-7), "…")) + "\n\n")
		b.WriteString(d.fields[0].View() + "\n")
	case dlgRemove:
		c, _ := s.contacts.find(d.contactID)
		b.WriteString(st.modalTitle.Render("Remove contact") + "\n\n")
		b.WriteString(wrapText("Remove "+st.modalTitle.Render(c.Name)+" from your contacts? You will need their ID to add them again.", w) + "\n\n")
		b.WriteString(hints(st, "y", "remove", "n", "keep"))
		return b.String()
	case dlgInfo:
		return s.infoView(w)
	case dlgHelp:
		s.help.ShowAll = true
		s.help.Width = w
		b.WriteString(st.modalTitle.Render("Keys") + st.muted.Render(" (any key closes this)") + "\n\n")
		b.WriteString(s.help.View(helpKeys{k: &s.keys}))
		return b.String()
	}
	if d.err != "" {
		b.WriteString(st.errLine.Render(wrapText(d.err, w)) + "\n")
	}
	if len(d.fields) > 1 {
		b.WriteString("\n" + hints(st, "enter", "ok", "tab", "next field", "esc", "cancel"))
	} else {
		b.WriteString("\n" + hints(st, "enter", "ok", "esc", "cancel"))
	}
	return b.String()
}

// infoView is "who am I": my ID to share, and the highlighted contact's
// ID and safety number to compare out of band.
func (s *Screen) infoView(w int) string {
	st := &s.st
	var b strings.Builder
	b.WriteString(st.modalTitle.Render("Your ID") + " " + st.muted.Render("(share it so others can add you)") + "\n")
	id := s.self.ID
	if id == "" {
		id = "(not ready yet)"
	}
	b.WriteString(st.headerID.Render(hardWrap(id, w)) + "\n")
	if s.self.Fingerprint != "" {
		b.WriteString(wrapText("Key fingerprint: "+s.self.Fingerprint, w) + "\n")
	}
	if c, ok := s.contacts.selected(); ok {
		b.WriteString("\n" + st.modalTitle.Render(ansi.Truncate(c.Name, w, "…")) + "\n")
		b.WriteString(st.muted.Render(hardWrap(c.ID, w)) + "\n")
		if c.Fingerprint != "" {
			b.WriteString(wrapText("Safety number: "+c.Fingerprint, w) + "\n")
			b.WriteString(st.muted.Render(wrapText("Compare it with theirs in person or on a call.", w)) + "\n")
		}
	}
	b.WriteString("\n" + st.muted.Render("any key closes this"))
	return b.String()
}

// modal draws content in a bordered box centred in w×h; content gets the
// inner width and height.
func (s *Screen) modal(w, h int, content func(innerW, innerH int) string) string {
	boxW := min(w-2, 64)
	inner := max(10, boxW-4) // border and padding
	box := s.st.modal.Width(inner + 2).Render(content(inner, max(1, h-2)))
	return s.st.r.Place(w, h, lipgloss.Center, lipgloss.Center, box)
}

// hints renders "a accept · d decline" style key hints.
func hints(st *styles, pairs ...string) string {
	var parts []string
	for i := 0; i+1 < len(pairs); i += 2 {
		parts = append(parts, st.keyHint.Render(pairs[i])+" "+pairs[i+1])
	}
	return strings.Join(parts, st.muted.Render(" · "))
}

// wrapText word-wraps s (which may carry styles) to w columns.
func wrapText(s string, w int) string { return ansi.Wrap(s, max(1, w), "") }

// hardWrap breaks s every w columns (IDs have no spaces to wrap at).
func hardWrap(s string, w int) string { return ansi.Hardwrap(s, max(1, w), true) }

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return itoa(n) + " " + many
}
