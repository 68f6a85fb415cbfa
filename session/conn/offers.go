package conn

import (
	"errors"
	"slices"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session/identity"
)

// offerKey names an offer: a session ID alone is not enough, since anyone
// can send an offer reusing another sender's session ID.
type offerKey struct{ from, sid string }

// pendingOffer is an authentic, fresh offer not yet acted on: waiting for
// the sender's presence (verifying) or for the user (shown).
type pendingOffer struct {
	key      offerKey
	pub      [32]byte
	inv      identity.Invitation
	cands    []punch.Candidate
	nat      punch.NATBehavior
	contact  bool
	expires  time.Time // shown: hidden after this
	verifyBy time.Time // verifying: acted on after this even without presence
}

// fresh reports whether a sealed time is inside the acceptance window.
func (e *Engine) fresh(now, created time.Time) bool {
	return !created.Before(now.Add(-e.t.OfferMaxAge-e.t.ClockSkew)) && !created.After(now.Add(e.t.ClockSkew))
}

// seenBefore reports a session ID of this sender already handled within
// the window: a redelivery, or a replay.
func (e *Engine) seenBefore(now time.Time, k offerKey) bool {
	until, ok := e.seen[k]
	return ok && now.Before(until)
}

// remember records a handled offer's key for the acceptance window. The
// memory is bounded: expired keys go first, then the oldest.
func (e *Engine) remember(now time.Time, k offerKey) {
	for len(e.seenOrder) > 0 {
		old := e.seenOrder[0]
		until, ok := e.seen[old]
		if ok && now.Before(until) && len(e.seen) < maxSeenSessions {
			break
		}
		if ok {
			delete(e.seen, old)
		}
		e.seenOrder = e.seenOrder[1:]
	}
	if _, ok := e.seen[k]; !ok {
		e.seenOrder = append(e.seenOrder, k)
	}
	e.seen[k] = now.Add(e.t.seenWindow())
	if cap(e.seenOrder) > 2*maxSeenSessions {
		e.seenOrder = slices.Clone(e.seenOrder) // let go of the popped front
	}
}

// handleOffer acts on an offer: refused if it does not open, is stale or
// was seen before; declined unseen when it was made automatically by
// someone I do not reconnect with automatically; dropped when it was left
// behind by a process that has gone; otherwise answered (a contact, crossing
// offers, a peer I am trying to reach) or shown to the user.
func (e *Engine) handleOffer(now time.Time, s Signal, pub [32]byte) {
	k := offerKey{from: s.From, sid: s.SessionID}
	inv, err := e.sealer.Open(pub, s.SessionID, KindOffer.String(), s.Payload)
	if err != nil {
		e.log.Warn("offer does not open (forged or broken)", "from", s.From, "err", err)
		return
	}
	if !e.fresh(now, inv.Created) {
		e.log.Warn("stale offer refused", "from", s.From, "session", s.SessionID, "created", inv.Created)
		return
	}
	if e.seenBefore(now, k) {
		e.log.Info("offer seen before (redelivered or replayed)", "from", s.From, "session", s.SessionID)
		return
	}
	e.remember(now, k)
	cands, nat, err := punch.DecodeCandidates(inv.Candidates)
	if err != nil {
		e.log.Warn("offer with malformed candidates", "from", s.From, "err", err)
		return
	}
	c, isContact := e.contact(s.From)
	o := &pendingOffer{key: k, pub: pub, inv: inv, cands: cands, nat: nat, contact: isContact}
	if inv.Auto && (!isContact || c.AskEachTime) {
		// The sender's program reconnects by itself; I don't with it.
		// Say no without bothering anyone.
		e.log.Info("automatic offer declined unseen", "from", s.From)
		e.sendCancel(now, s.From, pub, s.SessionID)
		return
	}
	l := e.links[s.From]
	var p Presence
	var found, fresh bool
	if l != nil && l.havePresence {
		p, found = l.presence, l.presenceFound
		fresh = now.Sub(l.presenceAt) <= e.t.PresenceEvery
	}
	if !fresh {
		e.park(now, o)
		return
	}
	if leftover(now, inv, p, found, e.t) {
		e.log.Info("offer from a process that has gone dropped", "from", s.From, "instance", inv.Instance)
		return
	}
	e.actOnOffer(now, o)
}

// leftover reports whether an offer was left by a process of the peer that
// is no longer running, judged by a presence read: the peer quit since, or
// another instance of it has published since the offer was made, or the
// offer's instance stopped refreshing its presence.
func leftover(now time.Time, inv identity.Invitation, p Presence, found bool, t Timers) bool {
	if !found {
		return false // never published: nothing to judge by
	}
	sameRun := inv.Instance != "" && p.Instance == inv.Instance
	switch {
	case p.Instance != "" && inv.Instance != "" && !sameRun && p.LastSeen.After(inv.Created):
		return true
	case p.Offline && (sameRun || p.LastSeen.After(inv.Created)):
		return true
	case sameRun && now.Sub(p.LastSeen) > t.onlineFor():
		return true
	}
	return false
}

// park holds an offer until the sender's presence is read (bounded).
func (e *Engine) park(now time.Time, o *pendingOffer) {
	if len(e.verifying) >= maxVerifying {
		oldest := e.verifying[0]
		e.verifying = e.verifying[1:]
		e.actOnOffer(now, oldest)
	}
	o.verifyBy = now.Add(e.t.VerifyTimeout)
	e.verifying = append(e.verifying, o)
	if l := e.links[o.key.from]; l != nil {
		l.lookup()
	} else {
		e.do(LookupPresence{ID: o.key.from})
	}
}

// resolveVerifying acts on the parked offers of id now that its presence
// was read (or could not be: then they are acted on as they are).
func (e *Engine) resolveVerifying(now time.Time, id string, p Presence, found bool, readErr error) {
	var mine []*pendingOffer
	e.verifying = slices.DeleteFunc(e.verifying, func(o *pendingOffer) bool {
		if o.key.from == id {
			mine = append(mine, o)
			return true
		}
		return false
	})
	for _, o := range mine {
		if readErr == nil && leftover(now, o.inv, p, found, e.t) {
			e.log.Info("offer from a process that has gone dropped", "from", id, "instance", o.inv.Instance)
			continue
		}
		e.actOnOffer(now, o)
	}
}

// finishVerifying acts on a parked offer whose presence read never came.
func (e *Engine) finishVerifying(now time.Time, o *pendingOffer) {
	e.verifying = slices.DeleteFunc(e.verifying, func(x *pendingOffer) bool { return x == o })
	e.actOnOffer(now, o)
}

// actOnOffer answers an authentic, fresh, live offer or shows it.
func (e *Engine) actOnOffer(now time.Time, o *pendingOffer) {
	if e.quitting {
		return
	}
	from := o.key.from
	c, isContact := e.contact(from)
	o.contact = isContact
	if l := e.links[from]; l != nil {
		switch l.st {
		case stEstablished:
			if !o.inv.Created.After(l.peerAt) {
				// Not provably newer than what set this session up: a
				// delayed or replayed offer must not end a live session.
				e.log.Info("offer older than the live session ignored", "from", from, "session", o.key.sid)
				return
			}
			// The peer started over, so its side of this session is gone.
		case stGathering:
			// My offer is not out yet: the peer's serves us both.
			l.answer(now, o)
			return
		case stOffering:
			// Both offered at once. The newer offer wins (its sealed time;
			// a tie goes to the lower ID): both sides compare the same two
			// times, so exactly one attempt survives, and an offer of mine
			// the peer can no longer answer (it restarted since) loses to
			// the one its new process made.
			if mine := l.offerAt; mine.After(o.inv.Created) || (mine.Equal(o.inv.Created) && e.me < from) {
				e.log.Info("crossing offers: mine wins", "peer", from)
				return
			}
			l.sendCancel(now, l.sid)
			l.answer(now, o)
			return
		case stPunching, stHandshaking:
			if !o.inv.Created.After(l.peerAt) {
				e.log.Info("offer older than the running attempt ignored", "from", from, "session", o.key.sid)
				return
			}
			// The peer gave up on this attempt and started another.
			l.answer(now, o)
			return
		}
		if l.userWant {
			// I asked to talk to exactly this peer.
			l.answer(now, o)
			return
		}
	}
	if isContact && !c.AskEachTime {
		e.link(from, o.pub).answer(now, o)
		return
	}
	e.show(now, o)
}

// show puts an offer in front of the user, within the bounds: a sender's
// older offers make way for its newest, and when the list is full the
// oldest stranger's offer goes first.
func (e *Engine) show(now time.Time, o *pendingOffer) {
	mine := 0
	for _, x := range e.offers {
		if x.key.from == o.key.from {
			mine++
		}
	}
	for mine >= maxOffersPerSender {
		i := slices.IndexFunc(e.offers, func(x *pendingOffer) bool { return x.key.from == o.key.from })
		e.hide(i, "replaced by a newer request")
		mine--
	}
	if len(e.offers) >= maxPendingOffers {
		i := slices.IndexFunc(e.offers, func(x *pendingOffer) bool { return !x.contact })
		if i < 0 {
			i = 0
		}
		e.hide(i, "too many requests at once")
	}
	o.expires = now.Add(e.t.OfferTimeout)
	e.offers = append(e.offers, o)
	name := o.inv.Name
	if c, ok := e.contact(o.key.from); ok {
		name = c.Name
	}
	e.tell(OfferShown{From: o.key.from, Name: name, Contact: o.contact, SessionID: o.key.sid,
		Fingerprint: identity.Fingerprint(e.cfg.Identity.Public, o.pub), Expires: o.expires})
}

func (e *Engine) hide(i int, words string) {
	o := e.offers[i]
	e.offers = slices.Delete(e.offers, i, i+1)
	e.tell(OfferGone{From: o.key.from, SessionID: o.key.sid, Words: words})
}

func (e *Engine) findOffer(from, sid string) int {
	return slices.IndexFunc(e.offers, func(o *pendingOffer) bool { return o.key == offerKey{from: from, sid: sid} })
}

// Offers lists the shown offers as (from, session) pairs, oldest first.
func (e *Engine) Offers() [][2]string {
	out := make([][2]string, 0, len(e.offers))
	for _, o := range e.offers {
		out = append(out, [2]string{o.key.from, o.key.sid})
	}
	return out
}

// ErrOfferGone: the offer to accept or decline is no longer shown.
var ErrOfferGone = errors.New("that request is gone (it expired or was withdrawn)")

// Accept answers a shown offer; a non-empty addAs first adds the (unknown)
// sender to the contacts under that name.
func (e *Engine) Accept(now time.Time, from, sid, addAs string) error {
	e.at(now)
	if e.quitting {
		return ErrQuitting
	}
	i := e.findOffer(from, sid)
	if i < 0 {
		return ErrOfferGone
	}
	o := e.offers[i]
	if addAs != "" && !e.isContact(from) {
		if err := e.AddContact(now, addAs, from); err != nil {
			return err
		}
	}
	e.hide(i, "accepted")
	l := e.link(from, o.pub)
	l.userWant = true
	l.hold = false
	l.answer(now, o)
	return nil
}

// Decline refuses a shown offer and tells the offerer.
func (e *Engine) Decline(now time.Time, from, sid string) error {
	e.at(now)
	i := e.findOffer(from, sid)
	if i < 0 {
		return ErrOfferGone
	}
	o := e.offers[i]
	e.hide(i, "declined")
	e.sendCancel(now, from, o.pub, sid)
	return nil
}

// expireOffers hides shown offers whose time is up.
func (e *Engine) expireOffers(now time.Time) {
	for i := 0; i < len(e.offers); {
		if !now.Before(e.offers[i].expires) {
			e.hide(i, "expired")
			continue
		}
		i++
	}
}

// checkOffersStillLive hides shown offers whose sender's process has gone.
func (e *Engine) checkOffersStillLive(now time.Time, id string, p Presence, found bool) {
	for i := 0; i < len(e.offers); {
		o := e.offers[i]
		if o.key.from == id && leftover(now, o.inv, p, found, e.t) {
			e.hide(i, "the sender is no longer running")
			continue
		}
		i++
	}
}

// handleAnswer starts the controlling punch when my offer is answered. An
// answer to my latest offer is taken even if that offer timed out meanwhile
// (the peer accepted just late): nothing newer is running.
func (e *Engine) handleAnswer(now time.Time, s Signal, pub [32]byte) {
	l := e.links[s.From]
	late := l != nil && (l.st == stBackoff || l.st == stFailed) && l.offered == s.SessionID && l.role == punch.Controlling
	inv, err := e.sealer.Open(pub, s.SessionID, KindAnswer.String(), s.Payload)
	if err != nil {
		e.log.Warn("answer does not open (forged or broken)", "from", s.From, "err", err)
		return
	}
	if l == nil || !((l.st == stOffering && l.sid == s.SessionID) || late) {
		// An answer to an offer of mine that is over (or that an earlier
		// run of mine made, or a replay someone made the peer answer):
		// say so, so the peer stops punching at nobody at once.
		e.log.Info("answer for no pending offer", "from", s.From, "session", s.SessionID)
		if l != nil && e.fresh(now, inv.Created) && (l.sid != s.SessionID || !l.busy()) {
			e.sendCancel(now, s.From, pub, s.SessionID)
		}
		return
	}
	if !e.fresh(now, inv.Created) {
		e.log.Warn("stale answer refused", "from", s.From, "session", s.SessionID)
		return
	}
	cands, nat, err := punch.DecodeCandidates(inv.Candidates)
	if err != nil {
		e.log.Warn("answer with malformed candidates", "from", s.From, "err", err)
		return
	}
	if late {
		l.sid = s.SessionID
		l.role = punch.Controlling
		l.retryAt = time.Time{}
	}
	l.peerAt, l.peerInst = inv.Created, inv.Instance
	if l.startPaths(now, cands, nat) {
		e.tell(Connecting{Peer: l.peer, SessionID: l.sid, Words: "answered, punching through NATs"})
		l.pump(now)
	}
}

// handleCancel withdraws a shown (or parked) offer, or ends my attempt
// that the peer declined.
func (e *Engine) handleCancel(now time.Time, s Signal, pub [32]byte) {
	inv, err := e.sealer.Open(pub, s.SessionID, KindCancel.String(), s.Payload)
	if err != nil {
		e.log.Warn("cancel does not open (forged or broken)", "from", s.From, "err", err)
		return
	}
	if !e.fresh(now, inv.Created) {
		e.log.Warn("stale cancel refused", "from", s.From, "session", s.SessionID)
		return
	}
	k := offerKey{from: s.From, sid: s.SessionID}
	if i := e.findOffer(s.From, s.SessionID); i >= 0 {
		e.hide(i, "withdrawn")
		return
	}
	before := len(e.verifying)
	e.verifying = slices.DeleteFunc(e.verifying, func(o *pendingOffer) bool { return o.key == k })
	if len(e.verifying) < before {
		return
	}
	l := e.links[s.From]
	if l == nil || l.sid != s.SessionID {
		return
	}
	switch {
	case l.role == punch.Controlling && (l.st == stOffering || l.st == stPunching || l.st == stHandshaking):
		if l.auto {
			// My program reconnected by itself and the peer does not
			// want that: quietly leave it be — unless the user has asked
			// for this conversation meanwhile: then ask the peer properly.
			e.log.Info("automatic offer declined by the peer", "peer", l.peer)
			l.teardown(now)
			if l.wanted() {
				l.connect(now, false)
				return
			}
			l.hold = true
			return
		}
		l.userWant = false
		l.fail(now, ReasonDeclined, l.display()+" declined the chat request", "", false)
	case l.role == punch.Controlled && (l.st == stPunching || l.st == stHandshaking):
		// The offerer gave up on (or never made) this attempt.
		l.teardown(now)
		e.maybeConnect(now, l, triggerRetry)
	}
}
