// Command peer is one end of a NAT lab experiment: it runs this
// repository's punch package for real — the sockets, STUN discovery and
// NAT behaviour probe against the lab's coturn, candidate encoding, a TURN
// allocation (punch/relay) when asked, and the sans-I/O hole-punch
// machines, one per path kind (direct; relayed when either side has a
// relay; predicted, birthday probing, with -predict where it applies), in
// a small event loop of its own — and prints what happens as JSON lines
// on stdout, one object per event:
//
//	stun           STUN discovery done: ms, mapped, mapped6, mapping, filtering, phrase
//	relay          TURN allocation done: local (relayed address), ms, requests so far
//	relay_failed   TURN allocation or permission failed: err, in words
//	candidates     own candidates published to the rendezvous
//	have_remote    the other side's candidates arrived (t is the instant)
//	path           a machine selected a path: kind, socket, local, remote, relay, ms since have_remote
//	failed         a machine gave up: kind, reason ("symmetric-nat", ...), detail, ms
//	sockets_opened the birthday machine's extra sockets were opened: count
//	ping_ok        side a's first ping over a path came back: kind, ms (RTT), owd (one-way, ms)
//	ping_timeout   no answer to side a's first ping over a path within 3 s: kind
//	owd            with -latency-pings N, each of N more pings over every path: kind, ms (RTT), owd
//	hold_ping      a ping while holding the first path: ms (RTT), or reason "timeout"
//	path_lost      a machine declared its selected path dead: kind
//	sockets_left   at the end of a run, extra sockets still open: count
//	relay_stats    at the end of a run, after the release: requests (to the TURN server, in all)
//	error          setup broke (err); the process then exits with status 1
//
// Every object carries t (Unix nanoseconds, wall clock: both peers run on one
// machine, so their instants compare), side and run. Side a is the
// controlling (offering) side; b answers pings and never starts one, so a
// dead NAT mapping cannot be re-opened from b's side by the test itself.
// The first path a side selects carries the hold and its pings; every
// path gets one ping, so paths of different kinds can be compared.
//
// The two peers find each other through a rendezvous directory both can
// read: each writes its encoded candidates there and waits for the other's.
// The TURN password or shared secret comes from $P2PTUI_TURN_PASSWORD or
// $P2PTUI_TURN_SECRET, as for p2ptui itself.
//
// Built and driven by punch/lab_test.go; by hand:
//
//	go build -o /tmp/peer ./testdata/natlab/peer
//	testdata/natlab/lab.sh up x port-restricted full-cone
//	d=$(mktemp -d); for s in a b; do testdata/natlab/lab.sh exec x $s /tmp/peer -side $s \
//	    -stun 203.0.113.10:3478,203.0.113.11:3478 -rendezvous $d -session demo \
//	    -secret $(printf %064d 0) & done; wait
//	testdata/natlab/lab.sh down x
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	ossignal "os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/relay"
	"github.com/p2ptui/p2ptui/punch/sansio"
)

// The lab's own packets on a path (pings), in the session range of first
// bytes (RFC 7983-style demultiplexing in punch.Classify): the lab peer runs
// no session, so it borrows that range:
//
//	0x6F 'L' 'A' 'B', kind(1), sequence(4), path kind(1),
//	sent(8, Unix ns), received(8, Unix ns; pong only)
const (
	labMagic   = "\x6fLAB"
	labPing    = 1
	labPong    = 2
	labBye     = 3
	labPktSize = len(labMagic) + 1 + 4 + 1 + 8 + 8
)

// Timings of the lab peer's own protocol (not the punch machine's).
const (
	pingRetry    = 200 * time.Millisecond // resend an unanswered first ping
	pingGiveUp   = 3 * time.Second        // no answer to the first ping: report it
	holdTries    = 3                      // tries per hold ping
	holdRetry    = 300 * time.Millisecond // between tries of a hold ping
	byeCopies    = 3                      // side a says bye this many times
	lingerAfter  = 3 * time.Second        // side b waits this long past the hold for a bye
	pollEvery    = 2 * time.Millisecond   // rendezvous directory polling
	relayWait    = 3 * time.Second        // how long the TURN allocation may take
	extraSockBuf = 2048                   // read buffer of birthday sockets
	latencyGap   = 10 * time.Millisecond  // between latency pings
)

type options struct {
	side         string
	servers      []netip.AddrPort
	servers6     []netip.AddrPort
	ipv6         bool
	turn         relay.Settings
	predict      bool
	waitAll      bool
	latency      int
	dir          string
	session      string
	secret       [32]byte
	runs         int
	hold         time.Duration
	pingEvery    time.Duration
	keepalive    time.Duration
	noKeepalive  bool
	pathTimeout  time.Duration
	punchTimeout time.Duration
	timeout      time.Duration
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var stun, stun6, secret, keepalive, turnURI, turnUser string
	fs.StringVar(&o.side, "side", "", "a (controlling, offers) or b (controlled, answers)")
	fs.StringVar(&stun, "stun", "", "comma-separated STUN servers ip:port (two, to probe mapping behaviour)")
	fs.StringVar(&stun6, "stun6", "", "comma-separated IPv6 STUN servers [ip]:port (with -ipv6)")
	fs.BoolVar(&o.ipv6, "ipv6", false, "one dual-stack socket ([::]:0) instead of an IPv4 one")
	fs.StringVar(&turnURI, "turn", "", "TURN server turn:HOST[:PORT]; password or secret from $"+relay.EnvPassword+" / $"+relay.EnvSecret)
	fs.StringVar(&turnUser, "turn-user", "", "TURN user name")
	fs.BoolVar(&o.predict, "predict", false, "run birthday probing too where it applies (symmetric NAT facing a cone)")
	fs.BoolVar(&o.waitAll, "wait-all", false, "before ending a run, wait until every machine has selected or failed")
	fs.IntVar(&o.latency, "latency-pings", 0, "after the first ping, side a sends this many more over every path, 10 ms apart, for one-way latency")
	fs.StringVar(&o.dir, "rendezvous", "", "directory shared with the other peer for exchanging candidates")
	fs.StringVar(&o.session, "session", "", "session name shared with the other peer ([a-z0-9], 1-40)")
	fs.StringVar(&secret, "secret", "", "punch secret shared with the other peer, 64 hex digits")
	fs.IntVar(&o.runs, "runs", 1, "punch this many times, each with fresh sockets")
	fs.DurationVar(&o.hold, "hold", 0, "after the path is selected, keep it this long (idle but for pings)")
	fs.DurationVar(&o.pingEvery, "ping-every", 0, "while holding, side a pings this often (0: once, at the end)")
	fs.StringVar(&keepalive, "keepalive", "", `punch keepalive interval, or "off" (default: the machine's)`)
	fs.DurationVar(&o.pathTimeout, "path-timeout", 0, "silence after which the path is lost (default: the machine's)")
	fs.DurationVar(&o.punchTimeout, "punch-timeout", 0, "give up punching after this long (default: the machine's)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "the whole process")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() != 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.side != "a" && o.side != "b" {
		return o, fmt.Errorf("-side must be a or b, not %q", o.side)
	}
	var err error
	if o.servers, err = parseAddrs("-stun", stun); err != nil {
		return o, err
	}
	if stun6 != "" {
		if o.servers6, err = parseAddrs("-stun6", stun6); err != nil {
			return o, err
		}
	}
	if turnURI != "" {
		o.turn, err = relay.ParseSettings(relay.Input{URIs: []string{turnURI}, User: turnUser,
			EnvPassword: os.Getenv(relay.EnvPassword), EnvSecret: os.Getenv(relay.EnvSecret)})
		if err != nil {
			return o, err
		}
	}
	if o.dir == "" {
		return o, errors.New("-rendezvous directory is required")
	}
	if !validName(o.session) {
		return o, fmt.Errorf("-session %q must be 1-40 characters of [a-z0-9]", o.session)
	}
	raw, err := hex.DecodeString(secret)
	if err != nil || len(raw) != len(o.secret) {
		return o, fmt.Errorf("-secret must be %d hex digits", 2*len(o.secret))
	}
	copy(o.secret[:], raw)
	switch keepalive {
	case "":
	case "off":
		o.noKeepalive = true
	default:
		if o.keepalive, err = time.ParseDuration(keepalive); err != nil || o.keepalive <= 0 {
			return o, fmt.Errorf(`-keepalive %q must be a positive duration or "off"`, keepalive)
		}
	}
	if o.runs < 1 {
		return o, fmt.Errorf("-runs %d must be at least 1", o.runs)
	}
	return o, nil
}

func parseAddrs(flagName, list string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, s := range strings.Split(list, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", flagName, s, err)
		}
		out = append(out, ap)
	}
	return out, nil
}

func validName(s string) bool {
	if len(s) < 1 || len(s) > 40 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// event is one JSON line.
type event struct {
	Ev         string   `json:"ev"`
	T          int64    `json:"t"`
	Side       string   `json:"side"`
	Run        int      `json:"run"`
	Ms         *float64 `json:"ms,omitempty"`
	Owd        *float64 `json:"owd,omitempty"`
	Mapped     string   `json:"mapped,omitempty"`
	Mapped6    string   `json:"mapped6,omitempty"`
	Mapping    string   `json:"mapping,omitempty"`
	Filtering  string   `json:"filtering,omitempty"`
	Phrase     string   `json:"phrase,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	Kind       string   `json:"kind,omitempty"`
	Socket     int      `json:"socket,omitempty"`
	Local      string   `json:"local,omitempty"`
	Remote     string   `json:"remote,omitempty"`
	Relay      string   `json:"relay,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Detail     string   `json:"detail,omitempty"`
	Seq        int      `json:"seq,omitempty"`
	Count      int      `json:"count,omitempty"`
	Requests   int      `json:"requests,omitempty"`
	Err        string   `json:"err,omitempty"`
}

// printer writes events for one side.
type printer struct {
	enc  *json.Encoder
	side string
}

func (p *printer) emit(run int, e event) {
	e.T = time.Now().UnixNano()
	e.Side = p.side
	e.Run = run
	_ = p.enc.Encode(e) // stdout gone: nobody is listening, nothing to do
}

func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1000
	return &v
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: %v\n", err)
		os.Exit(2)
	}
	out := &printer{enc: json.NewEncoder(os.Stdout), side: o.side}
	ctx, stop := ossignal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	for run := range o.runs {
		if err := runOnce(ctx, o, run, out); err != nil {
			out.emit(run, event{Ev: "error", Err: err.Error()})
			cancel()
			os.Exit(1)
		}
	}
}

// allocation is the outcome of the TURN allocation goroutine.
type allocation struct {
	r    *relay.Relay
	err  error
	took time.Duration
}

// runOnce is one complete experiment: fresh sockets, STUN (and TURN),
// rendezvous, punch, ping, hold.
func runOnce(ctx context.Context, o options, run int, out *printer) error {
	set := punch.NewSocketSet(ctx)
	defer set.CloseAll()
	listen := "0.0.0.0:0"
	if o.ipv6 {
		listen = "[::]:0"
	}
	sock, err := set.Listen(listen, 0)
	if err != nil {
		return fmt.Errorf("open the UDP socket: %w", err)
	}

	// The allocation runs while STUN does; its goroutine always ends
	// within relayWait, and is always waited for below.
	var allocated chan allocation
	relayID := set.Reserve()
	if o.turn.Enabled() {
		allocated = make(chan allocation, 1)
		go func() {
			actx, cancel := context.WithTimeout(ctx, relayWait)
			defer cancel()
			start := time.Now()
			r, err := relay.Allocate(actx, relay.Config{Server: o.turn.Servers[0], Credentials: o.turn.Credentials,
				Socket: relayID, Deliver: set.Deliver()})
			allocated <- allocation{r: r, err: err, took: time.Since(start)}
		}()
	}

	res, err := discover(ctx, o, run, set, sock, out)
	var rel *relay.Relay
	if allocated != nil {
		a := <-allocated
		switch {
		case a.err != nil:
			out.emit(run, event{Ev: "relay_failed", Err: a.err.Error()})
		case set.Add(relayID, a.r) != nil:
			a.r.Close()
		default:
			rel = a.r
			out.emit(run, event{Ev: "relay", Local: rel.Addr().String(), Ms: ms(a.took), Requests: rel.Stats().Requests()})
			// Released before the socket set closes the rest, so the
			// count includes the release.
			defer func() {
				rel.Close()
				out.emit(run, event{Ev: "relay_stats", Requests: rel.Stats().Requests()})
			}()
		}
	}
	return punchRun(ctx, o, run, out, set, sock, res, rel, err)
}

// punchRun publishes the candidates, waits for the other side's and runs
// the machines.
func punchRun(ctx context.Context, o options, run int, out *printer, set *punch.SocketSet, sock *punch.Socket,
	res punch.DiscoveryResult, rel *relay.Relay, discErr error) error {
	if discErr != nil {
		return discErr
	}
	nat := res.NAT
	local := sock.HostCandidates()
	if nat.Mapping != punch.MappingNone {
		// With no NAT the mapped address is a host candidate already.
		local = append(local, res.Reflexive)
	}
	if res.Reflexive6.Addr.IsValid() && res.NAT6.Mapping != punch.MappingNone {
		local = append(local, res.Reflexive6)
	}
	if rel != nil {
		local = append(local, rel.Candidate())
	}
	var names []string
	for _, c := range local {
		names = append(names, c.String())
	}
	session := fmt.Sprintf("%s%d", o.session, run)
	if err := publish(o.dir, session, o.side, punch.EncodeCandidates(local, nat)); err != nil {
		return err
	}
	out.emit(run, event{Ev: "candidates", Candidates: names})

	other := map[string]string{"a": "b", "b": "a"}[o.side]
	payload, err := await(ctx, o.dir, session, other)
	if err != nil {
		return err
	}
	remote, remoteNAT, err := punch.DecodeCandidates(payload)
	if err != nil {
		return fmt.Errorf("decode the other side's candidates: %w", err)
	}
	haveRemote := time.Now()
	var rnames []string
	for _, c := range remote {
		rnames = append(rnames, c.String())
	}
	out.emit(run, event{Ev: "have_remote", Candidates: rnames})

	l := &loop{o: o, run: run, out: out, set: set, relay: rel, haveRemote: haveRemote, byTag: map[punch.Tag]*path{}}
	defer func() {
		n := set.Len() - 1
		if rel != nil {
			n--
		}
		out.emit(run, event{Ev: "sockets_left", Count: n})
	}()
	return l.punch(ctx, session, sock, local, remote, nat, remoteNAT)
}

// discover runs the STUN discovery machine over the main socket until it
// has a result.
func discover(ctx context.Context, o options, run int, set *punch.SocketSet, sock *punch.Socket, out *printer) (punch.DiscoveryResult, error) {
	start := time.Now()
	// The socket's own addresses let discovery tell "no NAT" apart.
	var own []netip.AddrPort
	for _, c := range sock.HostCandidates() {
		own = append(own, c.Addr)
	}
	servers := o.servers
	if o.ipv6 {
		servers = append(servers, o.servers6...)
	}
	d := punch.NewDiscovery(punch.DiscoveryConfig{Rand: rand.Reader, Servers: servers, Local: own, Socket: sock.ID()})
	d.Start(start)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for _, tx := range d.Transmits() {
			if err := set.Send(tx); err != nil {
				return punch.DiscoveryResult{}, fmt.Errorf("send a STUN request to %v: %w", tx.To, err)
			}
		}
		if res, done := d.Result(); done {
			if res.Err != nil {
				return res, fmt.Errorf("STUN discovery: %w", res.Err)
			}
			e := event{Ev: "stun", Ms: ms(time.Since(start)), Mapped: res.Reflexive.Addr.String(),
				Mapping: res.NAT.Mapping.String(), Filtering: res.NAT.Filtering.String(), Phrase: res.NAT.Phrase()}
			if res.Reflexive6.Addr.IsValid() {
				e.Mapped6 = res.Reflexive6.Addr.String()
			}
			out.emit(run, e)
			return res, nil
		}
		resetTimer(timer, d.Deadline())
		select {
		case <-ctx.Done():
			return punch.DiscoveryResult{}, fmt.Errorf("STUN discovery: %w", ctx.Err())
		case dg := <-set.Datagrams():
			if punch.Classify(dg.Data) == punch.ClassSTUN && dg.Socket == sock.ID() {
				d.HandleDatagram(dg.At, dg.From, dg.Data)
			}
		case now := <-timer.C:
			d.HandleTimeout(now)
		}
	}
}

// resetTimer arms t for deadline; a zero deadline means none.
func resetTimer(t *time.Timer, deadline time.Time) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	if deadline.IsZero() {
		t.Reset(time.Hour)
		return
	}
	t.Reset(max(time.Until(deadline), 0))
}

// publish writes this side's candidates for the session, atomically.
func publish(dir, session, side string, payload []byte) error {
	tmp, err := os.CreateTemp(dir, ".cand-*")
	if err != nil {
		return fmt.Errorf("rendezvous: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(payload); err != nil {
		tmp.Close()
		return fmt.Errorf("rendezvous: write candidates: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("rendezvous: write candidates: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, session+"-"+side)); err != nil {
		return fmt.Errorf("rendezvous: publish candidates: %w", err)
	}
	return nil
}

// await waits for the other side's candidates for the session.
func await(ctx context.Context, dir, session, side string) ([]byte, error) {
	name := filepath.Join(dir, session+"-"+side)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		b, err := os.ReadFile(name)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("rendezvous: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("rendezvous: waiting for side %s's candidates: %w", side, ctx.Err())
		case <-tick.C:
		}
	}
}

// path is one machine (one path kind) and what became of it.
type path struct {
	kind    punch.PathKind
	m       *punch.Machine
	sel     *punch.PathSelected
	selAt   time.Time
	settled bool // selected or failed

	// Side a's pings over this path.
	pingSeq   uint32
	pingSent  time.Time // first try of the outstanding ping
	pingFirst bool      // the outstanding ping is the first one
	pingTries int
	pingNext  time.Time // next try or next hold ping; zero: none planned
	pinged    bool      // the first ping came back or was given up
	samples   int       // latency pings answered or given up (-latency-pings)
	sampling  bool      // latency pings are under way
}

// loop is the peer's event loop around the hole-punch machines.
type loop struct {
	o          options
	run        int
	out        *printer
	set        *punch.SocketSet
	relay      *relay.Relay
	haveRemote time.Time

	paths     []*path
	byTag     map[punch.Tag]*path
	primary   *path // the first path selected: it carries the hold
	permitted chan error
	pending   *punch.Config // the relayed machine, waiting for permissions
	holdEnd   time.Time
	settledAt time.Time // when the last machine settled
	done      bool
}

func (l *loop) punch(ctx context.Context, session string, sock *punch.Socket, local, remote []punch.Candidate, nat, remoteNAT punch.NATBehavior) error {
	base := punch.Config{
		Role:      punch.Controlled,
		Sockets:   []punch.LocalSocket{{ID: sock.ID(), Family: sock.Family()}},
		Local:     local,
		Remote:    remote,
		Secret:    l.o.secret,
		SessionID: session,
		LocalNAT:  nat,
		RemoteNAT: remoteNAT,
	}
	if l.o.side == "a" {
		base.Role = punch.Controlling
	}
	if l.o.keepalive > 0 {
		base.KeepaliveInterval = l.o.keepalive
	}
	if l.o.noKeepalive {
		base.KeepaliveInterval = -1
	}
	if l.o.pathTimeout > 0 {
		base.PathTimeout = l.o.pathTimeout
	}
	if l.o.punchTimeout > 0 {
		base.PunchTimeout = l.o.punchTimeout
	}
	now := time.Now()
	if err := l.add(now, base, punch.PathDirect); err != nil {
		return err
	}
	remoteRelay := false
	for _, c := range remote {
		remoteRelay = remoteRelay || c.Type == punch.CandidateRelayed
	}
	if l.relay != nil {
		// Permissions first (one round trip to the server, in the
		// background): the direct machine does not wait for them.
		cfg := base
		cfg.Sockets = append(cfg.Sockets, l.relay.LocalSocket())
		l.pending = &cfg
		l.permitted = make(chan error, 1)
		var peers []netip.AddrPort
		for _, c := range remote {
			if a := c.Addr.Addr(); c.Type == punch.CandidateRelayed || (a.IsGlobalUnicast() && !a.IsPrivate()) {
				peers = append(peers, c.Addr)
			}
		}
		go func() { l.permitted <- l.relay.Permit(ctx, peers) }()
	} else if remoteRelay {
		if err := l.add(now, base, punch.PathRelayed); err != nil {
			return err
		}
	}
	if _, ok := punch.PredictionSide(nat, remoteNAT); ok && l.o.predict {
		if err := l.add(now, base, punch.PathPredicted); err != nil {
			return err
		}
	}
	// The permission goroutine ends within ctx or the relay's close; wait
	// for it so nothing outlives the run.
	defer func() {
		if l.permitted != nil {
			l.relay.Close()
			<-l.permitted
		}
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !l.done {
		l.flush()
		if l.done {
			break
		}
		resetTimer(timer, l.deadline())
		select {
		case <-ctx.Done():
			return fmt.Errorf("punch: %w", ctx.Err())
		case err := <-l.permitted:
			l.permitted = nil
			cfg := *l.pending
			l.pending = nil
			if err != nil {
				l.out.emit(l.run, event{Ev: "relay_failed", Err: err.Error()})
				if !remoteRelay {
					l.noteSettled(time.Now())
					break
				}
				cfg.Sockets = cfg.Sockets[:1]
			}
			if err := l.add(time.Now(), cfg, punch.PathRelayed); err != nil {
				return err
			}
		case dg := <-l.set.Datagrams():
			l.handle(dg)
		case <-timer.C:
			now := time.Now()
			for _, p := range l.paths {
				if sansio.Due(p.m.Deadline(), now) {
					p.m.HandleTimeout(now)
				}
			}
			l.tick(now)
		}
	}
	return nil
}

// add starts a machine of the given kind.
func (l *loop) add(now time.Time, cfg punch.Config, kind punch.PathKind) error {
	cfg.Kind = kind
	m, err := punch.NewMachine(cfg)
	if err != nil {
		return fmt.Errorf("start the %v hole-punch machine: %w", kind, err)
	}
	p := &path{kind: kind, m: m}
	l.paths = append(l.paths, p)
	l.byTag[m.Tag()] = p
	m.Start(now)
	return nil
}

// flush sends what the machines want sent and acts on their events.
func (l *loop) flush() {
	for again := true; again; {
		again = false
		for _, p := range l.paths {
			for _, tx := range p.m.Transmits() {
				// A write error to one candidate (say, an unreachable
				// network) must not end the experiment: the machine
				// tries the others.
				_ = l.set.Send(tx)
			}
			for _, ev := range p.m.Events() {
				if l.event(p, ev) {
					again = true
				}
			}
		}
	}
	l.checkDone(time.Now())
}

// event acts on one machine's event; it reports whether the machine got
// something (sockets) that makes it send.
func (l *loop) event(p *path, ev punch.Event) bool {
	now := time.Now()
	switch ev := ev.(type) {
	case punch.PathSelected:
		p.sel, p.selAt, p.settled = &ev, now, true
		e := event{Ev: "path", Kind: ev.Kind.String(), Socket: int(ev.Socket), Local: ev.Local.String(),
			Remote: ev.Remote.String(), Ms: ms(now.Sub(l.haveRemote))}
		if ev.Relay.IsValid() {
			e.Relay = ev.Relay.String()
		}
		l.out.emit(l.run, e)
		l.noteSettled(now)
		if l.primary == nil {
			l.primary = p
			l.holdEnd = now.Add(l.o.hold)
			if l.o.side == "b" {
				// Side b only answers; it leaves on bye or when a has
				// surely gone.
				l.holdEnd = l.holdEnd.Add(pingGiveUp + lingerAfter)
			}
		}
		if l.o.side == "a" {
			p.pingFirst = true
			l.sendPing(p, now)
		}
	case punch.Failed:
		p.settled = true
		l.out.emit(l.run, event{Ev: "failed", Kind: p.kind.String(), Reason: ev.Reason.String(),
			Detail: ev.Reason.Message() + ": " + ev.Detail, Ms: ms(now.Sub(l.haveRemote))})
		l.noteSettled(now)
	case punch.PathLost:
		l.out.emit(l.run, event{Ev: "path_lost", Kind: p.kind.String(), Ms: ms(now.Sub(p.selAt))})
	case punch.SocketsWanted:
		ids, err := l.set.ListenMany("0.0.0.0:0", ev.Count, extraSockBuf)
		if err != nil {
			l.out.emit(l.run, event{Ev: "error", Err: err.Error()})
		}
		l.out.emit(l.run, event{Ev: "sockets_opened", Count: len(ids)})
		p.m.SocketsOpened(now, ids)
		return true
	case punch.SocketsDone:
		_ = l.set.Close(ev.IDs...)
	}
	return false
}

func (l *loop) noteSettled(now time.Time) {
	for _, p := range l.paths {
		if !p.settled {
			return
		}
	}
	if l.pending == nil && l.settledAt.IsZero() {
		l.settledAt = now
	}
}

// allSettled reports whether every machine (the pending relayed one
// included) has selected or failed.
func (l *loop) allSettled() bool { return !l.settledAt.IsZero() }

// checkDone ends the run when there is nothing left to wait for.
func (l *loop) checkDone(now time.Time) {
	if l.done {
		return
	}
	if l.primary == nil {
		if l.allSettled() {
			l.done = true // every machine failed
		}
		return
	}
	if l.o.side == "b" {
		// Side b leaves on bye; failing that, once a has surely gone.
		if !now.Before(l.holdEnd) && (l.allSettled() || !l.o.waitAll) &&
			(l.settledAt.IsZero() || !now.Before(l.settledAt.Add(pingGiveUp+lingerAfter))) {
			l.done = true
		}
		return
	}
	if now.Before(l.holdEnd) || l.primary.pingTries > 0 {
		return
	}
	if l.o.waitAll && !l.allSettled() {
		return
	}
	for _, p := range l.paths {
		if p.sel != nil && (!p.pinged || p.sampling) {
			return
		}
	}
	l.finish()
}

func (l *loop) deadline() time.Time {
	var d time.Time
	for _, p := range l.paths {
		d = sansio.Earliest(d, p.m.Deadline(), p.pingNext)
	}
	if l.primary != nil {
		d = sansio.Earliest(d, l.holdEnd)
		if l.o.side == "b" && !l.settledAt.IsZero() {
			d = sansio.Earliest(d, l.settledAt.Add(pingGiveUp+lingerAfter))
		}
	}
	return d
}

func (l *loop) sendPing(p *path, now time.Time) {
	if p.pingTries == 0 {
		p.pingSeq++
		p.pingSent = now
	}
	p.pingTries++
	l.writeLab(p, labPing, p.pingSeq, now.UnixNano(), 0)
	if p.pingFirst {
		p.pingNext = now.Add(pingRetry)
	} else {
		p.pingNext = now.Add(holdRetry)
	}
}

func (l *loop) writeLab(p *path, kind byte, seq uint32, sent, recv int64) {
	b := make([]byte, 0, labPktSize)
	b = append(b, labMagic...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, byte(p.kind))
	b = binary.BigEndian.AppendUint64(b, uint64(sent))
	b = binary.BigEndian.AppendUint64(b, uint64(recv))
	// A lost ping is what the test measures.
	_ = l.set.Send(punch.Transmit{Socket: p.sel.Socket, To: p.sel.Remote, Data: b})
}

// tick runs the lab peer's own timers.
func (l *loop) tick(now time.Time) {
	for _, p := range l.paths {
		if p.sel == nil || p.pingNext.IsZero() || now.Before(p.pingNext) {
			continue
		}
		p.pingNext = time.Time{}
		switch {
		case p.sampling && p.pingTries == 0:
			l.sendPing(p, now)
			p.pingNext = now.Add(holdRetry)
		case p.sampling:
			// A lost latency ping is a lost sample: on to the next.
			p.pingTries = 0
			l.nextSample(p, now)
		case p.pingTries == 0:
			l.sendPing(p, now) // a scheduled hold ping
		case p.pingFirst && now.Sub(p.pingSent) < pingGiveUp:
			l.sendPing(p, now)
		case p.pingFirst:
			l.out.emit(l.run, event{Ev: "ping_timeout", Kind: p.kind.String()})
			p.pingFirst, p.pingTries, p.pinged = false, 0, true
			l.planHoldPing(p, now)
			l.startSampling(p, now)
		case p.pingTries < holdTries:
			l.sendPing(p, now)
		default:
			l.out.emit(l.run, event{Ev: "hold_ping", Kind: p.kind.String(), Seq: int(p.pingSeq), Reason: "timeout"})
			p.pingTries = 0
			l.planHoldPing(p, now)
		}
	}
	l.checkDone(now)
}

// planHoldPing schedules the next ping over the primary path while
// holding: every -ping-every, and always one at the end of the hold so the
// test sees the final state.
func (l *loop) planHoldPing(p *path, now time.Time) {
	if l.o.hold <= 0 || p != l.primary {
		return
	}
	next := l.holdEnd
	if l.o.pingEvery > 0 {
		next = now.Add(l.o.pingEvery)
		if next.After(l.holdEnd) {
			next = l.holdEnd
		}
	}
	if now.Before(l.holdEnd) {
		p.pingNext = next
	}
}

// startSampling begins the latency pings over a path (side a, with
// -latency-pings); they do not mix with hold pings, which the bench does
// not use.
func (l *loop) startSampling(p *path, now time.Time) {
	if l.o.latency > 0 && l.o.hold == 0 {
		p.sampling = true
		p.pingNext = now.Add(latencyGap)
	}
}

// nextSample counts one latency sample and plans the next.
func (l *loop) nextSample(p *path, now time.Time) {
	p.samples++
	if p.samples >= l.o.latency {
		p.sampling = false
		return
	}
	p.pingNext = now.Add(latencyGap)
}

func (l *loop) finish() {
	if l.o.side == "a" && l.primary != nil {
		for range byeCopies {
			l.writeLab(l.primary, labBye, l.primary.pingSeq, 0, 0)
		}
	}
	l.done = true
}

// onPath finds the selected path a datagram arrived on.
func (l *loop) onPath(dg punch.Datagram) *path {
	for _, p := range l.paths {
		if p.sel != nil && p.sel.Socket == dg.Socket && p.sel.Remote == dg.From {
			return p
		}
	}
	return nil
}

// handle routes one datagram: punch packets to the machine whose tag they
// carry, the lab's own pings to the ping logic.
func (l *loop) handle(dg punch.Datagram) {
	now := time.Now()
	switch punch.Classify(dg.Data) {
	case punch.ClassPunch:
		tag, _ := punch.PacketTag(dg.Data)
		if p := l.byTag[tag]; p != nil {
			p.m.HandleDatagramOn(dg.At, dg.Socket, dg.From, dg.Data)
		}
	case punch.ClassSession:
		kind, seq, pathKind, sent, recv, ok := parseLab(dg.Data)
		p := l.onPath(dg)
		if !ok || p == nil {
			return
		}
		p.m.NoteReceived(dg.At)
		switch kind {
		case labPing:
			// Answered on the path it came in on, whatever our own
			// selection says, with the instant it arrived.
			l.writeLab(&path{kind: punch.PathKind(pathKind), sel: p.sel}, labPong, seq, sent, dg.At.UnixNano())
		case labPong:
			if seq != p.pingSeq || p.pingTries == 0 {
				return // an answer to a try already given up on
			}
			rtt := now.Sub(p.pingSent)
			owd := time.Duration(recv - sent)
			p.pingTries = 0
			p.pingNext = time.Time{}
			switch {
			case p.pingFirst:
				l.out.emit(l.run, event{Ev: "ping_ok", Kind: p.kind.String(), Ms: ms(rtt), Owd: ms(owd)})
				p.pingFirst, p.pinged = false, true
				l.planHoldPing(p, now)
				l.startSampling(p, now)
			case p.sampling:
				l.out.emit(l.run, event{Ev: "owd", Kind: p.kind.String(), Ms: ms(rtt), Owd: ms(owd)})
				l.nextSample(p, now)
			default:
				l.out.emit(l.run, event{Ev: "hold_ping", Kind: p.kind.String(), Seq: int(seq), Ms: ms(rtt)})
				l.planHoldPing(p, now)
			}
			l.checkDone(now)
		case labBye:
			if l.o.side == "b" {
				l.done = true
			}
		}
	}
}

func parseLab(b []byte) (kind byte, seq uint32, pathKind byte, sent, recv int64, ok bool) {
	if len(b) != labPktSize || string(b[:len(labMagic)]) != labMagic {
		return 0, 0, 0, 0, 0, false
	}
	r := b[len(labMagic):]
	return r[0], binary.BigEndian.Uint32(r[1:]), r[5], int64(binary.BigEndian.Uint64(r[6:])), int64(binary.BigEndian.Uint64(r[14:])), true
}
