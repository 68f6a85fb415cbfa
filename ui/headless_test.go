package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		line string
		want commandMsg
		err  bool
	}{
		{line: "id\n", want: commandMsg{verb: "id", args: []string{}}},
		{line: "  add bob abcdefgh2345\n", want: commandMsg{verb: "add", args: []string{"bob", "abcdefgh2345"}}},
		{line: "send bob  hello   world \n", want: commandMsg{verb: "send", args: []string{"bob"}, rest: "hello   world"}},
		{line: "SEND bob x", want: commandMsg{verb: "send", args: []string{"bob"}, rest: "x"}},
		{line: "accept s1 carol", want: commandMsg{verb: "accept", args: []string{"s1", "carol"}}},
		{line: "accept", err: true},
		{line: "send bob", err: true},
		{line: "add bob", err: true},
		{line: "frobnicate", err: true},
		{line: "quit now", err: true},
	} {
		got, err := parseCommand(tc.line)
		if tc.err {
			if err == nil {
				t.Errorf("parseCommand(%q) = %+v, want an error", tc.line, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCommand(%q): %v", tc.line, err)
			continue
		}
		if got.verb != tc.want.verb || got.rest != tc.want.rest || strings.Join(got.args, "|") != strings.Join(tc.want.args, "|") {
			t.Errorf("parseCommand(%q) = %+v, want %+v", tc.line, got, tc.want)
		}
	}
	if _, err := parseCommand("   # a comment"); !errors.Is(err, errEmptyLine) {
		t.Errorf("comment: err = %v, want errEmptyLine", err)
	}
}

func TestReadCommandSkipsBlankLinesAndEnds(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("\n# hi\nbogus\ncontacts\nquit"))
	read := readCommand(r)
	if m, ok := read().(commandErrMsg); !ok || !strings.Contains(m.words, "unknown command") {
		t.Fatalf("first = %#v, want an unknown-command error", m)
	}
	if m, ok := read().(commandMsg); !ok || m.verb != "contacts" {
		t.Fatalf("second = %#v, want contacts", m)
	}
	if m, ok := read().(commandMsg); !ok || m.verb != "quit" {
		t.Fatalf("third = %#v, want quit (no trailing newline)", m)
	}
	if m, ok := read().(stdinClosedMsg); !ok {
		t.Fatalf("fourth = %#v, want stdinClosedMsg", m)
	}
}

func TestEventWriterWritesJSONLinesInOrder(t *testing.T) {
	var buf bytes.Buffer
	ew := newEventWriter(&buf)
	for i := 0; i < 100; i++ {
		ew.emit(Event{Ev: "message", Body: strings.Repeat("x", i), Known: boolp(i%2 == 0)})
	}
	ew.Close()
	ew.emit(Event{Ev: "late"}) // dropped, not a panic
	ew.Close()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 100 {
		t.Fatalf("%d lines, want 100", len(lines))
	}
	for i, l := range lines {
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if len(e.Body) != i || e.Known == nil || *e.Known != (i%2 == 0) {
			t.Fatalf("line %d = %+v", i, e)
		}
	}
	if strings.Contains(lines[0], "from") {
		t.Errorf("empty fields written: %s", lines[0])
	}
}
