package ui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/session/transfer"
	"github.com/p2ptui/p2ptui/signal"
)

// This file holds every tea.Cmd the root model issues: the blocking waits on
// outside sources (one per source, re-issued after each delivery) and the
// engine's effects (signalling, store, presence), each reporting back as a
// message that becomes engine input. None of them touches the model.

// sideEffects tracks the Cmds that use the store or the signaller from the
// moment they are issued, so quitting can wait until every store write and
// goodbye the engine made has happened, and Model.Close can refuse later
// ones: the resources are closed by their owner right after.
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
		return func() tea.Msg { return listenFailedMsg{err: errors.New("no signalling backend")} }
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
type signalSentMsg conn.SignalSent

// sendSignal stores s in the recipient's inbox.
func sendSignal(ctx context.Context, sg signal.Signaller, s conn.Signal) tea.Cmd {
	return func() tea.Msg {
		if sg == nil {
			return signalSentMsg{Peer: s.To, SessionID: s.SessionID, Kind: s.Kind, Err: errors.New("no signalling backend")}
		}
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		_, err := sg.Send(ctx, signal.Signal{From: s.From, To: s.To, Kind: signal.Kind(s.Kind.String()), SessionID: s.SessionID, Payload: s.Payload})
		return signalSentMsg{Peer: s.To, SessionID: s.SessionID, Kind: s.Kind, Err: err}
	}
}

// ackSignal deletes a handled signal from my inbox. A failure only means the
// document lingers until it expires, so it is logged, not shown.
func ackSignal(ctx context.Context, sg signal.Signaller, id string) tea.Cmd {
	if sg == nil || id == "" {
		return nil
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		if err := sg.Ack(ctx, id); err != nil && !errors.Is(err, signal.ErrNotFound) && !errors.Is(err, signal.ErrClosed) {
			return errMsg{what: "ack signal", err: err}
		}
		return nil
	}
}

// presenceMsg reports a lookup of one peer's presence.
type presenceMsg struct {
	id    string
	p     conn.Presence
	found bool
	err   error
}

// presenceWrites keeps my presence writes in the order they were issued
// (they run in Cmds, concurrently): a write is skipped once a newer one was
// issued, and one write runs at a time, so the offline presence of a quit
// is never overwritten by the online one of a round still in flight.
type presenceWrites struct {
	mu     sync.Mutex
	issued uint64 // the latest issued; read by the Cmds
	run    sync.Mutex
}

// publishPresence writes my presence unless a newer write was issued.
func (pw *presenceWrites) publishPresence(ctx context.Context, sg signal.Signaller, p signal.Presence) tea.Cmd {
	if sg == nil {
		return nil
	}
	pw.mu.Lock()
	pw.issued++
	seq := pw.issued
	pw.mu.Unlock()
	return func() tea.Msg {
		pw.run.Lock()
		defer pw.run.Unlock()
		pw.mu.Lock()
		stale := seq < pw.issued
		pw.mu.Unlock()
		if stale {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		if err := sg.PublishPresence(ctx, p); err != nil && !errors.Is(err, signal.ErrClosed) && ctx.Err() == nil {
			return errMsg{what: "publish presence", err: err}
		}
		return nil
	}
}

// lookupPresence reads one peer's presence.
func lookupPresence(ctx context.Context, sg signal.Signaller, id string) tea.Cmd {
	return func() tea.Msg {
		if sg == nil {
			return presenceMsg{id: id, err: errors.New("no signalling backend")}
		}
		ctx, cancel := context.WithTimeout(ctx, ioTimeout)
		defer cancel()
		p, err := sg.LookupPresence(ctx, id)
		return presenceReading(id, p, err)
	}
}

// presenceWatchMsg is one reading of a watched peer's presence.
type presenceWatchMsg struct {
	presence presenceMsg
	ch       <-chan signal.PresenceUpdate
}

// waitPresenceWatch blocks for a watch's next reading; a closed watch
// (cancelled, or the program ending) returns nothing.
func waitPresenceWatch(id string, ch <-chan signal.PresenceUpdate) tea.Cmd {
	return func() tea.Msg {
		u, ok := <-ch
		if !ok {
			return nil
		}
		return presenceWatchMsg{presence: presenceReading(id, u.Presence, u.Err), ch: ch}
	}
}

// presenceReading turns a signalling read of id's presence into the
// engine's terms: a peer that never published is found false, no error.
func presenceReading(id string, p signal.Presence, err error) presenceMsg {
	if errors.Is(err, signal.ErrNotFound) {
		return presenceMsg{id: id}
	}
	if err != nil {
		return presenceMsg{id: id, err: err}
	}
	return presenceMsg{id: id, found: true,
		p: conn.Presence{Name: p.DisplayName, LastSeen: p.LastSeen, Instance: p.Instance, Offline: p.Offline}}
}

// errMsg is a failed side effect: what for the log, words for the user
// (empty: log only).
type errMsg struct {
	what  string
	err   error
	words string
}

// contactsMsg carries the store's contact list after a load or a change.
type contactsMsg conn.ContactsResult

// queuedMsg reports a StoreQueue.
type queuedMsg struct {
	ef  conn.StoreQueue
	err error
}

// receivedMsg reports a StoreReceived: added are the new records.
type receivedMsg struct {
	ef    conn.StoreReceived
	added []store.Record
	err   error
}

// outboxMsg carries the messages waiting for peer, for a fresh session.
type outboxMsg struct {
	peer    string
	session string
	recs    []store.Record
	err     error
}

// historyMsg carries a chat's stored messages for the screen.
type historyMsg struct {
	peer string
	recs []store.Record
	err  error
}

// transfersMsg carries the transfers stored with one peer.
type transfersMsg struct {
	peer string
	recs []transfer.Record
	err  error
}

// fileResultMsg is the result of one transfer effect; ch is re-waited on.
type fileResultMsg struct {
	r  transfer.Result
	ch <-chan transfer.Result
}

// waitFileResult blocks for the transfer worker's next result, until the
// model's context ends (the worker's channel is never closed).
func waitFileResult(ctx context.Context, ch <-chan transfer.Result) tea.Cmd {
	return func() tea.Msg {
		select {
		case r := <-ch:
			return fileResultMsg{r: r, ch: ch}
		case <-ctx.Done():
			return nil
		}
	}
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

// storeEffect returns the Cmd that performs one of the engine's store
// effects and reports its result. Without a store (tests of the screen)
// contacts load empty and messages are not kept.
func storeEffect(st *store.Store, ef conn.Effect) tea.Cmd {
	if st == nil {
		switch ef := ef.(type) {
		case conn.LoadContacts:
			return func() tea.Msg { return contactsMsg{Gen: ef.Gen} }
		case conn.LoadTransfers:
			return func() tea.Msg { return transfersMsg{peer: ef.Peer} }
		}
		return nil
	}
	switch ef := ef.(type) {
	case conn.LoadContacts:
		return func() tea.Msg { return loadContacts(st, ef.Gen, "") }
	case conn.LoadTransfers:
		return func() tea.Msg {
			recs, err := st.Transfers(ef.Public)
			return transfersMsg{peer: ef.Peer, recs: recs, err: err}
		}
	case conn.StoreAddContact:
		return func() tea.Msg {
			if _, err := st.AddContact(ef.Name, ef.ID, ef.At); err != nil {
				return contactsMsg{Gen: ef.Gen, Err: fmt.Errorf("could not add %s: %w", ef.Name, err)}
			}
			return loadContacts(st, ef.Gen, ef.ID)
		}
	case conn.StoreRenameContact:
		return func() tea.Msg {
			if err := st.RenameContact(ef.ID, ef.Name); err != nil {
				return contactsMsg{Gen: ef.Gen, Err: fmt.Errorf("could not rename the contact: %w", err)}
			}
			return loadContacts(st, ef.Gen, "")
		}
	case conn.StoreRemoveContact:
		return func() tea.Msg {
			if err := st.RemoveContact(ef.ID); err != nil && !errors.Is(err, store.ErrNoSuchContact) {
				return contactsMsg{Gen: ef.Gen, Err: fmt.Errorf("could not remove the contact: %w", err)}
			}
			return loadContacts(st, ef.Gen, "")
		}
	case conn.StoreSetAskEachTime:
		return func() tea.Msg {
			if err := st.SetAskEachTime(ef.ID, ef.Ask); err != nil {
				return contactsMsg{Gen: ef.Gen, Err: fmt.Errorf("could not change the contact: %w", err)}
			}
			return loadContacts(st, ef.Gen, "")
		}
	case conn.StoreBlock:
		return func() tea.Msg {
			if err := st.Block(ef.ID, ef.Name, ef.At); err != nil {
				return contactsMsg{Gen: ef.Gen, Err: fmt.Errorf("could not block: %w", err)}
			}
			return loadContacts(st, ef.Gen, "")
		}
	case conn.StoreUnblock:
		return func() tea.Msg {
			if err := st.Unblock(ef.ID); err != nil {
				return contactsMsg{Gen: ef.Gen, Err: fmt.Errorf("could not unblock: %w", err)}
			}
			return loadContacts(st, ef.Gen, "")
		}
	case conn.StoreQueue:
		return func() tea.Msg {
			_, err := st.Queue(ef.Peer, ef.ID, ef.Body, ef.At)
			return queuedMsg{ef: ef, err: err}
		}
	case conn.StoreReceived:
		return func() tea.Msg {
			added, err := st.AppendReceivedAll(ef.Peer, ef.Msgs, ef.At)
			return receivedMsg{ef: ef, added: added, err: err}
		}
	case conn.StoreMarkSent:
		return func() tea.Msg {
			if err := st.MarkSent(ef.Peer, ef.IDs...); err != nil && !errors.Is(err, store.ErrNoSuchMessage) {
				return errMsg{what: "mark sent", err: err}
			}
			return nil
		}
	case conn.StoreMarkDelivered:
		return func() tea.Msg {
			if err := st.MarkDelivered(ef.Peer, ef.IDs...); err != nil {
				return errMsg{what: "mark delivered", err: err, words: "could not record a delivery receipt: " + err.Error()}
			}
			return nil
		}
	case conn.LoadOutbox:
		return func() tea.Msg {
			recs, err := st.Outbox(ef.Peer)
			if err != nil {
				err = fmt.Errorf("read the outbox: %w", err)
			}
			return outboxMsg{peer: ef.Peer, session: ef.SessionID, recs: recs, err: err}
		}
	}
	return nil
}

// loadContacts reads the contacts and how much mail waits for each.
func loadContacts(st *store.Store, gen int, added string) contactsMsg {
	cs, err := st.Contacts()
	if err != nil {
		return contactsMsg{Gen: gen, Err: fmt.Errorf("could not read the contacts: %w", err)}
	}
	out := make(map[string]int, len(cs))
	list := make([]conn.Contact, 0, len(cs))
	for _, c := range cs {
		recs, err := st.Outbox(c.ID)
		if err != nil {
			return contactsMsg{Gen: gen, Err: fmt.Errorf("could not read the outbox: %w", err)}
		}
		out[c.ID] = len(recs)
		list = append(list, conn.Contact{ID: c.ID, Name: c.Name, Public: c.Public, AskEachTime: c.AskEachTime})
	}
	bs, err := st.BlockedIDs()
	if err != nil {
		return contactsMsg{Gen: gen, Err: fmt.Errorf("could not read the blocked IDs: %w", err)}
	}
	peers, err := st.TransferPeers()
	if err != nil {
		return contactsMsg{Gen: gen, Err: fmt.Errorf("could not read the file transfers: %w", err)}
	}
	blocked := make([]conn.Blocked, 0, len(bs))
	for _, b := range bs {
		blocked = append(blocked, conn.Blocked{ID: b.ID, Name: b.Name, Since: b.Since})
	}
	return contactsMsg{Gen: gen, Contacts: list, Outbox: out, Added: added, Blocked: blocked, TransferPeers: peers}
}
