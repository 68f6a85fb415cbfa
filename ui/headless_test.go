package ui

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"runtime"
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
		// Any Unicode space separates words, and none is left on the text.
		{line: "send\u00a0bob hi", want: commandMsg{verb: "send", args: []string{"bob"}, rest: "hi"}},
		{line: "send\u3000b hi\u3000there\u3000", want: commandMsg{verb: "send", args: []string{"b"}, rest: "hi\u3000there"}},
		{line: "\u2003send bob\u2009\u2009é ok", want: commandMsg{verb: "send", args: []string{"bob"}, rest: "é ok"}},
		{line: "connect\u00a0bob", want: commandMsg{verb: "connect", args: []string{"bob"}}},
		// Names may have spaces where that is unambiguous.
		{line: "add Bob Smith abcdefgh2345", want: commandMsg{verb: "add", args: []string{"Bob Smith", "abcdefgh2345"}}},
		{line: "rename bob Robert  Smith", want: commandMsg{verb: "rename", args: []string{"bob", "Robert  Smith"}}},
		{line: "accept s1 Carol Jones", want: commandMsg{verb: "accept", args: []string{"s1", "Carol Jones"}}},
		{line: "remove bob smith", err: true},
		{line: "decline", err: true},
		{line: "send bob \u00a0 ", err: true},
		{line: "send bob \xff", err: true},
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
	if _, err := parseCommand("quit now"); err == nil || err.Error() != "quit takes nothing after it (got 1 word): quit" {
		t.Errorf("quit now: %v", err)
	}
	if _, err := parseCommand("remove bob smith"); err == nil || !strings.Contains(err.Error(), "remove takes one word (got 2 words)") {
		t.Errorf("remove bob smith: %v", err)
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

// endlessLine is n bytes of one line without a newline, then more lines.
type endlessLine struct {
	n    int
	tail *strings.Reader
}

func (e *endlessLine) Read(p []byte) (int, error) {
	if e.n > 0 {
		k := min(len(p), e.n)
		for i := range k {
			p[i] = 'x'
		}
		e.n -= k
		return k, nil
	}
	return e.tail.Read(p)
}

// TestLongCommandLinesAreBoundedBeforeBuffering feeds a 64 MiB line: it is
// refused, the next command is read, and memory never holds the line.
func TestLongCommandLinesAreBoundedBeforeBuffering(t *testing.T) {
	const lineSize = 64 << 20
	r := bufio.NewReaderSize(&endlessLine{n: lineSize, tail: strings.NewReader("\nid\nsend bob " + strings.Repeat("y", 64<<10) + "\n")}, 64<<10)
	read := readCommand(r)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	first := read()
	runtime.ReadMemStats(&after)
	if m, ok := first.(commandErrMsg); !ok || !strings.Contains(m.words, "command line too long: at most 80 KiB") {
		t.Fatalf("first = %#v, want a too-long error", first)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("reading a %d MiB line allocated %d MiB", lineSize>>20, grew>>20)
	}
	if m, ok := read().(commandMsg); !ok || m.verb != "id" {
		t.Fatalf("after the long line: %#v, want id", m)
	}
	// A whole 64 KiB message fits.
	if m, ok := read().(commandMsg); !ok || m.verb != "send" || len(m.rest) != 64<<10 {
		t.Fatalf("64 KiB send: %T %d", m, len(m.rest))
	}
	if m, ok := read().(stdinClosedMsg); !ok {
		t.Fatalf("end: %#v", m)
	}
	// A too-long last line without a newline, then the end.
	read = readCommand(bufio.NewReaderSize(&endlessLine{n: 200 << 10, tail: strings.NewReader("")}, 4096))
	if m, ok := read().(commandErrMsg); !ok {
		t.Fatalf("unterminated long line: %#v", m)
	}
	if m, ok := read().(stdinClosedMsg); !ok {
		t.Fatalf("after it: %#v", m)
	}
}
