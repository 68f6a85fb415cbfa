package punch

// NAT lab tests of the path kinds beyond the direct IPv4 one: birthday
// probing between a symmetric and a cone NAT, relaying through coturn
// between two symmetric NATs, IPv6 through stateful firewalls, and a TURN
// server that is down. They run inside TestNATLab; the figures per path
// kind come from TestNATLabPathsBench (-natlab.bench).

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// testLabPaths runs the path-kind labs in parallel.
func testLabPaths(t *testing.T, nl natlab) {
	t.Run("birthday", func(t *testing.T) {
		t.Parallel()
		testLabBirthday(t, nl)
	})
	for _, auth := range []string{"lt", "secret"} {
		t.Run("relayed-"+auth, func(t *testing.T) {
			t.Parallel()
			testLabRelayed(t, nl, auth)
		})
	}
	t.Run("ipv6", func(t *testing.T) {
		t.Parallel()
		testLabIPv6(t, nl)
	})
	t.Run("turn-down", func(t *testing.T) {
		t.Parallel()
		testLabTURNDown(t, nl)
	})
}

// firstDirect is when a side first selected a path that crosses no relay
// (direct or predicted), in ms since it had the other side's candidates.
func firstDirect(p peerRun, run int) (float64, string, bool) {
	best, kind, ok := 0.0, "", false
	for _, e := range p.events {
		if e.Run == run && e.Ev == "path" && (e.Kind == "direct" || e.Kind == "predicted") && (!ok || *e.Ms < best) {
			best, kind, ok = *e.Ms, e.Kind, true
		}
	}
	return best, kind, ok
}

// testLabBirthday: a symmetric NAT (MASQUERADE --random-fully) facing a
// port-restricted cone connects directly by birthday probing, in at
// least 90% of at least 20 fresh runs within 5 s of having the other
// side's candidates; the symmetric side opens 256 extra sockets and keeps
// at most the path's.
func testLabBirthday(t *testing.T, nl natlab) {
	runs := max(*natlabRuns, 20)
	l := nl.up(t, "symmetric", "port-restricted")
	a, b := l.peers(time.Duration(runs)*20*time.Second, "-predict", "-runs", fmt.Sprint(runs))
	within, connected := 0, 0
	var times []float64
	kinds := map[string]int{}
	for run := range runs {
		ma, ka, okA := firstDirect(a, run)
		mb, _, okB := firstDirect(b, run)
		if okA && okB {
			connected++
			kinds[ka]++
			times = append(times, max(ma, mb))
			if max(ma, mb) <= 5000 {
				within++
			}
		} else {
			t.Logf("run %d: no direct path (A %v, B %v)", run, okA, okB)
		}
		if o, ok := a.find(run, "sockets_opened"); !ok || o.Count != birthdaySockets {
			t.Errorf("run %d: the symmetric side opened %+v extra sockets, want %d", run, o, birthdaySockets)
		}
		if left, ok := a.find(run, "sockets_left"); !ok || left.Count > 1 {
			t.Errorf("run %d: the symmetric side kept %d extra sockets after the run, want at most the path's", run, left.Count)
		}
		if _, ok := b.find(run, "sockets_opened"); ok {
			t.Errorf("run %d: the cone side opened extra sockets", run)
		}
		if okA && okB {
			if _, ok := a.find(run, "ping_ok"); !ok {
				t.Errorf("run %d: no ping came back over the path\n%v%v", run, a, b)
			}
		}
	}
	t.Logf("birthday probing, symmetric (MASQUERADE --random-fully) vs port-restricted: %d/%d direct within 5 s, %d/%d at all (%v); have-remote to both selected: p50 %s ms, p95 %s ms",
		within, runs, connected, runs, kinds, fmtMs(times, 50), fmtMs(times, 95))
	if within*10 < runs*9 {
		t.Errorf("only %d of %d runs direct within 5 s, want at least 90%%\n%v%v", within, runs, a, b)
	}
}

// testLabRelayed: two symmetric NATs have no direct path; with coturn as
// the relay (long-term user, or a shared secret for time-limited
// credentials) both sides select the relayed path and it carries pings.
func testLabRelayed(t *testing.T, nl natlab, auth string) {
	const runs = 2
	l := nl.up(t, "symmetric", "symmetric", "--turn", auth)
	a, b := l.peers(90*time.Second, "-runs", fmt.Sprint(runs))
	for run := range runs {
		for _, p := range []peerRun{a, b} {
			if e, ok := p.find(run, "relay"); !ok || !strings.HasPrefix(e.Local, strings.Split(l.info["TURN"], ":")[0]+":") {
				t.Errorf("run %d side %s: no relayed address from %s: %+v\n%v", run, p.side, l.info["TURN"], e, p)
			}
			e, ok := p.findKind(run, "path", "relayed")
			if !ok || e.Relay == "" {
				t.Errorf("run %d side %s: no relayed path\n%v", run, p.side, p)
				continue
			}
			if *e.Ms > 5000 {
				t.Errorf("run %d side %s: relayed path after %.0f ms", run, p.side, *e.Ms)
			}
			if st, ok := p.find(run, "relay_stats"); !ok || st.Requests < 4 || st.Requests > 16 {
				t.Errorf("run %d side %s: %d TURN requests for one connection (allocation, permission, bindings, release)", run, p.side, st.Requests)
			}
		}
		if _, ok := a.findKind(run, "ping_ok", "relayed"); !ok {
			t.Errorf("run %d: no ping came back over the relay\n%v%v", run, a, b)
		}
	}
}

// testLabIPv6: behind stateful IPv6 firewalls (return traffic only) and
// symmetric IPv4 NATs, simultaneous probes open the firewalls and the
// pair connects directly over IPv6; where IPv4 works too (two
// port-restricted NATs), IPv6 is still the path chosen.
func testLabIPv6(t *testing.T, nl natlab) {
	for _, kinds := range [][2]string{{"symmetric", "symmetric"}, {"port-restricted", "port-restricted"}} {
		t.Run(kinds[0], func(t *testing.T) {
			t.Parallel()
			const runs = 3
			l := nl.up(t, kinds[0], kinds[1], "--ipv6")
			a, b := l.peers(60*time.Second, "-runs", fmt.Sprint(runs))
			for run := range runs {
				for _, c := range []struct {
					p   peerRun
					own string
				}{{a, l.info["HOST_A_IP6"]}, {b, l.info["HOST_B_IP6"]}} {
					st, _ := c.p.find(run, "stun")
					if m, err := netip.ParseAddrPort(st.Mapped6); err != nil || m.Addr().String() != c.own {
						t.Errorf("run %d side %s: STUN over IPv6 saw %q, want the host's own %s\n%v", run, c.p.side, st.Mapped6, c.own, c.p)
					}
					e, ok := c.p.find(run, "path")
					if !ok {
						t.Errorf("run %d side %s: no path\n%v", run, c.p.side, c.p)
						continue
					}
					remote, err := netip.ParseAddrPort(e.Remote)
					if err != nil || !remote.Addr().Is6() || e.Kind != "direct" {
						t.Errorf("run %d side %s: %s path to %s, want direct over IPv6\n%v%v", run, c.p.side, e.Kind, e.Remote, a, b)
					}
				}
				if _, ok := a.find(run, "ping_ok"); !ok {
					t.Errorf("run %d: no ping came back over IPv6\n%v%v", run, a, b)
				}
			}
		})
	}
}

// testLabTURNDown: a relay is configured but nothing answers at its
// address; between two symmetric NATs each side then says in words that
// the TURN server did not answer, and why no direct path exists.
func testLabTURNDown(t *testing.T, nl natlab) {
	l := nl.up(t, "symmetric", "symmetric")
	l.env = append(l.env, "P2PTUI_TURN_PASSWORD=unused")
	server := "turn:" + l.info["TURN"]
	a, b := l.peers(60*time.Second, "-turn", server, "-turn-user", "lab")
	for _, p := range []peerRun{a, b} {
		e, ok := p.find(0, "relay_failed")
		if !ok || !strings.Contains(e.Err, "TURN server "+server+" did not answer") {
			t.Errorf("side %s: relay failure %q, want it to say %s did not answer\n%v", p.side, e.Err, server, p)
		}
		f, ok := p.find(0, "failed")
		if !ok || f.Reason != "symmetric-nat" || !strings.Contains(f.Detail, "symmetric NAT") {
			t.Errorf("side %s: failure %+v, want the symmetric-NAT reason in words", p.side, f)
		}
		if _, ok := p.find(0, "path"); ok {
			t.Errorf("side %s: a path between two symmetric NATs without a relay", p.side)
		}
		t.Logf("side %s reads: %s; %s", p.side, e.Err, f.Detail)
	}
}

// TestNATLabPathsBench measures each path kind across the lab, in one
// run: connect time (have-remote-candidates to both sides selected) p50
// and p95 per kind, one-way latency over the relay and direct on the same
// pair, and the TURN requests one connection costs. Only with
// -natlab.bench.
func TestNATLabPathsBench(t *testing.T) {
	if !*natlabBench {
		t.Skip("figures only with -natlab.bench")
	}
	nl := needNATLab(t)
	runs := *natlabRuns
	type setup struct {
		name   string
		kind   string // the path kind measured
		v6     bool   // the path must be IPv6
		up     []string
		extra  []string
		owd    []string // kinds whose one-way latency is measured
		relays bool
	}
	setups := []setup{
		{name: "direct IPv4 (port-restricted pair)", kind: "direct", up: []string{"port-restricted", "port-restricted"}},
		{name: "direct IPv6 (symmetric pair, firewalls)", kind: "direct", v6: true, up: []string{"symmetric", "symmetric", "--ipv6"}},
		{name: "predicted (symmetric / port-restricted)", kind: "predicted", up: []string{"symmetric", "port-restricted"}, extra: []string{"-predict"}},
		{name: "relayed (symmetric pair, coturn)", kind: "relayed", up: []string{"symmetric", "symmetric", "--turn", "lt"}, relays: true},
		{name: "relay vs direct (port-restricted pair)", kind: "relayed", up: []string{"port-restricted", "port-restricted", "--turn", "lt"},
			extra: []string{"-wait-all", "-latency-pings", "20"}, owd: []string{"direct", "relayed"}, relays: true},
	}
	var out strings.Builder
	fmt.Fprintf(&out, "\nNAT lab, %d fresh runs per setup: have-remote-candidates -> path selected (both sides)\n", runs)
	fmt.Fprintf(&out, "%-42s %-10s %5s %9s %9s\n", "setup", "kind", "ok", "p50 ms", "p95 ms")
	owd := map[string][]float64{}
	var requests, allocMs []float64
	for _, su := range setups {
		l := nl.up(t, su.up...)
		a, b := l.peers(time.Duration(runs)*25*time.Second, append([]string{"-runs", fmt.Sprint(runs)}, su.extra...)...)
		var times []float64
		for run := range runs {
			pa, okA := a.findKind(run, "path", su.kind)
			pb, okB := b.findKind(run, "path", su.kind)
			if !okA || !okB {
				continue
			}
			if su.v6 {
				ra, _ := netip.ParseAddrPort(pa.Remote)
				if !ra.Addr().Is6() {
					continue
				}
			}
			times = append(times, max(*pa.Ms, *pb.Ms))
			for _, e := range a.all("owd") {
				if e.Run == run && e.Owd != nil && slices.Contains(su.owd, e.Kind) {
					owd[e.Kind] = append(owd[e.Kind], *e.Owd)
				}
			}
			if su.relays {
				for _, p := range []peerRun{a, b} {
					if st, ok := p.find(run, "relay_stats"); ok {
						requests = append(requests, float64(st.Requests))
					}
					if al, ok := p.find(run, "relay"); ok {
						allocMs = append(allocMs, *al.Ms)
					}
				}
			}
		}
		fmt.Fprintf(&out, "%-42s %-10s %2d/%-2d %9s %9s\n", su.name, su.kind, len(times), runs, fmtMs(times, 50), fmtMs(times, 95))
	}
	fmt.Fprintf(&out, "\none-way latency on the same port-restricted pair, both paths up (20 pings a path a run, ms): direct p50 %s p95 %s (%d); relayed p50 %s p95 %s (%d)\n",
		fmtMs(owd["direct"], 50), fmtMs(owd["direct"], 95), len(owd["direct"]), fmtMs(owd["relayed"], 50), fmtMs(owd["relayed"], 95), len(owd["relayed"]))
	fmt.Fprintf(&out, "TURN allocation (resolve, 401 challenge, allocate) per side: p50 %s ms, p95 %s ms\n", fmtMs(allocMs, 50), fmtMs(allocMs, 95))
	mean := 0.0
	for _, r := range requests {
		mean += r
	}
	if len(requests) > 0 {
		mean /= float64(len(requests))
	}
	fmt.Fprintf(&out, "TURN requests per side per connection (allocation with its 401 challenge, permissions, channel bindings, release): mean %.1f, p50 %s, max %s over %d\n",
		mean, fmtMs(requests, 50), fmtMs(requests, 100), len(requests))
	fmt.Print(out.String())
}
