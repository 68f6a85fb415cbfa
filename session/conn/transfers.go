package conn

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/transfer"
)

// File transfers. Each link owns its peer's transfer.Machine, made once the
// peer's stored transfers are read (LoadTransfers), and wires it to the
// link's session: SessionUp when one is established, SessionDown when it
// fails, closes or is replaced, PathChanged when its path moves, and every
// stream event through it. The machine's file and store work leaves the
// engine as FileWork for the owner's transfer.Worker, whose results come
// back through HandleFileResult; its events become the File* notifications.
// A peer with an unfinished transfer wants a connection, like queued mail.

// LoadTransfers reads the transfers stored with a peer; report them with
// HandleTransfers.
type LoadTransfers struct {
	Peer   string
	Public [32]byte
}

// FileWork is file and store work of one peer's transfers: hand Work to the
// transfer.Worker (it keeps each transfer's effects in order and runs them
// off the event loop) and feed every result back with HandleFileResult.
type FileWork struct {
	Peer string
	Work []transfer.Effect
}

func (LoadTransfers) effect() {}
func (FileWork) effect()      {}

// FileNote is what every file notification carries: the peer and the
// transfer's state.
type FileNote struct {
	Peer string
	File transfer.Status
}

// FileOffer: the peer offers a file; the user accepts it (AcceptFile) or
// declines it (DeclineFile). It comes again after a restart for an offer
// still unanswered.
type FileOffer struct{ FileNote }

// FileOffered: my file is hashed and offered (sent with the current or the
// next session).
type FileOffered struct{ FileNote }

// FileStarted: an offer was accepted; data moves whenever a session is up.
type FileStarted struct{ FileNote }

// FileProgress: more of the file is stored at the receiver (at most one
// per transfer every transfer.ProgressInterval).
type FileProgress struct{ FileNote }

// FileDone: the receiver verified the file and saved it (File.Path on the
// receiving side).
type FileDone struct{ FileNote }

// FileFailed: the transfer ended without the file; File.Reason says why.
type FileFailed struct{ FileNote }

func (FileOffer) note()    {}
func (FileOffered) note()  {}
func (FileStarted) note()  {}
func (FileProgress) note() {}
func (FileDone) note()     {}
func (FileFailed) note()   {}

// maxHeldStreamEvents bounds the stream events a link keeps for a transfer
// machine still being loaded. The session's flow control bounds them
// already (nothing is committed meanwhile); this is a second fence.
const maxHeldStreamEvents = 4096

// ErrTransfersLoading: the peer's stored transfers are still being read.
var ErrTransfersLoading = errors.New("the file transfers are still being read; try again in a moment")

// loadTransfers asks for the peer's stored transfers (once).
func (l *link) loadTransfers() {
	if l.xm != nil || l.xmLoading || l.e.quitting {
		return
	}
	l.xmLoading = true
	l.e.do(LoadTransfers{Peer: l.peer, Public: l.pub})
}

// HandleTransfers takes the transfers stored with peer (err: some or all of
// them could not be read; the ones in recs did). The peer's transfer
// machine starts, picks up the live session if there is one, and an
// unfinished transfer asks for a connection.
func (e *Engine) HandleTransfers(now time.Time, peer string, recs []transfer.Record, err error) {
	e.at(now)
	l := e.links[peer]
	if l == nil || !l.xmLoading || e.quitting {
		return
	}
	l.xmLoading = false
	if err != nil {
		e.log.Error("read transfers", "peer", peer, "err", err)
		e.tell(Problem{Words: "could not read every file transfer with " + l.display() + ": " + err.Error()})
	}
	xm, err := transfer.NewMachine(transfer.Config{Peer: l.pub, Records: recs, Rand: e.rand, ChunkSize: e.cfg.TransferChunkSize})
	if err != nil {
		e.log.Error("restore transfers", "peer", peer, "err", err)
		e.tell(Problem{Words: "could not restore the file transfers with " + l.display() + ": " + err.Error()})
		if xm, err = transfer.NewMachine(transfer.Config{Peer: l.pub, Rand: e.rand, ChunkSize: e.cfg.TransferChunkSize}); err != nil {
			e.tell(Problem{Words: "file transfers are off: " + err.Error()})
			return
		}
	}
	l.xm = xm
	xm.Start(now)
	l.countTransfers()
	held := l.xmHeld
	l.xmHeld = nil
	if l.st == stEstablished && l.sess != nil {
		xm.SessionUp(now, l.sess)
		for _, ev := range held {
			xm.HandleSessionEvent(now, ev)
		}
	}
	l.drainTransfers(now)
	l.pump(now)
	if l.xmWant {
		l.blind = 0
		e.maybeConnect(now, l, triggerMail)
	}
}

// HandleFileResult takes the result of one FileWork effect.
func (e *Engine) HandleFileResult(now time.Time, r transfer.Result) {
	e.at(now)
	l := e.links[identity.IDFromPublic(r.Key().Peer)]
	if l == nil || l.xm == nil || e.quitting {
		return // forgotten (contact removed), or quitting: the store has it
	}
	l.xm.HandleResult(now, r)
	l.drainTransfers(now)
	l.pump(now)
}

// drainTransfers turns what the transfer machine asked for into effects
// and notifications. Call it after every call into the machine.
func (l *link) drainTransfers(now time.Time) {
	xm := l.xm
	if xm == nil {
		return
	}
	e := l.e
	if work := xm.Effects(); len(work) > 0 {
		e.do(FileWork{Peer: l.peer, Work: work})
	}
	changed := false
	for _, ev := range xm.Events() {
		switch ev := ev.(type) {
		case transfer.OfferReceived:
			e.tell(FileOffer{FileNote{l.peer, ev.Status}})
		case transfer.Offered:
			e.tell(FileOffered{FileNote{l.peer, ev.Status}})
		case transfer.Started:
			e.tell(FileStarted{FileNote{l.peer, ev.Status}})
		case transfer.Progress:
			e.tell(FileProgress{FileNote{l.peer, ev.Status}})
			continue
		case transfer.Completed:
			l.lastActive = now
			e.log.Info("file transfer done", "peer", l.peer, "id", ev.ID, "outgoing", ev.Outgoing, "size", ev.Size)
			e.tell(FileDone{FileNote{l.peer, ev.Status}})
		case transfer.Failed:
			e.log.Info("file transfer failed", "peer", l.peer, "id", ev.ID, "outgoing", ev.Outgoing,
				"reason", ev.Reason, "by_peer", ev.ByPeer, "detail", ev.Detail)
			e.tell(FileFailed{FileNote{l.peer, ev.Status}})
		}
		changed = true
	}
	if changed {
		l.countTransfers()
	}
}

// countTransfers notes whether a transfer needs a session: an outgoing one
// being hashed, offered or sent, an incoming one accepted and not done.
// An incoming offer waiting for the user needs none.
func (l *link) countTransfers() {
	l.xmWant = false
	for _, s := range l.xm.Transfers() {
		switch s.State {
		case transfer.StateHashing, transfer.StatePreparing, transfer.StateActive:
			l.xmWant = true
		case transfer.StateOffered:
			l.xmWant = l.xmWant || s.Outgoing
		}
	}
}

// transferEvent hands one of the session's stream events to the transfer
// machine (held while it is being loaded) and reports whether ev was one.
func (l *link) transferEvent(now time.Time, ev session.Event) bool {
	switch ev.(type) {
	case session.StreamReceived, session.StreamDelivered, session.StreamStopped:
	default:
		return false
	}
	switch {
	case l.xm != nil:
		l.xm.HandleSessionEvent(now, ev)
		l.drainTransfers(now)
	case l.xmLoading && len(l.xmHeld) < maxHeldStreamEvents:
		l.xmHeld = append(l.xmHeld, ev)
	default:
		l.e.log.Warn("stream event dropped: no transfer machine", "peer", l.peer)
	}
	return true
}

// transfersUp gives a newly established session to the transfer machine.
func (l *link) transfersUp(now time.Time) {
	if l.xm != nil && l.sess != nil {
		l.xm.SessionUp(now, l.sess)
		l.drainTransfers(now)
	}
}

// transfersDown tells the transfer machine the session is gone.
func (l *link) transfersDown(now time.Time) {
	l.xmHeld = nil
	if l.xm != nil {
		l.xm.SessionDown(now)
		l.drainTransfers(now)
	}
}

// closeTransfers makes the transfers' progress durable and closes their
// files: the program is quitting. The machine is not used afterwards.
func (l *link) closeTransfers(now time.Time) {
	if l.xm != nil {
		l.xm.Close(now)
		l.drainTransfers(now)
		l.xm = nil
	}
	l.xmLoading, l.xmHeld = false, nil
}

// cancelTransfers ends every unfinished transfer with the peer (it was
// removed or blocked): partial files go, and nothing reconnects for them.
func (l *link) cancelTransfers(now time.Time) {
	if l.xm == nil {
		return
	}
	for _, s := range l.xm.Transfers() {
		if !s.State.Terminal() {
			_ = l.xm.Cancel(now, s.ID) // not running any more is fine
		}
	}
	l.drainTransfers(now)
	if l.sess != nil && l.st == stEstablished {
		// The cancels go out before the session closes (once: if lost,
		// the peer hears them in a later session).
		l.writeSession()
	}
}

// ---- intents ----

// transferLink finds the link with peer for a file intent.
func (e *Engine) transferLink(peer string) (*link, error) {
	if e.quitting {
		return nil, ErrQuitting
	}
	l := e.links[peer]
	if l == nil {
		return nil, errors.New("not a contact: add the ID first")
	}
	if e.IsBlocked(peer) {
		return nil, errors.New("that ID is blocked: unblock it first")
	}
	if l.xm == nil {
		return nil, ErrTransfersLoading
	}
	return l, nil
}

// OfferFile offers the file at path (absolute, or relative to the
// program's directory) to peer: it is hashed (FileWork), then offered in
// the current or the next session, connecting if need be. Whether it can be
// read is known once hashed: FileOffered, or FileFailed saying why.
func (e *Engine) OfferFile(now time.Time, peer, path string) (transfer.ID, error) {
	e.at(now)
	if strings.TrimSpace(path) == "" {
		return transfer.ID{}, errors.New("name the file to send")
	}
	l, err := e.transferLink(peer)
	if err != nil {
		return transfer.ID{}, err
	}
	id, err := l.xm.Offer(now, path)
	if err != nil {
		return transfer.ID{}, fmt.Errorf("could not offer %s: %w", path, err)
	}
	l.lastActive = now
	l.drainTransfers(now)
	l.countTransfers()
	l.wantForTransfer(now)
	return id, nil
}

// wantForTransfer connects for a transfer that needs a session.
func (l *link) wantForTransfer(now time.Time) {
	if !l.xmWant || l.busy() {
		return
	}
	if l.st == stBackoff && !l.retryAt.IsZero() {
		return // a retry is planned already
	}
	l.blind = 0
	l.e.maybeConnect(now, l, triggerMail)
}

// FindTransfer finds the peer of the transfer id: the given peer's, or,
// when peer is empty, whichever peer has one with that ID.
func (e *Engine) FindTransfer(peer string, id transfer.ID) (string, transfer.Status, error) {
	if peer != "" {
		l := e.links[peer]
		if l != nil && l.xm != nil {
			if s, ok := l.xm.Transfer(id); ok {
				return peer, s, nil
			}
		}
		return "", transfer.Status{}, fmt.Errorf("file transfer %s: %w", id, transfer.ErrNoTransfer)
	}
	var found []*link
	var st transfer.Status
	for _, l := range e.sortedLinks() {
		if l.xm == nil {
			continue
		}
		if s, ok := l.xm.Transfer(id); ok {
			found = append(found, l)
			st = s
		}
	}
	switch len(found) {
	case 0:
		return "", transfer.Status{}, fmt.Errorf("file transfer %s: %w", id, transfer.ErrNoTransfer)
	case 1:
		return found[0].peer, st, nil
	}
	return "", transfer.Status{}, fmt.Errorf("%d peers have a file transfer %s: name the peer too", len(found), id)
}

// AcceptFile accepts peer's offer id: the file is saved in dir (created if
// missing) once it is checked to have room.
func (e *Engine) AcceptFile(now time.Time, peer string, id transfer.ID, dir string) error {
	e.at(now)
	if strings.TrimSpace(dir) == "" {
		return errors.New("name the folder to save the file in")
	}
	l, err := e.transferLink(peer)
	if err != nil {
		return err
	}
	if err := l.xm.Accept(now, id, dir); err != nil {
		return fileErr(err)
	}
	l.drainTransfers(now)
	l.countTransfers()
	l.wantForTransfer(now)
	return nil
}

// DeclineFile says no to peer's offer id.
func (e *Engine) DeclineFile(now time.Time, peer string, id transfer.ID) error {
	e.at(now)
	l, err := e.transferLink(peer)
	if err != nil {
		return err
	}
	if err := l.xm.Decline(now, id); err != nil {
		return fileErr(err)
	}
	l.drainTransfers(now)
	l.pump(now)
	return nil
}

// CancelFile ends transfer id with peer, in either direction; the peer is
// told now or in the next session, and a partial file is removed.
func (e *Engine) CancelFile(now time.Time, peer string, id transfer.ID) error {
	e.at(now)
	l, err := e.transferLink(peer)
	if err != nil {
		return err
	}
	if err := l.xm.Cancel(now, id); err != nil {
		return fileErr(err)
	}
	l.drainTransfers(now)
	l.pump(now)
	return nil
}

// fileErr says a transfer intent's error in plain words.
func fileErr(err error) error {
	switch {
	case errors.Is(err, transfer.ErrNoTransfer):
		return errors.New("there is no such file transfer")
	case errors.Is(err, transfer.ErrNotPending):
		return errors.New("that file offer was already answered")
	case errors.Is(err, transfer.ErrFinished):
		return errors.New("that file transfer has already ended")
	}
	return err
}

// Transfers returns peer's file transfers, oldest first (nil while they
// are being read).
func (e *Engine) Transfers(peer string) []transfer.Status {
	if l := e.links[peer]; l != nil && l.xm != nil {
		return l.xm.Transfers()
	}
	return nil
}

// TransferStats counts what the peer's transfer machine refused.
func (e *Engine) TransferStats(peer string) transfer.Stats {
	if l := e.links[peer]; l != nil && l.xm != nil {
		return l.xm.Stats()
	}
	return transfer.Stats{}
}
