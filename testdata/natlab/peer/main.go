// Command peer is one end of a NAT lab experiment: it runs this
// repository's punch package for real — the UDP socket, STUN discovery and
// NAT behaviour probe against the lab's coturn, candidate encoding, and the
// sans-I/O hole-punch machine in a small event loop of its own — and prints
// what happens as JSON lines on stdout, one object per event:
//
//	stun         STUN discovery done: ms, mapped, mapping, filtering, phrase
//	candidates   own candidates published to the rendezvous
//	have_remote  the other side's candidates arrived (t is the instant)
//	path         the machine selected a path: local, remote, ms since have_remote
//	failed       the machine gave up: reason ("symmetric-nat", ...), detail, ms
//	ping_ok      side a's first ping over the path came back: ms is the RTT
//	ping_timeout no answer to side a's first ping within 3 s
//	hold_ping    a ping while holding the path: ms (RTT), or reason "timeout"
//	path_lost    the machine declared the selected path dead
//	error        setup broke (err); the process then exits with status 1
//
// Every object carries t (Unix nanoseconds, wall clock: both peers run on one
// machine, so their instants compare), side and run. Side a is the
// controlling (offering) side; b answers pings and never starts one, so a
// dead NAT mapping cannot be re-opened from b's side by the test itself.
//
// The two peers find each other through a rendezvous directory both can
// read: each writes its encoded candidates there and waits for the other's.
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
)

// The lab's own packets on the path (pings), in the session range of first
// bytes (RFC 7983-style demultiplexing in punch.Classify): the lab peer runs
// no session, so it borrows that range. 0x6F 'L' 'A' 'B', kind, sequence.
const (
	labMagic   = "\x6fLAB"
	labPing    = 1
	labPong    = 2
	labBye     = 3
	labPktSize = len(labMagic) + 1 + 4
)

// Timings of the lab peer's own protocol (not the punch machine's).
const (
	pingRetry   = 200 * time.Millisecond // resend an unanswered first ping
	pingGiveUp  = 3 * time.Second        // no answer to the first ping: report it
	holdTries   = 3                      // tries per hold ping
	holdRetry   = 300 * time.Millisecond // between tries of a hold ping
	byeCopies   = 3                      // side a says bye this many times
	lingerAfter = 3 * time.Second        // side b waits this long past the hold for a bye
	pollEvery   = 2 * time.Millisecond   // rendezvous directory polling
)

type options struct {
	side         string
	servers      []netip.AddrPort
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
	var stun, secret, keepalive string
	fs.StringVar(&o.side, "side", "", "a (controlling, offers) or b (controlled, answers)")
	fs.StringVar(&stun, "stun", "", "comma-separated STUN servers ip:port (two, to probe mapping behaviour)")
	fs.StringVar(&o.dir, "rendezvous", "", "directory shared with the other peer for exchanging candidates")
	fs.StringVar(&o.session, "session", "", "session name shared with the other peer ([a-z0-9], 1-40)")
	fs.StringVar(&secret, "secret", "", "punch secret shared with the other peer, 64 hex digits")
	fs.IntVar(&o.runs, "runs", 1, "punch this many times, each with a fresh socket")
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
	for _, s := range strings.Split(stun, ",") {
		ap, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return o, fmt.Errorf("-stun %q: %w", s, err)
		}
		o.servers = append(o.servers, ap)
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
	Mapped     string   `json:"mapped,omitempty"`
	Mapping    string   `json:"mapping,omitempty"`
	Filtering  string   `json:"filtering,omitempty"`
	Phrase     string   `json:"phrase,omitempty"`
	Candidates []string `json:"candidates,omitempty"`
	Local      string   `json:"local,omitempty"`
	Remote     string   `json:"remote,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	Detail     string   `json:"detail,omitempty"`
	Seq        int      `json:"seq,omitempty"`
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

// runOnce is one complete experiment: fresh socket, STUN, rendezvous, punch,
// ping, hold.
func runOnce(ctx context.Context, o options, run int, out *printer) error {
	sock, err := punch.ListenUDP(ctx, "0.0.0.0:0")
	if err != nil {
		return fmt.Errorf("open the UDP socket: %w", err)
	}
	defer sock.Close()

	nat, srflx, err := discover(ctx, o, run, sock, out)
	if err != nil {
		return err
	}
	local := sock.HostCandidates()
	if nat.Mapping != punch.MappingNone {
		// With no NAT the mapped address is a host candidate already.
		local = append(local, srflx)
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

	l := &loop{
		o: o, run: run, out: out, sock: sock, haveRemote: haveRemote,
	}
	return l.punch(ctx, session, local, remote, nat, remoteNAT)
}

// discover runs the STUN discovery machine over sock until it has a result.
func discover(ctx context.Context, o options, run int, sock *punch.Socket, out *printer) (punch.NATBehavior, punch.Candidate, error) {
	start := time.Now()
	// The socket's own addresses let discovery tell "no NAT" apart.
	var own []netip.AddrPort
	for _, c := range sock.HostCandidates() {
		own = append(own, c.Addr)
	}
	d := punch.NewDiscovery(punch.DiscoveryConfig{Rand: rand.Reader, Servers: o.servers, Local: own})
	d.Start(start)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		for _, tx := range d.Transmits() {
			if err := sock.WriteTo(tx.Data, tx.To); err != nil {
				return punch.NATBehavior{}, punch.Candidate{}, fmt.Errorf("send a STUN request to %v: %w", tx.To, err)
			}
		}
		if res, done := d.Result(); done {
			if res.Err != nil {
				return punch.NATBehavior{}, punch.Candidate{}, fmt.Errorf("STUN discovery: %w", res.Err)
			}
			mapping, filtering := natWords(res.NAT)
			out.emit(run, event{
				Ev: "stun", Ms: ms(time.Since(start)), Mapped: res.Reflexive.Addr.String(),
				Mapping: mapping, Filtering: filtering, Phrase: res.NAT.Phrase(),
			})
			return res.NAT, res.Reflexive, nil
		}
		resetTimer(timer, d.Deadline())
		select {
		case <-ctx.Done():
			return punch.NATBehavior{}, punch.Candidate{}, fmt.Errorf("STUN discovery: %w", ctx.Err())
		case dg, ok := <-sock.Datagrams():
			if !ok {
				return punch.NATBehavior{}, punch.Candidate{}, errors.New("STUN discovery: the socket closed")
			}
			if punch.Classify(dg.Data) == punch.ClassSTUN {
				d.HandleDatagram(dg.At, dg.From, dg.Data)
			}
		case now := <-timer.C:
			d.HandleTimeout(now)
		}
	}
}

// natWords names the probe's findings in RFC 4787 terms, the vocabulary the
// lab test asserts on.
func natWords(b punch.NATBehavior) (mapping, filtering string) {
	return b.Mapping.String(), b.Filtering.String()
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

// loop is the peer's event loop around the hole-punch machine.
type loop struct {
	o          options
	run        int
	out        *printer
	sock       *punch.Socket
	haveRemote time.Time

	m        *punch.Machine
	path     netip.AddrPort // selected remote; valid once selected
	selected time.Time

	pingSeq   uint32
	pingSent  time.Time // first try of the outstanding ping
	pingFirst bool      // the outstanding ping is the first one
	pingTries int
	pingNext  time.Time // next try or next hold ping; zero: none planned
	holdEnd   time.Time
	done      bool
}

func (l *loop) punch(ctx context.Context, session string, local, remote []punch.Candidate, nat, remoteNAT punch.NATBehavior) error {
	cfg := punch.Config{
		Role:      punch.Controlled,
		Local:     local,
		Remote:    remote,
		Secret:    l.o.secret,
		SessionID: session,
		LocalNAT:  nat,
		RemoteNAT: remoteNAT,
	}
	if l.o.side == "a" {
		cfg.Role = punch.Controlling
	}
	if l.o.keepalive > 0 {
		cfg.KeepaliveInterval = l.o.keepalive
	}
	if l.o.noKeepalive {
		cfg.KeepaliveInterval = -1
	}
	if l.o.pathTimeout > 0 {
		cfg.PathTimeout = l.o.pathTimeout
	}
	if l.o.punchTimeout > 0 {
		cfg.PunchTimeout = l.o.punchTimeout
	}
	m, err := punch.NewMachine(cfg)
	if err != nil {
		return fmt.Errorf("start the hole-punch machine: %w", err)
	}
	l.m = m
	m.Start(time.Now())

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for !l.done {
		if err := l.flush(); err != nil {
			return err
		}
		if l.done {
			break
		}
		resetTimer(timer, l.deadline())
		select {
		case <-ctx.Done():
			return fmt.Errorf("punch: %w", ctx.Err())
		case dg, ok := <-l.sock.Datagrams():
			if !ok {
				return errors.New("punch: the socket closed")
			}
			l.handle(dg)
		case <-timer.C:
			now := time.Now()
			m.HandleTimeout(now)
			l.tick(now)
		}
	}
	return nil
}

// flush sends what the machine wants sent and reports its events.
func (l *loop) flush() error {
	for _, tx := range l.m.Transmits() {
		// A write error to one candidate (say, an unreachable network) must
		// not end the experiment: the machine tries the others.
		_ = l.sock.WriteTo(tx.Data, tx.To)
	}
	for _, ev := range l.m.Events() {
		now := time.Now()
		switch ev := ev.(type) {
		case punch.PathSelected:
			if !l.path.IsValid() {
				l.path = ev.Remote
				l.selected = now
				l.out.emit(l.run, event{Ev: "path", Local: ev.Local.String(), Remote: ev.Remote.String(), Ms: ms(now.Sub(l.haveRemote))})
				l.afterSelect(now)
			}
		case punch.Failed:
			reason := ev.Reason.String()
			if ev.Reason == punch.ReasonSymmetricNAT {
				reason = "symmetric-nat"
			}
			l.out.emit(l.run, event{Ev: "failed", Reason: reason, Detail: ev.Reason.Message() + ": " + ev.Detail, Ms: ms(now.Sub(l.haveRemote))})
			l.done = true
		case punch.PathLost:
			l.out.emit(l.run, event{Ev: "path_lost", Ms: ms(now.Sub(l.selected))})
		}
	}
	return nil
}

// afterSelect plans the pings: side a pings at once; both hold the path.
func (l *loop) afterSelect(now time.Time) {
	l.holdEnd = now.Add(l.o.hold)
	if l.o.side == "a" {
		l.pingFirst = true
		l.sendPing(now)
		return
	}
	// Side b only answers; it leaves on bye or when a has surely gone.
	l.holdEnd = l.holdEnd.Add(pingGiveUp + lingerAfter)
}

func (l *loop) deadline() time.Time {
	d := l.m.Deadline()
	for _, t := range []time.Time{l.pingNext, l.holdEnd} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

func (l *loop) sendPing(now time.Time) {
	if l.pingTries == 0 {
		l.pingSeq++
		l.pingSent = now
	}
	l.pingTries++
	l.writeLab(labPing, l.pingSeq)
	if l.pingFirst {
		l.pingNext = now.Add(pingRetry)
	} else {
		l.pingNext = now.Add(holdRetry)
	}
}

func (l *loop) writeLab(kind byte, seq uint32) {
	b := make([]byte, 0, labPktSize)
	b = append(b, labMagic...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint32(b, seq)
	_ = l.sock.WriteTo(b, l.path) // a lost ping is what the test measures
}

// tick runs the lab peer's own timers.
func (l *loop) tick(now time.Time) {
	if !l.path.IsValid() {
		return
	}
	if !l.pingNext.IsZero() && !now.Before(l.pingNext) {
		l.pingNext = time.Time{}
		switch {
		case l.pingTries == 0:
			l.sendPing(now) // a scheduled hold ping
		case l.pingFirst && now.Sub(l.pingSent) < pingGiveUp:
			l.sendPing(now)
		case l.pingFirst:
			l.out.emit(l.run, event{Ev: "ping_timeout"})
			l.pingFirst, l.pingTries = false, 0
			l.planHoldPing(now)
		case l.pingTries < holdTries:
			l.sendPing(now)
		default:
			l.out.emit(l.run, event{Ev: "hold_ping", Seq: int(l.pingSeq), Reason: "timeout"})
			l.pingTries = 0
			l.planHoldPing(now)
		}
	}
	if !l.holdEnd.IsZero() && !now.Before(l.holdEnd) && l.pingTries == 0 {
		l.finish()
	}
}

// planHoldPing schedules the next ping while holding: every -ping-every, and
// always one at the end of the hold so the test sees the final state.
func (l *loop) planHoldPing(now time.Time) {
	if l.o.hold <= 0 {
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
		l.pingNext = next
	}
}

func (l *loop) finish() {
	if l.o.side == "a" {
		for range byeCopies {
			l.writeLab(labBye, l.pingSeq)
		}
	}
	l.done = true
}

// handle routes one datagram: punch packets to the machine, the lab's own
// pings to the ping logic.
func (l *loop) handle(dg punch.Datagram) {
	now := time.Now()
	switch punch.Classify(dg.Data) {
	case punch.ClassPunch:
		l.m.HandleDatagram(dg.At, dg.From, dg.Data)
	case punch.ClassSession:
		kind, seq, ok := parseLab(dg.Data)
		if !ok || !l.path.IsValid() || dg.From != l.path {
			return
		}
		l.m.NoteReceived(dg.At)
		switch kind {
		case labPing:
			l.writeLab(labPong, seq)
		case labPong:
			if seq != l.pingSeq || l.pingTries == 0 {
				return // an answer to a try already given up on
			}
			rtt := now.Sub(l.pingSent)
			if l.pingFirst {
				l.out.emit(l.run, event{Ev: "ping_ok", Ms: ms(rtt)})
				l.pingFirst = false
			} else {
				l.out.emit(l.run, event{Ev: "hold_ping", Seq: int(seq), Ms: ms(rtt)})
			}
			l.pingTries = 0
			l.pingNext = time.Time{}
			l.planHoldPing(now)
			if !now.Before(l.holdEnd) {
				l.finish()
			}
		case labBye:
			if l.o.side == "b" {
				l.done = true
			}
		}
	}
}

func parseLab(b []byte) (kind byte, seq uint32, ok bool) {
	if len(b) != labPktSize || string(b[:len(labMagic)]) != labMagic {
		return 0, 0, false
	}
	return b[len(labMagic)], binary.BigEndian.Uint32(b[len(labMagic)+1:]), true
}
