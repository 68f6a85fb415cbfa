package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
)

// requests are the incoming chat requests, oldest first. They wait as a
// notice and never take the keyboard; the person opens the oldest with
// ctrl+r, and only an opened request reads keys: no typed text can
// answer one.
type requests struct {
	queue  []OfferView
	open   reqKey // the opened request; zero: none
	naming bool   // "accept and add": asking for a name
	name   textinput.Model
	err    string
}

// reqKey names a request: its sender and session (anyone can reuse a
// session ID, so it alone names nothing).
type reqKey struct{ from, sid string }

func keyOf(o OfferView) reqKey { return reqKey{from: o.ContactID, sid: o.SessionID} }

// isOpen reports whether a request is opened.
func (p *requests) isOpen() bool { return p.open != reqKey{} }

func (p *requests) add(o OfferView) {
	for i := range p.queue {
		if keyOf(p.queue[i]) == keyOf(o) {
			p.queue[i] = o
			return
		}
	}
	p.queue = append(p.queue, o)
}

// opened returns the opened request.
func (p *requests) opened() (OfferView, bool) {
	if !p.isOpen() {
		return OfferView{}, false
	}
	for _, o := range p.queue {
		if keyOf(o) == p.open {
			return o, true
		}
	}
	return OfferView{}, false
}

func (p *requests) close() {
	p.open, p.naming, p.err = reqKey{}, false, ""
	p.name.Reset()
	p.name.Blur()
}

func (p *requests) remove(k reqKey) {
	for i, o := range p.queue {
		if keyOf(o) == k {
			p.queue = append(p.queue[:i:i], p.queue[i+1:]...)
			if p.open == k {
				p.close()
			}
			return
		}
	}
}

// removeFrom drops every request from contactID (it was just blocked).
func (p *requests) removeFrom(contactID string) {
	for i := 0; i < len(p.queue); {
		if p.queue[i].ContactID == contactID {
			p.remove(keyOf(p.queue[i]))
			continue
		}
		i++
	}
}

// requestFrom names who a request is from.
func requestFrom(o OfferView) string {
	switch {
	case o.Known && o.Name != "":
		return o.Name
	case o.Known:
		return shortID(o.ContactID)
	}
	return "unknown ID " + shortID(o.ContactID)
}

// openRequest opens the oldest waiting request (ctrl+r).
func (s *Screen) openRequest() tea.Cmd {
	if len(s.reqs.queue) == 0 && len(s.files.queue) > 0 {
		s.openFileOffer()
		return nil
	}
	if len(s.reqs.queue) == 0 {
		s.note = "No chat request or file offer is waiting."
		return nil
	}
	s.reqs.close()
	s.reqs.open = keyOf(s.reqs.queue[0])
	return nil
}

// handleRequestKey answers the opened request. Its keys are single
// letters, read only because the person opened it on purpose; a paste
// answers nothing.
func (s *Screen) handleRequestKey(msg tea.KeyMsg) tea.Cmd {
	p := &s.reqs
	o, ok := p.opened()
	if !ok {
		p.close()
		return nil
	}
	k := &s.keys
	if p.naming {
		switch {
		case isText(msg):
			var cmd tea.Cmd
			p.name, cmd = p.name.Update(asText(msg))
			p.err = ""
			return cmd
		case keyMatch(msg, k.Back):
			p.naming, p.err = false, ""
			p.name.Blur()
			return nil
		case keyMatch(msg, k.Confirm):
			name, problem := checkName(p.name.Value())
			if problem == "" {
				problem = s.checkNewContact(o.ContactID)
			}
			if problem != "" {
				p.err = problem
				return nil
			}
			p.remove(keyOf(o))
			s.acted()
			return tea.Batch(emit(AcceptIntent{From: o.ContactID, SessionID: o.SessionID, AddAs: name}), s.openChat(o.ContactID))
		}
		var cmd tea.Cmd
		p.name, cmd = p.name.Update(msg)
		return cmd
	}
	switch {
	case keyMatch(msg, k.Accept):
		p.remove(keyOf(o))
		s.acted()
		// Accepting means "let's talk": the chat opens as it would on Enter.
		return tea.Batch(emit(AcceptIntent{From: o.ContactID, SessionID: o.SessionID}), s.openChat(o.ContactID))
	case keyMatch(msg, k.AcceptAndAdd) && !o.Known:
		p.naming, p.err = true, ""
		p.name.Reset()
		p.name.SetValue(o.Name) // the name it gave, for the user to keep or change
		return p.name.Focus()
	case keyMatch(msg, k.Decline):
		p.remove(keyOf(o))
		s.acted()
		return emit(DeclineIntent{From: o.ContactID, SessionID: o.SessionID})
	case keyMatch(msg, k.BlockCaller):
		p.removeFrom(o.ContactID)
		s.acted()
		s.note = requestFrom(o) + " is blocked: its requests are dropped unseen. B lists blocked IDs."
		return emit(BlockIntent{ID: o.ContactID, Name: o.Name})
	case keyMatch(msg, k.Back):
		p.close() // it keeps waiting
	}
	return nil
}

// requestView draws the opened request in inner width w and at most h
// lines, dropping the explanations before the key hints.
func (s *Screen) requestView(w, h int) string {
	if v := s.requestContent(w, false); lipgloss.Height(v) <= h {
		return v
	}
	return s.requestContent(w, true)
}

func (s *Screen) requestContent(w int, compact bool) string {
	st := &s.st
	o, _ := s.reqs.opened()
	var b strings.Builder
	b.WriteString(st.modalTitle.Render("Chat request") + "\n")
	if !compact {
		b.WriteString("\n")
	}
	if o.Known {
		b.WriteString(wrapText(st.modalTitle.Render(requestFrom(o))+" wants to talk.", w) + "\n")
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
	switch {
	case s.reqs.naming:
		b.WriteString(s.reqs.name.View() + "\n")
		if s.reqs.err != "" {
			b.WriteString(st.errLine.Render(wrapText(s.reqs.err, w)) + "\n")
		}
		b.WriteString(hints(st, "enter", "accept", "esc", "back"))
	case o.Known:
		b.WriteString(hints(st, "a", "accept", "d", "decline", "b", "block", "esc", "back"))
	default:
		if !compact {
			b.WriteString(wrapText("a accepts once; A accepts and adds it to your contacts; b drops its requests from now on; esc leaves it waiting.", w) + "\n")
		}
		b.WriteString(hints(st, "a", "accept", "A", "add", "d", "decline", "b", "block", "esc", "back"))
	}
	if n := len(s.reqs.queue) - 1; n > 0 {
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
	dlgBlock // block or unblock the highlighted contact
	dlgInfo
	dlgHelp
	dlgDetails
	dlgBlocked
	dlgJoin      // paste a group's join code
	dlgSendFile  // files.go
	dlgTransfers // files.go
)

// dialog is the dialog open over the panes.
type dialog struct {
	kind      dialogKind
	contactID string // rename, remove, block
	name      string // block: the contact's name
	unblock   bool   // block: the contact is blocked, this unblocks it
	fields    []textinput.Model
	focus     int
	err       string
	scroll    int    // help, info, details: first line shown
	cursor    int    // blocked, transfers: the highlighted row
	hint      string // send file: what tab found
}

func (s *Screen) openDialog(kind dialogKind) tea.Cmd {
	st := &s.st
	d := dialog{kind: kind}
	switch kind {
	case dlgAdd:
		d.fields = []textinput.Model{
			newField(st, "Name: ", "what you call them", maxNameField),
			newField(st, "ID:   ", "paste their ID", maxIDField),
		}
	case dlgJoin:
		d.fields = []textinput.Model{newField(st, "Code: ", "p2ptui1.…", maxJoinCodeRunes)}
	case dlgSendFile:
		d.fields = []textinput.Model{newField(st, "File: ", "its path; tab completes", maxPathField)}
	case dlgRename, dlgRemove, dlgBlock:
		c, ok := s.contacts.selected()
		if !ok {
			return nil
		}
		d.contactID, d.name, d.unblock = c.ID, c.Name, c.Blocked
		if kind == dlgRename {
			f := newField(st, "Name: ", "new name", maxNameField)
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
	case dlgHelp, dlgInfo, dlgDetails:
		switch {
		case keyMatch(msg, k.ScrollUp):
			d.scroll = max(0, d.scroll-scrollStep(msg))
		case keyMatch(msg, k.ScrollDn):
			d.scroll += scrollStep(msg)
			s.clampScroll()
		case d.kind == dlgInfo && keyMatch(msg, k.Copy):
			return s.copyID()
		default:
			s.closeDialog() // any other key closes it
		}
		return nil
	case dlgBlocked:
		switch {
		case keyMatch(msg, k.Up):
			d.cursor = max(0, d.cursor-1)
		case keyMatch(msg, k.Down):
			d.cursor = min(max(0, len(s.blocked)-1), d.cursor+1)
		case keyMatch(msg, k.Unblock) && d.cursor < len(s.blocked):
			b := s.blocked[d.cursor]
			s.note = blockedName(b) + " is unblocked."
			return emit(UnblockIntent{ID: b.ID})
		case keyMatch(msg, k.Back):
			s.closeDialog()
		}
		return nil
	case dlgTransfers:
		return s.handleTransfersKey(msg)
	case dlgSendFile:
		if keyMatch(msg, k.Complete) {
			return completePathCmd(targetDialog, d.fields[0].Value(), false)
		}
		if keyMatch(msg, k.Confirm) {
			return s.submitSendFile()
		}
		if isText(msg) {
			d.hint = ""
		}
	case dlgRemove:
		switch {
		case keyMatch(msg, k.Yes):
			id := d.contactID
			s.closeDialog()
			s.acted()
			return emit(RemoveContactIntent{ID: id})
		case keyMatch(msg, k.Block):
			id, name := d.contactID, d.name
			s.closeDialog()
			s.acted()
			s.note = name + " is removed and blocked."
			return tea.Batch(emit(BlockIntent{ID: id, Name: name}), emit(RemoveContactIntent{ID: id}))
		case keyMatch(msg, k.No):
			s.closeDialog()
		}
		return nil
	case dlgBlock:
		switch {
		case keyMatch(msg, k.Yes):
			id, name, unblock := d.contactID, d.name, d.unblock
			s.closeDialog()
			s.acted()
			if unblock {
				s.note = name + " is unblocked."
				return emit(UnblockIntent{ID: id})
			}
			s.reqs.removeFrom(id)
			s.note = name + " is blocked: their requests are dropped unseen."
			return emit(BlockIntent{ID: id, Name: name})
		case keyMatch(msg, k.No):
			s.closeDialog()
		}
		return nil
	}
	switch {
	case isText(msg):
		var cmd tea.Cmd
		d.fields[d.focus], cmd = d.fields[d.focus].Update(asText(msg))
		d.err = ""
		return cmd
	case keyMatch(msg, k.Back):
		s.closeDialog()
		return nil
	case keyMatch(msg, k.Confirm):
		if d.focus < len(d.fields)-1 && strings.TrimSpace(d.fields[d.focus].Value()) != "" {
			return d.move(1)
		}
		return s.submitDialog()
	case len(d.fields) > 1 && keyMatch(msg, k.NextField):
		return d.move(1)
	case len(d.fields) > 1 && keyMatch(msg, k.PrevField):
		return d.move(-1)
	case msg.Paste:
		return nil
	}
	var cmd tea.Cmd
	d.fields[d.focus], cmd = d.fields[d.focus].Update(msg)
	d.err = ""
	return cmd
}

// scrollStep is how far a scroll key moves a viewer: a page for pgup/pgdn.
func scrollStep(msg tea.KeyMsg) int {
	if msg.Type == tea.KeyPgUp || msg.Type == tea.KeyPgDown {
		return 10
	}
	return 1
}

func (d *dialog) move(by int) tea.Cmd {
	d.fields[d.focus].Blur()
	d.focus = (d.focus + by + len(d.fields)) % len(d.fields)
	return d.fields[d.focus].Focus()
}

// checkName checks a name typed for a contact and returns it as it will
// be stored, or, as problem, what to fix in words.
func checkName(typed string) (name, problem string) {
	name = sanitizeLine(typed)
	switch {
	case name == "":
		return "", "Name: type what you call them."
	case !hasVisible(name):
		return "", "Name: it shows nothing; use letters, digits or symbols."
	case len(name) > store.MaxContactNameBytes:
		return "", "Name: too long, at most " + itoa(store.MaxContactNameBytes) + " bytes (this one has " + itoa(len(name)) + ")."
	}
	clean, err := store.CleanContactName(name)
	if err != nil {
		return "", "Name: " + strings.TrimPrefix(err.Error(), store.ErrInvalidName.Error()+": ") + "."
	}
	return clean, ""
}

// checkNewContact says what is wrong with adding id (canonical) as a
// contact; "" if nothing.
func (s *Screen) checkNewContact(id string) string {
	if id == s.self.ID {
		return "ID: that is your own ID; paste the other person's."
	}
	if c, ok := s.contacts.find(id); ok && c.Name != "" {
		return "ID: already in your contacts, as " + c.Name + "."
	}
	return ""
}

// checkID parses an ID as pasted (spaces and line breaks removed) and
// returns it canonical, or what to fix.
func checkID(typed string) (id, problem string) {
	raw := strings.Join(strings.Fields(typed), "")
	if raw == "" {
		return "", "ID: paste their ID (they see it in their top line, or under i)."
	}
	pub, err := identity.ParseID(raw)
	if err != nil {
		return "", "ID: " + err.Error() + "."
	}
	return identity.IDFromPublic(pub), ""
}

// submitDialog checks the fields and emits the intent; a mistake keeps the
// dialog open with what was typed and says, under the fields, what to fix.
func (s *Screen) submitDialog() tea.Cmd {
	d := &s.dlg
	switch d.kind {
	case dlgAdd:
		name, problem := checkName(d.fields[0].Value())
		if problem != "" {
			d.err = problem
			return d.focusField(0)
		}
		id, problem := checkID(d.fields[1].Value())
		if problem == "" {
			problem = s.checkNewContact(id)
		}
		if problem != "" {
			d.err = problem
			return d.focusField(1)
		}
		s.acted()
		s.closeDialog()
		return emit(AddContactIntent{Name: name, ID: id})
	case dlgRename:
		name, problem := checkName(d.fields[0].Value())
		if problem != "" {
			d.err = problem
			return nil
		}
		id := d.contactID
		s.acted()
		s.closeDialog()
		return emit(RenameContactIntent{ID: id, Name: name})
	case dlgJoin:
		code := strings.Join(strings.Fields(d.fields[0].Value()), "")
		if code == "" {
			d.err = "Code: paste the join code your group's admin gave you."
			return nil
		}
		c, err := signal.ParseJoinCode(code)
		if err != nil {
			d.err = "Code: " + err.Error()
			return nil
		}
		s.acted()
		s.closeDialog()
		return emit(JoinIntent{Code: c.String()})
	}
	return nil
}

func (d *dialog) focusField(i int) tea.Cmd {
	if d.focus == i {
		return nil
	}
	return d.move(i - d.focus)
}

// dialogView draws the open dialog in inner width w and height h.
func (s *Screen) dialogView(w, h int) string {
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
		b.WriteString(st.modalTitle.Render("Rename "+ansi.Truncate(d.name, max(1, w-7), "…")) + "\n\n")
		b.WriteString(d.fields[0].View() + "\n")
	case dlgJoin:
		b.WriteString(st.modalTitle.Render("Join a group") + "\n\n")
		b.WriteString(wrapText("Signalling now: "+s.status.Backend+". Paste the join code your group's admin gave you: p2ptui signs in to the group's project and keeps the code for the next starts.", w) + "\n\n")
		b.WriteString(d.fields[0].View() + "\n")
	case dlgRemove:
		b.WriteString(st.modalTitle.Render("Remove contact") + "\n\n")
		b.WriteString(wrapText("Remove "+st.modalTitle.Render(d.name)+" from your contacts? You will need their ID to add them again. Their requests still reach you: b removes and blocks them.", w) + "\n\n")
		b.WriteString(hints(st, "y", "yes", "b", "block", "n", "no"))
		return b.String()
	case dlgBlock:
		if d.unblock {
			b.WriteString(st.modalTitle.Render("Unblock") + "\n\n")
			b.WriteString(wrapText("Unblock "+st.modalTitle.Render(d.name)+"? Their chat requests will reach you again.", w) + "\n\n")
			b.WriteString(hints(st, "y", "yes", "n", "no"))
			return b.String()
		}
		b.WriteString(st.modalTitle.Render("Block") + "\n\n")
		b.WriteString(wrapText("Block "+st.modalTitle.Render(d.name)+"? Their chat requests will be dropped without showing or answering them. They stay in your contacts; b again unblocks.", w) + "\n\n")
		b.WriteString(hints(st, "y", "yes", "n", "no"))
		return b.String()
	case dlgInfo:
		return s.viewer(s.infoLines(w), w, h)
	case dlgHelp:
		return s.viewer(s.helpLines(w), w, h)
	case dlgDetails:
		return s.viewer(s.detailsLines(w), w, h)
	case dlgBlocked:
		return s.blockedView(w, h)
	case dlgSendFile:
		return s.sendFileView(w)
	case dlgTransfers:
		return s.transfersView(w, h)
	}
	if d.err != "" {
		b.WriteString(st.errLine.Render(wrapText(d.err, w)) + "\n")
	}
	if len(d.fields) > 1 {
		b.WriteString("\n" + hints(st, "enter", "ok", "tab", "next", "esc", "back"))
	} else {
		b.WriteString("\n" + hints(st, "enter", "ok", "esc", "back"))
	}
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
	return thousands(n) + " " + many
}
