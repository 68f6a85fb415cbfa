package conn

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/session/transfer"
)

// state is where a link's connection stands (finer than Phase).
type state int

const (
	stIdle        state = iota // nothing running
	stWaiting                  // wanted; the peer is offline: polling its presence
	stGathering                // waiting for my public address before offering
	stOffering                 // offer sent, waiting for the answer
	stPunching                 // the punch machine probes candidate pairs
	stHandshaking              // path selected, Noise handshake running
	stEstablished              // encrypted session up
	stBackoff                  // the last attempt failed; a retry is planned
	stFailed                   // the last attempt failed; waiting for a sign of the peer or the user
)

func (s state) String() string {
	return [...]string{"idle", "waiting", "gathering", "offering", "punching", "handshaking", "established", "backoff", "failed"}[s]
}

// trigger is what made the engine consider connecting.
type trigger int

const (
	triggerUser     trigger = iota // the user asked (opened the chat)
	triggerMail                    // a message was queued
	triggerStartup                 // my first presence read of a contact found it online
	triggerPresence                // a peer came online (or restarted)
	triggerRetry                   // a planned retry is due
	triggerChange                  // contacts loaded or changed
)

// link is the connection machine of one peer: it offers and answers,
// drives the punch machine and then the session machine of the current
// attempt, retries with backoff, waits for an offline peer's presence, and
// keeps what the screen shows about the peer. The engine routes inputs to
// it and collects its effects and notifications.
type link struct {
	e    *Engine
	peer string
	pub  [32]byte
	fp   string

	contact bool
	name    string // the contact's name, else the name the peer's offer gave
	ask     bool   // "ask me each time"

	st      state
	role    punch.Role
	sid     string    // the current (or last) attempt's session ID
	offered string    // the session ID of my latest offer (a late answer is still taken)
	offerAt time.Time // its sealed creation time
	secret  [32]byte
	auto    bool // the current attempt was started automatically
	sess    *session.Machine
	// The path carrying the session: from my socket sock to remote.
	sock     punch.SocketID
	local    netip.AddrPort
	remote   netip.AddrPort
	rtt      time.Duration
	early    []punch.Datagram
	inflight map[session.MessageID]bool
	measured bool // this side offered: the connected event has the whole split
	// outboxLoaded: the session's outbox read came back. Messages queued
	// before it are sent by it, in order; only later ones go directly.
	outboxLoaded bool
	since        time.Time // when the session was established
	peerAt       time.Time // the peer's sealed time of the signal that set up this attempt
	peerInst     string
	attemptAt    time.Time
	punchAt      time.Time
	pathAt       time.Time

	offerDeadline time.Time
	retryAt       time.Time
	backoff       time.Duration
	blind         int  // attempts since the last sign of the peer
	hold          bool // no automatic attempt until the user asks or the peer shows up anew
	userWant      bool // the user opened the chat (until Cancel)
	words         string
	detail        string

	queued     int
	lastActive time.Time
	typing     bool

	havePresence  bool
	presenceFound bool
	presence      Presence
	presenceAt    time.Time // when it was read
	lookupPending bool
	goneAt        time.Time // the path died or the peer hung up: offline until it is seen again
	pollAt        time.Time
	startup       bool // the first presence read after start is still to come
	presenceTold  bool
	toldOnline    bool

	told     bool
	lastTold PeerStatus

	// The peer's file transfers (transfers.go): xm once its records are
	// read (xmLoading while they are), the session's stream events held
	// meanwhile, and whether an unfinished transfer needs a session.
	xm        *transfer.Machine
	xmLoading bool
	xmHeld    []session.Event
	xmWant    bool

	// The attempt's punch machines (paths.go): one per path kind, the one
	// whose path carries the session, the config they share, whether the
	// relayed one waits for my relay's permissions, why those failed,
	// and when the session last moved paths (and whether the peer has
	// been heard on the new one since).
	runs       []*pathRun
	cur        *pathRun
	base       punch.Config
	permitting bool
	relayErr   string
	relayBy    time.Time // my offer or answer waits for my relay until then
	answerDue  bool      // my answer is still to go (waiting for my relay)
	movedAt    time.Time
	heardCur   bool
}

func newLink(e *Engine, peer string, pub [32]byte) *link {
	return &link{e: e, peer: peer, pub: pub, fp: identity.Fingerprint(e.cfg.Identity.Public, pub), inflight: map[session.MessageID]bool{}}
}

// display is how the peer is named in words.
func (l *link) display() string {
	if l.name != "" {
		return l.name
	}
	if len(l.peer) > 12 {
		return l.peer[:12] + "…"
	}
	return l.peer
}

// busy: an attempt is running or a session is up.
func (l *link) busy() bool {
	switch l.st {
	case stGathering, stOffering, stPunching, stHandshaking, stEstablished:
		return true
	}
	return false
}

// wanted: the user has a reason to talk (the chat is open, mail waits, a
// file transfer is unfinished).
func (l *link) wanted() bool { return l.userWant || l.queued > 0 || l.xmWant }

// reconnects: a contact I keep connected whenever we are both online.
func (l *link) reconnects() bool { return l.contact && !l.ask && !l.e.IsBlocked(l.peer) }

// online judges the presence read: known false means nothing was read.
func (l *link) online(now time.Time) (known, on bool) {
	if l.st == stEstablished {
		return true, true
	}
	if !l.havePresence {
		return false, false
	}
	p := l.presence
	switch {
	case !l.presenceFound, p.Offline:
		return true, false
	case now.Sub(p.LastSeen) > l.e.t.onlineFor():
		return true, false
	case !l.goneAt.IsZero() && !p.LastSeen.After(l.goneAt):
		return true, false
	}
	return true, true
}

// lookup reads the peer's presence unless a read is under way.
func (l *link) lookup() {
	if l.lookupPending || l.e.quitting {
		return
	}
	l.lookupPending = true
	l.e.do(LookupPresence{ID: l.peer})
}

// notePresence takes a presence read and acts on what changed.
func (l *link) notePresence(now time.Time, p Presence, found bool) {
	e := l.e
	prevKnown, prevOn := l.online(now)
	prevInst := l.presence.Instance
	l.havePresence, l.presenceFound, l.presence, l.presenceAt = true, found, p, now
	known, on := l.online(now)
	restarted := found && prevInst != "" && p.Instance != "" && p.Instance != prevInst
	// Only a change counts: the first read after adding a contact says
	// nothing about it having just started.
	cameOnline := on && prevKnown && (!prevOn || restarted)
	if cameOnline {
		// A sign of the peer: blind retries start over, a held failure
		// gets a new chance (the peer may have moved or restarted).
		l.hold = false
		l.blind = 0
	}
	l.tellPresence(now)
	startup := l.startup
	l.startup = false
	switch {
	case on && startup:
		e.maybeConnect(now, l, triggerStartup)
	case cameOnline:
		e.maybeConnect(now, l, triggerPresence)
	case known && !on && (l.st == stOffering || l.st == stGathering) && found && p.Offline:
		// It quit while my offer waited: withdraw and wait for it.
		l.sendCancel(now, l.sid)
		l.teardown(now)
		if l.wanted() {
			l.enterWaiting(now)
		}
	case l.st == stWaiting && on:
		e.maybeConnect(now, l, triggerPresence)
	}
	if l.st == stWaiting {
		l.pollAt = now.Add(e.t.WaitingPoll)
	}
}

// tellPresence reports a change of the peer's online state (never before
// Ready: a script sees ready first).
func (l *link) tellPresence(now time.Time) {
	if !l.e.ready {
		return
	}
	if now.IsZero() {
		now = l.e.lastNow
	}
	_, on := l.online(now)
	if l.presenceTold && on == l.toldOnline {
		return
	}
	l.presenceTold, l.toldOnline = true, on
	l.e.tell(PresenceChanged{Peer: l.peer, Name: l.presence.Name, Online: on, LastSeen: l.presence.LastSeen})
}

// maybeConnect starts an attempt if there is a reason to and nothing else
// is running. The reasons: the user's (chat open, mail queued), or
// reconnecting a contact automatically when both are online — done by me
// when I have just started (the first read of its presence) or, when it
// comes back later, by the side with the lower ID, so the two rarely offer
// at once (and crossing offers are settled when they do).
func (e *Engine) maybeConnect(now time.Time, l *link, tr trigger) {
	if e.quitting || !e.loaded || l.busy() || e.IsBlocked(l.peer) {
		return
	}
	if l.st == stBackoff && tr != triggerUser && tr != triggerRetry && !sansio.Due(l.retryAt, now) {
		return
	}
	if l.hold && tr != triggerUser && tr != triggerMail {
		return // a new message is the user asking again
	}
	known, on := l.online(now)
	auto := false
	if !l.wanted() {
		if !l.reconnects() || !known || !on {
			if l.st == stWaiting {
				l.st = stIdle
			}
			return
		}
		switch {
		case tr == triggerStartup, tr == triggerRetry:
		case tr == triggerPresence && e.me < l.peer:
		default:
			return
		}
		auto = true
	}
	if known && !on {
		// Offering to someone who is not there only leaves an offer in
		// their inbox to pop up later: wait for them instead.
		l.enterWaiting(now)
		return
	}
	l.connect(now, auto)
}

// enterWaiting shows "waiting for NAME" and polls the peer's presence. A
// presence read older than a poll is read again at once: it may predate
// the peer's start by a moment (both started together, say).
func (l *link) enterWaiting(now time.Time) {
	if l.st != stWaiting {
		l.st = stWaiting
		l.words = "waiting for " + l.display() + " to come online"
		l.e.tell(Waiting{Peer: l.peer, Words: l.words})
	}
	l.retryAt = time.Time{}
	l.pollAt = now.Add(l.e.t.WaitingPoll)
	if now.Sub(l.presenceAt) >= l.e.t.WaitingPoll/5 {
		l.pollAt = now
		l.lookup()
	}
}

// connect starts an attempt: an offer, once my public address is known.
func (l *link) connect(now time.Time, auto bool) {
	e := l.e
	l.retryAt = time.Time{}
	l.attemptAt = now
	l.auto = auto
	l.measured = true
	l.words = ""
	if e.discoveryStale(now) {
		// Refresh in the background; the cached address is most likely
		// still right, and waiting would delay every connection.
		e.startDiscovery(now)
	}
	e.wantRelay(now)
	if (len(e.cfg.STUN) > 0 && !e.discMapped) || e.relayPending() {
		// My relayed address travels only in the offer: it may wait a
		// moment (RelayWait) for an allocation under way.
		l.st = stGathering
		l.relayBy = e.relayWaitUntil()
		e.tell(Connecting{Peer: l.peer, Words: "finding my public address"})
		return
	}
	l.sendOffer(now)
}

// newSessionID returns a random session ID for an offer.
func (e *Engine) newSessionID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(e.rand, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// invitation is what I seal into an offer or answer.
func (l *link) invitation(now time.Time) identity.Invitation {
	e := l.e
	return identity.Invitation{Name: e.cfg.Name, Candidates: punch.EncodeCandidates(e.localCandidates(), e.nat),
		PunchSecret: l.secret, Created: now, Instance: e.instance, Auto: l.auto}
}

// sendOffer seals my candidates for the peer and sends the offer.
func (l *link) sendOffer(now time.Time) {
	e := l.e
	sid, err := e.newSessionID()
	if err == nil {
		_, err = io.ReadFull(e.rand, l.secret[:])
	}
	if err != nil {
		l.fail(now, ReasonInternal, "could not make a session key: "+err.Error(), "", false)
		return
	}
	inv := l.invitation(now)
	sealed, err := e.sealer.Seal(l.pub, sid, KindOffer.String(), inv, e.rand)
	if err != nil {
		l.fail(now, ReasonInternal, "could not seal the offer: "+err.Error(), "", false)
		return
	}
	l.sid, l.offered = sid, sid
	l.offerAt = time.UnixMilli(inv.Created.UnixMilli()) // as the peer will read it
	l.role = punch.Controlling
	l.st = stOffering
	l.offerDeadline = now.Add(e.t.OfferTimeout)
	e.log.Info("offer", "peer", l.peer, "session", sid, "auto", l.auto)
	e.do(SendSignal{Signal: Signal{From: e.me, To: l.peer, Kind: KindOffer, SessionID: sid, Payload: sealed}})
	e.tell(Connecting{Peer: l.peer, SessionID: sid, Words: "offer sent, waiting for " + l.display()})
}

// sendCancel withdraws my offer sid, or declines the peer's.
func (l *link) sendCancel(now time.Time, sid string) {
	l.e.sendCancel(now, l.peer, l.pub, sid)
}

func (e *Engine) sendCancel(now time.Time, peer string, pub [32]byte, sid string) {
	if sid == "" {
		return
	}
	sealed, err := e.sealer.Seal(pub, sid, KindCancel.String(),
		identity.Invitation{Name: e.cfg.Name, Created: now, Instance: e.instance}, e.rand)
	if err != nil {
		e.log.Warn("seal cancel", "err", err)
		return
	}
	e.do(SendSignal{Signal: Signal{From: e.me, To: peer, Kind: KindCancel, SessionID: sid, Payload: sealed}})
}

// answer runs the controlled side of an offer: punch at the offerer's
// candidates and answer with mine.
func (l *link) answer(now time.Time, o *pendingOffer) {
	e := l.e
	l.teardown(now)
	l.sid = o.key.sid
	l.secret = o.inv.PunchSecret
	l.role = punch.Controlled
	l.auto = false
	l.measured = false
	l.attemptAt = now
	l.peerAt, l.peerInst = o.inv.Created, o.inv.Instance
	l.words = ""
	l.retryAt = time.Time{}
	if !l.contact && o.inv.Name != "" {
		l.name = o.inv.Name
	}
	e.wantRelay(now)
	if !l.startPaths(now, o.cands, o.nat) {
		return
	}
	// Like an offer, the answer may wait a moment (RelayWait) for my
	// relayed address; my machines punch meanwhile.
	l.answerDue, l.relayBy = true, e.relayWaitUntil()
	e.tell(Connecting{Peer: l.peer, SessionID: l.sid, Words: "accepted, punching through NATs"})
	l.maybeAnswer(now)
	l.pump(now)
}

// sendAnswer seals my candidates for the peer and sends the answer.
func (l *link) sendAnswer(now time.Time) {
	e := l.e
	sealed, err := e.sealer.Seal(l.pub, l.sid, KindAnswer.String(), l.invitation(now), e.rand)
	if err != nil {
		l.fail(now, ReasonInternal, "could not seal the answer: "+err.Error(), "", false)
		return
	}
	e.log.Info("answer", "peer", l.peer, "session", l.sid)
	e.do(SendSignal{Signal: Signal{From: e.me, To: l.peer, Kind: KindAnswer, SessionID: l.sid, Payload: sealed}})
}

// teardown stops the attempt's machines (a live session tells the peer)
// and unregisters them; the link is idle afterwards.
func (l *link) teardown(now time.Time) {
	e := l.e
	l.transfersDown(now)
	if l.sess != nil {
		l.sess.Close(now)
		l.writeSession()
		l.sess = nil
	}
	l.stopPaths()
	l.sock, l.remote, l.local, l.rtt = 0, netip.AddrPort{}, netip.AddrPort{}, 0
	l.early = nil
	clear(l.inflight)
	if l.typing {
		l.typing = false
		e.tell(Typing{Peer: l.peer, Active: false})
	}
	l.st = stIdle
	e.noteRelayUse(now)
}

// fail ends the attempt, says why, and plans the next one: with backoff
// when the user has a reason to talk and a retry can help, otherwise on a
// sign of the peer or the user's next move.
func (l *link) fail(now time.Time, reason FailReason, words, detail string, retry bool) {
	e := l.e
	l.teardown(now)
	l.words, l.detail = words, detail
	e.log.Info("attempt failed", "peer", l.peer, "reason", reason, "words", words, "detail", detail)
	e.tell(Failed{Peer: l.peer, Reason: reason, Words: words, Detail: detail})
	l.retryAt = time.Time{}
	if retry && (l.wanted() || l.reconnects()) {
		switch {
		case l.blind < maxBlindRetries:
			if l.backoff == 0 {
				l.backoff = e.t.RetryMin
			} else if l.backoff *= 2; l.backoff > e.t.RetryMax {
				l.backoff = e.t.RetryMax
			}
			l.retryAt = now.Add(l.backoff)
		default:
			// Out of quick retries without a sign of the peer: try now and
			// then while there is still a reason to (a path blocked for
			// minutes while signalling works gives no sign either).
			l.retryAt = now.Add(e.t.SlowRetry)
		}
		l.st = stBackoff
		// A signalling outage says nothing about the peer: keep trying
		// (at the backoff's pace) until the backend answers again.
		if reason != ReasonSignalling {
			l.blind++
		}
		return
	}
	l.st = stFailed
	l.hold = true
	// Is it still there? A read tells whether to wait for it.
	l.lookup()
}

// closedByPeer: the session ended cleanly; the peer is gone until its
// presence says otherwise.
func (l *link) closedByPeer(now time.Time) {
	l.sess = nil // it ignores input from now on
	l.teardown(now)
	l.goneAt = now
	l.words = l.display() + " closed the chat"
	l.detail = ""
	l.e.tell(Closed{Peer: l.peer, Words: l.words})
	l.tellPresence(now)
	l.lookup()
	if l.wanted() {
		l.enterWaiting(now)
	}
}

// pathLost: the path went silent; the peer may be gone.
func (l *link) pathLost(now time.Time) {
	l.goneAt = now
	l.fail(now, ReasonPathLost, "the "+l.pathInfo().Words()+" path to "+l.display()+" went silent", "", true)
	l.tellPresence(now)
	l.lookup()
}

// ---- datagrams and the machines' outputs ----

func (l *link) handlePunch(now time.Time, tag punch.Tag, dg punch.Datagram) {
	r := l.runByTag(tag)
	if r == nil {
		return
	}
	r.m.HandleDatagramOn(dg.At, dg.Socket, dg.From, dg.Data)
	l.pump(now)
}

func (l *link) handleSession(now time.Time, dg punch.Datagram) {
	l.sess.HandleDatagram(dg.At, dg.Data)
	l.routeSeen(now, route{socket: dg.Socket, addr: dg.From}, dg.At)
	l.pump(now)
}

// holdEarly keeps a session datagram that came before my path selection.
func (l *link) holdEarly(dg punch.Datagram) {
	if len(l.early) < maxEarly {
		l.early = append(l.early, dg)
	}
}

func (l *link) writeSession() {
	for _, b := range l.sess.Transmits() {
		l.e.do(SendDatagram{Socket: l.sock, To: l.remote, Data: b})
	}
}

// pump sends what the machines want sent and handles their events until
// they are quiet (an event may produce more output).
func (l *link) pump(now time.Time) {
	for range 8 {
		quiet := !l.drainRuns(now)
		if s := l.sess; s != nil {
			if l.rtt == 0 && l.cur != nil {
				if rtt := l.cur.m.RTT(); rtt > 0 {
					// Measured just after the path was chosen on the
					// peer's probe: the handshake can follow it.
					l.rtt = rtt
					s.SetPathRTT(now, rtt)
				}
			}
			l.writeSession()
			for _, ev := range s.Events() {
				quiet = false
				l.sessionEvent(now, ev)
			}
		}
		if quiet {
			return
		}
	}
}

func (l *link) sessionEvent(now time.Time, ev session.Event) {
	e := l.e
	if l.transferEvent(now, ev) {
		return
	}
	switch ev := ev.(type) {
	case session.Established:
		l.st = stEstablished
		l.blind, l.backoff, l.hold = 0, 0, false
		l.words, l.detail = "", ""
		l.goneAt = time.Time{}
		l.lastActive = now
		l.outboxLoaded = false
		l.since = now
		e.log.Info("established", "peer", l.peer, "session", l.sid)
		c := Connected{Peer: l.peer, SessionID: l.sid, Path: l.pathInfo(),
			Punching: l.pathAt.Sub(l.punchAt), Handshake: now.Sub(l.pathAt)}
		if l.measured {
			c.Measured = true
			c.Signalling = l.punchAt.Sub(l.attemptAt)
		}
		e.tell(c)
		l.tellPresence(now)
		e.do(LoadOutbox{Peer: l.peer, SessionID: l.sid})
		l.transfersUp(now)
		e.noteRelayUse(now) // a direct session leaves my relay unused
	case session.Received:
		e.queueReceived(l.peer, l.sid, ev, now)
	case session.Delivered:
		if l.inflight[ev.ID] {
			delete(l.inflight, ev.ID)
			if l.queued > 0 {
				l.queued--
			}
		}
		e.do(StoreMarkDelivered{Peer: l.peer, IDs: []session.MessageID{ev.ID}})
		e.tell(MessageDelivered{Peer: l.peer, ID: ev.ID})
	case session.Typing:
		if l.typing != ev.Active {
			l.typing = ev.Active
			e.tell(Typing{Peer: l.peer, Active: ev.Active})
		}
	case session.Failed:
		if ev.Reason == session.ReasonPeerClosed {
			l.closedByPeer(now)
			return
		}
		l.sess = nil
		reason := ReasonSessionError
		if ev.Reason == session.ReasonHandshakeTimeout {
			reason = ReasonHandshake
		}
		l.fail(now, reason, ev.Error(), "", true)
	}
}

// sendStored hands stored messages to the live session, in order.
func (l *link) sendStored(now time.Time, recs []store.Record) {
	var ids []session.MessageID
	for _, r := range recs {
		if l.inflight[r.MsgID] {
			continue
		}
		if err := l.sess.Send(now, session.OutMessage{ID: r.MsgID, Body: []byte(r.Body), SentAt: r.At}); err != nil {
			l.e.log.Warn("session send", "peer", l.peer, "err", err)
			continue
		}
		l.inflight[r.MsgID] = true
		ids = append(ids, r.MsgID)
		l.e.tell(MessageSent{Peer: l.peer, ID: r.MsgID})
	}
	if len(ids) > 0 {
		l.e.do(StoreMarkSent{Peer: l.peer, IDs: ids})
	}
}

// queueReceived batches a received message into this input's store write.
func (e *Engine) queueReceived(peer, sid string, m session.Received, now time.Time) {
	r := e.received[peer]
	if r != nil && r.SessionID != sid {
		e.flushReceived()
		r = nil
	}
	if r == nil {
		r = &StoreReceived{Peer: peer, SessionID: sid, At: now}
		e.received[peer] = r
	}
	r.Msgs = append(r.Msgs, m)
}

// flushReceived turns the batched received messages into store effects.
func (e *Engine) flushReceived() {
	if len(e.received) == 0 {
		return
	}
	for _, l := range e.sortedLinks() {
		if r := e.received[l.peer]; r != nil {
			e.do(*r)
		}
	}
	clear(e.received)
}

// ---- timers ----

func (l *link) deadline() time.Time {
	d := l.pathsDeadline()
	if l.sess != nil {
		d = sansio.Earliest(d, l.sess.Deadline())
	}
	if l.xm != nil {
		d = sansio.Earliest(d, l.xm.Deadline())
	}
	switch l.st {
	case stOffering:
		d = sansio.Earliest(d, l.offerDeadline)
	case stBackoff:
		d = sansio.Earliest(d, l.retryAt)
	case stWaiting:
		if !l.lookupPending {
			d = sansio.Earliest(d, l.pollAt)
		}
	}
	return d
}

func (l *link) handleTimeout(now time.Time) {
	l.pathsTimeout(now)
	if l.sess != nil && sansio.Due(l.sess.Deadline(), now) {
		l.sess.HandleTimeout(now)
	}
	if l.xm != nil && sansio.Due(l.xm.Deadline(), now) {
		l.xm.HandleTimeout(now)
		l.drainTransfers(now)
	}
	switch {
	case l.st == stOffering && sansio.Due(l.offerDeadline, now):
		// Withdraw it so it can't pop up later at a peer who wasn't there.
		l.sendCancel(now, l.sid)
		l.fail(now, ReasonNoAnswer, l.display()+" did not answer (not running, or the request was not accepted)", "", true)
		return
	case l.st == stGathering && sansio.Due(l.relayBy, now):
		l.maybeOffer(now)
		return
	case l.answerDue && sansio.Due(l.relayBy, now):
		l.maybeAnswer(now)
		l.pump(now)
		return
	case l.st == stBackoff && sansio.Due(l.retryAt, now):
		l.retryAt = time.Time{}
		l.st = stIdle
		l.e.maybeConnect(now, l, triggerRetry)
		return
	case l.st == stWaiting && !l.lookupPending && sansio.Due(l.pollAt, now):
		l.pollAt = now.Add(l.e.t.WaitingPoll)
		l.lookup()
		return
	}
	l.pump(now)
}

// ---- status ----

func (l *link) status(now time.Time) PeerStatus {
	_, on := l.online(now)
	st := PeerStatus{ID: l.peer, Name: l.name, Contact: l.contact, AskEachTime: l.ask, Blocked: l.e.IsBlocked(l.peer), Online: on,
		Queued: l.queued, Typing: l.typing, LastActive: l.lastActive, Fingerprint: l.fp, SessionID: l.sid}
	switch l.st {
	case stWaiting:
		st.Phase, st.Words = PhaseWaiting, l.words
	case stGathering, stOffering, stPunching, stHandshaking:
		st.Phase = PhaseConnecting
		st.Words = map[state]string{
			stGathering:   "finding my public address",
			stOffering:    "waiting for " + l.display() + " to answer",
			stPunching:    "punching through NATs",
			stHandshaking: "securing the path",
		}[l.st]
	case stEstablished:
		st.Phase = PhaseConnected
		st.Since = l.since
		st.Path = l.pathInfo()
		if l.sess != nil {
			st.Stats = l.sess.Stats()
		}
	case stBackoff, stFailed:
		st.Phase, st.Words = PhaseFailed, l.words
	default:
		st.Words = l.words // e.g. "bob closed the chat"
	}
	return st
}

// String is for logs.
func (l *link) String() string { return fmt.Sprintf("link(%s %v %s)", l.display(), l.st, l.sid) }
