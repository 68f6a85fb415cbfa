package conn

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
)

// An attempt runs one punch machine per path kind at once: direct always;
// relayed when either side has a TURN relay (mine once its permissions for
// the peer's addresses are in); predicted (birthday probing) when one side
// is behind a symmetric NAT and the other behind a cone NAT that filters by
// port. Whichever authenticated path is selected first carries the Noise
// session; while it is a relayed one, the others keep punching, and the
// session moves to the first direct path they find (the session's streams
// resend what the move loses, and drop what arrives twice). Once a direct
// path carries the session and has carried a packet from the peer, the
// other machines are dropped (a relayed path after RelayLinger, for what
// the peer still sends there).

// route is one way to the peer: one of my sockets and the peer's address
// as that socket sees it.
type route struct {
	socket punch.SocketID
	addr   netip.AddrPort
}

// pathRun is one punch machine of an attempt and what became of it.
type pathRun struct {
	kind punch.PathKind
	m    *punch.Machine
	tag  punch.Tag
	sel  *punch.PathSelected // its path, once selected
	// relay names what its selected path relays through (for "relayed via
	// HOST"); mine: through my own relay.
	relay string
	mine  bool
	done  bool // failed, or its path lost: it finds nothing more
	gone  bool // dropped from the link (retired, or the attempt ended)
	fail  *punch.Failed
}

func (r *pathRun) route() route { return route{socket: r.sel.Socket, addr: r.sel.Remote} }

// live reports whether the run's path is selected and not lost.
func (r *pathRun) live() bool { return r.sel != nil && !r.done }

// Words is the path for people: "direct", "direct (IPv6)" or "relayed
// via HOST".
func (p Path) Words() string {
	switch {
	case p.Kind == "":
		return ""
	case p.Kind == punch.PathRelayed.String() && p.Relay != "":
		return "relayed via " + p.Relay
	case p.Kind == punch.PathRelayed.String():
		return "relayed"
	case p.Remote.Addr().Is6() && !p.Remote.Addr().Is4In6():
		return "direct (IPv6)"
	}
	return "direct"
}

func isRelayed(c punch.Candidate) bool { return c.Type == punch.CandidateRelayed }

// relayTargets are the peer's addresses my relay may send to: its relayed
// addresses and public ones (a TURN server must not become a way into the
// peer's LAN).
func relayTargets(cs []punch.Candidate) []netip.AddrPort {
	var out []netip.AddrPort
	for _, c := range cs {
		a := c.Addr.Addr()
		if isRelayed(c) || (a.IsGlobalUnicast() && !a.IsPrivate()) {
			out = append(out, c.Addr)
		}
	}
	return out
}

// startPaths starts the attempt's machines towards the peer's candidates.
func (l *link) startPaths(now time.Time, remote []punch.Candidate, remoteNAT punch.NATBehavior) bool {
	e := l.e
	l.stopPaths()
	l.base = punch.Config{
		Rand: e.rand, Role: l.role, Local: e.localCandidates(), Remote: remote, Secret: l.secret, SessionID: l.sid,
		LocalNAT: e.nat, RemoteNAT: remoteNAT,
		KeepaliveInterval: e.cfg.PunchKeepalive, PathTimeout: e.cfg.PunchPathTimeout, PunchTimeout: e.cfg.PunchTime,
	}
	if err := l.addRun(now, l.base, punch.PathDirect); err != nil {
		l.fail(now, ReasonInternal, "could not start punching: "+err.Error(), "", false)
		return false
	}
	l.early = nil
	l.relayErr = ""
	l.st = stPunching
	l.punchAt = now
	if _, ok := punch.PredictionSide(e.nat, remoteNAT); ok {
		if err := l.addRun(now, l.base, punch.PathPredicted); err != nil {
			e.log.Warn("birthday probing not started", "peer", l.peer, "err", err)
		}
	}
	if l.role == punch.Controlling || !e.relayPending() {
		l.startRelayed(now)
	}
	return true
}

// startRelayed starts the relayed machine: once my relay's permissions are
// in (one round trip to the server; the other machines do not wait) when
// I have a relay, else at once if the peer has one.
func (l *link) startRelayed(now time.Time) {
	e := l.e
	switch {
	case e.relay.st == relayReady:
		l.permitting = true
		e.do(PermitRelay{Socket: e.relay.socket, Peer: l.peer, SessionID: l.sid, Addrs: relayTargets(l.base.Remote)})
	case slices.ContainsFunc(l.base.Remote, isRelayed):
		if err := l.addRun(now, l.base, punch.PathRelayed); err != nil {
			e.log.Warn("relayed machine not started", "peer", l.peer, "err", err)
		}
	}
}

// maybeAnswer sends my answer once my relay is allocated (or RelayWait
// has passed), starting the relayed machine an allocation under way held
// back.
func (l *link) maybeAnswer(now time.Time) {
	e := l.e
	if !l.answerDue || (e.relayPending() && now.Before(l.relayBy)) {
		return
	}
	l.answerDue = false
	if l.sess == nil && !l.permitting && !slices.ContainsFunc(l.runs, func(r *pathRun) bool { return r.kind == punch.PathRelayed }) {
		l.startRelayed(now)
	}
	l.sendAnswer(now)
}

// addRun starts a machine of one kind.
func (l *link) addRun(now time.Time, cfg punch.Config, kind punch.PathKind) error {
	cfg.Kind = kind
	m, err := punch.NewMachine(cfg)
	if err != nil {
		return err
	}
	r := &pathRun{kind: kind, m: m, tag: m.Tag()}
	l.runs = append(l.runs, r)
	l.e.byTag[r.tag] = l
	m.Start(now)
	return nil
}

// relayPermitted starts the relayed machine once my relay's permissions
// are in: through my relay and to the peer's, or, if they failed, to the
// peer's relay alone.
func (l *link) relayPermitted(now time.Time, err error) {
	e := l.e
	l.permitting = false
	cfg := l.base
	if err != nil {
		e.log.Warn("TURN permissions", "peer", l.peer, "err", err)
		l.relayErr = err.Error()
		// The allocation is most likely gone (the server restarted):
		// the next attempt makes a fresh one.
		e.releaseRelay("its permissions failed")
	}
	switch {
	case err == nil && e.relay.st == relayReady:
		cfg.Sockets = []punch.LocalSocket{{ID: punch.MainSocket, Family: punch.FamilyAny}, e.relaySocket()}
	case slices.ContainsFunc(cfg.Remote, isRelayed):
	default:
		l.checkNoPath(now)
		l.pump(now)
		return
	}
	if err := l.addRun(now, cfg, punch.PathRelayed); err != nil {
		e.log.Warn("relayed machine not started", "peer", l.peer, "err", err)
	}
	l.pump(now)
}

// socketsOpened hands extra sockets to the birthday machine that asked.
func (l *link) socketsOpened(now time.Time, ids []punch.SocketID) bool {
	for _, r := range l.runs {
		if r.kind == punch.PathPredicted && !r.gone && !r.done {
			r.m.SocketsOpened(now, ids)
			l.pump(now)
			return true
		}
	}
	return false
}

// runByTag is the run whose packets carry tag.
func (l *link) runByTag(tag punch.Tag) *pathRun {
	for _, r := range l.runs {
		if r.tag == tag && !r.gone {
			return r
		}
	}
	return nil
}

// runByRoute is the live run whose selected path is rt.
func (l *link) runByRoute(rt route) *pathRun {
	for _, r := range l.runs {
		if !r.gone && r.live() && r.route() == rt {
			return r
		}
	}
	return nil
}

// heard reports whether one of the attempt's machines has had an
// authenticated packet from addr on socket.
func (l *link) heard(socket punch.SocketID, addr netip.AddrPort) bool {
	for _, r := range l.runs {
		if !r.gone && r.m.Heard(socket, addr) {
			return true
		}
	}
	return false
}

// drainRuns sends what the machines want sent and acts on their events;
// it reports whether there were any.
func (l *link) drainRuns(now time.Time) bool {
	busy := false
	for _, r := range slices.Clone(l.runs) {
		if r.gone {
			continue
		}
		for _, t := range r.m.Transmits() {
			l.e.do(SendDatagram{Socket: t.Socket, To: t.To, Data: t.Data})
		}
		for _, ev := range r.m.Events() {
			busy = true
			if r.gone {
				if sd, ok := ev.(punch.SocketsDone); ok {
					l.e.do(CloseSockets{IDs: sd.IDs})
				}
				continue
			}
			l.pathEvent(now, r, ev)
		}
	}
	return busy
}

func (l *link) pathEvent(now time.Time, r *pathRun, ev punch.Event) {
	e := l.e
	switch ev := ev.(type) {
	case punch.PathSelected:
		r.sel = &ev
		if ev.Relay.IsValid() {
			r.mine = e.relay.st == relayReady && ev.Socket == e.relay.socket
			r.relay = ev.Relay.Addr().String()
			if r.mine || (e.relay.st == relayReady && ev.Relay.Addr() == e.relay.addr.Addr()) {
				r.relay = e.turnHost(e.relay.server)
			}
		}
		e.byRoute[r.route()] = l
		e.log.Info("path selected", "peer", l.peer, "kind", r.kind, "socket", ev.Socket, "local", ev.Local, "remote", ev.Remote, "rtt", ev.RTT)
		switch {
		case l.sess == nil:
			l.startSession(now, r)
		case l.cur == nil || l.cur.done:
			l.moveTo(now, r)
		case l.cur.kind == punch.PathRelayed && r.kind != punch.PathRelayed:
			l.moveTo(now, r)
		}
		l.retireSpare(now)
	case punch.Failed:
		r.done, r.fail = true, &ev
		e.log.Info("punching failed", "peer", l.peer, "kind", r.kind, "reason", ev.Reason, "detail", ev.Detail)
		l.checkNoPath(now)
	case punch.PathLost:
		r.done = true
		e.log.Info("path lost", "peer", l.peer, "kind", r.kind, "remote", r.sel.Remote)
		l.dropRoute(r)
		if r.kind == punch.PathRelayed {
			// Mine or the peer's: a TURN server that died took both.
			e.relayPathLost()
		}
		if r != l.cur {
			return
		}
		for _, alt := range l.runs {
			if alt != r && !alt.gone && alt.live() {
				l.moveTo(now, alt)
				return
			}
		}
		l.pathLost(now)
	case punch.SocketsWanted:
		e.do(OpenSockets{Peer: l.peer, SessionID: l.sid, Count: ev.Count})
	case punch.SocketsDone:
		e.do(CloseSockets{IDs: ev.IDs})
	}
}

// startSession starts the Noise session on the first path selected.
func (l *link) startSession(now time.Time, r *pathRun) {
	e := l.e
	ev := r.sel
	l.cur = r
	l.sock, l.remote, l.local, l.rtt = ev.Socket, ev.Remote, ev.Local, ev.RTT
	s, err := session.NewMachine(session.Config{
		Initiator:    l.role == punch.Controlling,
		LocalPrivate: e.cfg.Identity.Private, LocalPublic: e.cfg.Identity.Public,
		RemoteStatic: l.pub, SessionID: l.sid, Rand: e.rand, Timers: e.cfg.Session, PathRTT: ev.RTT,
	})
	if err != nil {
		l.fail(now, ReasonInternal, "could not start the encrypted session: "+err.Error(), "", false)
		return
	}
	l.sess = s
	l.st = stHandshaking
	l.pathAt = now
	e.tell(Connecting{Peer: l.peer, SessionID: l.sid, Words: "securing the path"})
	s.Start(now)
	early := l.early
	l.early = nil
	for _, dg := range early {
		// Held because a machine of this attempt had heard the peer
		// there; the session authenticates each.
		s.HandleDatagram(dg.At, dg.Data)
	}
}

// moveTo moves the live session onto r's path.
func (l *link) moveTo(now time.Time, r *pathRun) {
	e := l.e
	from := l.pathInfo()
	l.cur = r
	// An RTT unknown yet (the path was chosen on the peer's probe) is
	// filled in by pump once a probe of this side measures it.
	l.sock, l.remote, l.local, l.rtt = r.sel.Socket, r.sel.Remote, r.sel.Local, r.sel.RTT
	l.movedAt, l.heardCur = now, false
	l.sess.PathChanged(now)
	to := l.pathInfo()
	e.log.Info("session moved", "peer", l.peer, "from", from.Words(), "to", to.Words(), "remote", to.Remote)
	if l.st == stEstablished {
		e.tell(PathMoved{Peer: l.peer, SessionID: l.sid, Path: to})
	}
}

// retireSpare drops the machines a direct path carrying the session has
// made useless: at once those still punching or failed, and a selected
// (relayed) path only once the peer has been heard on the direct one and
// RelayLinger has passed since the move.
func (l *link) retireSpare(now time.Time) {
	if l.cur == nil || l.cur.kind == punch.PathRelayed || l.sess == nil {
		return
	}
	l.permitting = false
	for _, r := range slices.Clone(l.runs) {
		if r == l.cur || r.gone {
			continue
		}
		if r.live() && (!l.heardCur || now.Before(l.movedAt.Add(l.e.t.RelayLinger))) {
			continue
		}
		l.retire(r)
	}
	l.e.noteRelayUse(now)
}

// spareDeadline is when retireSpare has a selected path to drop (zero:
// none).
func (l *link) spareDeadline() time.Time {
	if l.cur == nil || l.cur.kind == punch.PathRelayed || !l.heardCur {
		return time.Time{}
	}
	for _, r := range l.runs {
		if r != l.cur && !r.gone && r.live() {
			return l.movedAt.Add(l.e.t.RelayLinger)
		}
	}
	return time.Time{}
}

// retire drops one machine: its tag, its route, its extra sockets.
func (l *link) retire(r *pathRun) {
	e := l.e
	r.gone, r.done = true, true
	if e.byTag[r.tag] == l {
		delete(e.byTag, r.tag)
	}
	l.dropRoute(r)
	// Sockets it handed back in events not yet drained, and those it holds.
	var ids []punch.SocketID
	for _, ev := range r.m.Events() {
		if sd, ok := ev.(punch.SocketsDone); ok {
			ids = append(ids, sd.IDs...)
		}
	}
	ids = append(ids, r.m.Sockets()...)
	if len(ids) > 0 {
		e.do(CloseSockets{IDs: ids})
	}
	l.runs = slices.DeleteFunc(l.runs, func(x *pathRun) bool { return x == r })
}

// dropRoute forgets r's route unless another live run of the link has it.
func (l *link) dropRoute(r *pathRun) {
	if r.sel == nil {
		return
	}
	rt := r.route()
	if l.e.byRoute[rt] != l {
		return
	}
	for _, x := range l.runs {
		if x != r && !x.gone && x.live() && x.route() == rt {
			return
		}
	}
	delete(l.e.byRoute, rt)
}

// stopPaths drops every machine of the attempt.
func (l *link) stopPaths() {
	for _, r := range slices.Clone(l.runs) {
		l.retire(r)
	}
	l.runs, l.cur = nil, nil
	l.permitting, l.answerDue = false, false
	l.heardCur, l.movedAt = false, time.Time{}
}

// usesRelay reports whether the link may still send through my relay.
func (l *link) usesRelay() bool {
	switch l.st {
	case stGathering, stOffering, stPunching, stHandshaking:
		return true
	}
	return l.permitting || slices.ContainsFunc(l.runs, func(r *pathRun) bool { return r.kind == punch.PathRelayed && !r.done })
}

// checkNoPath fails the attempt once every machine has failed and none is
// still to start.
func (l *link) checkNoPath(now time.Time) {
	if l.sess != nil || l.permitting || l.st != stPunching {
		return
	}
	for _, r := range l.runs {
		if !r.done {
			return
		}
	}
	l.noPath(now)
}

// noPath fails the attempt, saying in words what each kind of path found.
func (l *link) noPath(now time.Time) {
	e := l.e
	var direct, predicted, relayed *punch.Failed
	heard := false
	for _, r := range l.runs {
		if r.fail == nil {
			continue
		}
		heard = heard || r.fail.HeardPeer
		switch r.kind {
		case punch.PathDirect:
			direct = r.fail
		case punch.PathPredicted:
			predicted = r.fail
		case punch.PathRelayed:
			relayed = r.fail
		}
	}
	reason, retry := ReasonNoPath, true
	var words, detail []string
	if direct != nil {
		// A peer without addresses stays so. A symmetric NAT stays
		// symmetric too, but the verdict is a guess (the peer's filtering
		// is often unknown, and a path blocked for a while looks the same),
		// so it is retried like any other, within the same bounds.
		retry = direct.Reason != punch.ReasonNoCandidates
		w := direct.Reason.Message()
		if !heard && direct.Reason != punch.ReasonSymmetricNAT {
			// Not a packet back: more likely gone than firewalled.
			w = "no answer from " + l.display() + " on any of its addresses: it may have quit or lost its connection (or a firewall blocks UDP)"
		}
		if direct.Reason == punch.ReasonSymmetricNAT {
			reason = ReasonSymmetricNAT
		}
		words = append(words, w)
		detail = append(detail, direct.Detail)
	}
	if predicted != nil {
		words = append(words, "birthday probing found no open port either")
		detail = append(detail, "predicted: "+predicted.Detail)
	}
	switch rw := e.relayWords(); {
	case relayed != nil:
		words = append(words, "the TURN relay did not get through either")
		detail = append(detail, "relayed: "+relayed.Reason.Message()+": "+relayed.Detail)
	case l.relayErr != "":
		words = append(words, "and no relay: "+l.relayErr)
	case rw != "":
		// The server may come back: worth another attempt later.
		words = append(words, "and no relay: "+rw)
		retry = true
	case !e.turnOn() && reason == ReasonSymmetricNAT:
		words = append(words, "a TURN relay (--turn) would connect such a pair")
	}
	l.fail(now, reason, strings.Join(words, "; "), strings.Join(detail, "; "), retry)
}

// pathInfo describes the path carrying the session (zero: none).
func (l *link) pathInfo() Path {
	if l.cur == nil || l.cur.sel == nil {
		return Path{}
	}
	return Path{Kind: l.cur.kind.String(), Relay: l.cur.relay, Local: l.local, Remote: l.remote, RTT: l.rtt}
}

// routeSeen notes a session datagram on rt: it keeps that path alive, and
// the first on the current path lets the spare ones go.
func (l *link) routeSeen(now time.Time, rt route, at time.Time) {
	if r := l.runByRoute(rt); r != nil {
		r.m.NoteReceived(at)
	}
	if l.cur != nil && l.cur.sel != nil && l.cur.route() == rt && !l.heardCur {
		l.heardCur = true
		l.retireSpare(now)
	}
}

// pathsDeadline is the earliest timer of the attempt's machines.
func (l *link) pathsDeadline() time.Time {
	var d time.Time
	for _, r := range l.runs {
		if !r.gone {
			d = sansio.Earliest(d, r.m.Deadline())
		}
	}
	d = sansio.Earliest(d, l.spareDeadline())
	if e := l.e; (l.st == stGathering && (len(e.cfg.STUN) == 0 || e.discMapped) || l.answerDue) && e.relayPending() {
		d = sansio.Earliest(d, l.relayBy)
	}
	return d
}

// pathsTimeout runs the machines' timers that are due.
func (l *link) pathsTimeout(now time.Time) {
	for _, r := range slices.Clone(l.runs) {
		if !r.gone && sansio.Due(r.m.Deadline(), now) {
			r.m.HandleTimeout(now)
		}
	}
	if sansio.Due(l.spareDeadline(), now) {
		l.retireSpare(now)
	}
}

// maybeOffer sends a gathering link's offer once my public address is
// known and my relay is allocated (or RelayWait has passed).
func (l *link) maybeOffer(now time.Time) {
	e := l.e
	if l.st != stGathering || (len(e.cfg.STUN) > 0 && !e.discMapped) {
		return
	}
	if e.relayPending() && now.Before(l.relayBy) {
		return
	}
	l.sendOffer(now)
}
