package ui

import (
	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	"github.com/charmbracelet/bubbles/textinput"
)

// maxMessageRunes bounds what one message can hold; the textarea refuses
// more, so the user sees the limit while typing rather than on send.
const maxMessageRunes = 4000

// newInput builds the message box: Enter sends (handled by the screen), so
// the textarea's newline moves to alt+enter and ctrl+j. The cursor does
// not blink: no timer redraws an idle screen, and goldens are stable.
func newInput(st *styles, k *keyMap) textarea.Model {
	ta := textarea.New()
	ta.Placeholder = "Write a message…"
	ta.ShowLineNumbers = false
	ta.Prompt = "> "
	ta.CharLimit = maxMessageRunes
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithKeys(k.Newline.Keys()...))
	ta.Cursor.SetMode(cursor.CursorStatic)
	r := st.r
	ta.Cursor.Style = r.NewStyle().Reverse(true)
	ta.Cursor.TextStyle = r.NewStyle()
	ta.FocusedStyle = textarea.Style{
		Base:             r.NewStyle(),
		CursorLine:       r.NewStyle(),
		CursorLineNumber: st.muted,
		EndOfBuffer:      st.muted,
		LineNumber:       st.muted,
		Placeholder:      st.muted,
		Prompt:           st.paneTitle,
		Text:             r.NewStyle(),
	}
	ta.BlurredStyle = ta.FocusedStyle
	ta.BlurredStyle.Prompt = st.muted
	ta.BlurredStyle.Text = st.muted
	ta.Blur()
	return ta
}

// newField builds a one-line text field for dialogs.
func newField(st *styles, prompt, placeholder string, limit int) textinput.Model {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.Placeholder = placeholder
	ti.CharLimit = limit
	ti.Cursor.SetMode(cursor.CursorStatic)
	ti.Cursor.Style = st.r.NewStyle().Reverse(true)
	ti.Cursor.TextStyle = st.r.NewStyle()
	ti.PromptStyle = st.inputLabel
	ti.TextStyle = st.r.NewStyle()
	ti.PlaceholderStyle = st.muted
	ti.CompletionStyle = st.muted
	return ti
}
