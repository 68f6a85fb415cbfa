package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/signal"
)

// maxJoinCodeRunes bounds the join code field: a project ID (30) and an
// API key (39) with the frame, and room for an emulator's longer keys.
const maxJoinCodeRunes = 200

// joinDialog is the settings box in which a group member pastes the join
// code the group's admin shared. A mistyped or cut code is caught here,
// as it is typed; a code that passes goes to the engine as JoinIntent.
type joinDialog struct {
	field  textinput.Model
	joined string // the project of the group joined now; "" for none
	err    string
}

// newJoinDialog opens the box; joined names the current group, if any.
func newJoinDialog(st *styles, joined string) (joinDialog, tea.Cmd) {
	d := joinDialog{field: newField(st, "Code: ", "p2ptui1.…", maxJoinCodeRunes), joined: joined}
	return d, d.field.Focus()
}

// update handles a key; closed reports that the box is to be closed
// (cancelled, or submitted with a code that passed).
func (d *joinDialog) update(msg tea.KeyMsg, k *keyMap) (cmd tea.Cmd, closed bool) {
	switch {
	case keyMatch(msg, k.Back):
		return nil, true
	case keyMatch(msg, k.Confirm):
		code := strings.Join(strings.Fields(d.field.Value()), "")
		if code == "" {
			d.err = "Paste the join code your group's admin gave you."
			return nil, false
		}
		c, err := signal.ParseJoinCode(code)
		if err != nil {
			d.err = err.Error()
			return nil, false
		}
		return emit(JoinIntent{Code: c.String()}), true
	}
	d.err = ""
	d.field, cmd = d.field.Update(msg)
	return cmd, false
}

// view draws the box at inner width w.
func (d *joinDialog) view(st *styles, w int) string {
	var b strings.Builder
	b.WriteString(st.modalTitle.Render("Join a group") + "\n\n")
	now := "Signalling now: this machine's local mailbox."
	if d.joined != "" {
		now = "Signalling now: the group of project " + d.joined + "."
	}
	b.WriteString(wrapText(now+" A group's admin shares a join code; with it, p2ptui signs in to the group's project and finds its members there.", w) + "\n\n")
	b.WriteString(d.field.View() + "\n")
	if d.err != "" {
		b.WriteString(st.errLine.Render(wrapText(d.err, w)) + "\n")
	}
	b.WriteString("\n" + hints(st, "enter", "join", "esc", "cancel"))
	return b.String()
}
