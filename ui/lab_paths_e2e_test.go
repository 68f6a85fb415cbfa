package ui_test

// Every pair connects, in the product: two headless p2ptui processes in
// the NAT lab (testdata/natlab/lab.sh) signalling through a local mailbox
// both hosts' namespaces see, with the lab's coturn for STUN (over IPv4
// and IPv6) and, as a group would have it, a TURN relay configured. This
// is where the NAT lab exercises the product's one event loop: discovery's
// classification of each NAT, every pair of NAT kinds, birthday probing,
// IPv6 through stateful firewalls, the relay and the move from it to a
// direct path, a TURN server down, refusing the password or dying
// mid-session, keepalives holding an idle path and a lost path coming back,
// all judged by the events a script sees. Needs root, coturn, iptables;
// skipped without them except under CI=true, where it fails.
//
//	go test -race -run TestLabPaths -v ./ui/
//	go test -run TestLabPathFigures -v ./ui/ -args -lab.figures   # the figures

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/ui"
)

// labKinds are the NAT kinds lab.sh builds.
var labKinds = []string{"none", "full-cone", "port-restricted", "symmetric"}

// labMapping and labFiltering are what STUN discovery must find behind
// each kind (RFC 4787 names): a symmetric NAT is MASQUERADE
// --random-fully, a cone one MASQUERADE (plus a DNAT of everything for the
// full cone), and the lab's coturn runs the RFC 5780 filtering tests.
func labMapping(kind string) string {
	switch kind {
	case "none":
		return "none"
	case "symmetric":
		return "address-and-port-dependent"
	}
	return "endpoint-independent"
}

func labFiltering(kind string) string {
	switch kind {
	case "none", "full-cone":
		return "endpoint-independent"
	}
	return "address-and-port-dependent"
}

// labTURNHost is where the lab's TURN coturn listens (lab.sh's TURN_IP).
const labTURNHost = "203.0.113.20"

// upLabLocal builds a lab whose hosts signal through a local mailbox.
func upLabLocal(t *testing.T, sh, bin string, args ...string) *e2eLab {
	t.Helper()
	l := upLabOnly(t, sh, bin, args...)
	l.sigDir = t.TempDir()
	return l
}

// turnFlags are the flags and environment that configure the lab's TURN
// server with the lab's credentials (or password, when not empty).
func (l *e2eLab) turnFlags(password string) (env, args []string) {
	args = []string{"--turn", "turn:" + l.info["TURN"]}
	switch {
	case password != "":
		env = []string{"P2PTUI_TURN_PASSWORD=" + password}
		args = append(args, "--turn-user", "lab")
	case l.info["TURN_SECRET"] != "":
		env = []string{"P2PTUI_TURN_SECRET=" + l.info["TURN_SECRET"]}
	default:
		env = []string{"P2PTUI_TURN_PASSWORD=" + l.info["TURN_PASSWORD"]}
		args = append(args, "--turn-user", l.info["TURN_USER"])
	}
	return env, args
}

// labOpts say how a lab peer runs.
type labOpts struct {
	turn     bool   // the lab's TURN server is configured
	password string // a TURN password other than the lab's
	dir      string // profile directory (empty: a fresh one)
}

// startLocal starts p2ptui in a lab host on the local mailbox, with the
// lab's STUN servers (and its IPv6 one) and, with o.turn, its relay; the
// returned peer's events are collected.
func (l *e2eLab) startLocal(node, name string, o labOpts) *watched {
	l.t.Helper()
	stun := l.info["STUN1"] + "," + l.info["STUN2"]
	if s6 := l.info["STUN6"]; s6 != "" {
		stun += "," + s6
	}
	var env []string
	args := []string{"--signal-dir", l.sigDir, "--stun", stun}
	if o.turn {
		e, a := l.turnFlags(o.password)
		env, args = e, append(args, a...)
	}
	dir := o.dir
	if dir == "" {
		dir = filepath.Join(l.t.TempDir(), name)
	}
	return watch(l.startCmd(dir, node, name, env, args...))
}

// watched collects every event of a peer, so tests can look back and
// wait for any of them.
type watched struct {
	*peer
	mu   sync.Mutex
	evs  []ui.Event
	wake chan struct{}
	done chan struct{}
}

func watch(p *peer) *watched {
	w := &watched{peer: p, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for e := range p.events {
			w.mu.Lock()
			w.evs = append(w.evs, e)
			w.mu.Unlock()
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}()
	return w
}

// events returns what the peer printed so far.
func (w *watched) events() []ui.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.evs)
}

// waitN waits until n events match and returns the n-th; failing after d.
func (w *watched) waitN(what string, n int, d time.Duration, match func(ui.Event) bool) ui.Event {
	w.t.Helper()
	deadline := time.After(d)
	for {
		seen := 0
		for _, e := range w.events() {
			if match(e) {
				if seen++; seen == n {
					return e
				}
			}
		}
		select {
		case <-w.wake:
		case <-w.done:
			w.t.Fatalf("%s exited while waiting for %s", w.name, what)
		case <-deadline:
			w.t.Fatalf("%s: no %s within %v; events:\n%s", w.name, what, d, w.dump())
		}
	}
}

func (w *watched) wait(what string, d time.Duration, match func(ui.Event) bool) ui.Event {
	w.t.Helper()
	return w.waitN(what, 1, d, match)
}

func (w *watched) dump() string {
	var b strings.Builder
	for _, e := range w.events() {
		if e.Ev == "message" || e.Ev == "receipt" || e.Ev == "sent" || e.Ev == "queued" {
			continue
		}
		fmt.Fprintf(&b, "  %+v\n", e)
	}
	return b.String()
}

// path is the peer's current path to peer id, in words and kind (empty:
// none yet), from its connected and path events.
func (w *watched) path(id string) (words, kind string) {
	for _, e := range w.events() {
		if (e.Ev == "connected" || e.Ev == "path") && e.Peer == id {
			words, kind = e.Path, e.PathKind
		}
	}
	return words, kind
}

// waitPath waits until the current path to peer id satisfies ok.
func (w *watched) waitPath(id string, d time.Duration, ok func(words, kind string) bool) (string, string) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		words, kind := w.path(id)
		if ok(words, kind) {
			return words, kind
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: path to the peer is %q (%s) after %v; events:\n%s", w.name, words, kind, d, w.dump())
		}
		select {
		case <-w.wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// bodies are the bodies of the messages from peer id, in arrival order.
func (w *watched) bodies(id string) []string {
	var out []string
	for _, e := range w.events() {
		if e.Ev == "message" && e.From == id {
			out = append(out, e.Body)
		}
	}
	return out
}

// befriendLab makes a and b contacts of each other.
func befriendLab(t *testing.T, a, b *watched) {
	t.Helper()
	a.send("add " + b.name + " " + b.id)
	b.send("add " + a.name + " " + a.id)
	a.wait("contact", 10*time.Second, func(e ui.Event) bool { return e.Ev == "contact" && e.ID == b.id })
	b.wait("contact", 10*time.Second, func(e ui.Event) bool { return e.Ev == "contact" && e.ID == a.id })
}

// connectLab has a connect to b and waits until both say connected.
func connectLab(t *testing.T, a, b *watched) (ui.Event, ui.Event) {
	t.Helper()
	a.send("connect " + b.name)
	ca := a.wait("connected", time.Minute, func(e ui.Event) bool { return e.Ev == "connected" && e.Peer == b.id })
	cb := b.wait("connected", time.Minute, func(e ui.Event) bool { return e.Ev == "connected" && e.Peer == a.id })
	return ca, cb
}

// exchange sends n messages each way (prefixing them) and checks that each
// arrives once, in order.
func exchange(t *testing.T, a, b *watched, n int, tag string) {
	t.Helper()
	for i := range n {
		a.send(fmt.Sprintf("send %s %s-a%03d", b.name, tag, i))
		b.send(fmt.Sprintf("send %s %s-b%03d", a.name, tag, i))
	}
	checkArrived(t, a, b, n, tag, 2*time.Minute)
}

// checkArrived waits for n messages tagged tag each way and checks that
// they came once each, in order.
func checkArrived(t *testing.T, a, b *watched, n int, tag string, d time.Duration) {
	t.Helper()
	for _, c := range []struct {
		from, to *watched
		side     string
	}{{a, b, "a"}, {b, a, "b"}} {
		prefix := tag + "-" + c.side
		ours := func() []string {
			var out []string
			for _, body := range c.to.bodies(c.from.id) {
				if strings.HasPrefix(body, prefix) {
					out = append(out, body)
				}
			}
			return out
		}
		deadline := time.Now().Add(d)
		for len(ours()) < n && time.Now().Before(deadline) {
			select {
			case <-c.to.wake:
			case <-time.After(200 * time.Millisecond):
			}
		}
		got := ours()
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("%s%03d", prefix, i)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s -> %s: %d of %d messages, want each once, in order; got %v", c.from.name, c.to.name, len(got), n, got)
		}
	}
}

// isDirect and isRelayed judge a path's words.
func isDirect(words, _ string) bool  { return words == "direct" || words == "direct (IPv6)" }
func isRelayed(words, _ string) bool { return words == "relayed via "+labTURNHost }

// labParallel runs a subtest alongside the others (the go test -parallel
// limit applies).
func labParallel(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		t.Parallel()
		f(t)
	})
}

func TestLabPaths(t *testing.T) {
	sh, bin := needLabTools(t)
	t.Run("matrix", func(t *testing.T) {
		for i, ka := range labKinds {
			for _, kb := range labKinds[i:] {
				labParallel(t, ka+"+"+kb, func(t *testing.T) { testLabPair(t, sh, bin, ka, kb) })
			}
		}
		for _, kinds := range [][2]string{{"symmetric", "symmetric"}, {"port-restricted", "port-restricted"}} {
			labParallel(t, "ipv6/"+kinds[0]+"+"+kinds[1], func(t *testing.T) { testLabIPv6(t, sh, bin, kinds[0], kinds[1]) })
		}
		labParallel(t, "birthday-without-relay", func(t *testing.T) { testLabBirthday(t, sh, bin) })
		labParallel(t, "same-nat", func(t *testing.T) { testLabSameNAT(t, sh, bin) })
		labParallel(t, "loss", func(t *testing.T) { testLabLoss(t, sh, bin) })
	})
	t.Run("relay", func(t *testing.T) {
		labParallel(t, "relay-to-direct", func(t *testing.T) { testLabRelayToDirect(t, sh, bin) })
		labParallel(t, "turn-down", func(t *testing.T) { testLabTURNDown(t, sh, bin) })
		labParallel(t, "turn-wrong-password", func(t *testing.T) { testLabTURNPassword(t, sh, bin) })
	})
	// Mostly waiting (an idle path, a lost one, a dead relay): these run
	// at once, beside the rest, without taking turns with them.
	t.Run("slow", func(t *testing.T) {
		var wg sync.WaitGroup
		for _, c := range []struct {
			name string
			f    func(*testing.T, string, string)
		}{{"turn-dies", testLabTURNDies}, {"keepalive", testLabKeepalive}, {"path-lost", testLabPathLost}, {"birthday-rate", testLabBirthdayRate}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t.Run(c.name, func(t *testing.T) { c.f(t, sh, bin) })
			}()
		}
		wg.Wait()
	})
}

// testLabPair connects two NAT kinds with a relay configured: discovery
// classifies both NATs; the pair ends on a direct path where one exists
// (symmetric facing a port-restricted cone by birthday probing, perhaps
// after starting on the relay), on the relay between two symmetric NATs;
// messages cross once each, in order.
func testLabPair(t *testing.T, sh, bin, ka, kb string) {
	l := upLabLocal(t, sh, bin, ka, kb, "--turn", "lt")
	a, b := l.startLocal("a", "alice", labOpts{turn: true}), l.startLocal("b", "bob", labOpts{turn: true})
	for _, c := range []struct {
		p    *watched
		kind string
	}{{a, ka}, {b, kb}} {
		// Filtering comes a moment after the mapping (the RFC 5780 tests).
		n := c.p.wait("NAT classification", 20*time.Second, func(e ui.Event) bool { return e.Ev == "nat" && e.Filtering != "unknown" })
		if n.Mapping != labMapping(c.kind) || n.Filtering != labFiltering(c.kind) {
			t.Errorf("%s behind %s: discovery found mapping %q filtering %q, want %q %q", c.p.name, c.kind, n.Mapping, n.Filtering,
				labMapping(c.kind), labFiltering(c.kind))
		}
		c.p.wait("relay", 20*time.Second, func(e ui.Event) bool { return e.Ev == "relay" && e.OK != nil && *e.OK })
	}
	befriendLab(t, a, b)
	connectLab(t, a, b)
	want, what := isDirect, "direct"
	if ka == "symmetric" && kb == "symmetric" {
		want, what = isRelayed, "relayed via "+labTURNHost
	}
	// Birthday probing takes up to 10 s; the relay may carry the session
	// meanwhile.
	for _, c := range [][2]*watched{{a, b}, {b, a}} {
		words, kind := c[0].waitPath(c[1].id, 30*time.Second, want)
		t.Logf("%s (%s) ends %s (%s), want %s", c[0].name, map[*watched]string{a: ka, b: kb}[c[0]], words, kind, what)
	}
	if _, kind := a.path(b.id); ka != kb && (ka == "symmetric" || kb == "symmetric") && (ka == "port-restricted" || kb == "port-restricted") && kind != "predicted" {
		t.Errorf("symmetric facing port-restricted: path kind %q, want predicted (birthday probing)", kind)
	}
	exchange(t, a, b, 20, "m")
	if ka == "symmetric" && kb == "symmetric" {
		// What the relay cost its server: the allocation with its 401
		// challenge, a permission, channel bindings, the release.
		for _, p := range []*watched{a, b} {
			p.quit()
			<-p.done
			n := -1
			for _, e := range p.events() {
				if e.Ev == "relay_stats" && e.Requests != nil {
					n = *e.Requests
				}
			}
			if n < 4 || n > 16 {
				t.Errorf("%s: %d TURN requests for one relayed connection, want 4 to 16", p.name, n)
			}
		}
	}
}

// testLabIPv6: behind stateful IPv6 firewalls (return traffic only),
// simultaneous probes open them and the pair connects directly over IPv6:
// behind two symmetric IPv4 NATs, and behind two port-restricted ones,
// where IPv4 would work too but IPv6 is preferred.
func testLabIPv6(t *testing.T, sh, bin, ka, kb string) {
	l := upLabLocal(t, sh, bin, ka, kb, "--ipv6", "--turn", "secret")
	a, b := l.startLocal("a", "alice", labOpts{turn: true}), l.startLocal("b", "bob", labOpts{turn: true})
	for _, c := range []struct {
		p   *watched
		own string
	}{{a, l.info["HOST_A_IP6"]}, {b, l.info["HOST_B_IP6"]}} {
		n := c.p.wait("IPv6 discovery", 20*time.Second, func(e ui.Event) bool { return e.Ev == "nat" && e.Mapped6 != "" })
		if m, err := netip.ParseAddrPort(n.Mapped6); err != nil || m.Addr().String() != c.own {
			t.Errorf("%s: STUN over IPv6 saw %q, want the host's own %s", c.p.name, n.Mapped6, c.own)
		}
	}
	befriendLab(t, a, b)
	connectLab(t, a, b)
	for _, c := range [][2]*watched{{a, b}, {b, a}} {
		c[0].waitPath(c[1].id, 20*time.Second, func(words, _ string) bool { return words == "direct (IPv6)" })
	}
	exchange(t, a, b, 10, "v6")
}

// testLabBirthday: without a relay, a symmetric NAT facing a
// port-restricted cone connects directly by birthday probing.
func testLabBirthday(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "symmetric", "port-restricted")
	a, b := l.startLocal("a", "alice", labOpts{}), l.startLocal("b", "bob", labOpts{})
	befriendLab(t, a, b)
	ca, _ := connectLab(t, a, b)
	if ca.Path != "direct" || ca.PathKind != "predicted" {
		t.Errorf("connected on %q (%s), want direct, found by birthday probing", ca.Path, ca.PathKind)
	}
	if ca.PunchMs == nil || *ca.PunchMs > 10000 {
		t.Errorf("birthday probing took %v ms, want within 10 s", ca.PunchMs)
	}
	exchange(t, a, b, 10, "bd")
}

// testLabBirthdayRate: birthday probing, between a symmetric NAT and a
// port-restricted cone without a relay, gives a direct path within 5 s of
// punching in at least 90% of 20 fresh pairs (each its own processes and
// NAT mappings).
func testLabBirthdayRate(t *testing.T, sh, bin string) {
	const runs = 20
	l := upLabLocal(t, sh, bin, "symmetric", "port-restricted")
	within := 0
	var times []float64
	for run := range runs {
		r := figurePair(t, l, labOpts{}, nil)
		switch {
		case !r.ok:
			t.Logf("run %d: %s", run, r.failure.Words)
		case r.ca.PathKind != "predicted":
			t.Errorf("run %d: connected on %s (%s), want birthday probing's path", run, r.ca.Path, r.ca.PathKind)
		default:
			ms := msOf(r.ca.PunchMs)
			times = append(times, ms)
			if ms <= 5000 {
				within++
			}
		}
		r.quit()
	}
	t.Logf("birthday probing: %d/%d direct within 5 s; punching p50 %s ms, p95 %s ms", within, runs, dist(times).pct(50), dist(times).pct(95))
	if within*10 < runs*9 {
		t.Errorf("only %d of %d pairs direct within 5 s, want at least 90%%", within, runs)
	}
}

// testLabSameNAT: two hosts behind one NAT meet over their LAN addresses.
func testLabSameNAT(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "port-restricted", "-", "--same-nat")
	a, b := l.startLocal("a", "alice", labOpts{}), l.startLocal("b", "bob", labOpts{})
	befriendLab(t, a, b)
	ca, cb := connectLab(t, a, b)
	lan := netip.MustParsePrefix("10.1.0.0/24")
	for _, c := range []ui.Event{ca, cb} {
		if r, err := netip.ParseAddrPort(c.Remote); err != nil || !lan.Contains(r.Addr()) {
			t.Errorf("path to %s, want the other host's LAN address in %v", c.Remote, lan)
		}
	}
}

// testLabLoss: with 20% of UDP dropped at random on both NATs, each way,
// the pair still connects within seconds and nothing is lost.
func testLabLoss(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "port-restricted", "port-restricted")
	l.run("loss", l.name, "20")
	a, b := l.startLocal("a", "alice", labOpts{}), l.startLocal("b", "bob", labOpts{})
	befriendLab(t, a, b)
	ca, _ := connectLab(t, a, b)
	if ca.PunchMs == nil || *ca.PunchMs > 5000 {
		t.Errorf("punching under 20%% loss took %v ms, want within 5 s", ca.PunchMs)
	}
	exchange(t, a, b, 30, "loss")
}

// testLabRelayToDirect: the direct path is blocked while the pair
// connects, so the relay carries the session; both sides send a message
// every 20 ms while the block lifts and the session moves to the direct
// path: every message arrives once, in order, some over each path.
func testLabRelayToDirect(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "port-restricted", "port-restricted", "--turn", "lt")
	a, b := l.startLocal("a", "alice", labOpts{turn: true}), l.startLocal("b", "bob", labOpts{turn: true})
	for _, p := range []*watched{a, b} {
		p.wait("relay", 20*time.Second, func(e ui.Event) bool { return e.Ev == "relay" && e.OK != nil && *e.OK })
	}
	befriendLab(t, a, b)
	l.run("direct", l.name, "off")
	ca, cb := connectLab(t, a, b)
	if !isRelayed(ca.Path, "") || !isRelayed(cb.Path, "") {
		t.Fatalf("connected on %q / %q with the direct path blocked, want relayed via %s", ca.Path, cb.Path, labTURNHost)
	}
	sent := 0
	send := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); sent++ {
			a.send(fmt.Sprintf("send bob sw-a%03d", sent))
			b.send(fmt.Sprintf("send alice sw-b%03d", sent))
			time.Sleep(20 * time.Millisecond)
		}
	}
	send(time.Second)
	l.run("direct", l.name, "on")
	// The direct machine probes every 500 ms until its 8 s run out.
	moved := make(chan struct{})
	go func() {
		defer close(moved)
		a.waitPath(b.id, 15*time.Second, isDirect)
		b.waitPath(a.id, 15*time.Second, isDirect)
	}()
	for done := false; !done; {
		select {
		case <-moved:
			done = true
		default:
			send(100 * time.Millisecond)
		}
	}
	send(time.Second)
	checkArrived(t, a, b, sent, "sw", time.Minute)
	for _, c := range [][2]*watched{{a, b}, {b, a}} {
		before, after := 0, 0
		movedYet := false
		for _, e := range c[0].events() {
			switch {
			case e.Ev == "path" && e.Peer == c[1].id:
				movedYet = true
			case e.Ev == "message" && e.From == c[1].id && movedYet:
				after++
			case e.Ev == "message" && e.From == c[1].id:
				before++
			}
		}
		t.Logf("%s: %d messages over the relay, %d after the move to the direct path", c[0].name, before, after)
		if before == 0 || after == 0 {
			t.Errorf("%s: %d messages arrived before the move and %d after: want the stream to cross it", c[0].name, before, after)
		}
	}
}

// testLabTURNDown: a relay is configured but nothing answers at its
// address; between two symmetric NATs the failure says, in words, that
// the TURN server did not answer.
func testLabTURNDown(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "symmetric", "symmetric")
	o := labOpts{turn: true, password: "unused"}
	a, b := l.startLocal("a", "alice", o), l.startLocal("b", "bob", o)
	befriendLab(t, a, b)
	a.send("connect bob")
	f := a.wait("failure", time.Minute, func(e ui.Event) bool { return e.Ev == "failure" && e.Peer == b.id })
	want := "TURN server turn:" + l.info["TURN"] + " did not answer"
	t.Logf("failure: %s: %s", f.Reason, f.Words)
	if !strings.Contains(f.Words, want) || !strings.Contains(f.Words, "symmetric NAT") {
		t.Errorf("failure words %q, want the symmetric NAT and %q", f.Words, want)
	}
	r := a.wait("relay failure", time.Minute, func(e ui.Event) bool { return e.Ev == "relay" && e.OK != nil && !*e.OK && e.Words != "" })
	if !strings.Contains(r.Words, want) {
		t.Errorf("relay event %q, want %q", r.Words, want)
	}
}

// testLabTURNPassword: the TURN server refuses a wrong password; the words
// name the server and the credential (the user), never the password.
func testLabTURNPassword(t *testing.T, sh, bin string) {
	const wrong = "not-the-lab-password"
	l := upLabLocal(t, sh, bin, "symmetric", "symmetric", "--turn", "lt")
	o := labOpts{turn: true, password: wrong}
	a, b := l.startLocal("a", "alice", o), l.startLocal("b", "bob", o)
	r := a.wait("relay failure", time.Minute, func(e ui.Event) bool { return e.Ev == "relay" && e.OK != nil && !*e.OK && e.Words != "" })
	befriendLab(t, a, b)
	a.send("connect bob")
	f := a.wait("failure", time.Minute, func(e ui.Event) bool { return e.Ev == "failure" && e.Peer == b.id })
	t.Logf("relay: %s; failure: %s", r.Words, f.Words)
	for _, words := range []string{r.Words, f.Words} {
		if !strings.Contains(words, "turn:"+l.info["TURN"]) || !strings.Contains(words, `user "lab"`) || !strings.Contains(words, "401") {
			t.Errorf("%q does not name the server, the user and the refusal", words)
		}
		if strings.Contains(words, wrong) {
			t.Errorf("%q shows the password", words)
		}
	}
	for _, p := range []*watched{a, b} {
		b, err := os.ReadFile(filepath.Join(p.dir, "p2ptui.log"))
		if err == nil && strings.Contains(string(b), wrong) {
			t.Errorf("%s's log holds the password", p.name)
		}
	}
}

// testLabTURNDies: two symmetric NATs talk over the relay; the TURN
// server dies mid-session (killed, its allocations gone) and comes back
// ten seconds later, while both keep sending. The lost path is reported,
// the pair reconnects over a fresh allocation, and every message arrives
// once, in order.
func testLabTURNDies(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "symmetric", "symmetric", "--turn", "secret")
	a, b := l.startLocal("a", "alice", labOpts{turn: true}), l.startLocal("b", "bob", labOpts{turn: true})
	befriendLab(t, a, b)
	ca, _ := connectLab(t, a, b)
	if !isRelayed(ca.Path, "") {
		t.Fatalf("connected on %q, want relayed (time-limited credentials from the shared secret)", ca.Path)
	}
	sent := 0
	send := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); sent++ {
			a.send(fmt.Sprintf("send bob td-a%03d", sent))
			b.send(fmt.Sprintf("send alice td-b%03d", sent))
			time.Sleep(100 * time.Millisecond)
		}
	}
	send(2 * time.Second)
	l.run("turn", l.name, "stop")
	send(10 * time.Second)
	l.run("turn", l.name, "start")
	send(2 * time.Second)
	for _, c := range [][2]*watched{{a, b}, {b, a}} {
		c[0].wait("the lost path", 2*time.Minute, func(e ui.Event) bool { return e.Ev == "failure" && e.Peer == c[1].id })
		c[0].waitN("reconnection", 2, 3*time.Minute, func(e ui.Event) bool { return e.Ev == "connected" && e.Peer == c[1].id })
	}
	checkArrived(t, a, b, sent, "td", 2*time.Minute)
}

// testLabKeepalive: with the NATs forgetting an idle UDP mapping after
// 20 s, a session left idle for 50 s survives on keepalives: no failure,
// no new session, and a message after the pause arrives.
func testLabKeepalive(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "port-restricted", "port-restricted")
	l.run("udp-timeout", l.name, "20")
	a, b := l.startLocal("a", "alice", labOpts{}), l.startLocal("b", "bob", labOpts{})
	befriendLab(t, a, b)
	ca, _ := connectLab(t, a, b)
	time.Sleep(50 * time.Second)
	exchange(t, a, b, 3, "ka")
	for _, p := range []*watched{a, b} {
		for _, e := range p.events() {
			if e.Ev == "failure" || e.Ev == "closed" || (e.Ev == "connected" && e.Session != ca.Session) {
				t.Errorf("%s: %+v during an idle session kept by keepalives", p.name, e)
			}
		}
	}
}

// testLabPathLost: every datagram between the NATs is dropped; both sides
// declare the path lost within the path timeout (30 s) and say so; when
// the network comes back they reconnect by themselves, and a message
// written during the outage arrives.
func testLabPathLost(t *testing.T, sh, bin string) {
	l := upLabLocal(t, sh, bin, "port-restricted", "port-restricted")
	a, b := l.startLocal("a", "alice", labOpts{}), l.startLocal("b", "bob", labOpts{})
	befriendLab(t, a, b)
	connectLab(t, a, b)
	l.run("loss", l.name, "100")
	start := time.Now()
	for _, c := range [][2]*watched{{a, b}, {b, a}} {
		f := c[0].wait("path-lost failure", 90*time.Second, func(e ui.Event) bool { return e.Ev == "failure" && e.Peer == c[1].id })
		t.Logf("%s after %v: %s: %s", c[0].name, time.Since(start).Round(time.Second), f.Reason, f.Words)
		if f.Reason != "path-lost" || !strings.Contains(f.Words, "went silent") {
			t.Errorf("%s: failure %s %q, want the path lost in words", c[0].name, f.Reason, f.Words)
		}
	}
	a.send("send bob written during the outage")
	l.run("loss", l.name, "0")
	for _, c := range [][2]*watched{{a, b}, {b, a}} {
		c[0].waitN("reconnection", 2, 2*time.Minute, func(e ui.Event) bool { return e.Ev == "connected" && e.Peer == c[1].id })
	}
	b.wait("the message", time.Minute, func(e ui.Event) bool { return e.Ev == "message" && e.Body == "written during the outage" })
}
