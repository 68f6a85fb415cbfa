package ui

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
)

// convState is where a peerLink's connection stands.
type convState int

const (
	convIdle        convState = iota // nothing running, nothing planned
	convGathering                    // waiting for STUN before offering
	convOffering                     // offer sent, waiting for the answer
	convPunching                     // punch machine probing candidate pairs
	convHandshaking                  // path selected, Noise handshake running
	convEstablished                  // encrypted session up
	convWaiting                      // last attempt failed; retryAt or a sign of the peer restarts
)

// maxEarly bounds session datagrams held for a peerLink whose peer
// selected the path a moment before its own punch machine did.
const maxEarly = 8

// peerLink is everything about one peer: its punch and session
// machines for the current attempt, and what makes the engine reconnect.
// Switching panes never touches it; several run at once.
type peerLink struct {
	peer string
	pub  [32]byte
	name string

	state     convState
	role      punch.Role
	sessionID string
	secret    [32]byte
	pm        *punch.Machine
	tag       punch.Tag
	sess      *session.Machine
	local     netip.AddrPort
	remote    netip.AddrPort
	punchFrom map[netip.AddrPort]bool // sources of authenticated punch packets
	early     []punch.Datagram        // session datagrams before PathSelected

	offerDeadline time.Time
	attemptAt     time.Time // when the current or last attempt began
	punchAt       time.Time // when this attempt's punch machine started
	pathAt        time.Time // when it selected the path
	retryAt       time.Time
	backoff       time.Duration
	blind         int  // attempts since the last sign of the peer
	everConnected bool // a session was established in this run
	declined      bool // the peer declined: don't retry until the user asks
	words         string

	queued   int // messages in the store's outbox
	inflight map[session.MessageID]bool
	unread   int
	lastAct  time.Time
	fp       string // safety number of the pair
}

// deadline is the earliest timer of this peerLink.
func (c *peerLink) deadline() time.Time {
	var d time.Time
	add := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if c.pm != nil {
		add(c.pm.Deadline())
	}
	if c.sess != nil {
		add(c.sess.Deadline())
	}
	switch c.state {
	case convOffering:
		add(c.offerDeadline)
	case convWaiting:
		add(c.retryAt)
	}
	return d
}

// connecting reports an attempt in progress or a live session.
func (c *peerLink) busy() bool {
	switch c.state {
	case convGathering, convOffering, convPunching, convHandshaking, convEstablished:
		return true
	}
	return false
}

func (c *peerLink) pathWords() string {
	switch c.state {
	case convEstablished:
		return fmt.Sprintf("direct, encrypted %v ⇄ %v", c.local, c.remote)
	case convGathering, convOffering:
		return "connecting: waiting for " + c.display() + " to answer"
	case convPunching:
		return "connecting: punching through NATs"
	case convHandshaking:
		return "connecting: securing the path"
	case convWaiting:
		return "not connected: " + c.words
	}
	return "not connected"
}

func (c *peerLink) display() string {
	if c.name != "" {
		return sanitize(c.name)
	}
	return abbrevID(c.peer)
}

func abbrevID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// incomingOffer waits for the user's accept or decline.
type incomingOffer struct {
	sig     signal.Signal
	pub     [32]byte
	inv     identity.Invitation
	cands   []punch.Candidate
	nat     punch.NATBehavior
	known   bool
	name    string
	expires time.Time
}

// conv returns the peerLink with peer, creating it.
func (m *Model) conv(peer string, pub [32]byte) *peerLink {
	c := m.convs[peer]
	if c == nil {
		c = &peerLink{peer: peer, pub: pub, inflight: map[session.MessageID]bool{}, fp: identity.Fingerprint(m.d.Identity.Public, pub)}
		m.convs[peer] = c
		if ct, ok := m.contact(peer); ok {
			c.name = ct.Name
		}
	}
	return c
}

// contact finds a contact by ID.
func (m *Model) contact(id string) (store.Contact, bool) {
	for _, c := range m.contacts {
		if c.ID == id {
			return c, true
		}
	}
	return store.Contact{}, false
}

// wantConnection: there is a reason to (re)connect without being asked.
func (m *Model) wantConnection(c *peerLink) bool {
	return !c.declined && (c.queued > 0 || m.open == c.peer)
}

// ---- connecting ----

// connect starts an attempt unless one is running: offer through
// signalling, after STUN when discovery is running or stale.
func (m *Model) connect(now time.Time, c *peerLink) {
	if c.busy() || m.quitting {
		return
	}
	c.retryAt = time.Time{}
	c.attemptAt = now
	if len(m.d.STUN) > 0 && m.discDone && now.Sub(m.discAt) > m.t.Rediscover {
		// Refresh in the background; the cached address is most likely
		// still right, and waiting would delay every connection.
		m.startDiscovery(now)
	}
	if len(m.d.STUN) > 0 && !m.discDone && m.reflexive == nil {
		c.state = convGathering
		m.emit(Event{Ev: "connecting", Peer: c.peer, Words: "finding my public address"})
		m.refreshContacts()
		return
	}
	m.sendOffer(now, c)
}

// localCandidates are the socket's host addresses plus what STUN found.
func (m *Model) localCandidates() []punch.Candidate {
	var cs []punch.Candidate
	if m.d.Socket != nil {
		cs = m.d.Socket.HostCandidates()
	}
	if m.reflexive != nil {
		dup := false
		for _, h := range cs {
			dup = dup || h.Addr == m.reflexive.Addr
		}
		if !dup {
			cs = append(cs, *m.reflexive)
		}
	}
	return cs
}

// newSessionID returns a random session ID for an offer.
func (m *Model) newSessionID() (string, error) {
	var b [12]byte
	if _, err := io.ReadFull(m.rand, b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// sendOffer seals my candidates for c's peer and sends the offer.
func (m *Model) sendOffer(now time.Time, c *peerLink) {
	sid, err := m.newSessionID()
	if err == nil {
		_, err = io.ReadFull(m.rand, c.secret[:])
	}
	if err != nil {
		m.attemptFailed(now, c, "internal", "could not make a session key: "+err.Error(), false)
		return
	}
	cands := m.localCandidates()
	inv := identity.Invitation{Name: m.d.Name, Candidates: punch.EncodeCandidates(cands, m.nat), PunchSecret: c.secret, Created: now}
	sealed, err := identity.SealInvitation(m.d.Identity, c.pub, sid, string(signal.KindOffer), inv, m.rand)
	if err != nil {
		m.attemptFailed(now, c, "internal", "could not seal the offer: "+err.Error(), false)
		return
	}
	c.sessionID = sid
	c.role = punch.Controlling
	c.state = convOffering
	c.offerDeadline = now.Add(m.t.OfferTimeout)
	c.words = ""
	m.log.Info("offer", "peer", c.peer, "session", sid, "candidates", len(cands))
	m.effect(sendSignal(m.ctx, m.d.Signaller, signal.Signal{From: m.me, To: c.peer, Kind: signal.KindOffer, SessionID: sid, Payload: sealed}))
	m.emit(Event{Ev: "connecting", Peer: c.peer, Session: sid, Words: "offer sent, waiting for " + c.display()})
	m.refreshContacts()
}

// sendCancel withdraws an offer or declines one, sealed so only the peer
// can trust it.
func (m *Model) sendCancel(peer string, pub [32]byte, sid string) {
	sealed, err := identity.SealInvitation(m.d.Identity, pub, sid, string(signal.KindCancel), identity.Invitation{Name: m.d.Name, Created: m.now()}, m.rand)
	if err != nil {
		m.log.Warn("seal cancel", "err", err)
		return
	}
	m.effect(sendSignal(m.ctx, m.d.Signaller, signal.Signal{From: m.me, To: peer, Kind: signal.KindCancel, SessionID: sid, Payload: sealed}))
}

// handleSignalSent: a failed offer or answer fails the attempt.
func (m *Model) handleSignalSent(now time.Time, msg signalSentMsg) {
	if msg.err == nil {
		return
	}
	m.log.Warn("send signal", "kind", msg.kind, "peer", msg.peer, "err", msg.err)
	c := m.convs[msg.peer]
	if c == nil || c.sessionID != msg.sessionID || msg.kind == signal.KindCancel {
		return
	}
	if c.state == convOffering || c.state == convPunching {
		m.attemptFailed(now, c, "signalling", "could not reach the signalling service: "+msg.err.Error(), true)
	}
}

// handleSignalEvent handles one event of the listener.
func (m *Model) handleSignalEvent(now time.Time, ev signal.Event) {
	switch ev := ev.(type) {
	case signal.HealthEvent:
		m.backendOK = ev.Err == nil
		m.backendErr = ""
		words := ev.Backend + " is reachable again"
		if ev.Err != nil {
			m.backendErr = "signalling unavailable (" + ev.Backend + "): " + ev.Err.Error()
			words = m.backendErr
		}
		m.emit(Event{Ev: "health", Backend: ev.Backend, OK: boolp(ev.Err == nil), Words: words})
		m.refreshStatus()
		if ev.Err == nil {
			// Back: planned retries needn't wait out their backoff.
			for _, c := range m.sortedConvs() {
				if c.state == convWaiting && !c.retryAt.IsZero() && m.wantConnection(c) {
					c.retryAt = now
				}
			}
		}
	case signal.RejectedEvent:
		m.log.Warn("signal rejected", "doc", ev.DocID, "reason", ev.Reason)
	case signal.SignalEvent:
		s := ev.Signal
		m.effect(ackSignal(m.ctx, m.d.Signaller, s.ID))
		pub, err := identity.ParseID(s.From)
		if err != nil {
			m.log.Warn("signal from a malformed ID", "from", s.From, "err", err)
			return
		}
		switch s.Kind {
		case signal.KindOffer:
			m.handleOffer(now, s, pub)
		case signal.KindAnswer:
			m.handleAnswer(now, s, pub)
		case signal.KindCancel:
			m.handleCancel(now, s, pub)
		}
	}
}

// handleOffer shows an offer, or accepts it at once when it re-connects a
// contact this run already talked to, or settles two crossing offers.
func (m *Model) handleOffer(now time.Time, s signal.Signal, pub [32]byte) {
	inv, err := identity.OpenInvitation(m.d.Identity, pub, s.SessionID, string(signal.KindOffer), s.Payload)
	if err != nil {
		m.log.Warn("offer does not open (forged or broken)", "from", s.From, "err", err)
		return
	}
	cands, nat, err := punch.DecodeCandidates(inv.Candidates)
	if err != nil {
		m.log.Warn("offer with malformed candidates", "from", s.From, "err", err)
		return
	}
	ct, known := m.contact(s.From)
	o := &incomingOffer{sig: s, pub: pub, inv: inv, cands: cands, nat: nat, known: known, name: inv.Name, expires: s.ExpiresAt}
	if known {
		o.name = ct.Name
	}
	c := m.convs[s.From]
	if c != nil && c.sessionID == s.SessionID {
		return // a redelivery of what is already running
	}
	if old := m.offers[s.SessionID]; old != nil && old.sig.From == s.From {
		return // a redelivery of what is already shown
	}
	if c != nil && known {
		switch {
		case c.state == convGathering || c.state == convOffering:
			// Both offered at once: the lower ID's offer wins, on both
			// sides, so exactly one attempt survives.
			if m.me < s.From {
				m.log.Info("crossing offers: mine wins", "peer", s.From)
				return
			}
			if c.state == convOffering {
				m.sendCancel(c.peer, c.pub, c.sessionID)
			}
			m.startAnswer(now, c, o)
			return
		case c.everConnected:
			// A contact we talked to this run is re-connecting (its path
			// or program restarted): the user already agreed.
			m.startAnswer(now, c, o)
			return
		}
	}
	for sid, old := range m.offers {
		if old.sig.From == s.From {
			delete(m.offers, sid)
			m.screen.HideOffer(sid)
		}
	}
	m.offers[s.SessionID] = o
	fp := identity.Fingerprint(m.d.Identity.Public, pub)
	m.screen.ShowOffer(OfferView{ContactID: s.From, Name: o.name, Known: known, Fingerprint: fp, SessionID: s.SessionID})
	m.emit(Event{Ev: "offer", From: s.From, Name: sanitize(o.name), Known: boolp(known), Session: s.SessionID, Fingerprint: fp})
}

// accept answers a shown offer.
func (m *Model) accept(now time.Time, sid, addAs string) {
	o := m.offers[sid]
	if o == nil {
		m.showError("that offer is gone (it expired or was withdrawn)")
		return
	}
	delete(m.offers, sid)
	m.screen.HideOffer(sid)
	if addAs != "" && !o.known {
		m.addContact(addAs, o.sig.From)
		o.name = addAs
	}
	c := m.conv(o.sig.From, o.pub)
	if c.name == "" {
		c.name = o.name
	}
	// Accepting opens that chat (the screen shows it).
	m.open = c.peer
	c.unread = 0
	if m.d.Store != nil {
		m.storeOp(loadHistory(m.d.Store, c.peer))
	}
	m.startAnswer(now, c, o)
	m.refreshStatus()
}

// decline refuses a shown offer and tells the offerer.
func (m *Model) decline(now time.Time, sid string) {
	o := m.offers[sid]
	if o == nil {
		return
	}
	delete(m.offers, sid)
	m.screen.HideOffer(sid)
	m.sendCancel(o.sig.From, o.pub, sid)
}

// startAnswer runs the controlled side of an offer: punch at the
// offerer's candidates and answer with mine.
func (m *Model) startAnswer(now time.Time, c *peerLink, o *incomingOffer) {
	m.teardown(now, c)
	sid := o.sig.SessionID
	cands := m.localCandidates()
	c.sessionID = sid
	c.secret = o.inv.PunchSecret
	c.role = punch.Controlled
	c.attemptAt = now
	c.declined = false
	c.words = ""
	if !m.startPunch(now, c, cands, o.cands, o.nat) {
		return
	}
	inv := identity.Invitation{Name: m.d.Name, Candidates: punch.EncodeCandidates(cands, m.nat), PunchSecret: c.secret, Created: now}
	sealed, err := identity.SealInvitation(m.d.Identity, c.pub, sid, string(signal.KindAnswer), inv, m.rand)
	if err != nil {
		m.attemptFailed(now, c, "internal", "could not seal the answer: "+err.Error(), false)
		return
	}
	m.log.Info("answer", "peer", c.peer, "session", sid)
	m.effect(sendSignal(m.ctx, m.d.Signaller, signal.Signal{From: m.me, To: c.peer, Kind: signal.KindAnswer, SessionID: sid, Payload: sealed}))
	m.emit(Event{Ev: "connecting", Peer: c.peer, Session: sid, Words: "accepted, punching through NATs"})
	m.pumpConv(now, c)
	m.refreshContacts()
}

// handleAnswer starts the controlling punch when my offer is answered.
func (m *Model) handleAnswer(now time.Time, s signal.Signal, pub [32]byte) {
	c := m.convs[s.From]
	// An answer to my latest offer is taken even if that offer timed out
	// meanwhile (the peer accepted just late): nothing newer is running.
	late := c != nil && c.state == convWaiting && c.role == punch.Controlling
	if c == nil || (c.state != convOffering && !late) || c.sessionID != s.SessionID {
		m.log.Info("answer for no pending offer", "from", s.From, "session", s.SessionID)
		return
	}
	inv, err := identity.OpenInvitation(m.d.Identity, pub, s.SessionID, string(signal.KindAnswer), s.Payload)
	if err != nil {
		m.log.Warn("answer does not open (forged or broken)", "from", s.From, "err", err)
		return
	}
	cands, nat, err := punch.DecodeCandidates(inv.Candidates)
	if err != nil {
		m.log.Warn("answer with malformed candidates", "from", s.From, "err", err)
		return
	}
	c.retryAt = time.Time{}
	if m.startPunch(now, c, m.localCandidates(), cands, nat) {
		m.emit(Event{Ev: "connecting", Peer: c.peer, Session: c.sessionID, Words: "answered, punching through NATs"})
		m.pumpConv(now, c)
		m.refreshContacts()
	}
}

// handleCancel withdraws a shown offer or ends my attempt the peer declined.
func (m *Model) handleCancel(now time.Time, s signal.Signal, pub [32]byte) {
	if _, err := identity.OpenInvitation(m.d.Identity, pub, s.SessionID, string(signal.KindCancel), s.Payload); err != nil {
		m.log.Warn("cancel does not open (forged or broken)", "from", s.From, "err", err)
		return
	}
	if o := m.offers[s.SessionID]; o != nil && o.sig.From == s.From {
		delete(m.offers, s.SessionID)
		m.screen.HideOffer(s.SessionID)
		return
	}
	c := m.convs[s.From]
	if c != nil && c.sessionID == s.SessionID && (c.state == convOffering || c.state == convPunching) {
		c.declined = true
		m.attemptFailed(now, c, "declined", c.display()+" declined the chat request", false)
	}
}

// startPunch creates and starts c's punch machine.
func (m *Model) startPunch(now time.Time, c *peerLink, local, remote []punch.Candidate, remoteNAT punch.NATBehavior) bool {
	pm, err := punch.NewMachine(punch.Config{
		Rand: m.rand,
		Role: c.role, Local: local, Remote: remote, Secret: c.secret, SessionID: c.sessionID,
		LocalNAT: m.nat, RemoteNAT: remoteNAT,
		KeepaliveInterval: m.d.PunchKeepalive, PathTimeout: m.d.PunchPathTimeout, PunchTimeout: m.d.PunchTimeout,
	})
	if err != nil {
		m.attemptFailed(now, c, "no-candidates", "could not start punching: "+err.Error(), false)
		return false
	}
	c.pm = pm
	c.tag = pm.Tag()
	c.punchFrom = map[netip.AddrPort]bool{}
	c.early = nil
	m.byTag[c.tag] = c
	c.state = convPunching
	c.punchAt = now
	pm.Start(now)
	return true
}

// teardown stops c's machines (telling a live peer) and unregisters them.
func (m *Model) teardown(now time.Time, c *peerLink) {
	if c.sess != nil {
		c.sess.Close(now)
		m.writeSession(c)
		c.sess = nil
	}
	if c.pm != nil {
		if m.byTag[c.tag] == c {
			delete(m.byTag, c.tag)
		}
		c.pm = nil
	}
	if c.remote.IsValid() && m.byRemote[c.remote] == c {
		delete(m.byRemote, c.remote)
	}
	c.remote, c.local = netip.AddrPort{}, netip.AddrPort{}
	c.early = nil
	clear(c.inflight)
	c.state = convIdle
}

// attemptFailed ends the current attempt, tells the user why, and plans the
// next one: soon with backoff when mail waits or the chat is open (retry),
// otherwise on a sign of the peer or the user's next move.
func (m *Model) attemptFailed(now time.Time, c *peerLink, reason, words string, retry bool) {
	m.teardown(now, c)
	c.state = convWaiting
	c.words = words
	m.log.Info("attempt failed", "peer", c.peer, "reason", reason, "words", words)
	m.emit(Event{Ev: "failure", Peer: c.peer, Reason: reason, Words: words})
	if m.open == c.peer {
		m.showError(c.display() + ": " + words)
	}
	c.retryAt = time.Time{}
	if retry && m.wantConnection(c) && c.blind < maxBlindRetries {
		if c.backoff == 0 {
			c.backoff = m.t.RetryMin
		} else if c.backoff *= 2; c.backoff > m.t.RetryMax {
			c.backoff = m.t.RetryMax
		}
		c.retryAt = now.Add(c.backoff)
		// A signalling outage says nothing about the peer: keep trying
		// (at the backoff's pace) until the backend answers again.
		if reason != "signalling" {
			c.blind++
		}
	}
	m.refreshContacts()
	m.refreshStatus()
}

// convTimeout runs c's due timers.
func (m *Model) convTimeout(now time.Time, c *peerLink) {
	if c.pm != nil {
		if d := c.pm.Deadline(); !d.IsZero() && !now.Before(d) {
			c.pm.HandleTimeout(now)
		}
	}
	if c.sess != nil {
		if d := c.sess.Deadline(); !d.IsZero() && !now.Before(d) {
			c.sess.HandleTimeout(now)
		}
	}
	switch {
	case c.state == convOffering && !now.Before(c.offerDeadline):
		// Withdraw it so it can't pop up later at a peer who wasn't there.
		m.sendCancel(c.peer, c.pub, c.sessionID)
		m.attemptFailed(now, c, "no-answer", c.display()+" did not answer (offline, or the offer was not accepted)", true)
		return
	case c.state == convWaiting && !c.retryAt.IsZero() && !now.Before(c.retryAt):
		c.retryAt = time.Time{}
		m.connect(now, c)
		return
	}
	m.pumpConv(now, c)
}

// ---- packets ----

// handleDatagram demultiplexes one datagram to discovery, a punch machine
// (by tag) or a session (by source address).
func (m *Model) handleDatagram(now time.Time, dg punch.Datagram) {
	switch punch.Classify(dg.Data) {
	case punch.ClassSTUN:
		if m.disc != nil && !m.discDone {
			m.disc.HandleDatagram(dg.At, dg.From, dg.Data)
			m.pumpDiscovery(now)
		}
	case punch.ClassPunch:
		tag, ok := punch.PacketTag(dg.Data)
		if !ok {
			return
		}
		c := m.byTag[tag]
		if c == nil || c.pm == nil {
			return
		}
		c.pm.HandleDatagram(dg.At, dg.From, dg.Data)
		c.punchFrom[dg.From] = true
		m.pumpConv(now, c)
	case punch.ClassSession:
		if c := m.byRemote[dg.From]; c != nil && c.sess != nil {
			c.sess.HandleDatagram(dg.At, dg.Data)
			if c.pm != nil {
				c.pm.NoteReceived(dg.At)
			}
			m.pumpConv(now, c)
			return
		}
		// The peer may have selected the path (and sent its handshake) a
		// moment before my punch machine did: hold a few for PathSelected.
		for _, c := range m.convs {
			if c.state == convPunching && c.punchFrom[dg.From] && len(c.early) < maxEarly {
				c.early = append(c.early, dg)
				return
			}
		}
	}
}

// write sends one datagram; UDP sends don't block for long, and a failure
// concerns one packet (the machines retransmit).
func (m *Model) write(b []byte, to netip.AddrPort) {
	if m.d.Socket == nil {
		return
	}
	if err := m.d.Socket.WriteTo(b, to); err != nil {
		m.log.Debug("udp write", "to", to, "err", err)
	}
}

func (m *Model) writeSession(c *peerLink) {
	for _, b := range c.sess.Transmits() {
		m.write(b, c.remote)
	}
}

// pumpConv sends what c's machines want sent and handles their events
// until they are quiet (an event may produce more output).
func (m *Model) pumpConv(now time.Time, c *peerLink) {
	for range 8 {
		quiet := true
		if pm := c.pm; pm != nil {
			for _, t := range pm.Transmits() {
				m.write(t.Data, t.To)
			}
			for _, ev := range pm.Events() {
				quiet = false
				m.punchEvent(now, c, ev)
			}
		}
		if s := c.sess; s != nil {
			m.writeSession(c)
			for _, ev := range s.Events() {
				quiet = false
				m.sessionEvent(now, c, ev)
			}
		}
		if quiet {
			return
		}
	}
}

// punchEvent handles what the punch machine reports.
func (m *Model) punchEvent(now time.Time, c *peerLink, ev punch.Event) {
	switch ev := ev.(type) {
	case punch.PathSelected:
		if c.sess != nil {
			if ev.Remote != c.remote {
				delete(m.byRemote, c.remote)
				c.remote, c.local = ev.Remote, ev.Local
				m.byRemote[c.remote] = c
			}
			return
		}
		c.remote, c.local = ev.Remote, ev.Local
		m.byRemote[c.remote] = c
		s, err := session.NewMachine(session.Config{
			Initiator:    c.role == punch.Controlling,
			LocalPrivate: m.d.Identity.Private, LocalPublic: m.d.Identity.Public,
			RemoteStatic: c.pub, SessionID: c.sessionID, Rand: m.rand, Timers: m.d.SessionTimers, PathRTT: ev.RTT,
		})
		if err != nil {
			m.attemptFailed(now, c, "internal", "could not start the encrypted session: "+err.Error(), false)
			return
		}
		c.sess = s
		c.state = convHandshaking
		c.pathAt = now
		m.log.Info("path selected", "peer", c.peer, "local", ev.Local, "remote", ev.Remote, "rtt", ev.RTT)
		s.Start(now)
		early := c.early
		c.early = nil
		for _, dg := range early {
			if dg.From == c.remote {
				s.HandleDatagram(dg.At, dg.Data)
			}
		}
		m.refreshContacts()
	case punch.Failed:
		// A symmetric NAT stays symmetric: retrying blindly won't help.
		m.attemptFailed(now, c, ev.Reason.String(), ev.Reason.Message(), ev.Reason != punch.ReasonSymmetricNAT)
	case punch.PathLost:
		m.attemptFailed(now, c, "path-lost", "the direct path to "+c.display()+" went silent", true)
	}
}

// sessionEvent handles what the session machine reports.
func (m *Model) sessionEvent(now time.Time, c *peerLink, ev session.Event) {
	switch ev := ev.(type) {
	case session.Established:
		c.state = convEstablished
		c.everConnected = true
		c.blind, c.backoff = 0, 0
		c.words = ""
		c.lastAct = now
		m.log.Info("established", "peer", c.peer, "session", c.sessionID)
		m.emit(Event{Ev: "connected", Peer: c.peer, Path: "direct", Local: c.local.String(), Remote: c.remote.String(), Encrypted: boolp(true), Session: c.sessionID,
			SignalMs: msBetween(c.attemptAt, c.punchAt), PunchMs: msBetween(c.punchAt, c.pathAt), HandshakeMs: msBetween(c.pathAt, now)})
		if m.d.Store != nil {
			m.storeOp(loadOutbox(m.d.Store, c.peer, c.sessionID))
		}
		m.refreshContacts()
		m.refreshStatus()
	case session.Received:
		if m.d.Store == nil {
			return
		}
		m.storeOp(storeReceived(m.d.Store, c.peer, c.sessionID, ev.ID, string(ev.Body), now))
	case session.Delivered:
		if c.inflight[ev.ID] {
			delete(c.inflight, ev.ID)
			if c.queued > 0 {
				c.queued--
			}
		}
		if m.d.Store != nil {
			m.storeOp(markDelivered(m.d.Store, c.peer, ev.ID))
		}
		m.screen.SetMark(c.peer, ev.ID.String(), MarkDelivered)
		m.emit(Event{Ev: "receipt", To: c.peer, ID: ev.ID.String()})
	case session.Typing:
		m.screen.SetTyping(c.peer, ev.Active)
		m.emit(Event{Ev: "typing", Peer: c.peer, Active: boolp(ev.Active)})
	case session.Failed:
		c.sess = nil // it ignores input from now on; nothing to close
		m.attemptFailed(now, c, "session", ev.Error(), true)
	}
}

// ---- discovery ----

// startDiscovery (re)runs STUN discovery; with no servers it is done at once.
func (m *Model) startDiscovery(now time.Time) {
	if len(m.d.STUN) == 0 {
		m.discDone, m.discAt = true, now
		m.checkReady()
		return
	}
	var local []netip.AddrPort
	if m.d.Socket != nil {
		for _, c := range m.d.Socket.HostCandidates() {
			local = append(local, c.Addr)
		}
	}
	// Knowing my own addresses lets discovery tell "no NAT" apart.
	m.disc = punch.NewDiscovery(punch.DiscoveryConfig{Rand: m.rand, Servers: m.d.STUN, Local: local})
	m.discDone = false
	m.disc.Start(now)
	m.pumpDiscovery(now)
}

// pumpDiscovery sends STUN requests and takes the result when done, then
// offers for every peerLink that waited for it.
func (m *Model) pumpDiscovery(now time.Time) {
	for _, t := range m.disc.Transmits() {
		m.write(t.Data, t.To)
	}
	res, ok := m.disc.Result()
	if !ok {
		return
	}
	m.discDone, m.discAt = true, now
	if res.Err != nil || !res.Reflexive.Addr.IsValid() {
		m.log.Warn("STUN discovery", "err", res.Err)
		m.reflexive = nil
	} else {
		r := res.Reflexive
		m.reflexive = &r
		m.nat = res.NAT
		m.log.Info("STUN discovery", "reflexive", r.Addr, "mapping", res.NAT.Mapping, "filtering", res.NAT.Filtering)
	}
	m.refreshStatus()
	m.checkReady()
	for _, c := range m.sortedConvs() {
		if c.state == convGathering {
			m.sendOffer(now, c)
		}
	}
}

func (m *Model) sortedConvs() []*peerLink {
	out := make([]*peerLink, 0, len(m.convs))
	for _, c := range m.convs {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].peer < out[j].peer })
	return out
}

// ---- messages ----

// openChat shows a chat and connects to its peer.
func (m *Model) openChat(now time.Time, peer string) {
	c := m.convs[peer]
	if c == nil {
		pub, err := identity.ParseID(peer)
		if err != nil {
			m.showError("not a contact: " + err.Error())
			return
		}
		c = m.conv(peer, pub)
	}
	m.open = peer
	c.unread = 0
	c.declined = false
	c.blind = 0
	if m.d.Store != nil {
		m.storeOp(loadHistory(m.d.Store, peer))
	}
	if !c.busy() {
		m.connect(now, c)
	}
	m.refreshContacts()
	m.refreshStatus()
}

// sendText stores a message in the outbox, then sends it if a session is up
// (the storedMsg handler does that) or connects.
func (m *Model) sendText(now time.Time, peer, text string) {
	if strings.TrimSpace(text) == "" {
		return
	}
	if len(text) > session.MaxMessageSize {
		m.showError(fmt.Sprintf("message too long (%d bytes; at most %d)", len(text), session.MaxMessageSize))
		return
	}
	c := m.convs[peer]
	if c == nil {
		m.showError("not a contact: add the ID first")
		return
	}
	if m.d.Store == nil {
		return
	}
	id, err := session.NewMessageID(m.rand)
	if err != nil {
		m.showError("could not number the message: " + err.Error())
		return
	}
	c.declined = false
	c.lastAct = now
	m.screen.AppendMessage(peer, MessageView{Key: id.String(), Mine: true, Sender: m.d.Name, Body: text, At: now, Mark: MarkQueued})
	m.storeOp(queueMessage(m.d.Store, peer, id, text, now))
}

// handleStored continues after a store write: an outgoing message goes to a
// live session or waits; an incoming one is shown and committed.
func (m *Model) handleStored(now time.Time, msg storedMsg) {
	c := m.convs[msg.peer]
	if msg.mine {
		if msg.err != nil {
			m.log.Error("queue message", "peer", msg.peer, "err", msg.err)
			m.showError("could not store the message, so it was not sent: " + msg.err.Error())
			return
		}
		if c == nil {
			return
		}
		c.queued++
		if c.state == convEstablished && c.sess != nil {
			m.sendOne(now, c, msg.id, msg.body, msg.at)
			m.pumpConv(now, c)
			return
		}
		m.emit(Event{Ev: "queued", To: msg.peer, ID: msg.id.String(), Body: msg.body})
		if c.state == convWaiting && !c.retryAt.IsZero() {
			return // a retry is planned already
		}
		c.blind = 0
		m.connect(now, c)
		return
	}
	if msg.err != nil {
		// Not committed: the peer resends it in a later session.
		m.log.Error("store received message", "peer", msg.peer, "err", msg.err)
		m.showError("could not store a received message: " + msg.err.Error())
		return
	}
	if c == nil {
		return
	}
	if !msg.dup {
		c.lastAct = now
		name := c.display()
		m.screen.AppendMessage(msg.peer, MessageView{Key: msg.id.String(), Sender: name, Body: msg.body, At: msg.at, Mark: MarkReceived})
		if m.open != msg.peer && m.screen.Focused() != msg.peer {
			c.unread++
		}
		m.emit(Event{Ev: "message", From: msg.peer, ID: msg.id.String(), Body: msg.body, At: msg.at.UTC().Format(time.RFC3339Nano)})
		m.refreshContacts()
	}
	if c.sess != nil && c.sessionID == msg.session {
		if err := c.sess.Commit(now, msg.id); err != nil && !errors.Is(err, session.ErrClosed) {
			m.log.Warn("commit", "peer", c.peer, "err", err)
		}
		m.pumpConv(now, c)
	}
}

// sendOne hands one stored message to the live session.
func (m *Model) sendOne(now time.Time, c *peerLink, id session.MessageID, body string, at time.Time) {
	if c.inflight[id] {
		return
	}
	if err := c.sess.Send(now, session.OutMessage{ID: id, Body: []byte(body), SentAt: at}); err != nil {
		m.log.Warn("session send", "peer", c.peer, "err", err)
		return
	}
	c.inflight[id] = true
	if m.d.Store != nil {
		m.storeOp(markSent(m.d.Store, c.peer, id))
	}
	m.screen.SetMark(c.peer, id.String(), MarkSent)
	m.emit(Event{Ev: "sent", To: c.peer, ID: id.String()})
}

// handleOutbox sends what waited for a fresh session, in order.
func (m *Model) handleOutbox(now time.Time, msg outboxMsg) {
	c := m.convs[msg.peer]
	if msg.err != nil {
		m.showError(msg.err.Error())
		return
	}
	if c == nil || c.sess == nil || c.state != convEstablished || c.sessionID != msg.session {
		return
	}
	c.queued = len(msg.recs)
	for _, r := range msg.recs {
		m.sendOne(now, c, r.MsgID, r.Body, r.At)
	}
	m.pumpConv(now, c)
	m.refreshContacts()
}

// handleHistory shows a chat's stored messages.
func (m *Model) handleHistory(msg historyMsg) {
	if msg.err != nil {
		m.showError("could not read the history: " + msg.err.Error())
		return
	}
	c := m.convs[msg.peer]
	views := make([]MessageView, 0, len(msg.recs))
	for _, r := range msg.recs {
		v := MessageView{Key: r.MsgID.String(), Mine: r.Mine, Body: r.Body, At: r.At}
		switch {
		case !r.Mine:
			v.Mark = MarkReceived
			if c != nil {
				v.Sender = c.display()
			}
		case r.State == store.StateDelivered:
			v.Mark = MarkDelivered
			v.Sender = m.d.Name
		case c != nil && c.inflight[r.MsgID]:
			v.Mark = MarkSent
			v.Sender = m.d.Name
		default:
			v.Mark = MarkQueued
			v.Sender = m.d.Name
		}
		views = append(views, v)
	}
	m.screen.SetMessages(msg.peer, views)
}

// setTyping passes the local typing state to a live session.
func (m *Model) setTyping(now time.Time, peer string, active bool) {
	c := m.convs[peer]
	if c == nil || c.sess == nil || c.state != convEstablished {
		return
	}
	c.sess.SetTyping(now, active)
	m.pumpConv(now, c)
}

// ---- contacts and presence ----

// addContact validates an ID and stores the contact.
func (m *Model) addContact(name, id string) {
	name = strings.TrimSpace(name)
	pub, err := identity.ParseID(strings.TrimSpace(id))
	if err != nil {
		m.showError(err.Error())
		return
	}
	id = identity.IDFromPublic(pub)
	if id == m.me {
		m.showError("that is my own ID")
		return
	}
	if name == "" {
		m.showError("a contact needs a name")
		return
	}
	if _, ok := m.contact(id); ok {
		m.showError("that ID is already a contact")
		return
	}
	// Known at once, so a command right after "add" (or an offer just
	// accepted) finds it; the store's list replaces this once written.
	now := m.now()
	m.contacts = append(m.contacts, store.Contact{Name: name, ID: id, Public: pub, Added: now})
	m.conv(id, pub).name = name
	m.refreshContacts()
	if m.d.Signaller != nil {
		m.effect(lookupPresence(m.ctx, m.d.Signaller, id))
	}
	if m.d.Store == nil {
		return
	}
	st := m.d.Store
	m.storeOp(changeContacts(st, id, func() error {
		_, err := st.AddContact(name, id, now)
		return err
	}, "could not add "+name))
}

func (m *Model) renameContact(id, name string) {
	name = strings.TrimSpace(name)
	if name == "" || m.d.Store == nil {
		return
	}
	st := m.d.Store
	m.storeOp(changeContacts(st, "", func() error { return st.RenameContact(id, name) }, "could not rename the contact"))
}

func (m *Model) removeContact(now time.Time, id string) {
	if c := m.convs[id]; c != nil {
		m.teardown(now, c)
		delete(m.convs, id)
	}
	if m.open == id {
		m.open = ""
	}
	if m.d.Store == nil {
		return
	}
	st := m.d.Store
	m.storeOp(changeContacts(st, "", func() error { return st.RemoveContact(id) }, "could not remove the contact"))
}

// handleContacts takes a fresh contact list from the store.
func (m *Model) handleContacts(now time.Time, msg contactsMsg) {
	first := !m.loaded
	m.loaded = true
	if first {
		// Signals are judged against the contacts (known or not), so the
		// listener starts once they are here.
		m.effect(listenSignals(m.ctx, m.d.Signaller))
	}
	if msg.err != nil {
		m.log.Warn("contacts", "err", msg.err)
		m.showError(msg.words)
		return
	}
	m.contacts = msg.contacts
	for _, ct := range m.contacts {
		c := m.conv(ct.ID, ct.Public)
		c.name = ct.Name
		if n, ok := msg.outbox[ct.ID]; ok {
			c.queued = n
		}
		if msg.added == ct.ID {
			m.emit(Event{Ev: "contact", ID: ct.ID, Name: ct.Name})
		}
	}
	m.refreshContacts()
	if first {
		m.presenceLookups()
	}
}

// presenceRound publishes my presence and looks up every contact's.
func (m *Model) presenceRound(now time.Time) {
	m.presenceAt = now.Add(m.t.Presence)
	if m.d.Signaller == nil {
		return
	}
	m.effect(publishPresence(m.ctx, m.d.Signaller, signal.Presence{ID: m.me, DisplayName: m.d.Name, PublicKey: m.d.Identity.Public[:]}))
	m.presenceLookups()
}

func (m *Model) presenceLookups() {
	if m.d.Signaller == nil {
		return
	}
	for _, ct := range m.contacts {
		m.effect(lookupPresence(m.ctx, m.d.Signaller, ct.ID))
	}
}

// online judges a presence record fresh enough to count.
func (m *Model) online(now time.Time, p signal.Presence) bool {
	return !p.LastSeen.IsZero() && now.Sub(p.LastSeen) < m.t.Presence*5/2
}

// handlePresence records a lookup; a contact that shows up with mail
// waiting for it is connected to.
func (m *Model) handlePresence(now time.Time, msg presenceMsg) {
	if msg.err != nil {
		if !errors.Is(msg.err, signal.ErrNotFound) {
			m.log.Debug("presence lookup", "peer", msg.id, "err", msg.err)
		}
		return
	}
	prev, had := m.presence[msg.id]
	m.presence[msg.id] = msg.p
	on := m.online(now, msg.p)
	if !had || m.online(now, prev) != on {
		m.emit(Event{Ev: "presence", Peer: msg.id, Name: sanitize(msg.p.DisplayName), Online: boolp(on), LastSeen: msg.p.LastSeen.UTC().Format(time.RFC3339)})
	}
	c := m.convs[msg.id]
	if c == nil || !on || c.busy() || !m.wantConnection(c) {
		m.refreshContacts()
		return
	}
	// Mail waits and the peer is there: connect if nothing was tried yet,
	// or if it just came online (a fresh start on its side) and no retry
	// is planned. A peer that stays online after a failure that retrying
	// can't fix (a symmetric NAT) is not offered to again every round.
	cameOnline := !had || !m.online(now, prev)
	if c.retryAt.IsZero() && (c.state == convIdle || cameOnline) {
		c.blind = 0
		m.connect(now, c)
	}
	m.refreshContacts()
}

// refreshContacts pushes the contacts pane's rows to the screen when they
// changed. finish calls it after every message, so a receipt, a state
// change or an expired presence always shows.
func (m *Model) refreshContacts() {
	now := m.now()
	views := make([]ContactView, 0, len(m.convs))
	seen := map[string]bool{}
	row := func(id, name string) {
		seen[id] = true
		v := ContactView{ID: id, Name: name}
		c := m.convs[id]
		if p, ok := m.presence[id]; ok && m.online(now, p) {
			v.Presence = PresenceOnline
		}
		if c != nil {
			v.Unread = c.unread
			v.LastActivity = c.lastAct
			v.Fingerprint = c.fp
			switch c.state {
			case convEstablished:
				v.Presence = PresenceConnected
			case convGathering, convOffering, convPunching, convHandshaking:
				v.Presence = PresenceConnecting
			case convWaiting:
				v.Presence, v.Detail = PresenceFailed, c.words
			}
			if c.queued > 0 && v.Detail == "" {
				v.Detail = fmt.Sprintf("%d waiting to be sent", c.queued)
			}
		}
		views = append(views, v)
	}
	for _, ct := range m.contacts {
		row(ct.ID, ct.Name)
	}
	for _, c := range m.sortedConvs() {
		if !seen[c.peer] {
			row(c.peer, c.name)
		}
	}
	if m.contactsSet && slices.Equal(views, m.contactViews) {
		return
	}
	m.contactViews, m.contactsSet = views, true
	m.screen.SetContacts(views)
}

// msBetween is the span from a to b in milliseconds for the connected
// event's timing split, or nil when either instant is unknown (the side that
// accepted an offer has no signalling span of its own).
func msBetween(a, b time.Time) *float64 {
	if a.IsZero() || b.IsZero() || b.Before(a) {
		return nil
	}
	ms := float64(b.Sub(a).Microseconds()) / 1000
	return &ms
}
