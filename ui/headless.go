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
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/transfer"
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
//	cancel ID|NAME           stop connecting to (or waiting for) a peer
//	accept [ID] SESSION [NAME...]  accept an offer; NAME adds an unknown sender
//	                         as a contact; the sender's ID is needed only when
//	                         two senders used the same session ID
//	decline [ID] SESSION     decline an offer
//	send ID|NAME TEXT...     send a message (queued until a session carries it)
//	block ID|NAME            drop the ID's requests unseen (ends a session with it)
//	unblock ID|NAME          let them through again
//	blocked                  list the blocked IDs
//	join CODE                join a group with its join code (used from the next start)
//	ask ID|NAME on|off       ask about the contact's requests each time (on), or
//	                         connect with it by itself when both are online (off)
//	sendfile ID|NAME PATH    offer a file (the path is the rest of the line)
//	acceptfile ID [DIR]      accept a file offer (ID: the transfer's, from
//	                         file_offer), saving it in DIR (the rest of the
//	                         line), else in the downloads folder
//	declinefile ID           decline a file offer
//	cancelfile ID            stop a transfer, either direction
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

// isID tells an ID from a session ID (which is short hex).
func isID(s string) bool {
	_, err := identity.ParseID(s)
	return err == nil
}

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
	case "id", "contacts", "blocked", "quit":
		if len(words) != 0 {
			return commandMsg{}, usage(verb, "takes nothing after it")
		}
		return commandMsg{verb: verb, args: []string{}}, nil
	case "remove", "connect", "cancel", "block", "unblock", "join", "declinefile", "cancelfile":
		if len(words) != 1 {
			what := "ID|NAME"
			switch verb {
			case "join":
				what = "CODE"
			case "declinefile", "cancelfile":
				what = "ID"
			}
			return commandMsg{}, usage(verb+" "+what, "takes one word")
		}
		return commandMsg{verb: verb, args: words}, nil
	case "decline":
		if len(words) != 1 && !(len(words) == 2 && isID(words[0])) {
			return commandMsg{}, usage("decline [ID] SESSION", "takes a session, or an ID and a session")
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
	case "ask":
		if len(words) != 2 || (words[1] != "on" && words[1] != "off") {
			return commandMsg{}, usage("ask ID|NAME on|off", "takes a contact and on or off")
		}
		return commandMsg{verb: verb, args: words}, nil
	case "rename":
		target, name := cutWord(rest)
		if len(words) < 2 {
			return commandMsg{}, usage("rename ID|NAME NEWNAME", "needs a contact and a new name")
		}
		return commandMsg{verb: verb, args: []string{target, name}}, nil
	case "accept":
		if len(words) < 1 {
			return commandMsg{}, usage("accept [ID] SESSION [NAME]", "needs a session")
		}
		// args: [ID] SESSION, then the name (spaces kept) if any.
		var args []string
		first, after := cutWord(rest)
		if second, name := cutWord(after); isID(first) && second != "" {
			args = []string{first, second}
			after = name
		} else {
			args = []string{first}
		}
		if after != "" {
			args = append(args, after)
		}
		return commandMsg{verb: verb, args: args}, nil
	case "sendfile":
		peer, path := cutWord(rest)
		if path == "" {
			return commandMsg{}, usage("sendfile ID|NAME PATH", "needs a contact and a file")
		}
		return commandMsg{verb: verb, args: []string{peer}, rest: path}, nil
	case "acceptfile":
		id, dir := cutWord(rest)
		if id == "" {
			return commandMsg{}, usage("acceptfile ID [DIR]", "needs the transfer's ID")
		}
		return commandMsg{verb: verb, args: []string{id}, rest: dir}, nil
	case "send":
		peer, text := cutWord(rest)
		if text == "" {
			return commandMsg{}, usage("send ID|NAME TEXT...", "needs a contact and some text")
		}
		// The text as typed after the peer, inner spacing kept.
		return commandMsg{verb: verb, args: []string{peer}, rest: text}, nil
	}

	return commandMsg{}, fmt.Errorf("unknown command %q (id, add, rename, remove, contacts, connect, cancel, accept, decline, send, block, unblock, blocked, join, ask, sendfile, acceptfile, declinefile, cancelfile, quit)", verbWord)
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
	e := m.eng
	switch cmd.verb {
	case "id":
		m.obs.(*jsonObserver).emit(Event{Ev: "id", ID: e.ID(), Fingerprint: identity.KeyFingerprint(m.d.Identity.Public)})
	case "add":
		m.handle(now, AddContactIntent{Name: cmd.args[0], ID: cmd.args[1]})
	case "rename":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.handle(now, RenameContactIntent{ID: id, Name: cmd.args[1]})
		}
	case "remove":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.handle(now, RemoveContactIntent{ID: id})
		}
	case "contacts":
		list := []EventContact{}
		for _, st := range e.Peers() {
			if st.Contact {
				list = append(list, EventContact{Name: st.Name, ID: st.ID, Online: st.Online})
			}
		}
		m.obs.(*jsonObserver).emit(Event{Ev: "contacts", Contacts: list})
	case "connect":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.openChat(now, id)
		}
	case "cancel":
		if id, ok := m.resolve(cmd.args[0]); ok {
			e.Cancel(now, id)
		}
	case "accept", "decline":
		from, sid, rest, ok := m.offerArgs(cmd.args)
		if !ok {
			return
		}
		if cmd.verb == "decline" {
			if len(rest) > 0 {
				m.showError("usage: decline [ID] SESSION")
				return
			}
			m.handle(now, DeclineIntent{From: from, SessionID: sid})
			return
		}
		name := ""
		if len(rest) > 0 {
			name = rest[0]
		}
		m.handle(now, AcceptIntent{From: from, SessionID: sid, AddAs: name})
	case "send":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.handle(now, SendIntent{ContactID: id, Text: cmd.rest})
		}
	case "block":
		if id, ok := m.resolve(cmd.args[0]); ok {
			name := ""
			if c, known := m.contactByID(id); known {
				name = c.Name
			}
			m.handle(now, BlockIntent{ID: id, Name: name})
		}
	case "unblock":
		if id, ok := m.resolveBlocked(cmd.args[0]); ok {
			m.handle(now, UnblockIntent{ID: id})
		}
	case "join":
		m.handle(now, JoinIntent{Code: cmd.args[0]})
	case "ask":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.handle(now, AskEachTimeIntent{ContactID: id, Ask: cmd.args[1] == "on"})
		}
	case "blocked":
		list := []EventContact{}
		for _, b := range e.BlockedIDs() {
			list = append(list, EventContact{Name: b.Name, ID: b.ID})
		}
		m.obs.(*jsonObserver).emit(Event{Ev: "blocked", Contacts: list})
	case "sendfile":
		if id, ok := m.resolve(cmd.args[0]); ok {
			m.handle(now, SendFileIntent{ContactID: id, Path: cmd.rest})
		}
	case "acceptfile", "declinefile", "cancelfile":
		id, err := transfer.ParseID(strings.ToLower(cmd.args[0]))
		if err != nil {
			m.showError(cmd.verb + ": " + cmd.args[0] + " is not a transfer ID (32 hex digits, as file_offer gave it)")
			return
		}
		peer, _, err := e.FindTransfer("", id)
		if err != nil {
			m.showError(cmd.verb + ": " + fileErr(err))
			return
		}
		switch cmd.verb {
		case "acceptfile":
			m.handle(now, AcceptFileIntent{Peer: peer, ID: id.String(), Dir: cmd.rest})
		case "declinefile":
			m.handle(now, DeclineFileIntent{Peer: peer, ID: id.String()})
		default:
			m.handle(now, CancelFileIntent{Peer: peer, ID: id.String()})
		}
	case "quit":
		m.quit(now)
	}
}

// fileErr says a transfer lookup's failure in words.
func fileErr(err error) string {
	if errors.Is(err, transfer.ErrNoTransfer) {
		return "there is no file transfer with that ID"
	}
	return err.Error()
}

// offerArgs finds the offer an accept or decline names: [ID] SESSION, the
// ID needed only when two senders used the same session ID. rest is what
// follows the session.
func (m *Model) offerArgs(args []string) (from, sid string, rest []string, ok bool) {
	if pub, err := identity.ParseID(args[0]); err == nil && len(args) > 1 {
		return identity.IDFromPublic(pub), args[1], args[2:], true
	}
	sid, rest = args[0], args[1:]
	var senders []string
	for _, o := range m.eng.Offers() {
		if o[1] == sid {
			senders = append(senders, o[0])
		}
	}
	switch len(senders) {
	case 0:
		m.showError(conn.ErrOfferGone.Error())
		return "", "", nil, false
	case 1:
		return senders[0], sid, rest, true
	}
	m.showError(fmt.Sprintf("%d requests use session %s: name the sender's ID before the session", len(senders), sid))
	return "", "", nil, false
}

func (m *Model) contactByID(id string) (conn.Contact, bool) {
	for _, c := range m.eng.Contacts() {
		if c.ID == id {
			return c, true
		}
	}
	return conn.Contact{}, false
}

// resolveBlocked is resolve for unblock: a blocked stranger is found by
// the name it was blocked under too.
func (m *Model) resolveBlocked(s string) (string, bool) {
	if pub, err := identity.ParseID(s); err == nil {
		return identity.IDFromPublic(pub), true
	}
	for _, b := range m.eng.BlockedIDs() {
		if b.Name != "" && strings.EqualFold(b.Name, s) {
			return b.ID, true
		}
	}
	return m.resolve(s)
}

// resolve finds a contact by ID or by name (case-insensitive, unique); a
// valid ID of someone not in the contacts resolves to itself.
func (m *Model) resolve(s string) (string, bool) {
	if pub, err := identity.ParseID(s); err == nil {
		return identity.IDFromPublic(pub), true
	}
	var found []string
	for _, ct := range m.eng.Contacts() {
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
