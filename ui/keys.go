package ui

import (
	"github.com/charmbracelet/bubbles/key"
)

// keyMap is every key binding of the screen. Which ones apply depends on
// what has the keyboard (see keyCtx); help shows only those.
type keyMap struct {
	// anywhere
	Quit   key.Binding
	Switch key.Binding
	Help   key.Binding
	// HelpInChat is f1 alone: in the chat '?' is text.
	HelpInChat key.Binding

	// contacts pane
	Up     key.Binding
	Down   key.Binding
	Open   key.Binding
	Add    key.Binding
	Rename key.Binding
	Remove key.Binding
	Info   key.Binding
	QuitQ  key.Binding

	// chat pane and input
	Send     key.Binding
	Newline  key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Back     key.Binding

	// incoming offer prompt
	Accept       key.Binding
	AcceptAndAdd key.Binding
	Decline      key.Binding

	// dialogs
	Confirm   key.Binding
	NextField key.Binding
	PrevField key.Binding
	Cancel    key.Binding
	Yes       key.Binding
	No        key.Binding
}

func newKeyMap() keyMap {
	return keyMap{
		Quit:       key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Switch:     key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "contacts/chat")),
		Help:       key.NewBinding(key.WithKeys("?", "f1"), key.WithHelp("?/f1", "help")),
		HelpInChat: key.NewBinding(key.WithKeys("f1"), key.WithHelp("f1", "help")),

		Up:     key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:   key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Open:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open & connect")),
		Add:    key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "add contact")),
		Rename: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rename")),
		Remove: key.NewBinding(key.WithKeys("x", "delete"), key.WithHelp("x/del", "remove")),
		Info:   key.NewBinding(key.WithKeys("i"), key.WithHelp("i", "IDs & safety numbers")),
		QuitQ:  key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),

		Send:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send")),
		Newline:  key.NewBinding(key.WithKeys("alt+enter", "ctrl+j"), key.WithHelp("alt+enter", "new line")),
		PageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "scroll up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "scroll down")),
		Back:     key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "contacts")),

		Accept:       key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "accept")),
		AcceptAndAdd: key.NewBinding(key.WithKeys("A"), key.WithHelp("A", "accept & add")),
		Decline:      key.NewBinding(key.WithKeys("d"), key.WithHelp("d", "decline")),

		Confirm:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "ok")),
		NextField: key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab", "next field")),
		PrevField: key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab", "previous field")),
		Cancel:    key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		Yes:       key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:        key.NewBinding(key.WithKeys("n", "esc"), key.WithHelp("n/esc", "no")),
	}
}

// keyCtx says what has the keyboard; it picks the bindings help shows.
type keyCtx int

const (
	ctxContacts keyCtx = iota
	ctxChat
	ctxOffer
	ctxOfferUnknown
	ctxDialog // several fields
	ctxField  // one field
	ctxConfirm
)

// helpKeys adapts keyMap to help.KeyMap for one keyCtx.
type helpKeys struct {
	k   *keyMap
	ctx keyCtx
}

// ShortHelp is the one-line help at the bottom of the screen.
func (h helpKeys) ShortHelp() []key.Binding {
	k := h.k
	switch h.ctx {
	case ctxChat:
		return []key.Binding{k.Send, k.Newline, k.PageUp, k.Back, k.Switch, k.HelpInChat}
	case ctxOffer:
		return []key.Binding{k.Accept, k.Decline}
	case ctxOfferUnknown:
		return []key.Binding{k.Accept, k.AcceptAndAdd, k.Decline}
	case ctxDialog:
		return []key.Binding{k.Confirm, k.NextField, k.Cancel}
	case ctxField:
		return []key.Binding{k.Confirm, k.Cancel}
	case ctxConfirm:
		return []key.Binding{k.Yes, k.No}
	}
	return []key.Binding{k.Open, k.Add, k.Switch, k.Help, k.QuitQ}
}

// FullHelp is the '?' overlay: every binding that applies, in columns.
func (h helpKeys) FullHelp() [][]key.Binding {
	k := h.k
	return [][]key.Binding{
		{k.Up, k.Down, k.Open, k.Add, k.Rename, k.Remove, k.Info, k.QuitQ},
		{k.Send, k.Newline, k.PageUp, k.PageDown, k.Back, k.Switch, k.Help, k.Quit},
	}
}
