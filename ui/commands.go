package ui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
)

// This file holds every tea.Cmd the engine issues: the blocking waits on
// outside sources (one per source, re-issued after each delivery) and the
// side effects (signalling, store writes, presence), each reporting back as
// a message. None of them touches the model.

// sideEffects tracks the Cmds that use the store or the signaller from the
// moment they are issued, so quitting can wait until every store write the
// user caused has happened, and Model.Close can refuse later ones: the
// resources are closed by their owner right after.
type sideEffects struct {
	mu      sync.Mutex
	closed  bool
	pending int           // issued and not finished (or refused)
	changed chan struct{} // closed and replaced whenever pending drops
}

func newSideEffects() *sideEffects { return &sideEffects{changed: make(chan struct{})} }

// guard wraps a side-effect Cmd; it is called in Update, when issuing.
func (s *sideEffects) guard(c tea.Cmd) tea.Cmd {
	if c == nil {
		return nil
	}
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	return func() tea.Msg {
		defer s.finish()
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return nil
		}
		return c()
	}
}

func (s *sideEffects) finish() {
	s.mu.Lock()
	s.pending--
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// wait blocks until nothing is pending or timeout passes (a Cmd the
// program dropped on its way out never finishes); it reports which.
func (s *sideEffects) wait(timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		n, ch := s.pending, s.changed
		s.mu.Unlock()
		if n <= 0 {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
}

// close refuses side effects that have not started and waits for the
// running ones.
func (s *sideEffects) close(timeout time.Duration) bool {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.wait(timeout)
}

// quitTimeout bounds how long quitting waits for store writes and
// signalling calls in flight (each of which has its own timeout anyway).
const quitTimeout = 5 * time.Second

// flushThenQuit waits for the side effects in flight, then ends the program.
func flushThenQuit(s *sideEffects) tea.Cmd {
	return func() tea.Msg {
		s.wait(quitTimeout)
		return tea.QuitMsg{}
	}
}

// ioTimeout bounds one signalling call, so a hung backend shows up as an
// error in the status bar instead of a Cmd that never returns.
const ioTimeout = 15 * time.Second

// datagramMsg is one UDP datagram; ch is re-waited on after handling.
type datagramMsg struct {
	dg punch.Datagram
	ch <-chan punch.Datagram
}

// socketClosedMsg: the socket's channel closed (the program is ending).
type socketClosedMsg struct{}

// waitDatagram blocks for the socket's next datagram.
func waitDatagram(ch <-chan punch.Datagram) tea.Cmd {
	return func() tea.Msg {
		dg, ok := <-ch
		if !ok {
			return socketClosedMsg{}
		}
		return datagramMsg{dg: dg, ch: ch}
	}
}

// listeningMsg: Listen succeeded; ch delivers the inbox.
type listeningMsg struct{ ch <-chan signal.Event }

// listenFailedMsg: Listen failed; signalling can't receive.
type listenFailedMsg struct{ err error }

// signalMsg is one event from the signalling listener.
type signalMsg struct {
	ev signal.Event
	ch <-chan signal.Event
}

// signalClosedMsg: the listener stopped (quit or Close).
type signalClosedMsg struct{}

// listenSignals starts the signalling listener; it lives until ctx ends.
func listenSignals(ctx context.Context, s signal.Signaller) tea.Cmd {
	if s == nil {
		return nil
	}
	return func() tea.Msg {
		ch, err := s.Listen(ctx)
		if err != nil {
			return listenFailedMsg{err: err}
		}
		return listeningMsg{ch: ch}
	}
}

// waitSignal blocks for the listener's next event.
func waitSignal(ch <-chan signal.Event) tea.Cmd {
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return signalClosedMsg{}
		}
		return signalMsg{ev: ev, ch: ch}
	}
}

// signalSentMsg reports the outcome of sending an offer, answer or cancel.
type signalSentMsg struct {
	peer      string
	sessionID string
	kind      signal.Kind
	err       error
}

// sendSignal stores s in the recipient's inbox.
func sendSignal(ctx context.Context, sg signal.Signaller, s signal.Signal) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		_, err := sg.Send(ctx, s)
		return signalSentMsg{peer: s.To, sessionID: s.SessionID, kind: s.Kind, err: err}
	}
}

// ackSignal deletes a handled signal from my inbox. A failure only means the
// document lingers until it expires, so it is logged, not shown.
func ackSignal(ctx context.Context, sg signal.Signaller, id string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		if err := sg.Ack(ctx, id); err != nil && !errors.Is(err, signal.ErrNotFound) && !errors.Is(err, signal.ErrClosed) {
			return errMsg{what: "ack signal", err: err}
		}
		return nil
	}
}

// presenceMsg reports a lookup of one contact's presence.
type presenceMsg struct {
	id  string
	p   signal.Presence
	err error
}

// publishPresence writes my presence.
func publishPresence(ctx context.Context, sg signal.Signaller, p signal.Presence) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		if err := sg.PublishPresence(ctx, p); err != nil && !errors.Is(err, signal.ErrClosed) && ctx.Err() == nil {
			return errMsg{what: "publish presence", err: err}
		}
		return nil
	}
}

// lookupPresence reads one contact's presence.
func lookupPresence(ctx context.Context, sg signal.Signaller, id string) tea.Cmd {
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		p, err := sg.LookupPresence(ctx, id)
		return presenceMsg{id: id, p: p, err: err}
	}
}

// errMsg is a failed side effect: what for the log, words for the user
// (empty: log only).
type errMsg struct {
	what  string
	err   error
	words string
}

// contactsMsg carries the store's contact list after a load or a change.
type contactsMsg struct {
	contacts []store.Contact
	outbox   map[string]int // queued messages per contact, on the first load
	err      error
	words    string // what to tell the user about err
	added    string // the ID just added, if any
}

// loadContacts reads the contacts and how much mail waits for each.
func loadContacts(st *store.Store) tea.Cmd {
	if st == nil {
		return func() tea.Msg { return contactsMsg{} }
	}
	return func() tea.Msg {
		cs, err := st.Contacts()
		if err != nil {
			return contactsMsg{err: err, words: "could not read the contacts: " + err.Error()}
		}
		out := map[string]int{}
		for _, c := range cs {
			recs, err := st.Outbox(c.ID)
			if err != nil {
				return contactsMsg{err: err, words: "could not read the outbox: " + err.Error()}
			}
			out[c.ID] = len(recs)
		}
		return contactsMsg{contacts: cs, outbox: out}
	}
}

// changeContacts runs one contact change and reloads the list.
func changeContacts(st *store.Store, added string, change func() error, words string) tea.Cmd {
	return func() tea.Msg {
		if err := change(); err != nil {
			return contactsMsg{err: err, words: words + ": " + err.Error()}
		}
		cs, err := st.Contacts()
		if err != nil {
			return contactsMsg{err: err, words: "could not read the contacts: " + err.Error()}
		}
		return contactsMsg{contacts: cs, added: added}
	}
}

// storedMsg reports a message written to the store: an outgoing one queued
// (mine) or an incoming one appended (or recognised as a duplicate).
type storedMsg struct {
	peer    string
	id      session.MessageID
	mine    bool
	body    string
	at      time.Time
	session string // incoming: the session whose machine must Commit it
	dup     bool
	err     error
}

// queueMessage stores an outgoing message in the outbox before it is sent,
// so it survives a crash or a lost session.
func queueMessage(st *store.Store, peer string, id session.MessageID, body string, at time.Time) tea.Cmd {
	return func() tea.Msg {
		_, err := st.Queue(peer, id, body, at)
		return storedMsg{peer: peer, id: id, mine: true, body: body, at: at, err: err}
	}
}

// storeReceived appends an incoming message unless the store already has it
// (a resend from an earlier session); either way the machine then commits.
func storeReceived(st *store.Store, peer, sessionID string, id session.MessageID, body string, at time.Time) tea.Cmd {
	return func() tea.Msg {
		_, added, err := st.AppendReceived(peer, id, body, at)
		return storedMsg{peer: peer, id: id, body: body, at: at, session: sessionID, dup: !added, err: err}
	}
}

// markDelivered records a receipt; the message leaves the outbox.
func markDelivered(st *store.Store, peer string, id session.MessageID) tea.Cmd {
	return func() tea.Msg {
		if err := st.MarkDelivered(peer, id); err != nil {
			return errMsg{what: "mark delivered", err: err, words: "could not record a delivery receipt: " + err.Error()}
		}
		return nil
	}
}

// markSent records that a message went to a live session (history shows
// it; it stays in the outbox until delivered).
func markSent(st *store.Store, peer string, id session.MessageID) tea.Cmd {
	return func() tea.Msg {
		if err := st.MarkSent(peer, id); err != nil && !errors.Is(err, store.ErrNoSuchMessage) {
			return errMsg{what: "mark sent", err: err}
		}
		return nil
	}
}

// historyMsg carries a chat's stored messages for the screen.
type historyMsg struct {
	peer string
	recs []store.Record
	err  error
}

// historyPage is how many messages opening a chat shows.
const historyPage = 200

// loadHistory reads the latest messages of one chat.
func loadHistory(st *store.Store, peer string) tea.Cmd {
	return func() tea.Msg {
		recs, err := st.History(peer, 0, historyPage)
		return historyMsg{peer: peer, recs: recs, err: err}
	}
}

// outboxMsg carries the messages waiting for peer, for a fresh session.
type outboxMsg struct {
	peer    string
	session string
	recs    []store.Record
	err     error
}

// loadOutbox reads the messages queued for peer.
func loadOutbox(st *store.Store, peer, sessionID string) tea.Cmd {
	return func() tea.Msg {
		recs, err := st.Outbox(peer)
		if err != nil {
			err = fmt.Errorf("read the outbox: %w", err)
		}
		return outboxMsg{peer: peer, session: sessionID, recs: recs, err: err}
	}
}
