package punch

// The NAT lab: real Linux NATs in network namespaces (testdata/natlab/lab.sh)
// with coturn on a simulated internet, and two copies of the lab peer
// (testdata/natlab/peer), which runs this package's socket, STUN discovery
// and hole-punch machine for real. Needs root; skipped otherwise, except
// under CI=true, where it fails.
//
//	go test -race -run TestNATLab -v ./punch/
//	go test -count=1 -run TestNATLabBench -v ./punch/ -args -natlab.bench   # the figures
//	go test -count=1 -run TestNATLabPathsBench -v ./punch/ -args -natlab.bench   # per path kind

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	natlabBench = flag.Bool("natlab.bench", false, "run TestNATLabBench and TestNATLabPathsBench: time punching over the NAT lab and print tables")
	natlabRuns  = flag.Int("natlab.runs", 20, "TestNATLabBench, TestNATLabPathsBench and the birthday test: punches per setup")
)

// labKinds are the NAT kinds lab.sh builds.
var labKinds = []string{"none", "full-cone", "port-restricted", "symmetric"}

// labMapping is what STUN discovery must find behind each kind.
func labMapping(kind string) string {
	switch kind {
	case "none":
		return "none"
	case "symmetric":
		return "address-and-port-dependent"
	}
	return "endpoint-independent"
}

// labFiltering is the filtering STUN discovery must find behind each kind.
// A host without NAT receives from anyone; the full cone's DNAT forwards
// every inbound datagram; MASQUERADE (with or without --random-fully) lets
// in only the exact address:port a mapping has sent to.
func labFiltering(kind string) string {
	switch kind {
	case "none", "full-cone":
		return "endpoint-independent"
	}
	return "address-and-port-dependent"
}

// labPairFails reports whether no direct path can exist between two kinds:
// a symmetric NAT's per-destination port is unknown to the peer, so only a
// peer that accepts anyone (no NAT, full cone) can be reached from it.
func labPairFails(a, b string) bool {
	return (a == "symmetric" && (b == "symmetric" || b == "port-restricted")) ||
		(b == "symmetric" && a == "port-restricted")
}

// natlab is what every lab test needs: lab.sh and a built peer.
type natlab struct {
	sh   string
	peer string
}

func needNATLab(t *testing.T) natlab {
	t.Helper()
	if testing.Short() {
		t.Skip("the NAT lab takes about two minutes: skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the NAT lab needs root (network namespaces, iptables); CI runs as root")
		}
		t.Skip("the NAT lab needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "ip6tables", "conntrack", "turnserver", "sysctl"} {
		needTool(t, tool, "apt-get install iproute2 iptables conntrack coturn procps")
	}
	sh, err := filepath.Abs("../testdata/natlab/lab.sh")
	if err != nil {
		t.Fatal(err)
	}
	peer := filepath.Join(t.TempDir(), "peer")
	build := exec.Command("go", "build", "-o", peer, "../testdata/natlab/peer")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the lab peer: %v\n%s", err, out)
	}
	return natlab{sh: sh, peer: peer}
}

// lab is one running lab.
type lab struct {
	t    *testing.T
	nl   natlab
	name string
	info map[string]string
	// env is added to the peers' environment (the TURN password).
	env []string
}

// upLab builds a lab and removes it when the test ends, failed or not.
func (nl natlab) up(t *testing.T, args ...string) *lab {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	// Unique, so labs of parallel tests (and of other test processes)
	// never share a namespace.
	l := &lab{t: t, nl: nl, name: "t" + hex.EncodeToString(b[:]), info: map[string]string{}}
	t.Cleanup(func() {
		if out, err := exec.Command("bash", nl.sh, "down", l.name).CombinedOutput(); err != nil {
			t.Errorf("lab.sh down %s: %v\n%s", l.name, err, out)
		}
	})
	out := l.sh(append([]string{"up", l.name}, args...)...)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			l.info[k] = v
		}
	}
	if l.info["STUN1"] == "" || l.info["STUN2"] == "" {
		t.Fatalf("lab.sh up printed no STUN addresses:\n%s", out)
	}
	switch {
	case l.info["TURN_PASSWORD"] != "":
		l.env = append(l.env, "P2PTUI_TURN_PASSWORD="+l.info["TURN_PASSWORD"])
	case l.info["TURN_SECRET"] != "":
		l.env = append(l.env, "P2PTUI_TURN_SECRET="+l.info["TURN_SECRET"])
	}
	return l
}

// labFlags are the peer flags a lab's extras call for: IPv6 discovery and
// a dual-stack socket with --ipv6, the relay and its user with --turn.
func (l *lab) labFlags() []string {
	var f []string
	if s6 := l.info["STUN6"]; s6 != "" {
		f = append(f, "-ipv6", "-stun6", s6)
	}
	if l.info["TURN_PASSWORD"] != "" || l.info["TURN_SECRET"] != "" {
		f = append(f, "-turn", "turn:"+l.info["TURN"])
		if u := l.info["TURN_USER"]; u != "" {
			f = append(f, "-turn-user", u)
		}
	}
	return f
}

// sh runs a lab.sh subcommand and returns its stdout.
func (l *lab) sh(args ...string) string {
	l.t.Helper()
	cmd := exec.Command("bash", append([]string{l.nl.sh}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("lab.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// peerEvent is one JSON line of the lab peer (see its doc comment).
type peerEvent struct {
	Ev      string   `json:"ev"`
	T       int64    `json:"t"`
	Side    string   `json:"side"`
	Run     int      `json:"run"`
	Ms      *float64 `json:"ms"`
	Mapped  string   `json:"mapped"`
	Mapping string   `json:"mapping"`
	// Filtering is measured because lab.sh's coturn (-n, two -L
	// addresses) runs RFC 5780: OTHER-ADDRESS and CHANGE-REQUEST.
	Filtering string `json:"filtering"`
	Local     string `json:"local"`
	Remote    string `json:"remote"`
	Reason    string `json:"reason"`
	Detail    string `json:"detail"`
	Err       string `json:"err"`
	// Kind is the path kind of path, failed, ping_ok and path_lost.
	Kind     string   `json:"kind"`
	Socket   int      `json:"socket"`
	Relay    string   `json:"relay"`
	Owd      *float64 `json:"owd"`
	Mapped6  string   `json:"mapped6"`
	Count    int      `json:"count"`
	Requests int      `json:"requests"`
}

// peerRun is what one peer process printed.
type peerRun struct {
	side   string
	events []peerEvent
	stderr string
	err    error
}

// find returns the first event named ev in run, if any.
func (p peerRun) find(run int, ev string) (peerEvent, bool) {
	for _, e := range p.events {
		if e.Run == run && e.Ev == ev {
			return e, true
		}
	}
	return peerEvent{}, false
}

// findKind returns the first event named ev of a path kind in run.
func (p peerRun) findKind(run int, ev, kind string) (peerEvent, bool) {
	for _, e := range p.events {
		if e.Run == run && e.Ev == ev && e.Kind == kind {
			return e, true
		}
	}
	return peerEvent{}, false
}

func (p peerRun) all(ev string) []peerEvent {
	var out []peerEvent
	for _, e := range p.events {
		if e.Ev == ev {
			out = append(out, e)
		}
	}
	return out
}

func (p peerRun) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "side %s (exit: %v):\n", p.side, p.err)
	for _, e := range p.events {
		j, _ := json.Marshal(e)
		fmt.Fprintf(&b, "  %s\n", j)
	}
	if p.stderr != "" {
		fmt.Fprintf(&b, "  stderr: %s\n", p.stderr)
	}
	return b.String()
}

// peers runs side a and side b of the lab peer at once, each in its host
// namespace, with the given extra flags, and returns what each printed.
func (l *lab) peers(timeout time.Duration, extra ...string) (a, b peerRun) {
	l.t.Helper()
	dir := l.t.TempDir()
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	runs := make([]peerRun, 2)
	var wg sync.WaitGroup
	for i, side := range []string{"a", "b"} {
		args := append([]string{l.nl.sh, "exec", l.name, side, l.nl.peer, "-side", side,
			"-stun", l.info["STUN1"] + "," + l.info["STUN2"], "-rendezvous", dir, "-session", "lab",
			"-secret", hex.EncodeToString(secret[:]), "-timeout", timeout.String()}, l.labFlags()...)
		args = append(args, extra...)
		cmd := exec.CommandContext(ctx, "bash", args...)
		cmd.Env = append(os.Environ(), l.env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = time.Second
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Run()
			r := peerRun{side: side, stderr: stderr.String(), err: err}
			sc := bufio.NewScanner(&stdout)
			for sc.Scan() {
				var e peerEvent
				if jerr := json.Unmarshal(sc.Bytes(), &e); jerr != nil {
					r.stderr += fmt.Sprintf("\n[unparsable line %q: %v]", sc.Text(), jerr)
					continue
				}
				r.events = append(r.events, e)
			}
			runs[i] = r
		}()
	}
	wg.Wait()
	a, b = runs[0], runs[1]
	if a.err != nil || b.err != nil {
		l.t.Fatalf("lab %s (%s / %s): a peer failed\n%v%v", l.name, l.info["KIND_A"], l.info["KIND_B"], a, b)
	}
	return a, b
}

func TestNATLab(t *testing.T) {
	nl := needNATLab(t)
	// Labs are independent (own namespaces, own coturn), so everything runs
	// in parallel; the 60 s keepalive holds go first so the rest overlaps.
	t.Run("keepalive", func(t *testing.T) {
		t.Parallel()
		testLabKeepalive(t, nl)
	})
	t.Run("matrix", func(t *testing.T) {
		t.Parallel()
		for i, ka := range labKinds {
			for _, kb := range labKinds[i:] {
				t.Run(ka+"+"+kb, func(t *testing.T) {
					t.Parallel()
					testLabPair(t, nl, ka, kb)
				})
			}
		}
	})
	t.Run("loss", func(t *testing.T) {
		t.Parallel()
		testLabLoss(t, nl)
	})
	t.Run("same-nat", func(t *testing.T) {
		t.Parallel()
		testLabSameNAT(t, nl)
	})
	t.Run("paths", func(t *testing.T) {
		t.Parallel()
		testLabPaths(t, nl)
	})
}

// testLabPair punches between two NAT kinds: a direct path where one can
// exist, a quick failure that names the symmetric NAT where none can.
func testLabPair(t *testing.T, nl natlab, ka, kb string) {
	l := nl.up(t, ka, kb)
	a, b := l.peers(30 * time.Second)
	for _, c := range []struct {
		p    peerRun
		kind string
	}{{a, ka}, {b, kb}} {
		st, ok := c.p.find(0, "stun")
		if !ok {
			t.Fatalf("side %s: no STUN result\n%v", c.p.side, c.p)
		}
		if want := labMapping(c.kind); st.Mapping != want {
			t.Errorf("side %s behind %s: STUN found mapping %q, want %q", c.p.side, c.kind, st.Mapping, want)
		}
		if want := labFiltering(c.kind); st.Filtering != want {
			t.Errorf("side %s behind %s: STUN found filtering %q, want %q", c.p.side, c.kind, st.Filtering, want)
		}
	}
	if labPairFails(ka, kb) {
		for _, p := range []peerRun{a, b} {
			f, ok := p.find(0, "failed")
			switch {
			case !ok:
				t.Errorf("side %s: no failure reported between %s and %s\n%v", p.side, ka, kb, p)
			case f.Reason != "symmetric-nat":
				t.Errorf("side %s: failure reason %q (%s), want symmetric-nat", p.side, f.Reason, f.Detail)
			case f.Ms == nil || *f.Ms > 10000:
				t.Errorf("side %s: failed after %v ms, want within 10 s", p.side, f.Ms)
			}
			if _, ok := p.find(0, "path"); ok {
				t.Errorf("side %s: a path was selected between %s and %s", p.side, ka, kb)
			}
		}
		return
	}
	for _, p := range []peerRun{a, b} {
		if _, ok := p.find(0, "path"); !ok {
			t.Errorf("side %s: no path between %s and %s\n%v", p.side, ka, kb, p)
		}
	}
	if _, ok := a.find(0, "ping_ok"); !ok {
		t.Errorf("side a: the ping over the selected path did not come back\n%v%v", a, b)
	}
}

// testLabKeepalive shortens the NATs' UDP mapping lifetime to 5 s and holds
// an idle path for 60 s: keepalives every 2 s keep it alive; without them
// it dies. Both labs run at once.
func testLabKeepalive(t *testing.T, nl natlab) {
	const hold = 60 * time.Second
	cases := []struct {
		name      string
		keepalive string
		alive     bool
	}{{"every 2s", "2s", true}, {"off", "off", false}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := nl.up(t, "port-restricted", "port-restricted")
			l.sh("udp-timeout", l.name, "5")
			a, b := l.peers(hold+30*time.Second, "-hold", hold.String(), "-keepalive", c.keepalive)
			if _, ok := a.find(0, "ping_ok"); !ok {
				t.Fatalf("no working path to start from\n%v%v", a, b)
			}
			pings := a.all("hold_ping")
			if len(pings) == 0 {
				t.Fatalf("no ping at the end of the hold\n%v%v", a, b)
			}
			last := pings[len(pings)-1]
			lost := append(a.all("path_lost"), b.all("path_lost")...)
			if c.alive {
				if last.Reason != "" || last.Ms == nil {
					t.Errorf("keepalive %s: the path died within %v idle (last ping: %s)\n%v%v", c.keepalive, hold, last.Reason, a, b)
				}
				if len(lost) > 0 {
					t.Errorf("keepalive %s: path declared lost\n%v%v", c.keepalive, a, b)
				}
			} else {
				if last.Reason != "timeout" {
					t.Errorf("keepalive off: the path survived %v idle with 5 s NAT mappings\n%v%v", hold, a, b)
				}
				if len(a.all("path_lost")) == 0 {
					t.Errorf("keepalive off: side a never declared the path lost\n%v", a)
				}
			}
		})
	}
}

// testLabLoss drops 20% of UDP at random on both NATs, each way: punching
// must still succeed within 5 s, every time.
func testLabLoss(t *testing.T, nl natlab) {
	const runs = 3
	l := nl.up(t, "port-restricted", "port-restricted")
	l.sh("loss", l.name, "20")
	a, b := l.peers(60*time.Second, "-runs", fmt.Sprint(runs))
	for run := range runs {
		for _, p := range []peerRun{a, b} {
			ev, ok := p.find(run, "path")
			if !ok {
				t.Errorf("run %d side %s: no path under 20%% loss\n%v", run, p.side, p)
				continue
			}
			if *ev.Ms > 5000 {
				t.Errorf("run %d side %s: path after %.0f ms under 20%% loss, want within 5 s", run, p.side, *ev.Ms)
			}
		}
	}
}

// testLabSameNAT puts both hosts behind one NAT: they meet over their LAN
// addresses, not through the NAT.
func testLabSameNAT(t *testing.T, nl natlab) {
	l := nl.up(t, "port-restricted", "-", "--same-nat")
	a, b := l.peers(30 * time.Second)
	lan := netip.MustParsePrefix("10.1.0.0/24")
	for _, p := range []peerRun{a, b} {
		ev, ok := p.find(0, "path")
		if !ok {
			t.Errorf("side %s: no path behind one NAT\n%v", p.side, p)
			continue
		}
		remote, err := netip.ParseAddrPort(ev.Remote)
		if err != nil || !lan.Contains(remote.Addr()) {
			t.Errorf("side %s: path to %s, want the other host's LAN address in %v", p.side, ev.Remote, lan)
		}
	}
	if _, ok := a.find(0, "ping_ok"); !ok {
		t.Errorf("side a: the ping over the LAN path did not come back\n%v%v", a, b)
	}
}

// TestNATLabBench measures, per NAT pair, the time from having the other
// side's candidates to a selected path (p50/p95 over -natlab.runs punches),
// and STUN discovery time, and prints a table. Only with -natlab.bench.
func TestNATLabBench(t *testing.T) {
	if !*natlabBench {
		t.Skip("figures only with -natlab.bench")
	}
	nl := needNATLab(t)
	type row struct {
		pair        string
		n, fails    int
		punch, stun []float64
		failMs      []float64
		failReason  string
	}
	type setup struct {
		ka, kb string
		loss   int // percent, on both NATs
	}
	var setups []setup
	for i, ka := range labKinds {
		for _, kb := range labKinds[i:] {
			setups = append(setups, setup{ka: ka, kb: kb})
		}
	}
	setups = append(setups, setup{ka: "port-restricted", kb: "port-restricted", loss: 20})
	var rows []row
	for _, su := range setups {
		r := row{pair: su.ka + " / " + su.kb}
		runs := *natlabRuns
		if labPairFails(su.ka, su.kb) {
			runs = 3 // each failure takes the machine's punch timeout
		}
		l := nl.up(t, su.ka, su.kb)
		if su.loss > 0 {
			r.pair += fmt.Sprintf(", %d%% loss", su.loss)
			l.sh("loss", l.name, fmt.Sprint(su.loss))
		}
		a, b := l.peers(time.Duration(runs)*20*time.Second, "-runs", fmt.Sprint(runs))
		for run := range runs {
			r.n++
			for _, p := range []peerRun{a, b} {
				if st, ok := p.find(run, "stun"); ok {
					r.stun = append(r.stun, *st.Ms)
				}
			}
			pa, okA := a.find(run, "path")
			pb, okB := b.find(run, "path")
			if okA && okB {
				// The pair is up once both sides have selected it.
				r.punch = append(r.punch, max(*pa.Ms, *pb.Ms))
				continue
			}
			r.fails++
			if f, ok := a.find(run, "failed"); ok {
				r.failMs = append(r.failMs, *f.Ms)
				r.failReason = f.Reason
			}
		}
		rows = append(rows, r)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nNAT lab: have-remote-candidates -> path selected (both sides), STUN discovery (per side)\n")
	fmt.Fprintf(&out, "%-42s %5s %9s %9s %9s %9s  %s\n", "pair (a / b)", "runs", "p50 ms", "p95 ms", "stun p50", "stun p95", "result")
	for _, r := range rows {
		res := "direct path every run"
		if r.fails > 0 {
			res = fmt.Sprintf("%d/%d failed (%s) after p50 %.0f ms", r.fails, r.n, r.failReason, pct(r.failMs, 50))
		}
		fmt.Fprintf(&out, "%-42s %5d %9s %9s %9.1f %9.1f  %s\n", r.pair, r.n,
			fmtMs(r.punch, 50), fmtMs(r.punch, 95), pct(r.stun, 50), pct(r.stun, 95), res)
	}
	fmt.Print(out.String())
}

// pct is the p-th percentile (nearest rank) of xs, 0 for none.
func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func fmtMs(xs []float64, p float64) string {
	if len(xs) == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", pct(xs, p))
}
