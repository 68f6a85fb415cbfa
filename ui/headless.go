package ui

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
)

// Headless mode runs the same root model without a renderer or keyboard:
// commands arrive as lines on stdin, events leave as JSON lines on stdout
// (see Event). The commands:
//
//	id                       print my ID and fingerprint
//	add NAME... ID           add a contact (the last word is the ID; the name may have spaces)
//	rename ID|NAME NEWNAME...  rename a contact
//	remove ID|NAME           remove a contact
//	contacts                 list contacts
//	connect ID|NAME          start a conversation (offer through signalling)
//	accept SESSION [NAME...] accept an offer; NAME adds an unknown sender as a contact
//	decline SESSION          decline an offer
//	send ID|NAME TEXT...     send a message (queued until a session carries it)
//	quit                     leave
//
// Words are separated by any Unicode space. Blank lines and lines
// starting with '#' are ignored. A line longer than maxCommandLine is
// refused without being held in memory whole.

// commandMsg is one parsed headless command line.
type commandMsg struct {
	verb string
	args []string
	rest string // for send: the text after the peer, spacing kept
}

// commandErrMsg reports a line that is not a command.
type commandErrMsg struct{ words string }

// stdinClosedMsg reports the end of the command input: headless mode quits.
type stdinClosedMsg struct{}

// maxCommandLine bounds one command line: "send", a peer and a message
// of the most a session carries (session.MaxMessageSize, 64 KiB), with
// room to spare.
const maxCommandLine = 80 << 10

var (
	errEmptyLine = errors.New("empty line")
	// errLineTooLong: a command line longer than maxCommandLine.
	errLineTooLong = errors.New("command line too long")
)

// cutWord splits s at its first run of Unicode spaces: the first word and
// what follows (leading spaces removed from both).
func cutWord(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	i := strings.IndexFunc(s, unicode.IsSpace)
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeftFunc(s[i:], unicode.IsSpace)
}

// parseCommand turns one line into a command.
func parseCommand(line string) (commandMsg, error) {
	trimmed := strings.TrimFunc(line, unicode.IsSpace)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return commandMsg{}, errEmptyLine
	}
	if !utf8.ValidString(trimmed) {
		return commandMsg{}, errors.New("the line is not valid UTF-8")
	}
	verbWord, rest := cutWord(trimmed)
	verb := strings.ToLower(verbWord)
	words := strings.Fields(rest)
	usage := func(u, what string) error {
		return fmt.Errorf("%s %s (got %s): %s", verb, what, plural(len(words), "word", "words"), u)
	}
	switch verb {
	case "id", "contacts", "quit":
		if len(words) != 0 {
			return commandMsg{}, usage(verb, "takes nothing after it")
		}
		return commandMsg{verb: verb, args: []string{}}, nil
	case "remove", "connect", "decline":
		if len(words) != 1 {
			what := map[string]string{"remove": "ID|NAME", "connect": "ID|NAME", "decline": "SESSION"}[verb]
			return commandMsg{}, usage(verb+" "+what, "takes one word")
		}
		return commandMsg{verb: verb, args: words}, nil
	case "add":
		// The ID is the last word; the name is everything before it.
		if len(words) < 2 {
			return commandMsg{}, usage("add NAME ID", "needs a name and an ID")
		}
		id := words[len(words)-1]
		name := strings.TrimRightFunc(strings.TrimSuffix(strings.TrimRightFunc(rest, unicode.IsSpace), id), unicode.IsSpace)
		return commandMsg{verb: verb, args: []string{name, id}}, nil
	case "rename":
		target, name := cutWord(rest)
		if len(words) < 2 {
			return commandMsg{}, usage("rename ID|NAME NEWNAME", "needs a contact and a new name")
		}
		return commandMsg{verb: verb, args: []string{target, name}}, nil
	case "accept":
		if len(words) < 1 {
			return commandMsg{}, usage("accept SESSION [NAME]", "needs a session")
		}
		sid, name := cutWord(rest)
		args := []string{sid}
		if name != "" {
			args = append(args, name)
		}
		return commandMsg{verb: verb, args: args}, nil
	case "send":
		peer, text := cutWord(rest)
		if text == "" {
			return commandMsg{}, usage("send ID|NAME TEXT...", "needs a contact and some text")
		}
		// The text as typed after the peer, inner spacing kept.
		return commandMsg{verb: verb, args: []string{peer}, rest: text}, nil
	}
	return commandMsg{}, fmt.Errorf("unknown command %q (id, add, rename, remove, contacts, connect, accept, decline, send, quit)", verbWord)
}

// readLine reads one line of at most limit bytes. A longer one is read to
// its end in pieces and dropped, never held whole, and reported as
// errLineTooLong; the next call reads the line after it.
func readLine(r *bufio.Reader, limit int) (string, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > limit {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if tooLong {
			return "", errLineTooLong
		}
		return string(buf), err
	}
}

// readCommand returns a Cmd that blocks for the next command line. The
// model re-issues it after each delivery, so exactly one read is pending at
// a time and the reader is only ever touched by that one Cmd.
func readCommand(r *bufio.Reader) tea.Cmd {
	return func() tea.Msg {
		for {
			line, err := readLine(r, maxCommandLine)
			if errors.Is(err, errLineTooLong) {
				return commandErrMsg{words: fmt.Sprintf("command line too long: at most %d KiB (a message holds %s); the line was ignored", maxCommandLine>>10, kib(session.MaxMessageSize))}
			}
			if line != "" {
				cmd, perr := parseCommand(line)
				switch {
				case perr == nil:
					return cmd
				case !errors.Is(perr, errEmptyLine):
					return commandErrMsg{words: perr.Error()}
				}
			}
			if err != nil {
				// EOF or a broken stdin: no more commands can come.
				return stdinClosedMsg{}
			}
		}
	}
}

// handleCommand runs one headless command through the same paths the
// screen's intents take.
func (m *Model) handleCommand(now time.Time, cmd commandMsg) {
	switch cmd.verb {
	case "id":
		m.emit(Event{Ev: "id", ID: m.me, Fingerprint: identity.KeyFingerprint(m.d.Identity.Public)})
	case "add":
		m.addContact(cmd.args[0], cmd.args[1])
	case "rename":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.renameContact(id, cmd.args[1])
		}
	case "remove":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.removeContact(now, id)
		}
	case "contacts":
		list := make([]EventContact, 0, len(m.contacts))
		for _, ct := range m.contacts {
			p, ok := m.presence[ct.ID]
			on := ok && m.online(now, p)
			if c := m.convs[ct.ID]; c != nil && c.state == convEstablished {
				on = true
			}
			list = append(list, EventContact{Name: ct.Name, ID: ct.ID, Online: on})
		}
		m.emit(Event{Ev: "contacts", Contacts: list})
	case "connect":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.openChat(now, id)
		}
	case "accept":
		name := ""
		if len(cmd.args) > 1 {
			name = cmd.args[1]
		}
		m.accept(now, cmd.args[0], name)
	case "decline":
		m.decline(now, cmd.args[0])
	case "send":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.sendText(now, id, cmd.rest)
		}
	case "quit":
		m.quit(now)
	}
}

// resolve finds a contact by ID or by name (case-insensitive, unique); a
// valid ID of someone not in the contacts resolves to itself.
func (m *Model) resolve(s string) (string, bool) {
	if pub, err := identity.ParseID(s); err == nil {
		return identity.IDFromPublic(pub), true
	}
	var found []string
	for _, ct := range m.contacts {
		if strings.EqualFold(ct.Name, s) {
			found = append(found, ct.ID)
		}
	}
	switch len(found) {
	case 1:
		return found[0], true
	case 0:
		m.showError(fmt.Sprintf("no contact called %q (use a name from \"contacts\" or an ID)", s))
	default:
		m.showError(fmt.Sprintf("%d contacts are called %q: use the ID", len(found), s))
	}
	return "", false
}
