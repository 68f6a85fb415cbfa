package ui

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textarea"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/x/ansi"

	"github.com/p2ptui/p2ptui/session"
)

// maxMessageBytes is what one message can hold: what a session carries
// (session.MaxMessageSize, 64 KiB). The input refuses more, saying so,
// and counts down what is left as the limit nears.
const maxMessageBytes = session.MaxMessageSize

// countdownFrom is how close to the limit the input starts saying how much
// is left: a few screens of text before the end.
const countdownFrom = 4 << 10

// maxNameField bounds what a name field takes in: far more than a name
// may be (store.MaxContactNameBytes), so a long paste is refused with a
// message on submit instead of being cut silently as it is typed.
const maxNameField = 256

// maxPathField bounds a path field: longer than any path a system takes.
const maxPathField = 4096

// maxIDField bounds the ID field: an ID pasted with spaces, line breaks or
// a few words around it.
const maxIDField = 1000

// newInput builds the message box: Enter sends (handled by the screen), so
// the textarea's newline moves to alt+enter and ctrl+j. The screen checks
// the size before inserting anything, so the textarea has no limit of its
// own that could cut text silently, and its ctrl+v (a read of the system
// clipboard that would bypass that check) is off: terminals paste with
// their own keys. The cursor does not blink: no timer redraws an idle
// screen, and goldens are stable.
func newInput(st *styles, k *keyMap) textarea.Model {
	ta := textarea.New()
	ta.Placeholder = "Write a message…"
	ta.ShowLineNumbers = false
	ta.Prompt = "> "
	ta.CharLimit = 0
	ta.MaxHeight = 0
	ta.KeyMap.InsertNewline = key.NewBinding(key.WithKeys(k.Newline.Keys()...))
	ta.KeyMap.Paste.SetEnabled(false)
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

// fieldText is what the textarea stores for runes (its own sanitiser:
// tabs become four spaces, CR a newline, other controls and invalid
// runes go), so the size check counts exactly what will be inserted.
func fieldText(runes []rune) string {
	var b strings.Builder
	for _, r := range runes {
		switch {
		case r == utf8.RuneError:
		case r == '\r' || r == '\n':
			b.WriteByte('\n')
		case r == '\t':
			b.WriteString("    ")
		case unicode.IsControl(r):
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ruleView is the line over the input; near the limit it says how much
// is left (characters while the text is ASCII, bytes otherwise: the limit
// is in bytes).
func (s *Screen) ruleView(w int) string {
	st := &s.st
	v := s.input.Value()
	left := maxMessageBytes - len(v)
	if left >= countdownFrom {
		return st.divider.Render(strings.Repeat("─", w))
	}
	unit := "characters"
	if !isASCII(v) {
		unit = "bytes"
	}
	label := fmt.Sprintf(" %s %s left ", thousands(left), unit)
	style := st.warn
	if left == 0 {
		label, style = " the message is full ("+kib(maxMessageBytes)+") ", st.errLine
	}
	if ansi.StringWidth(label)+2 > w {
		label = " " + thousands(left) + " left "
	}
	rest := max(0, w-ansi.StringWidth(label)-2)
	return fit(st.divider.Render(strings.Repeat("─", rest))+style.Render(label)+st.divider.Render("──"), w)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// thousands writes n with comma separators: 65,536.
func thousands(n int) string {
	s := itoa(n)
	if n < 0 {
		return "-" + thousands(-n)
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// kib says a byte count the way the README does: 64 KiB.
func kib(n int) string {
	if n%1024 == 0 {
		return itoa(n/1024) + " KiB"
	}
	return thousands(n) + " bytes"
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
	ti.KeyMap.Paste.SetEnabled(false)
	return ti
}
