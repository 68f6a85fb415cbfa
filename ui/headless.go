package ui

import (
	"bufio"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
)

// Headless mode runs the same root model without a renderer or keyboard:
// commands arrive as lines on stdin, events leave as JSON lines on stdout
// (see Event). The commands:
//
//	id                       print my ID and fingerprint
//	add NAME ID              add a contact
//	rename ID|NAME NEWNAME   rename a contact
//	remove ID|NAME           remove a contact
//	contacts                 list contacts
//	connect ID|NAME          start a conversation (offer through signalling)
//	cancel ID|NAME           stop connecting to (or waiting for) a peer
//	accept [ID] SESSION [NAME]  accept an offer; NAME adds an unknown sender as
//	                         a contact; ID is needed only when two senders used
//	                         the same session ID
//	decline [ID] SESSION     decline an offer
//	send ID|NAME TEXT...     send a message (queued until a session carries it)
//	quit                     leave
//
// Blank lines and lines starting with '#' are ignored.

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

// maxCommandLine bounds one command line (a message body is at most 64 KiB).
const maxCommandLine = 80 << 10

var errEmptyLine = errors.New("empty line")

// parseCommand turns one line into a command.
func parseCommand(line string) (commandMsg, error) {
	line = strings.TrimRight(line, "\r\n")
	trimmed := strings.TrimSpace(line)
	if trimmed == "" || strings.HasPrefix(trimmed, "#") {
		return commandMsg{}, errEmptyLine
	}
	fields := strings.Fields(trimmed)
	verb, args := strings.ToLower(fields[0]), fields[1:]
	need := func(min, max int, usage string) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			return fmt.Errorf("usage: %s", usage)
		}
		return nil
	}
	var err error
	switch verb {
	case "id", "contacts", "quit":
		err = need(0, 0, verb)
	case "add":
		err = need(2, 2, "add NAME ID")
	case "rename":
		err = need(2, 2, "rename ID|NAME NEWNAME")
	case "remove":
		err = need(1, 1, "remove ID|NAME")
	case "connect":
		err = need(1, 1, "connect ID|NAME")
	case "cancel":
		err = need(1, 1, "cancel ID|NAME")
	case "accept":
		err = need(1, 3, "accept [ID] SESSION [NAME]")
	case "decline":
		err = need(1, 2, "decline [ID] SESSION")
	case "send":
		if err = need(2, -1, "send ID|NAME TEXT..."); err == nil {
			// Keep the text exactly as typed after the peer.
			s := strings.TrimLeft(trimmed[len(fields[0]):], " \t")
			s = strings.TrimLeft(s[len(args[0]):], " \t")
			return commandMsg{verb: verb, args: args[:1], rest: s}, nil
		}
	default:
		err = fmt.Errorf("unknown command %q (id, add, rename, remove, contacts, connect, cancel, accept, decline, send, quit)", fields[0])
	}
	if err != nil {
		return commandMsg{}, err
	}
	return commandMsg{verb: verb, args: args}, nil
}

// readCommand returns a Cmd that blocks for the next command line. The
// model re-issues it after each delivery, so exactly one read is pending at
// a time and the reader is only ever touched by that one Cmd.
func readCommand(r *bufio.Reader) tea.Cmd {
	return func() tea.Msg {
		for {
			line, err := r.ReadString('\n')
			if len(line) > maxCommandLine {
				return commandErrMsg{words: "command line too long"}
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
	case "quit":
		m.quit(now)
	}
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
