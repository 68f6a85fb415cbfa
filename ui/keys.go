package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// keyMap is every key binding of the screen. Which ones apply depends on
// what has the keyboard (keyCtx); the footer and the help show those. Each
// key has one word, the same wherever it does the same thing.
//
// Answering a chat request is never a plain letter typed in the input:
// the request waits as a notice until the person opens it with ctrl+r (a
// key no text produces), and only then do its letters answer it.
type keyMap struct {
	// anywhere (with no dialog open)
	Quit      key.Binding // the real ctrl+c only; see keyMatch
	Switch    key.Binding
	Answer    key.Binding
	Details   key.Binding
	Stop      key.Binding
	Help      key.Binding
	Transfers key.Binding

	// contacts pane
	Up         key.Binding
	Down       key.Binding
	Open       key.Binding
	Add        key.Binding
	Rename     key.Binding
	Remove     key.Binding
	Block      key.Binding
	Blocked    key.Binding
	Info       key.Binding
	Join       key.Binding
	AskEach    key.Binding
	Copy       key.Binding
	DetailsS   key.Binding
	TransfersT key.Binding
	HelpQ      key.Binding
	QuitQ      key.Binding
	WheelList  key.Binding // help text only: the mouse wheel

	// chat pane and input
	Send     key.Binding
	Newline  key.Binding
	AltEnter key.Binding // help text only: the other newline key
	PageUp   key.Binding
	PageDown key.Binding
	Wheel    key.Binding // help text only: the mouse wheel
	Back     key.Binding
	SendFile key.Binding
	SendCmd  key.Binding // help text only: /send PATH in the input

	// an opened chat request
	Accept       key.Binding
	AcceptAndAdd key.Binding
	Decline      key.Binding
	BlockCaller  key.Binding

	// an opened file offer, the transfers list, path fields
	SaveIn     key.Binding
	CancelFile key.Binding
	Complete   key.Binding

	// dialogs
	Confirm   key.Binding
	NextField key.Binding
	PrevField key.Binding
	Yes       key.Binding
	No        key.Binding
	Unblock   key.Binding
	ScrollUp  key.Binding
	ScrollDn  key.Binding
}

func newKeyMap() keyMap {
	b := func(keys []string, k, word string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, word))
	}
	ks := func(k ...string) []string { return k }
	return keyMap{
		Quit:      b(ks("ctrl+c"), "ctrl+c", "quit"),
		Switch:    b(ks("tab"), "tab", "switch"),
		Answer:    b(ks("ctrl+r"), "ctrl+r", "answer"),
		Details:   b(ks("ctrl+s"), "ctrl+s", "status"),
		Stop:      b(ks("ctrl+x"), "ctrl+x", "stop"),
		Help:      b(ks("f1"), "f1", "help"),
		Transfers: b(ks("ctrl+l"), "ctrl+l", "transfers"),

		Up:         b(ks("up", "k"), "↑/k", "up"),
		Down:       b(ks("down", "j"), "↓/j", "down"),
		Open:       b(ks("enter"), "enter", "open"),
		Add:        b(ks("a"), "a", "add"),
		Rename:     b(ks("r"), "r", "rename"),
		Remove:     b(ks("x", "delete"), "x/del", "remove"),
		Block:      b(ks("b"), "b", "block"),
		Blocked:    b(ks("B"), "B", "blocked"),
		Info:       b(ks("i"), "i", "info"),
		Join:       b(ks("g"), "g", "group"),
		AskEach:    b(ks("e"), "e", "ask each time"),
		Copy:       b(ks("c"), "c", "copy"),
		DetailsS:   b(ks("s"), "s", "status"),
		TransfersT: b(ks("t"), "t", "transfers"),
		HelpQ:      b(ks("?", "f1"), "?/f1", "help"),
		QuitQ:      b(ks("q"), "q", "quit"),
		WheelList:  key.NewBinding(key.WithHelp("wheel", "move")),

		Send:     b(ks("enter"), "enter", "send"),
		Newline:  b(ks("alt+enter", "ctrl+j"), "ctrl+j", "newline"),
		AltEnter: key.NewBinding(key.WithHelp("alt+enter", "newline")),
		PageUp:   b(ks("pgup"), "pgup", "scroll"),
		PageDown: b(ks("pgdown"), "pgdn", "scroll"),
		Wheel:    key.NewBinding(key.WithHelp("wheel", "scroll")),
		Back:     b(ks("esc"), "esc", "back"),
		SendFile: b(ks("ctrl+o"), "ctrl+o", "file"),
		SendCmd:  key.NewBinding(key.WithHelp("/send PATH", "send a file")),

		Accept:       b(ks("a"), "a", "accept"),
		AcceptAndAdd: b(ks("A"), "A", "add"),
		Decline:      b(ks("d"), "d", "decline"),
		BlockCaller:  b(ks("b"), "b", "block"),

		SaveIn:     b(ks("s"), "s", "folder"),
		CancelFile: b(ks("x"), "x", "cancel"),
		Complete:   b(ks("tab"), "tab", "complete"),

		Confirm:   b(ks("enter"), "enter", "ok"),
		NextField: b(ks("tab", "down"), "tab", "next"),
		PrevField: b(ks("shift+tab", "up"), "shift+tab", "previous"),
		Yes:       b(ks("y"), "y", "yes"),
		No:        b(ks("n", "esc"), "n", "no"),
		Unblock:   b(ks("u"), "u", "unblock"),
		ScrollUp:  b(ks("up", "k", "pgup"), "↑/pgup", "scroll"),
		ScrollDn:  b(ks("down", "j", "pgdown"), "↓/pgdn", "scroll"),
	}
}

// keyMatch is key.Matches for keys, not for strings: Bubble Tea reports a
// run of printable characters that arrive together (an unbracketed paste,
// a slow link, tmux send-keys -l) as one KeyRunes message whose String()
// is the text itself, so the typed words "ctrl+c", "up" or "esc" would
// otherwise match the bindings of those names. Only a single rune can
// match a one-letter binding; a paste never matches anything.
func keyMatch(msg tea.KeyMsg, b key.Binding) bool {
	if msg.Paste || (msg.Type == tea.KeyRunes && len(msg.Runes) != 1) {
		return false
	}
	return key.Matches(msg, b)
}

// isText reports keys that are text when a text field has the keyboard:
// printable runes (one or many, typed or pasted) and the space bar,
// without alt.
func isText(msg tea.KeyMsg) bool {
	return !msg.Alt && (msg.Type == tea.KeyRunes || msg.Type == tea.KeySpace) && len(msg.Runes) > 0
}

// asText is msg as a field inserts it whatever its runes spell: marked as
// a paste, it matches none of the field's own bindings (a word "up" no
// longer moves the cursor), and the field inserts its runes.
func asText(msg tea.KeyMsg) tea.KeyMsg {
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: msg.Runes, Paste: true}
}

// keyCtx says what has the keyboard; it picks the bindings the footer shows.
type keyCtx int

const (
	ctxContacts keyCtx = iota
	ctxChat
	ctxRequest
	ctxRequestUnknown
	ctxRequestName
	ctxDialog  // several fields
	ctxField   // one field
	ctxConfirm // y/n
	ctxRemove  // y/b/n
	ctxHelp
	ctxInfo
	ctxDetails
	ctxBlocked
	ctxFileOffer
	ctxFileSave
	ctxSendFile
	ctxTransfers
)

// footerKeys are the footer's bindings for ctx, most important first: the
// footer shows as many whole ones as fit, never a cut one.
func (k *keyMap) footerKeys(ctx keyCtx) []key.Binding {
	switch ctx {
	case ctxChat:
		return []key.Binding{k.Send, k.Newline, k.Back, k.SendFile, k.Help, k.PageUp, k.Switch, k.Details}
	case ctxRequest:
		return []key.Binding{k.Accept, k.Decline, k.BlockCaller, k.Back}
	case ctxRequestUnknown:
		return []key.Binding{k.Accept, k.AcceptAndAdd, k.Decline, k.BlockCaller, k.Back}
	case ctxRequestName:
		return []key.Binding{withWord(k.Confirm, "accept"), k.Back}
	case ctxDialog:
		return []key.Binding{k.Confirm, k.NextField, k.Back}
	case ctxField:
		return []key.Binding{k.Confirm, k.Back}
	case ctxConfirm:
		return []key.Binding{k.Yes, k.No}
	case ctxRemove:
		return []key.Binding{k.Yes, k.Block, k.No}
	case ctxHelp, ctxDetails:
		return []key.Binding{k.ScrollUp, k.Back}
	case ctxInfo:
		return []key.Binding{k.Copy, k.ScrollUp, k.Back}
	case ctxBlocked:
		return []key.Binding{k.Up, k.Down, k.Unblock, k.Back}
	case ctxFileOffer:
		return []key.Binding{k.Accept, k.SaveIn, k.Decline, k.Back}
	case ctxFileSave:
		return []key.Binding{withWord(k.Confirm, "accept"), k.Complete, k.Back}
	case ctxSendFile:
		return []key.Binding{withWord(k.Confirm, "send"), k.Complete, k.Back}
	case ctxTransfers:
		return []key.Binding{k.CancelFile, k.Up, k.Down, k.Back}
	}
	return []key.Binding{k.Open, k.Add, k.Info, k.HelpQ, k.QuitQ, k.Switch, k.Copy, k.DetailsS, k.TransfersT}
}

// withWord is b described by another word (enter is "ok" in a dialog and
// "accept" under a request's name field).
func withWord(b key.Binding, word string) key.Binding {
	b.SetHelp(b.Help().Key, word)
	return b
}

// helpSection is one titled group of the help overlay.
type helpSection struct {
	title string
	keys  []key.Binding
}

// helpSections is the whole help, grouped by what has the keyboard; every
// binding of the screen is in it.
func (k *keyMap) helpSections() []helpSection {
	return []helpSection{
		{"Anywhere", []key.Binding{k.Quit, k.Switch, k.Answer, k.Details, k.Stop, k.Help, k.Transfers}},
		{"Contacts", []key.Binding{k.Up, k.Down, k.WheelList, k.Open, k.Add, k.Rename, k.Remove, k.Block, k.Blocked, k.AskEach, k.Info, k.Join, k.Copy, k.DetailsS, k.TransfersT, k.HelpQ, k.QuitQ}},
		{"Chat", []key.Binding{k.Send, k.Newline, k.AltEnter, k.PageUp, k.PageDown, k.Wheel, k.Back, withWord(k.SendFile, "send a file"), k.SendCmd}},
		{"A chat request (ctrl+r)", []key.Binding{k.Accept, withWord(k.AcceptAndAdd, "accept and add"), k.Decline, k.BlockCaller, k.Back}},
		{"A file offer (ctrl+r)", []key.Binding{withWord(k.Accept, "accept into Downloads"), withWord(k.SaveIn, "accept into another folder"), k.Decline, k.Back}},
		{"File transfers (ctrl+l)", []key.Binding{k.CancelFile, k.Complete}},
		{"Dialogs", []key.Binding{k.Confirm, k.NextField, k.PrevField, k.Yes, k.No, k.Unblock, k.ScrollUp, k.ScrollDn, k.Back}},
	}
}
