package ui

import (
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
)

// Options configure a Screen. The zero value is fine for production.
type Options struct {
	// Now is the clock used for relative times ("5m"), and to hold back
	// keys right after an offer prompt appears; nil means time.Now.
	// Tests pass a fixed clock.
	Now func() time.Time
	// Location is the zone times are shown in; nil means time.Local.
	Location *time.Location
	// Renderer draws the styles; nil means lipgloss.DefaultRenderer().
	// Tests pass one with a fixed (ASCII) colour profile.
	Renderer *lipgloss.Renderer
}

// Layout limits.
const (
	wideMin       = 72 // from this width both panes show; below, only the focused one
	contactsMinW  = 22
	contactsMaxW  = 32
	tallInputMinH = 24 // from this height the input box has 3 lines, else 2
	minW, minH    = 20, 8
	wheelLines    = 3
)

// focus is which pane has the keyboard when no prompt or dialog is open.
type focus int

const (
	focusContacts focus = iota
	focusChat
)

// Screen is the visual layer: contacts pane, chat pane, input, status bar,
// help and dialogs. The engine (root model) pushes data in with the setters,
// routes every tea.Msg it does not own to Update, and receives what the user
// asked for as intent messages (intents.go) from the returned commands.
// Screen does no I/O and never blocks.
type Screen struct {
	st   styles
	keys keyMap
	help help.Model
	now  func() time.Time
	loc  *time.Location

	w, h int

	self     Self
	contacts contactList
	convs    map[string]*conversation
	openID   string // contact whose chat is open ("" none)
	focus    focus

	input    textarea.Model
	inputW   int
	inputH   int
	drafts   map[string]string
	typing   bool // we told the engine the user is typing to openID
	offers   offerPrompt
	dlg      dialog
	status   StatusView
	shownErr string
}

// NewScreen returns an empty screen.
func NewScreen(opt Options) *Screen {
	s := &Screen{
		st:     newStyles(opt.Renderer),
		keys:   newKeyMap(),
		now:    opt.Now,
		loc:    opt.Location,
		convs:  make(map[string]*conversation),
		drafts: make(map[string]string),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	s.help = help.New()
	s.help.Styles = help.Styles{
		Ellipsis:       s.st.muted,
		ShortKey:       s.st.keyHint,
		ShortDesc:      s.st.muted,
		ShortSeparator: s.st.muted,
		FullKey:        s.st.keyHint,
		FullDesc:       s.st.muted,
		FullSeparator:  s.st.muted,
	}
	s.input = newInput(&s.st, &s.keys)
	s.offers.name = newField(&s.st, "Name: ", "what you call them", maxNameRunes)
	return s
}

// emit wraps an intent as the command that hands it to the root model.
func emit(intent tea.Msg) tea.Cmd { return func() tea.Msg { return intent } }

func itoa(n int) string { return strconv.Itoa(n) }

// SetSize sets the terminal size (the root model forwards tea.WindowSizeMsg;
// Update also accepts it directly).
func (s *Screen) SetSize(w, h int) {
	s.w, s.h = w, h
	s.layoutInputs()
}

// SetSelf sets the local identity shown in the header.
func (s *Screen) SetSelf(me Self) {
	me.ID = sanitizeLine(me.ID)
	me.Name = sanitizeLine(me.Name)
	me.Fingerprint = sanitizeLine(me.Fingerprint)
	if me.Name != s.self.Name {
		for _, c := range s.convs { // my name is on my messages
			clear(c.blocks)
		}
	}
	s.self = me
}

// SetContacts replaces the contact list (order is kept as given).
func (s *Screen) SetContacts(cs []ContactView) {
	_, wasListed := s.contacts.find(s.openID)
	s.contacts.set(cs)
	for _, c := range s.contacts.items {
		if conv := s.convs[c.ID]; conv != nil {
			conv.setPeerName(c.Name)
		}
	}
	if _, listed := s.contacts.find(s.openID); listed && !wasListed {
		// An ID accepted and added from an offer has just been listed:
		// highlight it, as its chat is the one open.
		s.contacts.selectID(s.openID)
	}
	if s.openID != "" && wasListed {
		// The open chat closes when its contact is removed (not when it
		// was never listed: an offer accepted from an unknown ID).
		if _, ok := s.contacts.find(s.openID); !ok {
			s.openID = ""
			s.focus = focusContacts
			s.input.Blur()
			s.typing = false
			s.layoutInputs()
		}
	}
}

func (s *Screen) conv(contactID string) *conversation {
	c := s.convs[contactID]
	if c == nil {
		c = newConversation()
		if ct, ok := s.contacts.find(contactID); ok {
			c.peerName = ct.Name
		}
		s.convs[contactID] = c
	}
	return c
}

// SetMessages replaces contactID's loaded history, oldest first.
func (s *Screen) SetMessages(contactID string, ms []MessageView) {
	s.conv(contactID).set(ms)
}

// AppendMessage adds a message at the end of contactID's conversation. A
// message whose Key is already there is ignored.
func (s *Screen) AppendMessage(contactID string, m MessageView) {
	l := s.chatLayout()
	s.conv(contactID).appendMsg(m, &l.chatLayout)
}

// SetMark updates the delivery mark of message key in contactID's conversation.
func (s *Screen) SetMark(contactID, key string, mark Mark) {
	s.conv(contactID).setMark(key, mark)
}

// SetTyping shows or hides "… is typing" for contactID.
func (s *Screen) SetTyping(contactID string, active bool) {
	s.conv(contactID).typing = active
}

// ShowOffer queues an incoming-offer prompt (shown one at a time, oldest
// first). A second ShowOffer for the same session updates it in place.
func (s *Screen) ShowOffer(o OfferView) {
	o.Name = sanitizeLine(o.Name)
	o.ContactID = sanitizeLine(o.ContactID)
	o.Fingerprint = sanitizeLine(o.Fingerprint)
	for i := range s.offers.queue {
		if s.offers.queue[i].SessionID == o.SessionID && s.offers.queue[i].ContactID == o.ContactID {
			s.offers.queue[i].OfferView = o
			return
		}
	}
	s.offers.queue = append(s.offers.queue, pendingOffer{OfferView: o, shownAt: s.now()})
}

// HideOffer removes the prompt for the offer (from, sessionID) (answered
// elsewhere, cancelled or expired).
func (s *Screen) HideOffer(from, sessionID string) { s.offers.remove(from, sessionID) }

// SetStatus sets the status bar.
func (s *Screen) SetStatus(st StatusView) {
	st.Backend = sanitizeLine(st.Backend)
	st.NAT = sanitizeLine(st.NAT)
	st.Path = sanitizeLine(st.Path)
	st.Err = sanitizeLine(st.Err)
	if st.Err != s.status.Err {
		s.shownErr = ""
	}
	s.status = st
	s.layoutInputs()
}

// ShowError shows msg (plain words) above the status bar until the next
// ShowError("") or a SetStatus with a different Err.
func (s *Screen) ShowError(msg string) {
	s.shownErr = sanitizeLine(msg)
	s.layoutInputs()
}

// Focused returns the contact whose chat is open ("" if none).
func (s *Screen) Focused() string { return s.openID }

// Update handles keys, mouse and resizes. User actions come back as intent
// messages through the returned command.
func (s *Screen) Update(msg tea.Msg) (*Screen, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		s.SetSize(msg.Width, msg.Height)
		return s, nil
	case tea.MouseMsg:
		return s, s.handleMouse(msg)
	case tea.KeyMsg:
		return s, s.handleKey(msg)
	}
	// Anything else (paste, cursor messages) belongs to whichever field has
	// the keyboard.
	var cmd tea.Cmd
	switch {
	case s.offers.naming:
		s.offers.name, cmd = s.offers.name.Update(msg)
	case s.dlg.kind != dlgNone && len(s.dlg.fields) > 0:
		s.dlg.fields[s.dlg.focus], cmd = s.dlg.fields[s.dlg.focus].Update(msg)
	case s.focus == focusChat:
		s.input, cmd = s.input.Update(msg)
	}
	return s, cmd
}

// handleMouse: the wheel scrolls the pane under the pointer (the chat
// wherever else); a click picks a contact or focuses the chat. Prompts
// and dialogs take no mouse input.
func (s *Screen) handleMouse(msg tea.MouseMsg) tea.Cmd {
	if msg.Action != tea.MouseActionPress || len(s.offers.queue) > 0 || s.dlg.kind != dlgNone {
		return nil
	}
	L := s.chatLayout()
	overContacts := msg.X < L.contactsW
	switch msg.Button {
	case tea.MouseButtonWheelUp:
		if overContacts {
			s.contacts.move(-1)
		} else {
			s.scrollChat(wheelLines)
		}
	case tea.MouseButtonWheelDown:
		if overContacts {
			s.contacts.move(1)
		} else {
			s.scrollChat(-wheelLines)
		}
	case tea.MouseButtonLeft:
		if !overContacts {
			if s.openID != "" && s.focus != focusChat {
				return s.setFocus(focusChat)
			}
			return nil
		}
		// Rows start under the header and the pane title, two lines each.
		row := (msg.Y - 2) / 2
		if msg.Y >= 2 && s.contacts.offset+row < len(s.contacts.items) {
			s.contacts.cursor = s.contacts.offset + row
			return s.setFocus(focusContacts)
		}
	}
	return nil
}

func (s *Screen) handleKey(msg tea.KeyMsg) tea.Cmd {
	k := &s.keys
	if key.Matches(msg, k.Quit) {
		return emit(QuitIntent{})
	}
	if len(s.offers.queue) > 0 {
		return s.handleOfferKey(msg)
	}
	if s.dlg.kind != dlgNone {
		return s.handleDialogKey(msg)
	}
	if s.focus == focusChat {
		return s.handleChatKey(msg)
	}
	return s.handleContactsKey(msg)
}

func (s *Screen) handleContactsKey(msg tea.KeyMsg) tea.Cmd {
	k := &s.keys
	switch {
	case key.Matches(msg, k.Up):
		s.contacts.move(-1)
	case key.Matches(msg, k.Down):
		s.contacts.move(1)
	case key.Matches(msg, k.Open):
		c, ok := s.contacts.selected()
		if !ok {
			return nil
		}
		s.acted()
		return tea.Batch(s.openChat(c.ID), emit(OpenChatIntent{ContactID: c.ID}))
	case key.Matches(msg, k.Back):
		s.acted() // esc dismisses an error
	case key.Matches(msg, k.Switch):
		if s.openID != "" {
			return s.setFocus(focusChat)
		}
	case key.Matches(msg, k.Add):
		return s.openDialog(dlgAdd)
	case key.Matches(msg, k.Rename):
		return s.openDialog(dlgRename)
	case key.Matches(msg, k.Remove):
		return s.openDialog(dlgRemove)
	case key.Matches(msg, k.Info):
		return s.openDialog(dlgInfo)
	case key.Matches(msg, k.Help):
		return s.openDialog(dlgHelp)
	case key.Matches(msg, k.QuitQ):
		return emit(QuitIntent{})
	}
	return nil
}

func (s *Screen) handleChatKey(msg tea.KeyMsg) tea.Cmd {
	k := &s.keys
	switch {
	case key.Matches(msg, k.Send):
		return s.send()
	case key.Matches(msg, k.Switch), key.Matches(msg, k.Back):
		return s.setFocus(focusContacts)
	case key.Matches(msg, k.PageUp):
		s.scrollChat(max(1, s.chatLayout().msgH-1))
		return nil
	case key.Matches(msg, k.PageDown):
		s.scrollChat(-max(1, s.chatLayout().msgH-1))
		return nil
	case key.Matches(msg, k.HelpInChat):
		return s.openDialog(dlgHelp)
	}
	var cmd tea.Cmd
	s.input, cmd = s.input.Update(msg)
	return tea.Batch(cmd, s.typingChanged())
}

// acted clears an error shown with ShowError once the user does something
// new (sends, opens a chat, submits a dialog, answers an offer), so an
// error does not outlive its cause; an error the engine reports in answer
// to that action arrives after this and stays.
func (s *Screen) acted() {
	if s.shownErr != "" {
		s.shownErr = ""
		s.layoutInputs()
	}
}

// typingChanged tells the engine when the input goes from empty to not
// empty or back (only changes, so a keypress costs no message).
func (s *Screen) typingChanged() tea.Cmd {
	active := strings.TrimSpace(s.input.Value()) != ""
	if active == s.typing || s.openID == "" {
		return nil
	}
	s.typing = active
	return emit(TypingIntent{ContactID: s.openID, Active: active})
}

func (s *Screen) send() tea.Cmd {
	text := strings.TrimRight(s.input.Value(), " \t\n")
	text = strings.TrimLeft(text, "\n")
	if strings.TrimSpace(text) == "" || s.openID == "" {
		return nil
	}
	s.acted()
	s.input.Reset()
	delete(s.drafts, s.openID)
	if c := s.convs[s.openID]; c != nil {
		c.scroll, c.unseen = 0, 0 // sending jumps to the newest line
	}
	cmds := []tea.Cmd{emit(SendIntent{ContactID: s.openID, Text: text})}
	if s.typing {
		s.typing = false
		cmds = append(cmds, emit(TypingIntent{ContactID: s.openID, Active: false}))
	}
	return tea.Batch(cmds...)
}

// openChat shows id's conversation in the chat pane and moves the keyboard
// there; the draft of the chat being left is kept.
func (s *Screen) openChat(id string) tea.Cmd {
	var cmds []tea.Cmd
	if s.openID != id {
		if s.openID != "" {
			s.drafts[s.openID] = s.input.Value()
			if s.typing {
				cmds = append(cmds, emit(TypingIntent{ContactID: s.openID, Active: false}))
			}
		}
		s.typing = false
		s.openID = id
		s.input.Reset()
		s.input.SetValue(s.drafts[id])
		if s.input.Value() != "" {
			cmds = append(cmds, s.typingChanged())
		}
	}
	s.contacts.selectID(id)
	s.conv(id)
	cmds = append(cmds, s.setFocus(focusChat))
	return tea.Batch(cmds...)
}

func (s *Screen) setFocus(f focus) tea.Cmd {
	s.focus = f
	s.layoutInputs()
	if f == focusChat {
		return s.input.Focus()
	}
	s.input.Blur()
	return nil
}

// scrollChat moves the open chat by n lines (positive: towards older).
func (s *Screen) scrollChat(n int) {
	c := s.convs[s.openID]
	if c == nil {
		return
	}
	l := s.chatLayout()
	_, c.scroll = c.lines(l.msgH, max(0, c.scroll+n), &l.chatLayout)
	if c.scroll == 0 {
		c.unseen = 0
	}
}

// screenLayout is where everything goes at the current size and focus.
type screenLayout struct {
	chatLayout
	bodyH     int
	contactsW int // 0: hidden
	chatW     int // 0: hidden
	msgH      int
	inputH    int
}

func (s *Screen) chatLayout() screenLayout {
	L := screenLayout{}
	footer := 2
	if s.errorText() != "" {
		footer++
	}
	L.bodyH = max(0, s.h-1-footer)
	switch {
	case s.w >= wideMin:
		L.contactsW = min(max(s.w/4, contactsMinW), contactsMaxW)
		L.chatW = s.w - L.contactsW - 1
	case s.focus == focusChat && s.openID != "":
		L.chatW = s.w
	default:
		L.contactsW = s.w
	}
	L.inputH = 2
	if s.h >= tallInputMinH {
		L.inputH = 3
	}
	L.msgH = max(1, L.bodyH-3-L.inputH) // title, typing line, rule, input
	L.chatLayout = chatLayout{st: &s.st, loc: s.loc, width: max(1, L.chatW), self: s.self.Name}
	return L
}

// layoutInputs sizes the text fields for the current layout.
func (s *Screen) layoutInputs() {
	L := s.chatLayout()
	w := max(L.chatW, 10)
	if w != s.inputW || L.inputH != s.inputH {
		s.input.SetWidth(w)
		s.input.SetHeight(L.inputH)
		s.inputW, s.inputH = w, L.inputH
	}
	fw := max(10, min(s.w-2, 64)-4) - 1
	s.offers.name.Width = fw - len(s.offers.name.Prompt)
	for i := range s.dlg.fields {
		s.dlg.fields[i].Width = fw - len(s.dlg.fields[i].Prompt)
	}
}

// View draws the whole screen at the size given by SetSize.
func (s *Screen) View() string {
	if s.w < minW || s.h < minH {
		return block(s.st.r.Place(s.w, s.h, lipgloss.Center, lipgloss.Center, ansi.Truncate("Terminal too small", s.w, "")), s.w, s.h)
	}
	L := s.chatLayout()
	var b strings.Builder
	b.WriteString(s.headerView(s.w))
	b.WriteByte('\n')

	switch {
	case len(s.offers.queue) > 0:
		b.WriteString(block(s.modal(s.w, L.bodyH, s.offerView), s.w, L.bodyH))
	case s.dlg.kind != dlgNone:
		b.WriteString(block(s.modal(s.w, L.bodyH, s.dialogView), s.w, L.bodyH))
	default:
		b.WriteString(s.panesView(&L))
	}
	b.WriteByte('\n')
	if s.errorText() != "" {
		b.WriteString(s.errorView(s.w))
		b.WriteByte('\n')
	}
	b.WriteString(s.statusView(s.w))
	b.WriteByte('\n')
	s.help.ShowAll = false
	s.help.Width = s.w
	b.WriteString(fit(s.help.View(helpKeys{k: &s.keys, ctx: s.keyContext()}), s.w))
	return b.String()
}

// block makes s exactly h lines of exactly w columns: a modal taller than
// the space left is cut rather than pushing the status bar off screen.
func block(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, ln := range lines {
		lines[i] = fit(ln, w)
	}
	blank := strings.Repeat(" ", w)
	for len(lines) < h {
		lines = append(lines, blank)
	}
	return strings.Join(lines, "\n")
}

// keyContext is what has the keyboard, for help.
func (s *Screen) keyContext() keyCtx {
	switch {
	case len(s.offers.queue) > 0:
		if o, _ := s.offers.current(); !o.Known && !s.offers.naming {
			return ctxOfferUnknown
		}
		if s.offers.naming {
			return ctxField
		}
		return ctxOffer
	case s.dlg.kind == dlgRemove:
		return ctxConfirm
	case s.dlg.kind == dlgAdd:
		return ctxDialog
	case s.dlg.kind == dlgRename:
		return ctxField
	case s.focus == focusChat:
		return ctxChat
	}
	return ctxContacts
}

// panesView draws the contacts and chat panes side by side (or the one
// that has focus, when narrow), exactly L.bodyH lines.
func (s *Screen) panesView(L *screenLayout) string {
	// Every column is already exactly its width and L.bodyH lines, so the
	// columns are zipped line by line (cheaper than lipgloss.JoinHorizontal,
	// which measures every line again).
	var cols [][]string
	if L.contactsW > 0 {
		cols = append(cols, strings.Split(s.contactsView(L.contactsW, L.bodyH), "\n"))
	}
	if L.contactsW > 0 && L.chatW > 0 {
		cols = append(cols, nil) // the divider
	}
	if L.chatW > 0 {
		cols = append(cols, strings.Split(s.chatView(L), "\n"))
	}
	div := s.st.divider.Render("│")
	var b strings.Builder
	for i := range L.bodyH {
		if i > 0 {
			b.WriteByte('\n')
		}
		for _, col := range cols {
			if col == nil {
				b.WriteString(div)
			} else if i < len(col) {
				b.WriteString(col[i])
			}
		}
	}
	return b.String()
}

func (s *Screen) contactsView(w, h int) string {
	st := &s.st
	title := "Contacts"
	if n := len(s.contacts.items); n > 0 {
		title += " (" + itoa(n) + ")"
	}
	ts := st.paneTitleBl
	if s.focus == focusContacts {
		ts = st.paneTitle
	}
	lines := make([]string, 0, h)
	lines = append(lines, fit(ts.Render(title), w))
	typing := func(id string) bool {
		c := s.convs[id]
		return c != nil && c.typing
	}
	for _, ln := range s.contacts.view(w, h-1, s.focus == focusContacts, s.openID, typing, s.now(), s.loc, st) {
		lines = append(lines, fit(ln, w))
	}
	blank := strings.Repeat(" ", w)
	for len(lines) < h {
		lines = append(lines, blank)
	}
	return strings.Join(lines[:h], "\n")
}

// chatView draws the chat column: title, scrollback (only the visible
// lines), typing line, rule and input.
func (s *Screen) chatView(L *screenLayout) string {
	st := &s.st
	w := L.chatW
	lines := make([]string, 0, L.bodyH)
	ts := st.paneTitleBl
	if s.focus == focusChat {
		ts = st.paneTitle
	}
	blank := strings.Repeat(" ", w)
	if s.openID == "" {
		lines = append(lines, fit(ts.Render("Chat"), w))
		lines = append(lines, s.welcome(w, L.bodyH-1)...)
	} else {
		c, listed := s.contacts.find(s.openID)
		conv := s.conv(s.openID)
		name := c.Name
		if name == "" {
			name = shortID(s.openID)
		}
		words := presenceWords(c)
		if !listed {
			words = "not in your contacts"
		}
		title := ts.Render(name) + " " + st.presence[c.Presence].Render(words)
		if conv.scroll > 0 {
			title = ansi.Truncate(title, max(1, w-12), "…") + st.muted.Render("  ↑ history")
		}
		lines = append(lines, fit(title, w))

		msgs, _ := conv.lines(L.msgH, conv.scroll, &L.chatLayout)
		for i := len(msgs); i < L.msgH; i++ {
			lines = append(lines, blank)
		}
		for _, m := range msgs {
			lines = append(lines, fit(m, w))
		}
		var under string
		switch {
		case conv.unseen > 0:
			under = st.unread.Render("↓ new messages below (pgdn)")
		case conv.typing:
			under = st.typing.Render(name + " is typing…")
		}
		lines = append(lines, fit(under, w))
		lines = append(lines, st.divider.Render(strings.Repeat("─", w)))
		for _, ln := range strings.Split(s.input.View(), "\n") {
			lines = append(lines, fit(ln, w))
		}
	}
	for len(lines) < L.bodyH {
		lines = append(lines, blank)
	}
	return strings.Join(lines[:L.bodyH], "\n")
}

// welcome fills the chat pane when no chat is open.
func (s *Screen) welcome(w, h int) []string {
	st := &s.st
	var text string
	if len(s.contacts.items) == 0 {
		text = "Welcome to p2ptui: chat directly, peer to peer, end-to-end encrypted.\n\nPress a to add a contact with their ID. Press i to see yours and share it."
	} else {
		text = "Pick a contact and press enter to connect.\n\nPress i to see your ID and safety numbers, ? for all keys."
	}
	box := st.muted.Width(max(1, min(w-4, 50))).Render(text)
	placed := st.r.Place(w, max(1, h), lipgloss.Center, lipgloss.Center, box)
	return strings.Split(placed, "\n")
}
