package conn

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/sansio"
)

// The effects, inputs and notifications of my sockets beyond the main one:
// the TURN relay (one allocation the links share) and the extra sockets of
// birthday probing. The owner performs the effects with its socket set and
// TURN client and reports each outcome back.

// AllocateRelay asks for an allocation on TURN server Server (an index into
// Config.TURN; URI names it). The owner numbers the relay among its sockets
// and reports the outcome with HandleRelayAllocated, carrying Gen.
type AllocateRelay struct {
	Gen    int
	Server int
	URI    string
}

// RelayAllocated is the outcome of an AllocateRelay: the relay's SocketID
// and relayed address, or the error in words (naming the server and the
// credential, never the password).
type RelayAllocated struct {
	Gen    int
	Socket punch.SocketID
	Addr   netip.AddrPort
	Err    error
}

// PermitRelay installs permissions on my relay for a peer's addresses
// before its relayed machine probes; report with HandleRelayPermitted.
type PermitRelay struct {
	Socket          punch.SocketID
	Peer, SessionID string
	Addrs           []netip.AddrPort
}

// RelayPermitted is the outcome of a PermitRelay.
type RelayPermitted struct {
	Peer, SessionID string
	Socket          punch.SocketID
	Err             error
}

// ReleaseRelay closes my relay: the allocation is released on the server.
type ReleaseRelay struct{ Socket punch.SocketID }

// OpenSockets opens Count extra IPv4 UDP sockets for a link's birthday
// probing; report the IDs opened (fewer is fine) with HandleSocketsOpened.
type OpenSockets struct {
	Peer, SessionID string
	Count           int
}

// SocketsOpened is the outcome of an OpenSockets.
type SocketsOpened struct {
	Peer, SessionID string
	IDs             []punch.SocketID
	Err             error
}

// CloseSockets closes extra sockets a machine has handed back.
type CloseSockets struct{ IDs []punch.SocketID }

func (AllocateRelay) effect() {}
func (PermitRelay) effect()   {}
func (ReleaseRelay) effect()  {}
func (OpenSockets) effect()   {}
func (CloseSockets) effect()  {}

// PathMoved: a live session moved to another path (a direct path came up
// under a relayed one, or its path was lost while another still works).
type PathMoved struct {
	Peer, SessionID string
	Path            Path
}

// RelayChanged: my TURN relay was allocated (OK, at Addr on Server), could
// not be (Words say why, naming the server and the credential), or was
// released (OK false, Words empty).
type RelayChanged struct {
	OK     bool
	Server string
	Addr   netip.AddrPort
	Words  string
}

func (PathMoved) note()    {}
func (RelayChanged) note() {}

// relayState is where my relay stands.
type relayState int

const (
	relayNone       relayState = iota // none: allocated on the next need
	relayAllocating                   // an AllocateRelay is out
	relayReady                        // allocated: its candidate goes into offers and answers
	relayFailed                       // every server failed; asked again after RelayRetry
)

// relaySlot is my one TURN allocation, shared by every link: allocated when
// an attempt may need it (and at start, when a reconnect is likely),
// released after RelayIdle without use.
type relaySlot struct {
	st       relayState
	gen      int // of the AllocateRelay out; older outcomes are stale
	server   int // the server being asked, or allocated on
	socket   punch.SocketID
	addr     netip.AddrPort
	asked    time.Time // when the AllocateRelay out was made
	errs     []string  // this round's failures, one per server
	words    string    // why the last round failed
	failedAt time.Time // when it did
	idleAt   time.Time // ready and unused: released at this instant
}

// turnOn reports whether a TURN server is configured.
func (e *Engine) turnOn() bool { return len(e.cfg.TURN) > 0 }

// wantRelay: an attempt may use my relay. It is allocated unless it
// exists, is being allocated, or failed a moment ago.
func (e *Engine) wantRelay(now time.Time) {
	if !e.turnOn() || e.quitting {
		return
	}
	switch e.relay.st {
	case relayNone:
		e.relay.errs = nil
		e.allocateRelay(now, 0)
	case relayFailed:
		if !now.Before(e.relay.failedAt.Add(e.t.RelayRetry)) {
			e.relay.errs = nil
			e.allocateRelay(now, 0)
		}
	case relayReady:
		e.relay.idleAt = time.Time{}
	}
}

func (e *Engine) allocateRelay(now time.Time, server int) {
	e.relay.gen++
	e.relay.asked = now
	e.relay.st = relayAllocating
	e.relay.server = server
	e.log.Info("allocate a TURN relay", "server", e.cfg.TURN[server])
	e.do(AllocateRelay{Gen: e.relay.gen, Server: server, URI: e.cfg.TURN[server]})
}

// relayPending reports an allocation under way.
func (e *Engine) relayPending() bool { return e.relay.st == relayAllocating }

// relayWaitUntil is how long an offer or answer may wait for the
// allocation under way: RelayWait from when it was asked for, so that one
// that is slow (its server down) delays nothing after that, and the
// allocation made at start has usually answered (or taken its wait) before
// the first offer.
func (e *Engine) relayWaitUntil() time.Time { return e.relay.asked.Add(e.t.RelayWait) }

// relayCandidate is my relayed address as a candidate, if I have one.
func (e *Engine) relayCandidate() (punch.Candidate, bool) {
	if e.relay.st != relayReady {
		return punch.Candidate{}, false
	}
	return punch.Candidate{Type: punch.CandidateRelayed, Addr: e.relay.addr, Priority: punch.RelayedCandidatePriority()}, true
}

// relaySocket describes my relay to a punch machine.
func (e *Engine) relaySocket() punch.LocalSocket {
	fam := punch.FamilyIPv4
	if e.relay.addr.Addr().Is6() {
		fam = punch.FamilyIPv6
	}
	return punch.LocalSocket{ID: e.relay.socket, Family: fam, Relayed: e.relay.addr}
}

// turnHost is the host part of a configured TURN URI, for "relayed via
// HOST".
func (e *Engine) turnHost(server int) string {
	if server < 0 || server >= len(e.cfg.TURN) {
		return ""
	}
	hp := strings.TrimPrefix(e.cfg.TURN[server], "turn:")
	hp, _, _ = strings.Cut(hp, "?")
	if h, _, err := net.SplitHostPort(hp); err == nil {
		return h
	}
	return hp
}

// HandleRelayAllocated takes the outcome of an AllocateRelay: a failure
// moves on to the next configured server, and when none is left the
// failure is told in words; either way the offers waiting for it go.
func (e *Engine) HandleRelayAllocated(now time.Time, r RelayAllocated) {
	e.at(now)
	if r.Gen != e.relay.gen || e.relay.st != relayAllocating || e.quitting {
		if r.Err == nil {
			e.do(ReleaseRelay{Socket: r.Socket}) // nobody waits for it
		}
		return
	}
	uri := e.cfg.TURN[e.relay.server]
	if r.Err != nil {
		e.log.Warn("TURN allocation failed", "server", uri, "err", r.Err)
		e.relay.errs = append(e.relay.errs, r.Err.Error())
		if next := e.relay.server + 1; next < len(e.cfg.TURN) {
			e.allocateRelay(now, next)
			return
		}
		e.relay.st = relayFailed
		e.relay.failedAt = now
		e.relay.words = strings.Join(e.relay.errs, "; ")
		e.tell(RelayChanged{Server: uri, Words: e.relay.words})
	} else {
		e.relay.st = relayReady
		e.relay.socket, e.relay.addr = r.Socket, r.Addr
		e.relay.idleAt = time.Time{}
		e.log.Info("TURN relay allocated", "server", uri, "relayed", r.Addr, "socket", r.Socket)
		e.tell(RelayChanged{OK: true, Server: uri, Addr: r.Addr})
		e.noteRelayUse(now)
	}
	for _, l := range e.sortedLinks() {
		l.maybeOffer(now)
		l.maybeAnswer(now)
		l.pump(now)
	}
}

// HandleRelayPermitted takes the outcome of a PermitRelay: the link's
// relayed machine starts, through my relay if the permissions are in.
func (e *Engine) HandleRelayPermitted(now time.Time, r RelayPermitted) {
	e.at(now)
	l := e.links[r.Peer]
	if l == nil || l.sid != r.SessionID || !l.permitting {
		return
	}
	l.relayPermitted(now, r.Err)
}

// HandleSocketsOpened gives a link's birthday machine the extra sockets
// it asked for; sockets nobody wants any more are closed.
func (e *Engine) HandleSocketsOpened(now time.Time, r SocketsOpened) {
	e.at(now)
	if r.Err != nil {
		e.log.Warn("extra sockets for birthday probing", "peer", r.Peer, "opened", len(r.IDs), "err", r.Err)
	}
	l := e.links[r.Peer]
	if l == nil || l.sid != r.SessionID || !l.socketsOpened(now, r.IDs) {
		if len(r.IDs) > 0 {
			e.do(CloseSockets{IDs: r.IDs})
		}
	}
}

// relayInUse reports whether a link may still send through my relay: an
// attempt is running, or a relayed machine of one is alive.
func (e *Engine) relayInUse() bool {
	for _, l := range e.links {
		if l.usesRelay() {
			return true
		}
	}
	return false
}

// noteRelayUse starts the idle countdown of an allocation nobody uses.
func (e *Engine) noteRelayUse(now time.Time) {
	if e.relay.st != relayReady || !e.relay.idleAt.IsZero() || e.relayInUse() {
		return
	}
	e.relay.idleAt = now.Add(e.t.RelayIdle)
}

// relayTimeout releases an allocation that stayed unused for RelayIdle.
func (e *Engine) relayTimeout(now time.Time) {
	if e.relay.st != relayReady || !sansio.Due(e.relay.idleAt, now) {
		return
	}
	if e.relayInUse() {
		e.relay.idleAt = time.Time{}
		return
	}
	e.releaseRelay("unused for " + e.t.RelayIdle.String())
}

// releaseRelay lets my allocation go; the next attempt that needs one
// allocates anew.
func (e *Engine) releaseRelay(why string) {
	if e.relay.st != relayReady {
		if e.relay.st == relayAllocating {
			e.relay.gen++ // its outcome, when it comes, is released unused
			e.relay.st = relayNone
		}
		return
	}
	e.log.Info("TURN relay released", "relayed", e.relay.addr, "why", why)
	e.do(ReleaseRelay{Socket: e.relay.socket})
	e.tell(RelayChanged{Server: e.cfg.TURN[e.relay.server], Addr: e.relay.addr})
	e.relay = relaySlot{gen: e.relay.gen}
}

// relayPathLost: a path through my relay went silent. The peer may have
// gone, or the TURN server (its allocation then gone too): unless another
// link still relays through it, the allocation is dropped so that the next
// attempt makes a fresh one.
func (e *Engine) relayPathLost() {
	if e.relay.st == relayReady && !e.relayInUse() {
		e.releaseRelay("a path through it went silent")
	}
}

// relayDeadline is when the relay's idle timer runs out (zero: none).
func (e *Engine) relayDeadline() time.Time {
	if e.relay.st == relayReady {
		return e.relay.idleAt
	}
	return time.Time{}
}

// relayWords says why my relay cannot help, for a failure's words (empty:
// it can, or none is configured).
func (e *Engine) relayWords() string {
	switch e.relay.st {
	case relayFailed:
		return e.relay.words
	case relayAllocating:
		return "TURN server " + e.cfg.TURN[e.relay.server] + " has not answered yet"
	}
	return ""
}
