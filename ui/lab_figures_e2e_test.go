package ui_test

// The NAT lab's figures, measured on the product in one run: connect time
// per path kind, birthday probing's success rate, one-way latency over
// the relay and direct on the same pair, and what the relay costs the
// TURN server per connection. Each run starts two fresh p2ptui processes
// (first contact, fresh NAT mappings), so nothing is warm but the lab.
//
//	go test -count=1 -run TestLabPathFigures -v ./ui/ -args -lab.figures [-lab.runs=20]

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/ui"
)

// figureRun is one fresh pair connecting.
type figureRun struct {
	a, b     *watched
	ok       bool          // connected (else a failure came)
	total    time.Duration // connect to both connected, as the test sees it
	ca, cb   ui.Event      // the connected events
	failure  ui.Event
	requests []int // TURN requests, per side, once both have quit
}

// figurePair starts two fresh processes in l, befriends them, and has a
// connect to b; before runs just before the connect.
func figurePair(t *testing.T, l *e2eLab, o labOpts, before func()) *figureRun {
	t.Helper()
	dir := t.TempDir()
	oa, ob := o, o
	oa.dir, ob.dir = filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	r := &figureRun{a: l.startLocal("a", "alice", oa), b: l.startLocal("b", "bob", ob)}
	if o.turn {
		for _, p := range []*watched{r.a, r.b} {
			p.wait("relay", 20*time.Second, func(e ui.Event) bool { return e.Ev == "relay" && e.OK != nil })
		}
	}
	// No pause: a look-up racing the other's first publication reads it
	// offline, and the presence watch then connects the moment it appears.
	befriendLab(t, r.a, r.b)
	if before != nil {
		before()
	}
	start := time.Now()
	r.a.send("connect bob")
	end := r.a.wait("connected or failure", time.Minute, func(e ui.Event) bool {
		return (e.Ev == "connected" || e.Ev == "failure") && e.Peer == r.b.id
	})
	if end.Ev == "failure" {
		r.failure = end
		return r
	}
	r.ca = end
	r.cb = r.b.wait("connected", time.Minute, func(e ui.Event) bool { return e.Ev == "connected" && e.Peer == r.a.id })
	r.total, r.ok = time.Since(start), true
	if r.total > time.Second {
		t.Logf("a slow connect (%v): alice's events:\n%sbob's:\n%s", r.total, r.a.dump(), r.b.dump())
	}
	return r
}

// quit ends both processes and collects what they told of the relay.
func (r *figureRun) quit() {
	for _, p := range []*watched{r.a, r.b} {
		p.quit()
		<-p.done
		for _, e := range p.events() {
			if e.Ev == "relay_stats" && e.Requests != nil {
				r.requests = append(r.requests, *e.Requests)
			}
		}
	}
}

// dist is a list of measurements in milliseconds.
type dist []float64

func (d dist) pct(p float64) string {
	if len(d) == 0 {
		return "–"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return fmt.Sprintf("%.1f", s[min(max(i, 0), len(s)-1)])
}

func msOf(f *float64) float64 {
	if f == nil {
		return -1
	}
	return *f
}

func TestLabPathFigures(t *testing.T) {
	if !*labFigures {
		t.Skip("figures only with -args -lab.figures")
	}
	sh, bin := needLabTools(t)
	runs := *labRuns
	var out strings.Builder
	fmt.Fprintf(&out, "\nNAT lab, the product (headless p2ptui, local mailbox signalling), %d fresh pairs per setup\n", runs)
	fmt.Fprintf(&out, "%-46s %-16s %6s %10s %10s %10s %10s\n", "setup", "path", "ok", "total p50", "total p95", "punch p50", "punch p95")
	row := func(name, path string, ok, n int, total, punch dist) {
		fmt.Fprintf(&out, "%-46s %-16s %2d/%-3d %10s %10s %10s %10s\n", name, path, ok, n, total.pct(50), total.pct(95), punch.pct(50), punch.pct(95))
	}

	// Connect time per path kind. The kind is forced by the NATs: no relay
	// configured where a direct path is measured, none possible where the
	// relayed one is.
	type setup struct {
		name   string
		up     []string
		turn   bool
		want   func(e ui.Event) bool
		wanted string
	}
	for _, su := range []setup{
		{"direct IPv4 (port-restricted pair)", []string{"port-restricted", "port-restricted"}, false,
			func(e ui.Event) bool { return e.Path == "direct" && e.PathKind == "direct" }, "direct"},
		{"direct IPv6 (symmetric pair, firewalls)", []string{"symmetric", "symmetric", "--ipv6"}, false,
			func(e ui.Event) bool { return e.Path == "direct (IPv6)" }, "direct (IPv6)"},
		{"predicted (symmetric / port-restricted)", []string{"symmetric", "port-restricted"}, false,
			func(e ui.Event) bool { return e.PathKind == "predicted" }, "direct (birthday)"},
		{"relayed (symmetric pair, coturn)", []string{"symmetric", "symmetric", "--turn", "lt"}, true,
			func(e ui.Event) bool { return e.PathKind == "relayed" }, "relayed"},
	} {
		l := upLabLocal(t, sh, bin, su.up...)
		var total, punch dist
		var requests []int
		within5 := 0
		for range runs {
			r := figurePair(t, l, labOpts{turn: su.turn}, nil)
			switch {
			case !r.ok:
				t.Logf("%s: failed: %s", su.name, r.failure.Words)
			case !su.want(r.ca):
				t.Logf("%s: connected on %s (%s)", su.name, r.ca.Path, r.ca.PathKind)
			default:
				total = append(total, float64(r.total.Microseconds())/1000)
				punch = append(punch, msOf(r.ca.PunchMs))
				if msOf(r.ca.PunchMs) <= 5000 {
					within5++
				}
			}
			r.quit()
			requests = append(requests, r.requests...)
		}
		row(su.name, su.wanted, len(total), runs, total, punch)
		if strings.HasPrefix(su.name, "predicted") {
			fmt.Fprintf(&out, "%46s birthday probing: %d/%d direct within 5 s of punching, %d/%d at all\n", "", within5, runs, len(total), runs)
		}
		if su.turn {
			fmt.Fprintf(&out, "%46s TURN requests per side per connection: %s\n", "", describeCounts(requests))
		}
	}

	// The relay against the direct path on one port-restricted pair: the
	// direct path is blocked while they connect, 50 messages go over the
	// relay, the block lifts, the session moves, 50 more go direct. One-way
	// latency is the receiver's arrival instant minus the sender's typing
	// instant (one clock: both run on this machine), so it includes the
	// sender's store write, the same on both paths.
	l := upLabLocal(t, sh, bin, "port-restricted", "port-restricted", "--turn", "lt")
	owd := map[string]dist{}
	rtt := map[string]dist{}
	var requests []int
	lat := max(runs/4, 3)
	for run := range lat {
		r := figurePair(t, l, labOpts{turn: true}, func() { l.run("direct", l.name, "off") })
		if !r.ok || r.ca.PathKind != "relayed" {
			t.Fatalf("run %d: connected on %s (%s) with the direct path blocked", run, r.ca.Path, r.ca.PathKind)
		}
		if r.ca.RTTMs != nil {
			rtt["relayed"] = append(rtt["relayed"], *r.ca.RTTMs)
		}
		burst := func(tag string) {
			for i := range 50 {
				r.a.send(fmt.Sprintf("send bob %s-a%03d", tag, i))
				time.Sleep(20 * time.Millisecond)
			}
			r.b.waitN(tag+" messages", 50, time.Minute, func(e ui.Event) bool { return e.Ev == "message" && strings.HasPrefix(e.Body, tag+"-") })
			for _, e := range r.b.events() {
				if e.Ev != "message" || !strings.HasPrefix(e.Body, tag+"-") {
					continue
				}
				at, err1 := time.Parse(time.RFC3339Nano, e.At)
				sent, err2 := time.Parse(time.RFC3339Nano, e.SentAt)
				if err1 == nil && err2 == nil {
					owd[tag] = append(owd[tag], float64(at.Sub(sent).Microseconds())/1000)
				}
			}
		}
		burst("relayed")
		l.run("direct", l.name, "on")
		mv := r.a.wait("the move to the direct path", 20*time.Second, func(e ui.Event) bool { return e.Ev == "path" && e.Path == "direct" })
		if mv.RTTMs != nil {
			// Unknown when the path was chosen on the peer's probe.
			rtt["direct"] = append(rtt["direct"], *mv.RTTMs)
		}
		burst("direct")
		r.quit()
		requests = append(requests, r.requests...)
	}
	fmt.Fprintf(&out, "\none-way latency, port-restricted pair, %d runs of 50 messages a path, 20 ms apart (typed -> arrived, ms):\n", lat)
	for _, k := range []string{"direct", "relayed"} {
		fmt.Fprintf(&out, "  %-8s p50 %s  p95 %s  (%d messages); path RTT from a probe p50 %s ms (%d)\n", k, owd[k].pct(50), owd[k].pct(95), len(owd[k]), rtt[k].pct(50), len(rtt[k]))
	}
	fmt.Fprintf(&out, "TURN requests per side per connection that moved to the direct path: %s\n", describeCounts(requests))

	// Every pair of NAT kinds with a relay configured, as a group runs it.
	fmt.Fprintf(&out, "\nevery NAT pair with a TURN server configured (%d runs each): connect -> both connected, and the path it ends on\n", runs)
	fmt.Fprintf(&out, "%-34s %6s %10s %10s  %s\n", "pair (a / b)", "ok", "p50 ms", "p95 ms", "paths")
	for i, ka := range labKinds {
		for _, kb := range labKinds[i:] {
			l := upLabLocal(t, sh, bin, ka, kb, "--turn", "lt")
			var total dist
			paths := map[string]int{}
			for range runs {
				r := figurePair(t, l, labOpts{turn: true}, nil)
				if r.ok {
					total = append(total, float64(r.total.Microseconds())/1000)
					// Where it ends: a move within 12 s (birthday probing
					// may follow the relay).
					words := r.ca.Path
					deadline := time.Now().Add(12 * time.Second)
					for strings.HasPrefix(words, "relayed") && !(ka == "symmetric" && kb == "symmetric") && time.Now().Before(deadline) {
						time.Sleep(200 * time.Millisecond)
						words, _ = r.a.path(r.b.id)
					}
					if r.ca.Path != words {
						words = r.ca.Path + " -> " + words
					}
					paths[words]++
				}
				r.quit()
			}
			var ps []string
			for p, n := range paths {
				ps = append(ps, fmt.Sprintf("%s ×%d", p, n))
			}
			slices.Sort(ps)
			fmt.Fprintf(&out, "%-34s %2d/%-3d %10s %10s  %s\n", ka+" / "+kb, len(total), runs, total.pct(50), total.pct(95), strings.Join(ps, ", "))
		}
	}
	fmt.Print(out.String())
}

// describeCounts summarises request counts: mean, p50, max.
func describeCounts(n []int) string {
	if len(n) == 0 {
		return "none reported"
	}
	var d dist
	sum := 0
	for _, v := range n {
		d = append(d, float64(v))
		sum += v
	}
	return fmt.Sprintf("mean %.1f, p50 %s, max %s over %d", float64(sum)/float64(len(n)), d.pct(50), d.pct(100), len(n))
}
