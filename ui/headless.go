package ui

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
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
//	connect ID|NAME          open a conversation (offer through signalling)
//	accept SESSION [NAME]    accept an offer; NAME adds an unknown sender as a contact
//	decline SESSION          decline an offer
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
	case "accept":
		err = need(1, 2, "accept SESSION [NAME]")
	case "decline":
		err = need(1, 1, "decline SESSION")
	case "send":
		if err = need(2, -1, "send ID|NAME TEXT..."); err == nil {
			// Keep the text exactly as typed after the peer.
			s := strings.TrimLeft(trimmed[len(fields[0]):], " \t")
			s = strings.TrimLeft(s[len(args[0]):], " \t")
			return commandMsg{verb: verb, args: args[:1], rest: s}, nil
		}
	default:
		err = fmt.Errorf("unknown command %q (id, add, rename, remove, contacts, connect, accept, decline, send, quit)", fields[0])
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
