package ui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/signal"
)

func TestJoinDialog(t *testing.T) {
	st, keys := newStyles(nil), newKeyMap()
	code, err := signal.NewJoinCode("my-group-chat", "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q")
	if err != nil {
		t.Fatal(err)
	}
	typeIn := func(d *joinDialog, s string) {
		d.update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}, &keys)
	}
	enter := tea.KeyMsg{Type: tea.KeyEnter}

	d, _ := newJoinDialog(&st, "")
	if v := d.view(&st, 60); !strings.Contains(v, "Join a group") || !strings.Contains(v, "local mailbox") {
		t.Errorf("view:\n%s", v)
	}
	// Nothing typed, or a typo: the box stays, says why, emits nothing.
	if cmd, closed := d.update(enter, &keys); cmd != nil || closed || d.err == "" {
		t.Errorf("empty code: cmd %v closed %v err %q", cmd, closed, d.err)
	}
	s := code.String()
	typeIn(&d, s[:len(s)-1]+"x")
	if cmd, closed := d.update(enter, &keys); cmd != nil || closed || !strings.Contains(d.err, "typo") {
		t.Errorf("typo: cmd %v closed %v err %q", cmd, closed, d.err)
	}
	if !strings.Contains(d.view(&st, 60), "typo") {
		t.Error("the typo is not shown")
	}

	// A code pasted with a line break in it is taken whole.
	d, _ = newJoinDialog(&st, "old-group")
	if !strings.Contains(d.view(&st, 80), "project old-group") {
		t.Error("the current group is not shown")
	}
	typeIn(&d, s[:20]+"\n"+s[20:])
	cmd, closed := d.update(enter, &keys)
	if !closed || cmd == nil {
		t.Fatalf("good code: closed %v cmd %v err %q", closed, cmd, d.err)
	}
	if got, ok := cmd().(JoinIntent); !ok || got.Code != s {
		t.Fatalf("intent %#v, want JoinIntent{%q}", cmd(), s)
	}

	d, _ = newJoinDialog(&st, "")
	typeIn(&d, s)
	if cmd, closed := d.update(tea.KeyMsg{Type: tea.KeyEsc}, &keys); cmd != nil || !closed {
		t.Errorf("esc: cmd %v closed %v", cmd, closed)
	}
}
