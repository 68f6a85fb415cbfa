package conn

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/signal"
)

// quietWorld is a world without faults: 5 ms one way, 10 ms signalling.
func quietWorld(t *testing.T) (*simWorld, *simPerson, *simPerson) {
	w := newSimWorld(t, 1, simFaults{latency: 5 * time.Millisecond, sigLatency: 10 * time.Millisecond})
	a, b := w.addPerson("alice", 1), w.addPerson("bob", 2)
	befriend(a, b)
	return w, a, b
}

func startBoth(w *simWorld, a, b *simPerson) {
	a.start()
	b.start()
	w.runUntil("alice and bob connected", 10*time.Second, func() bool { return connected(a, b) })
}

// plant writes a signal into to's inbox as from, sealed by from's real key
// (what the contact's software, or a replay of it, could put there).
func plant(t *testing.T, w *simWorld, from, to *simPerson, kind SignalKind, sid string, inv identity.Invitation) {
	t.Helper()
	sealed, err := identity.SealInvitation(from.id, to.id.Public, sid, kind.String(), inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := signal.Signal{From: from.idStr, To: to.idStr, Kind: signal.Kind(kind.String()), SessionID: sid, Payload: sealed}
	if _, err := w.hub.Open(from.idStr).Send(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	w.deliverInbox(to)
}

func testCandidates(p *simPerson) []byte {
	return punch.EncodeCandidates([]punch.Candidate{{Type: punch.CandidateHost, Addr: p.addr, Priority: 1}}, punch.NATBehavior{})
}

// Contacts connect when both run, and again after either restarts (crash
// or clean quit), without a keystroke and without a prompt.
func TestContactsReconnectByThemselves(t *testing.T) {
	w, a, b := quietWorld(t)
	startBoth(w, a, b)
	b.crash()
	w.runFor(2 * time.Second)
	b.start()
	w.runUntil("reconnected after bob crashed and came back", 10*time.Second, func() bool { return connected(a, b) })
	a.quit()
	w.runFor(time.Second)
	a.start()
	w.runUntil("reconnected after alice quit and came back", 10*time.Second, func() bool { return connected(a, b) })
	for _, p := range []*simPerson{a, b} {
		if n := len(notesSince[OfferShown](p, 0)); n != 0 {
			t.Errorf("%s was prompted %d times; contacts reconnect without asking", p.name, n)
		}
	}
}

// An attacker who can write my inbox replays every signal ever sent,
// several times: the live session is not disturbed.
func TestReplayedSignalsLeaveTheLiveSessionAlone(t *testing.T) {
	w, a, b := quietWorld(t)
	startBoth(w, a, b)
	sid := a.est[b.idStr]
	na, nb := len(a.notes), len(b.notes)
	for range 3 {
		for range len(w.sent) {
			w.replayOld()
		}
		w.runFor(5 * time.Second)
	}
	w.runFor(30 * time.Second)
	if !connected(a, b) || a.est[b.idStr] != sid {
		t.Fatalf("after replays: connected %v, session %q; want still %q", connected(a, b), a.est[b.idStr], sid)
	}
	for _, c := range []struct {
		p *simPerson
		n int
	}{{a, na}, {b, nb}} {
		if x := notesSince[Connecting](c.p, c.n); len(x) != 0 {
			t.Errorf("%s started %d attempts because of replays: %+v", c.p.name, len(x), x)
		}
		if x := notesSince[OfferShown](c.p, c.n); len(x) != 0 {
			t.Errorf("%s was asked about replayed offers: %+v", c.p.name, x)
		}
	}
}

// After a restart the receiver's memory of seen sessions is gone; replayed
// offers still cannot take over the session it makes, nor keep it from
// reconnecting.
func TestReplaysAfterARestart(t *testing.T) {
	w, a, b := quietWorld(t)
	startBoth(w, a, b)
	old := len(w.sent)
	b.crash()
	w.runFor(time.Second)
	b.start()
	for i := range old {
		s := w.sent[i]
		s.ID, s.CreatedAt, s.ExpiresAt = "", time.Time{}, time.Time{}
		if _, err := w.hub.Open(s.From).Send(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	w.deliverInbox(b)
	w.runUntil("reconnected despite the replays", 20*time.Second, func() bool { return connected(a, b) })
	sid := a.est[b.idStr]
	w.runFor(20 * time.Second)
	if a.est[b.idStr] != sid || !connected(a, b) {
		t.Fatalf("session changed from %q to %q after replays", sid, a.est[b.idStr])
	}
}

// Offers are keyed by (sender, session): a stranger reusing the session ID
// of a contact's pending offer gets its own prompt and changes nothing of
// the contact's.
func TestOffersAreKeyedBySenderAndSession(t *testing.T) {
	w, a, b := quietWorld(t)
	m := w.addPerson("mallory", 3)
	b.st.contacts[0].AskEachTime = true // bob is asked about alice's offers
	b.manual = true
	a.start()
	b.start()
	w.runFor(time.Second)
	a.input(a.gen, func(e *Engine) {
		if err := e.Connect(w.now, b.idStr); err != nil {
			t.Fatal(err)
		}
	})
	w.runUntil("bob asked about alice's offer", 5*time.Second, func() bool { return len(notesSince[OfferShown](b, 0)) == 1 })
	shown := notesSince[OfferShown](b, 0)[0]
	if shown.From != a.idStr || !shown.Contact {
		t.Fatalf("offer shown %+v; want alice's, as a contact", shown)
	}
	m.start()
	plant(t, w, m, b, KindOffer, shown.SessionID, identity.Invitation{Name: "alice", Created: w.now, Instance: m.instance, Candidates: testCandidates(m)})
	w.runUntil("bob asked about mallory's offer too", 5*time.Second, func() bool { return len(notesSince[OfferShown](b, 0)) == 2 })
	second := notesSince[OfferShown](b, 0)[1]
	if second.From != m.idStr || second.Contact || second.SessionID != shown.SessionID {
		t.Fatalf("second offer %+v; want mallory's, unknown, same session ID", second)
	}
	if gone := notesSince[OfferGone](b, 0); len(gone) != 0 {
		t.Fatalf("offers hidden: %+v; alice's must stay", gone)
	}
	b.input(b.gen, func(e *Engine) {
		if err := e.Accept(w.now, a.idStr, shown.SessionID, ""); err != nil {
			t.Fatal(err)
		}
	})
	w.runUntil("alice and bob connected", 5*time.Second, func() bool { return connected(a, b) })
	if _, ok := b.est[m.idStr]; ok {
		t.Fatal("bob connected to mallory")
	}
}

// A clean quit is not a failure: the peer learns it at once, shows it
// offline and says who hung up.
func TestCleanQuitIsNotAFailure(t *testing.T) {
	w, a, b := quietWorld(t)
	startBoth(w, a, b)
	nb := len(b.notes)
	a.quit()
	w.runFor(500 * time.Millisecond)
	if f := notesSince[Failed](b, nb); len(f) != 0 {
		t.Fatalf("bob reports a failure after alice quit: %+v", f)
	}
	closed := notesSince[Closed](b, nb)
	if len(closed) != 1 || closed[0].Words != "alice closed the chat" {
		t.Fatalf("closed notes %+v; want one saying alice closed the chat", closed)
	}
	st := b.eng.Peer(a.idStr)
	if st.Online || st.Phase != PhaseIdle {
		t.Fatalf("bob sees alice %+v; want offline and idle at once", st)
	}
	pres := notesSince[PresenceChanged](b, nb)
	if len(pres) == 0 || pres[len(pres)-1].Online {
		t.Fatalf("presence notes %+v; want alice offline", pres)
	}
}

// Typing stops when the typist vanishes: the indicator expires within a
// few seconds, long before the path is declared lost.
func TestTypingExpiresWhenThePeerVanishes(t *testing.T) {
	w, a, b := quietWorld(t)
	startBoth(w, a, b)
	a.input(a.gen, func(e *Engine) { e.SetTyping(w.now, b.idStr, true) })
	w.runUntil("bob sees alice typing", time.Second, func() bool { return b.eng.Peer(a.idStr).Typing })
	a.crash()
	at := w.now
	w.runUntil("typing indicator cleared", 10*time.Second, func() bool { return !b.eng.Peer(a.idStr).Typing })
	if d := w.now.Sub(at); d > 7*time.Second {
		t.Fatalf("typing shown %v after alice vanished", d)
	}
}

// Connecting to an offline contact waits for it (no offer left in its
// inbox), watching its presence, can be cancelled, and starts the moment it
// appears: well before the safety-net poll would read its presence again.
func TestWaitingForAnOfflineContact(t *testing.T) {
	w, a, b := quietWorld(t)
	b.st.contacts[0].AskEachTime = true // bob does not reconnect by himself: alice's watch must
	a.start()
	w.runFor(time.Second)
	a.input(a.gen, func(e *Engine) {
		if err := e.Connect(w.now, b.idStr); err != nil {
			t.Fatal(err)
		}
	})
	w.runFor(time.Second)
	st := a.eng.Peer(b.idStr)
	if st.Phase != PhaseWaiting || st.Words != "waiting for bob to come online" {
		t.Fatalf("alice sees %+v; want waiting for bob", st)
	}
	if !a.watching[b.idStr] {
		t.Fatal("alice waits for bob without watching his presence")
	}
	a.input(a.gen, func(e *Engine) { e.Cancel(w.now, b.idStr) })
	if st := a.eng.Peer(b.idStr); st.Phase == PhaseWaiting || st.Phase == PhaseConnecting {
		t.Fatalf("after cancel alice sees %+v", st)
	}
	if a.watching[b.idStr] {
		t.Fatal("alice still watches bob's presence after cancelling")
	}
	w.runFor(20 * time.Second)
	if len(w.hub.Inbox(b.idStr)) != 0 {
		t.Fatal("an offer was left in the offline contact's inbox")
	}
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
	w.runFor(20*time.Second + DefaultWaitingPoll/2) // bob appears between two polls
	if len(w.sent) != 0 {
		t.Fatalf("%d signals sent to a contact that is not there", len(w.sent))
	}
	na := len(a.notes)
	b.start()
	at := w.now
	w.runUntil("alice offered once bob appeared", 10*time.Second, func() bool {
		for _, c := range notesSince[Connecting](a, na) {
			if strings.HasPrefix(c.Words, "offer sent") {
				return true
			}
		}
		return false
	})
	if d := w.now.Sub(at); d > DefaultWaitingPoll/5 {
		t.Fatalf("alice offered %v after bob appeared; want at once (the poll alone would take up to %v)", d, DefaultWaitingPoll)
	}
	w.runUntil("connected once bob accepted", 30*time.Second, func() bool { return connected(a, b) })
	if a.watching[b.idStr] {
		t.Fatal("alice still watches bob's presence once connected")
	}
}

// A peer whose presence says it runs but which never answers: the attempt
// ends with words, retries are bounded, nothing hangs in "connecting".
func TestPeerThatNeverAnswers(t *testing.T) {
	w, a, b := quietWorld(t)
	sig := w.hub.Open(b.idStr)
	heartbeat := func() {
		_ = sig.PublishPresence(context.Background(), signal.Presence{ID: b.idStr, DisplayName: "bob", Instance: "zombie"})
	}
	var beat func()
	beat = func() { heartbeat(); w.at(20*time.Second, beat) }
	beat()
	a.start()
	w.runFor(time.Second)
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
	w.runFor(30 * time.Minute)
	st := a.eng.Peer(b.idStr)
	if st.Phase != PhaseFailed || st.Words == "" {
		t.Fatalf("alice sees %+v; want failed, with words", st)
	}
	offers := 0
	for _, s := range w.sent {
		if s.Kind == signal.KindOffer {
			offers++
		}
	}
	// The automatic one at start, then the one asked for, its quick
	// retries, and a slow one every simSlowRetry (plus the offer timeout)
	// after them.
	if most := 2 + maxBlindRetries + int(30*time.Minute/(simSlowRetry+DefaultOfferTimeout)); offers < 2+maxBlindRetries || offers > most {
		t.Fatalf("%d offers in 30 minutes; want the quick retries and then a slow one now and then, at most %d", offers, most)
	}
}

// An offer left behind by a process that has gone is dropped, not shown:
// the sender restarted since (another instance published presence), or
// quit cleanly.
func TestLeftoverOffersAreDropped(t *testing.T) {
	for _, how := range []string{"restarted", "quit"} {
		t.Run(how, func(t *testing.T) {
			w, a, b := quietWorld(t)
			b.st.contacts[0].AskEachTime = true // so a live offer would be shown
			b.manual = true
			a.start()
			w.runFor(time.Second)
			created := w.now.Add(-20 * time.Second)
			if how == "quit" {
				a.quit()
				w.runFor(time.Second)
				created = w.now.Add(-2 * time.Second)
			}
			b.start()
			w.runFor(time.Second)
			inst := "deadbeef00"
			if how == "quit" {
				inst = a.instance
			}
			plant(t, w, a, b, KindOffer, "leftover1", identity.Invitation{Name: "alice", Created: created, Instance: inst, Candidates: testCandidates(a)})
			w.runFor(5 * time.Second)
			if x := notesSince[OfferShown](b, 0); len(x) != 0 {
				t.Fatalf("leftover offer shown: %+v", x)
			}
			// The same offer from the live process is shown.
			if how == "restarted" {
				plant(t, w, a, b, KindOffer, "live1", identity.Invitation{Name: "alice", Created: w.now, Instance: a.eng.Instance(), Candidates: testCandidates(a)})
				w.runFor(2 * time.Second)
				if x := notesSince[OfferShown](b, 0); len(x) != 1 || x[0].SessionID != "live1" {
					t.Fatalf("live offer: shown %+v", x)
				}
			}
		})
	}
}

// Hostile input cannot grow the engine's tables: offers from thousands of
// strangers, many offers of one stranger, replays, and datagrams from
// everywhere during punching.
func TestHostileInputIsBounded(t *testing.T) {
	me := simKey(t, 9)
	e, err := New(Config{Identity: me, Name: "me", Host: []punch.Candidate{{Type: punch.CandidateHost, Addr: mustAddr("10.9.0.1:4000")}}})
	if err != nil {
		t.Fatal(err)
	}
	now := simEpoch
	e.Start(now)
	e.HandleContacts(now, ContactsResult{})
	e.HandleListening(now)
	drain := func() {
		e.Effects()
		e.Notifications()
	}
	drain()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	offerFrom := func(from identity.Identity, sid string) Signal {
		inv := identity.Invitation{Name: "x", Created: now, Candidates: punch.EncodeCandidates([]punch.Candidate{{Addr: mustAddr("203.0.113.9:9")}}, punch.NATBehavior{})}
		sealed, err := identity.SealInvitation(from, me.Public, sid, KindOffer.String(), inv, nil)
		if err != nil {
			t.Fatal(err)
		}
		return Signal{ID: "d-" + sid, From: from.ID(), Kind: KindOffer, SessionID: sid, Payload: sealed}
	}
	strangers := 2000
	if testing.Short() {
		strangers = 400
	}
	for i := range strangers {
		id, err := identity.NewIdentity(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Millisecond)
		e.HandleSignal(now, offerFrom(id, fmt.Sprintf("s%d", i)))
		drain()
	}
	one, _ := identity.NewIdentity(rand.Reader)
	for i := range 500 {
		s := offerFrom(one, fmt.Sprintf("m%d", i))
		e.HandleSignal(now, s)
		e.HandleSignal(now, s) // and its replay
		drain()
	}
	// Let every parked offer's presence read time out.
	now = now.Add(DefaultVerifyTimeout + time.Second)
	e.HandleTimeout(now)
	drain()
	for i := range 20000 {
		e.HandleDatagram(now, punch.Datagram{From: mustAddr(fmt.Sprintf("198.51.%d.%d:%d", i%200, i%250, 1000+i)), Data: []byte{0x60, byte(i), 3, 4}, At: now})
		e.HandleDatagram(now, punch.Datagram{From: mustAddr(fmt.Sprintf("198.51.%d.%d:%d", i%200, i%250, 1000+i)), Data: append([]byte{punch.PunchByte}, make([]byte, 60)...), At: now})
	}
	drain()
	switch {
	case len(e.offers) > maxPendingOffers:
		t.Errorf("%d offers shown, bound %d", len(e.offers), maxPendingOffers)
	case len(e.verifying) > maxVerifying:
		t.Errorf("%d offers parked, bound %d", len(e.verifying), maxVerifying)
	case len(e.seen) > maxSeenSessions || len(e.seenOrder) > 2*maxSeenSessions:
		t.Errorf("%d seen sessions (%d ordered), bound %d", len(e.seen), len(e.seenOrder), maxSeenSessions)
	case len(e.links) != 0 || len(e.byTag) != 0 || len(e.byRoute) != 0:
		t.Errorf("strangers made links: %d links, %d tags, %d remotes", len(e.links), len(e.byTag), len(e.byRoute))
	}
	perSender := 0
	for _, o := range e.offers {
		if o.key.from == one.ID() {
			perSender++
		}
	}
	if perSender > maxOffersPerSender {
		t.Errorf("one stranger has %d offers shown, bound %d", perSender, maxOffersPerSender)
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Errorf("heap grew by %d KiB under the flood", grew>>10)
	}
}

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// An offer the attacker held back (taken out of the inbox before it was
// read) and delivers later, when a newer session is up: it is fresh and
// was never seen by this process, but it is older than the session, so
// nothing changes.
func TestDelayedOfferDoesNotReplaceANewerSession(t *testing.T) {
	w, a, b := quietWorld(t)
	// Bob's presence says he runs (a stale heartbeat), so alice offers.
	bsig := w.hub.Open(b.idStr)
	_ = bsig.PublishPresence(context.Background(), signal.Presence{ID: b.idStr, DisplayName: "bob", Instance: "earlier"})
	a.start()
	w.runFor(time.Second)
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
	w.runFor(time.Second)
	// The attacker takes everything, keeping alice's latest offer (the
	// one she made when asked, after her program's automatic one).
	var held []signal.Signal
	for _, s := range w.hub.Inbox(b.idStr) {
		if s.Kind == signal.KindOffer {
			held = []signal.Signal{s}
		}
		if err := bsig.Ack(context.Background(), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	if len(held) != 1 {
		t.Fatal("alice made no offer")
	}
	w.runFor(5 * time.Second)
	b.start()
	w.runUntil("connected on a newer session", 20*time.Second, func() bool { return connected(a, b) })
	sid := a.est[b.idStr]
	if sid == held[0].SessionID {
		t.Fatal("connected on the held-back offer's session")
	}
	nb := len(b.notes)
	s := held[0]
	s.ID = ""
	if _, err := w.hub.Open(a.idStr).Send(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	w.deliverInbox(b)
	w.runFor(10 * time.Second)
	if !connected(a, b) || a.est[b.idStr] != sid {
		t.Fatalf("the held-back offer changed the session: now %q, want %q", a.est[b.idStr], sid)
	}
	if x := notesSince[Connecting](b, nb); len(x) != 0 {
		t.Fatalf("bob acted on the held-back offer: %+v", x)
	}
}

// A declined offer replayed (or redelivered) is not asked about again.
func TestDeclinedOfferIsNotAskedAgain(t *testing.T) {
	w, a, b := quietWorld(t)
	b.st.contacts[0].AskEachTime = true
	b.manual = true
	a.start()
	b.start()
	w.runFor(time.Second)
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
	w.runUntil("bob asked", 5*time.Second, func() bool { return len(notesSince[OfferShown](b, 0)) == 1 })
	shown := notesSince[OfferShown](b, 0)[0]
	b.input(b.gen, func(e *Engine) {
		if err := e.Decline(w.now, shown.From, shown.SessionID); err != nil {
			t.Fatal(err)
		}
	})
	w.runUntil("alice told", 5*time.Second, func() bool { return a.eng.Peer(b.idStr).Phase == PhaseFailed })
	if st := a.eng.Peer(b.idStr); st.Words != "bob declined the chat request" {
		t.Fatalf("alice sees %+v", st)
	}
	for range 3 {
		for i := range w.sent {
			if w.sent[i].Kind == signal.KindOffer {
				s := w.sent[i]
				s.ID = ""
				if _, err := w.hub.Open(s.From).Send(context.Background(), s); err != nil {
					t.Fatal(err)
				}
			}
		}
		w.deliverInbox(b)
		w.runFor(2 * time.Second)
	}
	if x := notesSince[OfferShown](b, 0); len(x) != 1 {
		t.Fatalf("bob was asked %d times; the declined offer came back", len(x))
	}
	if st := a.eng.Peer(b.idStr); st.Phase != PhaseFailed {
		t.Fatalf("alice retried after a decline: %+v", st)
	}
}

// A contact list read before a later change was written does not undo the
// change (two contacts added quickly: the first add's list lacks the
// second).
func TestStaleContactListIsNotTaken(t *testing.T) {
	me := simKey(t, 9)
	bob, carol := simKey(t, 10), simKey(t, 11)
	e, err := New(Config{Identity: me, Name: "me"})
	if err != nil {
		t.Fatal(err)
	}
	now := simEpoch
	e.Start(now)
	e.HandleContacts(now, ContactsResult{})
	if err := e.AddContact(now, "bob", bob.ID()); err != nil {
		t.Fatal(err)
	}
	if err := e.AddContact(now, "carol", carol.ID()); err != nil {
		t.Fatal(err)
	}
	var adds []StoreAddContact
	for _, ef := range e.Effects() {
		if a, ok := ef.(StoreAddContact); ok {
			adds = append(adds, a)
		}
	}
	if len(adds) != 2 || adds[0].Gen >= adds[1].Gen {
		t.Fatalf("adds %+v; want two with increasing generations", adds)
	}
	// The first add's result: the store then held bob only.
	e.HandleContacts(now, ContactsResult{Gen: adds[0].Gen, Added: bob.ID(), Contacts: []Contact{{ID: bob.ID(), Name: "bob", Public: bob.Public}}})
	if got := len(e.Contacts()); got != 2 {
		t.Fatalf("%d contacts after the stale list; carol was dropped", got)
	}
	e.HandleContacts(now, ContactsResult{Gen: adds[1].Gen, Added: carol.ID(), Contacts: []Contact{
		{ID: bob.ID(), Name: "bob", Public: bob.Public}, {ID: carol.ID(), Name: "carol", Public: carol.Public}}})
	if got := len(e.Contacts()); got != 2 {
		t.Fatalf("%d contacts after the latest list", got)
	}
	var added []string
	for _, n := range e.Notifications() {
		if c, ok := n.(ContactsChanged); ok && c.Added != "" {
			added = append(added, c.Added)
		}
	}
	if len(added) != 2 || added[0] != bob.ID() || added[1] != carol.ID() {
		t.Fatalf("contact-added notes %v; want bob then carol", added)
	}
}

// A blocked ID's signals are dropped unseen: the live session ends, its
// offers are never shown or answered; unblocking lets it through again.
func TestBlockedPeerIsDroppedUnseen(t *testing.T) {
	w, a, b := quietWorld(t)
	b.st.contacts[0].AskEachTime = true // so a live offer would be shown
	b.manual = true
	a.start()
	b.start()
	w.runFor(time.Second)
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
	w.runUntil("bob asked", 5*time.Second, func() bool { return len(notesSince[OfferShown](b, 0)) == 1 })
	nb := len(b.notes)
	b.input(b.gen, func(e *Engine) {
		if err := e.Block(w.now, a.idStr, "alice"); err != nil {
			t.Fatal(err)
		}
	})
	if gone := notesSince[OfferGone](b, nb); len(gone) != 1 || gone[0].Words != "blocked" {
		t.Fatalf("after blocking: offers gone %+v; want alice's, blocked", gone)
	}
	if st := b.eng.Peer(a.idStr); !st.Blocked {
		t.Fatalf("alice's status %+v; want blocked", st)
	}
	w.runFor(3 * time.Minute) // alice retries
	if x := notesSince[OfferShown](b, nb); len(x) != 0 {
		t.Fatalf("a blocked ID's offers were shown: %+v", x)
	}
	for _, s := range w.sent {
		if s.From == b.idStr && s.To == a.idStr && s.Kind != signal.KindCancel {
			t.Fatalf("bob sent a %s to the blocked alice", s.Kind)
		}
	}
	b.input(b.gen, func(e *Engine) {
		if err := e.Connect(w.now, a.idStr); err == nil {
			t.Fatal("connected to a blocked ID")
		}
		e.Unblock(w.now, a.idStr)
		if err := e.Connect(w.now, a.idStr); err != nil {
			t.Fatal(err)
		}
	})
	w.runUntil("connected after unblocking", 10*time.Second, func() bool { return connected(a, b) })
}

// Asking to connect to a contact whose last presence read said offline
// reads it again at once: both may have started a moment apart, and
// waiting a whole poll for the next read would be seconds for nothing.
func TestConnectRereadsAStaleOfflinePresence(t *testing.T) {
	w, a, b := quietWorld(t)
	b.st.contacts[0].AskEachTime = true // so bob does not reconnect by himself
	a.start()
	w.runFor(time.Second)
	if st := a.eng.Peer(b.idStr); st.Online {
		t.Fatal("bob online before he started")
	}
	b.start()
	w.runFor(100 * time.Millisecond) // his presence is written; alice's read of it is old
	na := len(a.notes)
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
	w.runUntil("alice offered", time.Second, func() bool {
		for _, c := range notesSince[Connecting](a, na) {
			if strings.HasPrefix(c.Words, "offer sent") {
				return true
			}
		}
		return false
	})
}

// "Ask me each time", switched on at run time: the contact's offers are
// asked about from then on, and it is not reconnected automatically.
func TestAskEachTimeAtRunTime(t *testing.T) {
	w, a, b := quietWorld(t)
	b.manual = true
	startBoth(w, a, b)
	b.input(b.gen, func(e *Engine) {
		if err := e.SetAskEachTime(w.now, a.idStr, true); err != nil {
			t.Fatal(err)
		}
	})
	w.runFor(100 * time.Millisecond)
	if c := b.st.contacts[0]; c.ID != a.idStr || !c.AskEachTime {
		t.Fatalf("stored contact %+v; want the setting stored", c)
	}
	if st := b.eng.Peer(a.idStr); !st.AskEachTime {
		t.Fatalf("status %+v; want ask each time", st)
	}
	nb := len(b.notes)
	a.quit()
	w.runFor(time.Second)
	a.start() // alice's program reconnects by itself: declined unseen
	w.runFor(10 * time.Second)
	if connected(a, b) || len(notesSince[OfferShown](b, nb)) != 0 {
		t.Fatalf("an automatic offer got through: connected %v, shown %v", connected(a, b), notesSince[OfferShown](b, nb))
	}
	a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) }) // alice asks
	w.runUntil("bob asked", 5*time.Second, func() bool { return len(notesSince[OfferShown](b, nb)) == 1 })
	if err := b.eng.SetAskEachTime(w.now, "not an id", true); err == nil {
		t.Fatal("set on a stranger accepted")
	}
}
