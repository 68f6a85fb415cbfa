package conn

// A deterministic simulated world for the connection lifecycle: engines of
// two (or more) people, a network with latency, jitter, loss, duplication
// and partitions, the in-memory signalling hub (signal.Hub on the
// simulation's clock, read at the instants the simulation chooses instead
// of through a listener goroutine) with latency, outages, redeliveries,
// delayed writes and an attacker replaying old signals, and a persistent
// in-memory store per person. People restart (crash or clean quit) at any
// moment; a restarted process gets a new port and instance, and keeps its
// store. Same seed, same run.

import (
	"container/heap"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/simnet"
	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
	"github.com/pion/stun/v2"
)

var (
	simSeed      = flag.Uint64("sim.seed", 0, "run only this seed of TestSimulatedLifecycle")
	simScenarios = flag.Int("sim.scenarios", 0, "TestSimulatedLifecycle: how many seeds (default 1000; 200 under -race, 150 with -short)")
)

var simEpoch = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// simEvent is something that happens at an instant.
type simEvent struct {
	at  time.Time
	seq int
	fn  func()
}

type simQueue []*simEvent

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int)   { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)     { *q = append(*q, x.(*simEvent)) }
func (q *simQueue) Pop() any       { old := *q; e := old[len(old)-1]; *q = old[:len(old)-1]; return e }
func (q simQueue) peek() *simEvent { return q[0] }

// simFaults are the scenario's network and signalling conditions.
type simFaults struct {
	loss, dup    float64       // per datagram
	latency      time.Duration // one way, plus up to jitter
	jitter       time.Duration
	sigLatency   time.Duration // signalling write and delivery
	redeliver    float64       // a listener delivers a signal twice
	delayWrite   float64       // a signal write is held back for seconds
	partitions   []simSpan     // the network drops everything
	sigOutages   []simSpan     // the signalling backend is down
	quietAfter   time.Duration // no faults (and no restarts) after this
	replays      int           // old signals the attacker re-plants
	unanswering  bool          // the second person never runs
	askEachTime  bool          // the second person is asked about the first's offers
	crossingOpen bool          // both open the chat at the same instant
	nats         [2]simnet.Kind
	files        int // files each person offers the other (sim_transfer_test.go)
	simRelayFaults
}

type simSpan struct{ from, to time.Duration }

func (s simSpan) covers(d time.Duration) bool { return d >= s.from && d < s.to }

// simWorld is one scenario.
type simWorld struct {
	t        testing.TB
	seed     uint64
	rng      *rand.Rand
	now      time.Time
	q        simQueue
	seq      int
	f        simFaults
	hub      *signal.Hub
	people   []*simPerson
	sent     []signal.Signal // every signal written, for the attacker
	restarts int
	trace    []string
	// violations of the invariant "both established means the same session"
	violation string
	relay     simRelay // the TURN server (sim_relay_test.go)
}

// simPerson is one user: a persistent identity and store, and the engine
// of the process currently running (nil while not running).
type simPerson struct {
	w     *simWorld
	name  string
	idx   int
	id    identity.Identity
	idStr string
	st    *simStore
	sig   signal.Signaller

	gen       int // incarnation; events of an older one are dropped
	eng       *Engine
	addr      netip.AddrPort
	running   bool
	stopping  bool
	listening bool
	delivered map[string]bool
	timerAt   time.Time
	storeFree time.Time     // store operations run one at a time, in order
	slowStore time.Duration // added to every store operation (a busy disk)

	notes   []Notification      // every notification, across incarnations
	stored  []session.MessageID // messages this person stored (sent), in order
	got     []session.MessageID // MessageIn across incarnations, in order
	est     map[string]string   // peer -> session ID while connected
	accepts int
	manual  bool // offers are left for the test to answer

	instance string          // of the latest process
	nat      *simnet.NAT     // nil: a public address
	watching map[string]bool // presence watches of the latest process

	xf simFiles // file transfers (sim_transfer_test.go)
}

// simStore is a person's store: what survives a restart.
type simStore struct {
	contacts []Contact
	outbox   map[string][]store.Record
	received map[string]map[session.MessageID]bool
	xfers    *simRecords // transfer records
}

func newSimWorld(t testing.TB, seed uint64, f simFaults) *simWorld {
	w := &simWorld{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), now: simEpoch, f: f}
	w.hub = signal.NewMemoryHubClock(func() time.Time { return w.now })
	return w
}

func (w *simWorld) at(d time.Duration, fn func()) {
	w.seq++
	heap.Push(&w.q, &simEvent{at: w.now.Add(max(d, 0)), seq: w.seq, fn: fn})
}

func (w *simWorld) logf(format string, args ...any) {
	if len(w.trace) > 4000 {
		w.trace = w.trace[1000:]
	}
	w.trace = append(w.trace, fmt.Sprintf("%8.3fs ", w.now.Sub(simEpoch).Seconds())+fmt.Sprintf(format, args...))
}

func (w *simWorld) elapsed() time.Duration { return w.now.Sub(simEpoch) }

func (w *simWorld) faulty() bool { return w.elapsed() < w.f.quietAfter }

func (w *simWorld) sigDown() bool {
	for _, s := range w.f.sigOutages {
		if s.covers(w.elapsed()) {
			return true
		}
	}
	return false
}

func (w *simWorld) partitioned() bool {
	for _, s := range w.f.partitions {
		if s.covers(w.elapsed()) {
			return true
		}
	}
	return false
}

func (w *simWorld) chance(p float64) bool { return p > 0 && w.faulty() && w.rng.Float64() < p }

// simKey makes a deterministic identity.
func simKey(t testing.TB, seed byte) identity.Identity {
	b := make([]byte, 32)
	for i := range b {
		b[i] = seed*31 + byte(i)*7 + 1
	}
	id, err := identity.NewIdentity(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (w *simWorld) addPerson(name string, seed byte) *simPerson {
	p := &simPerson{w: w, name: name, idx: len(w.people), id: simKey(w.t, seed), est: map[string]string{},
		st: &simStore{outbox: map[string][]store.Record{}, received: map[string]map[session.MessageID]bool{}, xfers: newSimRecords()}}
	p.idStr = p.id.ID()
	p.sig = w.hub.Open(p.idStr)
	w.people = append(w.people, p)
	return p
}

// befriend makes a and b contacts of each other.
func befriend(a, b *simPerson) {
	a.st.contacts = append(a.st.contacts, Contact{ID: b.idStr, Name: b.name, Public: b.id.Public})
	b.st.contacts = append(b.st.contacts, Contact{ID: a.idStr, Name: a.name, Public: a.id.Public})
}

// start runs a new process of p.
func (p *simPerson) start() {
	w := p.w
	p.gen++
	p.running, p.stopping, p.listening = true, false, false
	p.delivered = map[string]bool{}
	p.watching = map[string]bool{}
	p.timerAt = time.Time{}
	p.est = map[string]string{}
	// Behind a NAT the socket has a LAN address; without one, a public one.
	// A new process gets a new port (and so a new NAT mapping).
	ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(p.idx + 1)})
	if p.nat != nil {
		ip = p.nat.LAN.Addr().Next().Next()
	}
	p.addr = netip.AddrPortFrom(ip, uint16(4000+p.gen))
	var rs [32]byte
	rs[0], rs[1], rs[2] = byte(w.seed), byte(w.seed>>8), byte(p.idx)
	rs[3] = byte(p.gen)
	cfg := Config{
		Identity: p.id, Name: p.name, Rand: rand.NewChaCha8(rs),
		Host:    []punch.Candidate{{Type: punch.CandidateHost, Addr: p.addr, Priority: 100}},
		STUN:    []netip.AddrPort{simSTUN1, simSTUN2},
		Session: session.Timers{},
		// The quiet end of a scenario is five minutes: slow retries must
		// fit in it.
		Timers: Timers{SlowRetry: simSlowRetry},
	}
	if w.f.relay {
		cfg.TURN = []string{simTURN}
	}
	eng, err := New(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	p.eng = eng
	p.instance = eng.Instance()
	p.startFiles()
	w.logf("%s starts (gen %d, %v, instance %s)", p.name, p.gen, p.addr, eng.Instance())
	eng.Start(w.now)
	p.drain()
}

// crash ends the process at once: nothing more is sent or stored.
func (p *simPerson) crash() {
	if !p.running {
		return
	}
	p.w.logf("%s crashes", p.name)
	p.w.restarts++
	p.running = false
	p.eng = nil
	p.gen++
	p.stopFiles()
	p.w.relay.forget(p)
}

// quit ends the process cleanly: the engine says goodbye, then the store
// operations already issued finish before the process is gone.
func (p *simPerson) quit() {
	if !p.running || p.stopping {
		return
	}
	p.w.logf("%s quits", p.name)
	p.w.restarts++
	p.eng.Quit(p.w.now)
	p.drain()
}

// input runs f on the current engine (if the process still is gen) and
// drains its outputs.
func (p *simPerson) input(gen int, f func(e *Engine)) {
	if !p.running || p.gen != gen || p.eng == nil {
		return
	}
	f(p.eng)
	p.drain()
}

// drain performs the engine's effects, records its notifications and
// schedules its next timer.
func (p *simPerson) drain() {
	w := p.w
	if p.eng == nil {
		return
	}
	gen := p.gen
	for _, n := range p.eng.Notifications() {
		p.observe(n)
	}
	for _, ef := range p.eng.Effects() {
		p.perform(gen, ef)
	}
	if p.eng == nil {
		return
	}
	if d := p.eng.Deadline(); !d.IsZero() && !d.Equal(p.timerAt) {
		p.timerAt = d
		at := d
		w.at(d.Sub(w.now), func() {
			if p.timerAt.Equal(at) {
				p.timerAt = time.Time{}
				p.input(gen, func(e *Engine) { e.HandleTimeout(w.now) })
			}
		})
	}
	w.checkInvariant()
}

func (p *simPerson) observe(n Notification) {
	w := p.w
	p.notes = append(p.notes, n)
	switch n := n.(type) {
	case Connected:
		p.est[n.Peer] = n.SessionID
		w.logf("%s connected to %s session %s", p.name, w.nameOf(n.Peer), n.SessionID)
	case PeerChanged:
		if n.Status.Phase != PhaseConnected {
			delete(p.est, n.Status.ID)
		}
	case Failed:
		delete(p.est, n.Peer)
		w.logf("%s: attempt with %s failed: %s %s [%s]", p.name, w.nameOf(n.Peer), n.Reason, n.Words, n.Detail)
	case Closed:
		delete(p.est, n.Peer)
		w.logf("%s: %s", p.name, n.Words)
	case MessageIn:
		p.got = append(p.got, n.ID)
	case Connecting:
		w.logf("%s → %s: %s (%s)", p.name, w.nameOf(n.Peer), n.Words, n.SessionID)
	case Waiting:
		w.logf("%s: %s", p.name, n.Words)
	case OfferGone:
		w.logf("%s: offer from %s %s gone: %s", p.name, w.nameOf(n.From), n.SessionID, n.Words)
	case PresenceChanged:
		w.logf("%s sees %s online=%v", p.name, w.nameOf(n.Peer), n.Online)
	case FileOffer, FileOffered, FileStarted, FileDone, FileFailed:
		p.observeFile(n)
	case OfferShown:
		w.logf("%s is asked about %s's offer %s", p.name, w.nameOf(n.From), n.SessionID)
		if p.manual {
			return
		}
		// The person reads it and accepts after a while.
		from, sid := n.From, n.SessionID
		gen := p.gen
		w.at(time.Duration(1+w.rng.IntN(5))*time.Second, func() {
			p.input(gen, func(e *Engine) {
				if err := e.Accept(w.now, from, sid, ""); err == nil {
					p.accepts++
				}
			})
		})
	}
}

func (w *simWorld) nameOf(id string) string {
	for _, p := range w.people {
		if p.idStr == id {
			return p.name
		}
	}
	return id[:8]
}

// perform carries out one effect with the world's delays.
func (p *simPerson) perform(gen int, ef Effect) {
	w := p.w
	switch ef := ef.(type) {
	case SendDatagram:
		w.sendDatagram(p, ef)
	case SendSignal:
		w.logf("%s sends %s %s to %s", p.name, ef.Signal.Kind, ef.Signal.SessionID, w.nameOf(ef.Signal.To))
		d := w.f.sigLatency
		if w.chance(w.f.delayWrite) {
			d += time.Duration(1+w.rng.IntN(8)) * time.Second
		}
		w.at(d, func() { w.writeSignal(p, gen, ef.Signal) })
	case AckSignal:
		w.at(w.f.sigLatency, func() {
			if !w.sigDown() {
				_ = p.sig.Ack(context.Background(), ef.ID)
			}
		})
	case Listen:
		w.at(w.f.sigLatency, func() {
			if !p.running || p.gen != gen {
				return
			}
			p.listening = true
			p.input(gen, func(e *Engine) { e.HandleListening(w.now) })
			w.deliverInbox(p)
		})
	case PublishPresence:
		w.at(w.f.sigLatency, func() {
			if w.sigDown() {
				return
			}
			_ = p.sig.PublishPresence(context.Background(), signal.Presence{ID: ef.ID, DisplayName: ef.Name,
				PublicKey: ef.PublicKey[:], Instance: ef.Instance, Offline: ef.Offline})
			for _, q := range w.people {
				if q.running && q.watching[ef.ID] {
					qgen := q.gen
					w.at(w.f.sigLatency, func() { q.readPresence(qgen, ef.ID, true) })
				}
			}
		})
	case LookupPresence:
		w.at(w.f.sigLatency, func() { p.readPresence(gen, ef.ID, false) })
	case WatchPresence:
		if !ef.On {
			delete(p.watching, ef.ID)
			return
		}
		p.watching[ef.ID] = true
		w.at(w.f.sigLatency, func() { p.readPresence(gen, ef.ID, true) })
	case Stop:
		p.stopping = true
		w.at(0, func() { p.finishStop(gen) })
	case FileWork:
		p.fileWork(gen, ef)
	default:
		if IsStore(ef) {
			p.storeOp(gen, ef)
			return
		}
		if p.performRelay(gen, ef) {
			return
		}
		w.t.Fatalf("unknown effect %T", ef)
	}
}

// finishStop ends a quitting process once its store operations are done.
// readPresence reads id's presence for a lookup or a watch. A watch that
// meets an outage is set up again a second later, as a real one is, and
// reads again then.
func (p *simPerson) readPresence(gen int, id string, watch bool) {
	w := p.w
	if watch && (p.gen != gen || !p.watching[id]) {
		return
	}
	if w.sigDown() {
		if watch {
			w.at(time.Second, func() { p.readPresence(gen, id, true) })
			return
		}
		p.input(gen, func(e *Engine) { e.HandlePresence(w.now, id, Presence{}, false, signal.ErrUnavailable) })
		return
	}
	sp, err := p.sig.LookupPresence(context.Background(), id)
	found := err == nil
	if errors.Is(err, signal.ErrNotFound) {
		err = nil
	}
	pr := Presence{Name: sp.DisplayName, LastSeen: sp.LastSeen, Instance: sp.Instance, Offline: sp.Offline}
	p.input(gen, func(e *Engine) { e.HandlePresence(w.now, id, pr, found, err) })
}

func (p *simPerson) finishStop(gen int) {
	w := p.w
	if p.gen != gen || !p.running {
		return
	}
	if free := later(p.storeFree, p.xf.free); w.now.Before(free) {
		w.at(free.Sub(w.now), func() { p.finishStop(gen) })
		return
	}
	p.running = false
	p.eng = nil
	p.gen++
	p.stopFiles()
	w.relay.forget(p)
	w.logf("%s has quit", p.name)
}

// storeOp runs one store operation after the ones before it.
func (p *simPerson) storeOp(gen int, ef Effect) {
	w := p.w
	start := w.now
	if p.storeFree.After(start) {
		start = p.storeFree
	}
	done := start.Add(time.Duration(200+w.rng.IntN(800))*time.Microsecond + p.slowStore)
	p.storeFree = done
	w.at(done.Sub(w.now), func() {
		if p.gen != gen || !p.running {
			return // the process died before the operation ran
		}
		p.applyStore(gen, ef)
	})
}

func (p *simPerson) applyStore(gen int, ef Effect) {
	w := p.w
	st := p.st
	switch ef := ef.(type) {
	case LoadContacts:
		out := map[string]int{}
		for _, c := range st.contacts {
			out[c.ID] = len(st.outbox[c.ID])
		}
		cs := slices.Clone(st.contacts)
		peers := st.xfers.unfinishedPeers(w.t)
		p.input(gen, func(e *Engine) {
			e.HandleContacts(w.now, ContactsResult{Gen: ef.Gen, Contacts: cs, Outbox: out, TransferPeers: peers})
		})
	case LoadTransfers:
		recs := st.xfers.records(w.t, ef.Public)
		p.input(gen, func(e *Engine) { e.HandleTransfers(w.now, ef.Peer, recs, nil) })
	case StoreQueue:
		st.outbox[ef.Peer] = append(st.outbox[ef.Peer], store.Record{ContactID: ef.Peer, MsgID: ef.ID, Mine: true, Body: ef.Body, At: ef.At, State: store.StateQueued})
		p.stored = append(p.stored, ef.ID)
		p.input(gen, func(e *Engine) { e.HandleQueued(w.now, ef.Peer, ef.ID, ef.Body, ef.At, nil) })
	case StoreReceived:
		got := st.received[ef.Peer]
		if got == nil {
			got = map[session.MessageID]bool{}
			st.received[ef.Peer] = got
		}
		var added []store.Record
		for _, m := range ef.Msgs {
			if !got[m.ID] {
				got[m.ID] = true
				added = append(added, store.Record{ContactID: ef.Peer, MsgID: m.ID, Body: string(m.Body), State: store.StateReceived})
			}
		}
		p.input(gen, func(e *Engine) { e.HandleReceived(w.now, ef, added, nil) })
	case StoreMarkSent:
	case StoreMarkDelivered:
		st.outbox[ef.Peer] = slices.DeleteFunc(st.outbox[ef.Peer], func(r store.Record) bool { return slices.Contains(ef.IDs, r.MsgID) })
	case LoadOutbox:
		recs := slices.Clone(st.outbox[ef.Peer])
		p.input(gen, func(e *Engine) { e.HandleOutbox(w.now, ef.Peer, ef.SessionID, recs, nil) })
	case StoreSetAskEachTime:
		for i := range st.contacts {
			if st.contacts[i].ID == ef.ID {
				st.contacts[i].AskEachTime = ef.Ask
			}
		}
		cs := slices.Clone(st.contacts)
		p.input(gen, func(e *Engine) { e.HandleContacts(w.now, ContactsResult{Gen: ef.Gen, Contacts: cs}) })
	case StoreRemoveContact:
		st.contacts = slices.DeleteFunc(st.contacts, func(c Contact) bool { return c.ID == ef.ID })
		cs := slices.Clone(st.contacts)
		p.input(gen, func(e *Engine) { e.HandleContacts(w.now, ContactsResult{Gen: ef.Gen, Contacts: cs}) })
	case StoreAddContact, StoreRenameContact:
		w.t.Fatalf("unexpected contact change %T in the simulation", ef)
	}
}

// sendDatagram moves one datagram through the network.
func (w *simWorld) sendDatagram(from *simPerson, d SendDatagram) {
	if w.partitioned() || w.chance(w.f.loss) {
		return
	}
	copies := 1
	if w.chance(w.f.dup) {
		copies = 2
	}
	// Out through the sender's NAT: the world sees the mapping.
	src := from.addr
	switch {
	case d.Socket != punch.MainSocket:
		// Out through the person's relay: the TURN server sends it on
		// from the relayed address.
		var ok bool
		if src, ok = w.relay.out(from, d.Socket, d.To); !ok {
			return
		}
	case from.nat != nil:
		m := from.nat.Outbound(w.now, w.rng, src, d.To)
		src = netip.AddrPortFrom(from.nat.Public, m.Ext)
	}
	for range copies {
		delay := w.f.latency
		if w.f.jitter > 0 {
			delay += time.Duration(w.rng.Int64N(int64(w.f.jitter)))
		}
		data := slices.Clone(d.Data)
		to := d.To
		w.at(delay, func() {
			if w.relay.has(to) {
				w.relay.in(src, to, data)
				return
			}
			if w.partitioned() {
				return
			}
			if to == simSTUN1 || to == simSTUN2 {
				w.answerSTUN(to, src, data)
				return
			}
			if w.directBlocked() && !w.relay.has(src) {
				return // between the people themselves
			}
			w.deliver(src, to, data)
		})
	}
}

// deliver hands a datagram that reached to's public address to the host
// behind it, if its NAT lets it in.
func (w *simWorld) deliver(src, to netip.AddrPort, data []byte) {
	for _, p := range w.people {
		if !p.running {
			continue
		}
		dst := to
		if p.nat != nil {
			if to.Addr() != p.nat.Public {
				continue
			}
			in, ok := p.nat.Inbound(w.now, src, to.Port())
			if !ok {
				return // filtered, or no mapping
			}
			dst = in
		}
		if p.addr != dst {
			continue
		}
		gen := p.gen
		dg := punch.Datagram{From: src, Data: data, At: w.now}
		p.input(gen, func(e *Engine) { e.HandleDatagram(w.now, dg) })
		return
	}
}

// answerSTUN is the simulation's STUN server: a Binding success naming the
// address the request came from, sent back from the server's address.
func (w *simWorld) answerSTUN(server, from netip.AddrPort, req []byte) {
	m := &stun.Message{Raw: slices.Clone(req)}
	if m.Decode() != nil || m.Type != stun.BindingRequest {
		return
	}
	resp, err := stun.Build(stun.BindingSuccess, stun.NewTransactionIDSetter(m.TransactionID),
		&stun.XORMappedAddress{IP: from.Addr().AsSlice(), Port: int(from.Port())}, stun.Fingerprint)
	if err != nil {
		w.t.Fatal(err)
	}
	if w.chance(w.f.loss) {
		return
	}
	w.at(w.f.latency, func() { w.deliver(server, from, resp.Raw) })
}

// simSlowRetry is the simulation's Timers.SlowRetry: its scenarios end
// with five quiet minutes, in which slow retries must fit.
const simSlowRetry = 90 * time.Second

// The simulation's two STUN servers (two, so discovery can compare their
// answers and tell a symmetric NAT).
var (
	simSTUN1 = netip.MustParseAddrPort("203.0.113.250:3478")
	simSTUN2 = netip.MustParseAddrPort("203.0.113.251:3478")
)

// behind puts p behind a NAT of kind (Open: none).
func (p *simPerson) behind(kind simnet.Kind) {
	if kind == simnet.Open {
		p.nat = nil
		return
	}
	p.nat = simnet.NewNAT(kind, netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + p.idx)}),
		netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(p.idx + 1), 0, 0}), 16), 2*time.Minute)
}

// writeSignal stores a signal in the hub and tells the sender how it went.
func (w *simWorld) writeSignal(from *simPerson, gen int, s Signal) {
	var err error
	if w.sigDown() {
		err = signal.ErrUnavailable
	} else {
		ss := signal.Signal{From: s.From, To: s.To, Kind: signal.Kind(s.Kind.String()), SessionID: s.SessionID, Payload: s.Payload}
		if _, err = from.sig.Send(context.Background(), ss); err == nil {
			w.sent = append(w.sent, ss)
			for _, p := range w.people {
				if p.idStr == s.To {
					to := p
					w.at(w.f.sigLatency, func() { w.deliverInbox(to) })
				}
			}
		}
	}
	from.input(gen, func(e *Engine) {
		e.HandleSignalSent(w.now, SignalSent{Peer: s.To, SessionID: s.SessionID, Kind: s.Kind, Err: err})
	})
}

// deliverInbox hands a listening process what its inbox holds that this
// process has not seen yet (sometimes twice).
func (w *simWorld) deliverInbox(p *simPerson) {
	if !p.running || !p.listening || w.sigDown() {
		return
	}
	gen := p.gen
	for _, s := range w.hub.Inbox(p.idStr) {
		if p.delivered[s.ID] {
			continue
		}
		p.delivered[s.ID] = true
		cs := simConnSignal(s)
		w.logf("%s gets %s %s from %s", p.name, s.Kind, s.SessionID, w.nameOf(s.From))
		p.input(gen, func(e *Engine) { e.HandleSignal(w.now, cs) })
		if w.chance(w.f.redeliver) {
			w.at(time.Duration(w.rng.IntN(2000))*time.Millisecond, func() {
				p.input(gen, func(e *Engine) { e.HandleSignal(w.now, cs) })
			})
		}
	}
}

func simConnSignal(s signal.Signal) Signal {
	k := map[signal.Kind]SignalKind{signal.KindOffer: KindOffer, signal.KindAnswer: KindAnswer, signal.KindCancel: KindCancel}[s.Kind]
	return Signal{ID: s.ID, From: s.From, To: s.To, Kind: k, SessionID: s.SessionID, Payload: s.Payload}
}

// replayOld re-plants one old signal (the attacker can write inboxes and
// read what was written).
func (w *simWorld) replayOld() {
	if len(w.sent) == 0 || w.sigDown() {
		return
	}
	s := w.sent[w.rng.IntN(len(w.sent))]
	s.ID, s.CreatedAt, s.ExpiresAt = "", time.Time{}, time.Time{}
	if _, err := w.hub.Open(s.From).Send(context.Background(), s); err != nil {
		return
	}
	w.logf("attacker replays a %s from %s (session %s)", s.Kind, w.nameOf(s.From), s.SessionID)
	for _, p := range w.people {
		if p.idStr == s.To {
			to := p
			w.at(w.f.sigLatency, func() { w.deliverInbox(to) })
		}
	}
}

// checkInvariant: two people both connected to each other are on the same
// session.
func (w *simWorld) checkInvariant() {
	if w.violation != "" {
		return
	}
	for _, a := range w.people {
		for _, b := range w.people {
			if a.idx >= b.idx || !a.running || !b.running {
				continue
			}
			sa, oka := a.est[b.idStr]
			sb, okb := b.est[a.idStr]
			if oka && okb && sa != sb {
				w.violation = fmt.Sprintf("at %v %s is connected to %s on session %s, %s on %s", w.elapsed(), a.name, b.name, sa, b.name, sb)
			}
		}
	}
}

// runFor processes events for d more.
func (w *simWorld) runFor(d time.Duration) { w.run(w.elapsed() + d) }

// runUntil processes events until cond holds, failing after limit.
func (w *simWorld) runUntil(what string, limit time.Duration, cond func() bool) {
	w.t.Helper()
	stop := w.now.Add(limit)
	for !cond() {
		if len(w.q) == 0 || w.q.peek().at.After(stop) {
			w.fail("not within %v: %s", limit, what)
		}
		ev := heap.Pop(&w.q).(*simEvent)
		if ev.at.After(w.now) {
			w.now = ev.at
		}
		ev.fn()
		if w.violation != "" {
			w.fail("%s", w.violation)
		}
	}
}

// run processes events until end.
func (w *simWorld) run(end time.Duration) {
	stop := simEpoch.Add(end)
	for len(w.q) > 0 && !w.q.peek().at.After(stop) {
		ev := heap.Pop(&w.q).(*simEvent)
		if ev.at.After(w.now) {
			w.now = ev.at
		}
		ev.fn()
		if w.violation != "" {
			return
		}
	}
	w.now = stop
}

func (w *simWorld) fail(format string, args ...any) {
	w.t.Helper()
	tail := w.trace
	if len(tail) > 80 && *simSeed == 0 {
		tail = tail[len(tail)-80:]
	}
	w.t.Fatalf("seed %d: %s\nfaults %+v\nlast events:\n%s", w.seed, fmt.Sprintf(format, args...), w.f, strings.Join(tail, "\n"))
}

// connected reports whether a and b are connected to each other on one
// session.
func connected(a, b *simPerson) bool {
	sa, oka := a.est[b.idStr]
	sb, okb := b.est[a.idStr]
	return oka && okb && sa == sb
}

// notesSince returns the notifications of type T p got after index i.
func notesSince[T Notification](p *simPerson, i int) []T {
	var out []T
	for _, n := range p.notes[i:] {
		if x, ok := n.(T); ok {
			out = append(out, x)
		}
	}
	return out
}

// simRandomFaults draws a scenario's conditions from its seed.
func simRandomFaults(seed uint64) simFaults {
	r := rand.New(rand.NewPCG(seed, 0xfa17))
	f := simFaults{
		latency:    time.Duration(1+r.IntN(40)) * time.Millisecond,
		jitter:     time.Duration(r.IntN(20)) * time.Millisecond,
		sigLatency: time.Duration(5+r.IntN(60)) * time.Millisecond,
		quietAfter: 3 * time.Minute,
	}
	if r.IntN(3) > 0 {
		f.loss = float64(r.IntN(25)) / 100
		f.dup = float64(r.IntN(5)) / 100
	}
	if r.IntN(3) == 0 {
		f.redeliver = 0.2
	}
	if r.IntN(4) == 0 {
		f.delayWrite = 0.2
	}
	if r.IntN(4) == 0 {
		from := time.Duration(r.IntN(120)) * time.Second
		f.partitions = []simSpan{{from, from + time.Duration(5+r.IntN(55))*time.Second}}
	}
	if r.IntN(4) == 0 {
		from := time.Duration(r.IntN(120)) * time.Second
		f.sigOutages = []simSpan{{from, from + time.Duration(5+r.IntN(55))*time.Second}}
	}
	if r.IntN(3) == 0 {
		f.replays = 1 + r.IntN(6)
	}
	switch r.IntN(12) {
	case 0:
		f.unanswering = true
	case 1, 2:
		f.askEachTime = true
	}
	f.crossingOpen = r.IntN(4) == 0
	f.simRelayFaults = simRandomRelayFaults(seed, f.quietAfter)
	// NATs the two can punch through, unless a relay is their only way
	// for the whole scenario anyway (the predicted path has simulations
	// of its own in punch).
	forever := f.relay && len(f.directBlocked) == 1 && f.directBlocked[0].to > f.quietAfter
	for {
		f.nats = [2]simnet.Kind{simnet.Kind(r.IntN(simnet.Kinds)), simnet.Kind(r.IntN(simnet.Kinds))}
		if forever || simnet.ExpectConnect(f.nats[0], f.nats[1]) {
			break
		}
	}
	return f
}

// simScenario runs one seeded scenario between alice and bob and checks
// the lifecycle's promises: no two sessions at once, every stored message
// delivered exactly once and in order, both connected in the end, nothing
// left in an outbox.
func simScenario(t testing.TB, seed uint64, f simFaults) *simWorld {
	w := newSimWorld(t, seed, f)
	a, b := w.addPerson("alice", 1), w.addPerson("bob", 2)
	befriend(a, b)
	a.behind(f.nats[0])
	b.behind(f.nats[1])
	if f.askEachTime {
		b.st.contacts[0].AskEachTime = true
	}
	r := rand.New(rand.NewPCG(seed, 0x5ce7))
	people := []*simPerson{a, b}
	if f.unanswering {
		people = people[:1]
	}
	for _, p := range people {
		p := p
		w.at(time.Duration(r.IntN(3000))*time.Millisecond, p.start)
	}
	if f.crossingOpen && !f.unanswering {
		w.at(5*time.Second, func() {
			a.input(a.gen, func(e *Engine) { _ = e.Connect(w.now, b.idStr) })
			b.input(b.gen, func(e *Engine) { _ = e.Connect(w.now, a.idStr) })
		})
	}
	for _, p := range people {
		p := p
		other := a
		if p == a {
			other = b
		}
		n := r.IntN(16)
		for i := range n {
			body := fmt.Sprintf("%s #%d", p.name, i)
			w.at(time.Duration(r.Int64N(int64(f.quietAfter))), func() {
				p.input(p.gen, func(e *Engine) { _, _ = e.Send(w.now, other.idStr, body) })
			})
		}
		for range r.IntN(4) {
			down := time.Duration(r.Int64N(int64(f.quietAfter - 30*time.Second)))
			crash := r.IntN(2) == 0
			w.at(down, func() {
				if crash {
					p.crash()
				} else {
					p.quit()
				}
			})
			back := down + time.Duration(500+r.IntN(20000))*time.Millisecond
			w.at(back, func() {
				if !p.running {
					p.start()
				}
			})
		}
		// Whoever is down when the faults end comes back.
		w.at(f.quietAfter, func() {
			if !p.running {
				p.start()
			}
		})
	}
	for range f.replays {
		w.at(time.Duration(r.Int64N(int64(f.quietAfter))), w.replayOld)
	}
	for _, s := range f.sigOutages {
		w.at(s.from, func() {
			for _, p := range w.people {
				p.input(p.gen, func(e *Engine) { e.HandleHealth(w.now, false, "signalling unavailable (simulated outage)") })
			}
		})
		w.at(s.to, func() {
			for _, p := range w.people {
				p.input(p.gen, func(e *Engine) { e.HandleHealth(w.now, true, "") })
				w.deliverInbox(p)
			}
		})
	}
	if f.files > 0 && !f.unanswering {
		w.planFiles(people)
	}
	w.run(f.quietAfter + 5*time.Minute)
	if w.violation != "" {
		w.fail("%s", w.violation)
	}
	if f.files > 0 && !f.unanswering {
		w.checkFiles(people)
	}
	if f.unanswering {
		if len(a.est) != 0 {
			w.fail("alice connected to a bob who never ran")
		}
		if st := a.eng.Peer(b.idStr); len(a.stored) > 0 && (st.Phase != PhaseWaiting || st.Queued != len(a.stored)) {
			w.fail("alice, with %d messages for a bob who never ran, is %v (%q) with %d queued; want waiting with all queued",
				len(a.stored), st.Phase, st.Words, st.Queued)
		}
		return w
	}
	checkDelivered := func(from, to *simPerson) {
		if !slices.Equal(from.stored, to.got) {
			w.fail("%s stored %d messages; %s received %d: %v\nwant %v", from.name, len(from.stored), to.name, len(to.got), to.got, from.stored)
		}
		if n := len(from.st.outbox[to.idStr]); n != 0 {
			w.fail("%s's outbox for %s still holds %d messages", from.name, to.name, n)
		}
	}
	checkDelivered(a, b)
	checkDelivered(b, a)
	if !f.askEachTime {
		sa, oka := a.est[b.idStr]
		sb, okb := b.est[a.idStr]
		if !oka || !okb || sa != sb {
			w.fail("not connected at the end: alice %q (%v), bob %q (%v); alice sees %+v, bob sees %+v",
				sa, oka, sb, okb, a.eng.Peer(b.idStr), b.eng.Peer(a.idStr))
		}
	}
	return w
}

func TestSimulatedLifecycle(t *testing.T) {
	n := *simScenarios
	switch {
	case n > 0:
	case testing.Short():
		n = 150
	case raceEnabled:
		n = 200
	default:
		n = 1000
	}
	first := uint64(1)
	if *simSeed != 0 {
		first, n = *simSeed, 1
	}
	start := time.Now()
	var counts struct {
		replays, restarts, outages, partitions, crossing, unanswering, ask, messages int
		relay, relayDown, moved                                                      int
	}
	for seed := first; seed < first+uint64(n); seed++ {
		f := simRandomFaults(seed)
		w := simScenario(t, seed, f)
		counts.restarts += w.restarts
		for _, p := range w.people {
			counts.messages += len(p.stored)
			counts.moved += len(notesSince[PathMoved](p, 0))
		}
		if f.relay {
			counts.relay++
		}
		if len(f.relayDown) > 0 {
			counts.relayDown++
		}
		if f.replays > 0 {
			counts.replays++
		}
		if len(f.sigOutages) > 0 {
			counts.outages++
		}
		if len(f.partitions) > 0 {
			counts.partitions++
		}
		if f.crossingOpen {
			counts.crossing++
		}
		if f.unanswering {
			counts.unanswering++
		}
		if f.askEachTime {
			counts.ask++
		}
	}
	t.Logf("%d scenarios in %v: %+v", n, time.Since(start).Round(time.Millisecond), counts)
}
