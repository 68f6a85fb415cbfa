package ui

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/progress"
	"github.com/charmbracelet/bubbles/textarea"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
)

// Options configure a Screen. The zero value is fine for production.
type Options struct {
	// Now is the clock used for relative times ("5m"); nil means
	// time.Now. Tests pass a fixed clock.
	Now func() time.Time
	// Location is the zone times are shown in; nil means time.Local.
	Location *time.Location
	// Renderer draws the styles; nil means lipgloss.DefaultRenderer().
	// Tests pass one with a fixed (ASCII) colour profile.
	Renderer *lipgloss.Renderer
	// Clipboard puts text on the clipboard; it runs in a tea.Cmd, never
	// in Update. nil: an OSC 52 sequence to standard output, which the
	// terminal (or tmux) turns into a clipboard write where it allows it.
	Clipboard func(text string) error
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

// focus is which pane has the keyboard when no request or dialog is open.
type focus int

const (
	focusContacts focus = iota
	focusChat
)

// Screen is the visual layer: contacts pane, chat pane, input, status bar,
// request notices, help and dialogs. The engine (root model) pushes data in
// with the setters, routes every tea.Msg it does not own to Update, and
// receives what the user asked for as intent messages (intents.go) from the
// returned commands. Screen does no I/O and never blocks; the clipboard
// write it asks for runs in the command it returns.
type Screen struct {
	st   styles
	keys keyMap
	now  func() time.Time
	loc  *time.Location
	clip func(string) error

	w, h int

	self     Self
	contacts contactList
	convs    map[string]*conversation
	openID   string // contact whose chat is open ("" none)
	focus    focus

	input  textarea.Model
	inputW int
	inputH int
	drafts map[string]string
	typing bool // we told the engine the user is typing to openID

	reqs       requests
	files      fileOffers     // incoming file offers (files.go)
	xfers      []TransferView // unfinished transfers, oldest first
	downloads  string         // where accepted files go by default
	bar        progress.Model // draws the transfers' progress
	dlg        dialog
	status     StatusView
	details    DetailsView
	detailsSet bool
	blocked    []BlockedView
	shownErr   string
	note       string // a passing remark ("copied"); cleared like an error
}

// NewScreen returns an empty screen.
func NewScreen(opt Options) *Screen {
	s := &Screen{
		st:     newStyles(opt.Renderer),
		keys:   newKeyMap(),
		now:    opt.Now,
		loc:    opt.Location,
		clip:   opt.Clipboard,
		convs:  make(map[string]*conversation),
		drafts: make(map[string]string),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.loc == nil {
		s.loc = time.Local
	}
	if s.clip == nil {
		s.clip = osc52Copy
	}
	s.input = newInput(&s.st, &s.keys)
	s.reqs.name = newField(&s.st, "Name: ", "what you call them", maxNameField)
	s.files.dir = newField(&s.st, "Folder: ", "where to save it", maxPathField)
	s.bar = newBar(&s.st)
	return s
}

// osc52Copy asks the terminal to put text on the clipboard (OSC 52; inside
// tmux or screen termenv wraps it so it reaches the outer terminal).
func osc52Copy(text string) error {
	termenv.NewOutput(os.Stdout).Copy(text)
	return nil
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
		// An ID accepted and added from a request has just been listed:
		// highlight it, as its chat is the one open.
		s.contacts.selectID(s.openID)
	}
	if s.openID != "" && wasListed {
		// The open chat closes when its contact is removed (not when it
		// was never listed: a request accepted from an unknown ID).
		if _, ok := s.contacts.find(s.openID); !ok {
			s.openID = ""
			s.focus = focusContacts
			s.input.Blur()
			s.typing = false
			s.layoutInputs()
		}
	}
}

// SetBlocked replaces the list of blocked IDs (the "blocked" dialog, B).
func (s *Screen) SetBlocked(bs []BlockedView) {
	s.blocked = make([]BlockedView, len(bs))
	for i, b := range bs {
		b.ID = sanitizeLine(b.ID)
		b.Name = sanitizeLine(b.Name)
		s.blocked[i] = b
	}
	if s.dlg.kind == dlgBlocked {
		s.dlg.cursor = min(s.dlg.cursor, max(0, len(s.blocked)-1))
	}
}

// SetDetails sets what the details view (ctrl+s) shows beyond the status
// line.
func (s *Screen) SetDetails(d DetailsView) {
	d.Backend = sanitizeLine(d.Backend)
	d.BackendHealth = sanitizeLine(d.BackendHealth)
	d.NAT = sanitizeLine(d.NAT)
	stun := make([]STUNDetails, len(d.STUN))
	for i, x := range d.STUN {
		stun[i] = STUNDetails{Server: sanitizeLine(x.Server), Addr: sanitizeLine(x.Addr), Answer: sanitizeLine(x.Answer)}
	}
	d.STUN = stun
	if d.Chat != nil {
		c := *d.Chat
		c.Peer, c.State, c.Path = sanitizeLine(c.Peer), sanitizeLine(c.State), sanitizeLine(c.Path)
		c.Local, c.Remote = sanitizeLine(c.Local), sanitizeLine(c.Remote)
		d.Chat = &c
	}
	s.details, s.detailsSet = d, true
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

// ShowOffer queues an incoming chat request. It shows as a notice above
// the status line and never takes the keyboard: the person opens it with
// ctrl+r when they choose. A second ShowOffer for the same session updates
// it in place.
func (s *Screen) ShowOffer(o OfferView) {
	o.Name = sanitizeLine(o.Name)
	o.ContactID = sanitizeLine(o.ContactID)
	o.Fingerprint = sanitizeLine(o.Fingerprint)
	s.reqs.add(o)
	s.layoutInputs()
}

// HideOffer removes the request (from, sessionID) (answered elsewhere,
// cancelled or expired). If it was open, it closes and says why.
func (s *Screen) HideOffer(from, sessionID string) {
	k := reqKey{from: from, sid: sessionID}
	if o, open := s.reqs.opened(); open && keyOf(o) == k {
		s.note = "The request from " + requestFrom(o) + " was withdrawn or expired."
	}
	s.reqs.remove(k)
	s.layoutInputs()
}

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

// ShowNote shows a passing remark (plain words) above the status bar,
// cleared like an error by the next action.
func (s *Screen) ShowNote(msg string) {
	s.note = sanitizeLine(msg)
	s.layoutInputs()
}

// ShowError shows msg (plain words) above the status bar until the next
// ShowError("") or a SetStatus with a different Err.
func (s *Screen) ShowError(msg string) {
	s.shownErr = sanitizeLine(msg)
	if s.shownErr != "" {
		s.note = ""
	}
	s.layoutInputs()
}

// Focused returns the contact whose chat is open ("" if none).
func (s *Screen) Focused() string { return s.openID }

// copiedMsg reports the clipboard write of my ID.
type copiedMsg struct{ err error }

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
		cmd := s.handleKey(msg)
		s.layoutInputs()
		return s, cmd
	case completionMsg:
		s.applyCompletion(msg)
		return s, nil
	case copiedMsg:
		if msg.err != nil {
			s.ShowError("Could not copy your ID: " + msg.err.Error())
		} else {
			s.note = "Your ID was sent to the clipboard (OSC 52: where the terminal allows it). It is also in the top line and under i."
			s.layoutInputs()
		}
		return s, nil
	}
	// Anything else (cursor messages) belongs to whichever field has the
	// keyboard.
	var cmd tea.Cmd
	switch {
	case s.reqs.naming:
		s.reqs.name, cmd = s.reqs.name.Update(msg)
	case s.files.saving:
		s.files.dir, cmd = s.files.dir.Update(msg)
	case s.dlg.kind != dlgNone && len(s.dlg.fields) > 0:
		s.dlg.fields[s.dlg.focus], cmd = s.dlg.fields[s.dlg.focus].Update(msg)
	case s.focus == focusChat:
		s.input, cmd = s.input.Update(msg)
	}
	return s, cmd
}

// handleMouse: the wheel scrolls the pane under the pointer (the chat
// wherever else); a click picks a contact or focuses the chat. An open
// request or dialog takes no mouse input.
func (s *Screen) handleMouse(msg tea.MouseMsg) tea.Cmd {
	if msg.Action != tea.MouseActionPress || s.reqs.isOpen() || s.files.isOpen() || s.dlg.kind != dlgNone {
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

// handleKey routes a key by what has the keyboard: an opened request,
// then a dialog, then the keys that work anywhere, then the focused pane.
// Only the real ctrl+c quits: the typed word "ctrl+c" is text.
func (s *Screen) handleKey(msg tea.KeyMsg) tea.Cmd {
	k := &s.keys
	if msg.Type == tea.KeyCtrlC && !msg.Paste {
		return emit(QuitIntent{})
	}
	if s.reqs.isOpen() {
		return s.handleRequestKey(msg)
	}
	if s.files.isOpen() {
		return s.handleFileOfferKey(msg)
	}
	if keyMatch(msg, k.Answer) {
		return s.openRequest()
	}
	if s.dlg.kind != dlgNone {
		return s.handleDialogKey(msg)
	}
	switch {
	case keyMatch(msg, k.Details):
		return s.openDialog(dlgDetails)
	case keyMatch(msg, k.Help):
		return s.openDialog(dlgHelp)
	case keyMatch(msg, k.Stop):
		// Stop connecting to (or waiting for) the open chat's contact, or
		// the highlighted one; a live session stays.
		id := s.openID
		if s.focus != focusChat || id == "" {
			if c, ok := s.contacts.selected(); ok {
				id = c.ID
			}
		}
		if id == "" {
			return nil
		}
		s.acted()
		return emit(CancelIntent{ContactID: id})
	case keyMatch(msg, k.Transfers):
		return s.openDialog(dlgTransfers)
	}
	if s.focus == focusChat {
		return s.handleChatKey(msg)
	}
	return s.handleContactsKey(msg)
}

func (s *Screen) handleContactsKey(msg tea.KeyMsg) tea.Cmd {
	k := &s.keys
	switch {
	case keyMatch(msg, k.Up):
		s.contacts.move(-1)
	case keyMatch(msg, k.Down):
		s.contacts.move(1)
	case keyMatch(msg, k.Open):
		c, ok := s.contacts.selected()
		if !ok {
			return nil
		}
		s.acted()
		return tea.Batch(s.openChat(c.ID), emit(OpenChatIntent{ContactID: c.ID}))
	case keyMatch(msg, k.Back):
		s.acted() // esc dismisses an error
	case keyMatch(msg, k.Switch):
		if s.openID != "" {
			return s.setFocus(focusChat)
		}
	case keyMatch(msg, k.Add):
		return s.openDialog(dlgAdd)
	case keyMatch(msg, k.Rename):
		return s.openDialog(dlgRename)
	case keyMatch(msg, k.Remove):
		return s.openDialog(dlgRemove)
	case keyMatch(msg, k.Block):
		return s.openDialog(dlgBlock)
	case keyMatch(msg, k.Blocked):
		return s.openDialog(dlgBlocked)
	case keyMatch(msg, k.Join):
		return s.openDialog(dlgJoin)
	case keyMatch(msg, k.AskEach):
		// Toggle "ask me each time" for the highlighted contact.
		c, ok := s.contacts.selected()
		if !ok || !c.Contact {
			return nil
		}
		s.acted()
		if c.AskEachTime {
			s.note = sanitizeLine(c.Name) + " will be connected by itself whenever you are both online."
		} else {
			s.note = sanitizeLine(c.Name) + "'s chat requests will be asked about each time; nothing connects by itself."
		}
		return emit(AskEachTimeIntent{ContactID: c.ID, Ask: !c.AskEachTime})
	case keyMatch(msg, k.Info):
		return s.openDialog(dlgInfo)
	case keyMatch(msg, k.Copy):
		return s.copyID()
	case keyMatch(msg, k.DetailsS):
		return s.openDialog(dlgDetails)
	case keyMatch(msg, k.TransfersT):
		return s.openDialog(dlgTransfers)
	case keyMatch(msg, k.HelpQ):
		return s.openDialog(dlgHelp)
	case keyMatch(msg, k.QuitQ):
		return emit(QuitIntent{})
	}
	return nil
}

func (s *Screen) handleChatKey(msg tea.KeyMsg) tea.Cmd {
	k := &s.keys
	if isText(msg) {
		return tea.Batch(s.typeText(msg.Runes), s.typingChanged())
	}
	switch {
	case keyMatch(msg, k.Send):
		return s.send()
	case keyMatch(msg, k.SendFile):
		return s.openSendFile()
	case keyMatch(msg, k.Switch) && strings.HasPrefix(s.input.Value(), sendCommand+" "):
		// Tab completes the path of "/send PATH".
		return completePathCmd(targetInput, strings.TrimPrefix(s.input.Value(), sendCommand+" "), false)
	case keyMatch(msg, k.Switch), keyMatch(msg, k.Back):
		return s.setFocus(focusContacts)
	case keyMatch(msg, k.PageUp):
		s.scrollChat(max(1, s.chatLayout().msgH-1))
		return nil
	case keyMatch(msg, k.PageDown):
		s.scrollChat(-max(1, s.chatLayout().msgH-1))
		return nil
	case keyMatch(msg, k.Newline):
		if !s.fits(1) {
			return nil
		}
	case msg.Paste:
		return nil // a paste with no runes
	}
	var cmd tea.Cmd
	s.input, cmd = s.input.Update(msg)
	return tea.Batch(cmd, s.typingChanged())
}

// typeText inserts runes into the message at the cursor, as text whatever
// they spell, unless the message would outgrow what a session carries:
// then nothing is inserted and the person is told, rather than cutting it.
func (s *Screen) typeText(runes []rune) tea.Cmd {
	if !s.fits(len(fieldText(runes))) {
		return nil
	}
	var cmd tea.Cmd
	s.input, cmd = s.input.Update(asText(tea.KeyMsg{Type: tea.KeyRunes, Runes: runes}))
	return cmd
}

// fits reports whether n more bytes fit in the message; if not it says so.
func (s *Screen) fits(n int) bool {
	have := len(s.input.Value())
	if have+n <= maxMessageBytes {
		return true
	}
	s.ShowError("That does not fit: a message holds at most " + kib(maxMessageBytes) + " and " +
		plural(have+n-maxMessageBytes, "byte", "bytes") + " were left over, so nothing was inserted. Send this part first.")
	return false
}

// acted clears an error shown with ShowError once the user does something
// new (sends, opens a chat, submits a dialog, answers a request), so an
// error does not outlive its cause; an error the engine reports in answer
// to that action arrives after this and stays.
func (s *Screen) acted() {
	if s.shownErr != "" || s.note != "" {
		s.shownErr, s.note = "", ""
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
	path, isFile := fileCommand(text)
	if isFile && path == "" {
		// "/send" alone: ask for the file.
		s.input.Reset()
		return tea.Batch(s.openSendFile(), s.typingChanged())
	}
	if strings.HasPrefix(text, "/"+sendCommand) {
		text = text[1:] // "//send" is the text "/send"
	}
	s.input.Reset()
	delete(s.drafts, s.openID)
	if c := s.convs[s.openID]; c != nil {
		c.scroll, c.unseen = 0, 0 // sending jumps to the newest line
	}
	intent := tea.Msg(SendIntent{ContactID: s.openID, Text: text})
	if isFile {
		intent = SendFileIntent{ContactID: s.openID, Path: path}
	}
	cmds := []tea.Cmd{emit(intent)}
	if s.typing {
		s.typing = false
		cmds = append(cmds, emit(TypingIntent{ContactID: s.openID, Active: false}))
	}
	return tea.Batch(cmds...)
}

// copyID puts my ID on the clipboard from a command (the write is I/O).
func (s *Screen) copyID() tea.Cmd {
	id, clip := s.self.ID, s.clip
	if id == "" {
		s.ShowError("Your ID is not ready yet.")
		return nil
	}
	return func() tea.Msg { return copiedMsg{err: clip(id)} }
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
	xferH     int // the open chat's transfer lines
}

// footerLines counts the lines under the panes: status and keys, and the
// error or remark line and the request notice when there are.
func (s *Screen) footerLines() int {
	n := 2
	if s.lineText() != "" {
		n++
	}
	if len(s.reqs.queue) > 0 || len(s.files.queue) > 0 {
		n++
	}
	return n
}

func (s *Screen) chatLayout() screenLayout {
	L := screenLayout{}
	L.bodyH = max(0, s.h-1-s.footerLines())
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
	L.xferH = s.transferLineCount()
	L.msgH = max(1, L.bodyH-3-L.inputH-L.xferH) // title, transfers, typing line, rule, input
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
	s.reqs.name.Width = fw - len(s.reqs.name.Prompt)
	s.files.dir.Width = fw - len(s.files.dir.Prompt)
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
	case s.reqs.isOpen():
		b.WriteString(block(s.modal(s.w, L.bodyH, s.requestView), s.w, L.bodyH))
	case s.files.isOpen():
		b.WriteString(block(s.modal(s.w, L.bodyH, s.fileOfferView), s.w, L.bodyH))
	case s.dlg.kind != dlgNone:
		b.WriteString(block(s.modal(s.w, L.bodyH, s.dialogView), s.w, L.bodyH))
	default:
		b.WriteString(s.panesView(&L))
	}
	b.WriteByte('\n')
	switch {
	case len(s.reqs.queue) > 0:
		b.WriteString(s.requestLine(s.w))
		b.WriteByte('\n')
	case len(s.files.queue) > 0:
		b.WriteString(s.fileOfferLine(s.w))
		b.WriteByte('\n')
	}
	if s.lineText() != "" {
		b.WriteString(s.lineView(s.w))
		b.WriteByte('\n')
	}
	b.WriteString(s.statusView(s.w))
	b.WriteByte('\n')
	b.WriteString(s.footerView(s.w))
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

// keyContext is what has the keyboard, for the footer.
func (s *Screen) keyContext() keyCtx {
	if o, open := s.reqs.opened(); open {
		switch {
		case s.reqs.naming:
			return ctxRequestName
		case !o.Known:
			return ctxRequestUnknown
		}
		return ctxRequest
	}
	if s.files.isOpen() {
		if s.files.saving {
			return ctxFileSave
		}
		return ctxFileOffer
	}
	switch s.dlg.kind {
	case dlgRemove:
		return ctxRemove
	case dlgBlock:
		return ctxConfirm
	case dlgAdd:
		return ctxDialog
	case dlgRename:
		return ctxField
	case dlgHelp:
		return ctxHelp
	case dlgInfo:
		return ctxInfo
	case dlgDetails:
		return ctxDetails
	case dlgBlocked:
		return ctxBlocked
	case dlgSendFile:
		return ctxSendFile
	case dlgTransfers:
		return ctxTransfers
	}
	if s.focus == focusChat {
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
// lines), typing line, rule (with what is left of the message near the
// limit) and input.
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
		lines = append(lines, s.transferLines(w)...)
		var under string
		switch {
		case conv.unseen > 0:
			under = st.unread.Render("↓ new messages below (pgdn)")
		case conv.typing:
			under = st.typing.Render(name + " is typing…")
		}
		lines = append(lines, fit(under, w))
		lines = append(lines, s.ruleView(w))
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
		text = "Welcome to p2ptui: chat directly, peer to peer, end-to-end encrypted.\n\nPress a to add a contact with their ID. Press i to see yours and share it, c to copy it."
	} else {
		text = "Pick a contact and press enter to connect.\n\nPress i to see your ID and safety numbers, ? for all keys."
	}
	box := st.muted.Width(max(1, min(w-4, 50))).Render(text)
	placed := st.r.Place(w, max(1, h), lipgloss.Center, lipgloss.Center, box)
	return strings.Split(placed, "\n")
}

// footerView is the key line: as many of the context's bindings as fit
// whole, most important first.
func (s *Screen) footerView(w int) string {
	return fit(s.keyLine(s.keys.footerKeys(s.keyContext()), w), w)
}

// keyLine joins "key word" pairs with " · ", skipping any that would not
// fit (so none is ever cut).
func (s *Screen) keyLine(bs []key.Binding, w int) string {
	st := &s.st
	sep := st.muted.Render(" · ")
	var b strings.Builder
	used := 0
	for _, kb := range bs {
		h := kb.Help()
		n := ansi.StringWidth(h.Key) + 1 + ansi.StringWidth(h.Desc)
		if used > 0 {
			n += 3
		}
		if used+n > w {
			continue
		}
		if used > 0 {
			b.WriteString(sep)
		}
		b.WriteString(st.keyHint.Render(h.Key) + " " + st.muted.Render(h.Desc))
		used += n
	}
	return b.String()
}
