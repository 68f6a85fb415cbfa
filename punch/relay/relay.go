// Package relay is p2ptui's TURN client (RFC 8656, with pion/turn/v4 doing
// the protocol): it allocates a relayed address on a configured server,
// which becomes one more candidate the peer can punch to, and then behaves
// as one more local socket of the punch layer (punch.PacketSocket):
// datagrams in with their source, writes out with a destination, each
// stamped with the SocketID its owner gave it. Permissions (and the
// channel bindings pion adds for speed) exist only for the peer addresses
// the owner permits: the peer's candidates. The allocation, permissions
// and bindings are refreshed while the relay lives and released on Close.
//
// The relay sees only what the punch and session layers send through it:
// punch packets (MAC'd, no secrets) and Noise ciphertext.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/logging"
	"github.com/pion/stun/v3"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/turn/v4"

	"github.com/p2ptui/p2ptui/punch"
)

// Errors an Allocate or Permit error wraps, for callers that branch on the
// cause; the error text itself names the server and says what happened.
var (
	// ErrResolve: the server's name did not resolve.
	ErrResolve = errors.New("TURN server name did not resolve")
	// ErrNoAnswer: the server never answered.
	ErrNoAnswer = errors.New("TURN server did not answer")
	// ErrGarbage: something answered, but not in TURN.
	ErrGarbage = errors.New("TURN server answered with something that is not TURN")
	// ErrUnauthorized: the server refused the credentials.
	ErrUnauthorized = errors.New("TURN server refused the credentials")
	// ErrRefused: the server refused the request for another reason
	// (forbidden, quota, capacity, ...).
	ErrRefused = errors.New("TURN server refused the request")
	// ErrNotPermitted: a write to an address Permit was not given.
	ErrNotPermitted = errors.New("no TURN permission for that address")
	// ErrClosed: the relay is closed.
	ErrClosed = errors.New("TURN relay closed")
)

// Relay timings and sizes.
const (
	// relayQueue is the room of a relay's own datagram channel.
	relayQueue = 128
	// readBuffer is the largest relayed datagram read whole: pion hands
	// over at most a STUN message's worth.
	readBuffer = 65535
	// readErrorPause keeps a reader that hits a persistent non-fatal
	// error from spinning.
	readErrorPause = 10 * time.Millisecond
)

// Config is what Allocate needs.
type Config struct {
	Server      Server
	Credentials Credentials
	// Socket is stamped on every datagram the relay delivers: the ID its
	// owner gave it among its sockets.
	Socket punch.SocketID
	// Deliver, when set, receives the relay's datagrams (a channel shared
	// with the owner's other sockets, punch.SocketSet.Deliver); the relay
	// never closes it. Nil: a channel of its own (Datagrams).
	Deliver chan<- punch.Datagram
	// Logger gets pion's log lines (nil: discarded; pion must never
	// write to the terminal the TUI owns).
	Logger *slog.Logger
	// Now is the clock for time-limited credentials (nil: time.Now).
	Now func() time.Time
	// RTO is the first retransmission timeout of requests (pion doubles
	// it up to 1.6 s, seven requests in all); zero: pion's 200 ms.
	RTO time.Duration
}

// Stats counts what the relay sent to and received from its server.
type Stats struct {
	// Requests sent, retransmissions included, by method.
	Allocate, CreatePermission, ChannelBind, Refresh int
	// Responses received: successes and errors.
	Successes, Errors int
	// Garbage counts datagrams from the server that were not TURN, and
	// Foreign datagrams from anyone else (dropped).
	Garbage, Foreign int
	// DataOut and DataIn count relayed datagrams.
	DataOut, DataIn int
}

// Requests is every request sent to the server.
func (s Stats) Requests() int {
	return s.Allocate + s.CreatePermission + s.ChannelBind + s.Refresh
}

// Relay is one allocation on a TURN server, usable as a punch socket. Its
// methods are safe for concurrent use.
type Relay struct {
	cfg     Config
	server  netip.AddrPort
	conn    net.PacketConn // to the server
	client  *turn.Client
	relayed net.PacketConn // pion's allocation
	addr    netip.AddrPort // the relayed address
	out     chan<- punch.Datagram
	own     chan punch.Datagram

	mu        sync.Mutex
	stats     Stats
	lastError stun.ErrorCodeAttribute // the server's last error response
	permitted map[netip.Addr]bool
	closed    bool

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // readers and permission requests
}

// Allocate resolves the server, opens a UDP socket towards it and
// allocates a relayed address with the credentials. It blocks until the
// allocation succeeds or fails, or ctx ends. A failure says in plain words
// which server, which credential (never the password) and what happened,
// and wraps ErrResolve, ErrNoAnswer, ErrGarbage, ErrUnauthorized or
// ErrRefused.
func Allocate(ctx context.Context, cfg Config) (*Relay, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	server, err := resolve(ctx, cfg.Server)
	if err != nil {
		return nil, err
	}
	network := "udp4"
	if server.Addr().Is6() {
		network = "udp6"
	}
	var lc net.ListenConfig
	conn, err := lc.ListenPacket(ctx, network, ":0")
	if err != nil {
		return nil, fmt.Errorf("TURN server %s: open a socket: %w", cfg.Server, err)
	}
	r := &Relay{cfg: cfg, server: server, conn: conn, out: cfg.Deliver, done: make(chan struct{}),
		permitted: make(map[netip.Addr]bool)}
	if r.out == nil {
		r.own = make(chan punch.Datagram, relayQueue)
		r.out = r.own
	}
	n, err := stdnet.NewNet()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("TURN server %s: %w", cfg.Server, err)
	}
	user, password := cfg.Credentials.forAllocation(cfg.Now())
	r.client, err = turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: server.String(),
		Username:       user,
		Password:       password,
		Software:       "p2ptui",
		RTO:            cfg.RTO,
		Conn:           countingConn{PacketConn: conn, r: r},
		Net:            anyFamilyNet{n},
		LoggerFactory:  slogFactory{cfg.Logger},
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("TURN server %s: %w", cfg.Server, err)
	}
	r.wg.Add(1)
	go r.readServer()

	type result struct {
		pc  net.PacketConn
		err error
	}
	res := make(chan result, 1)
	go func() {
		pc, err := r.client.Allocate()
		res <- result{pc, err}
	}()
	var out result
	begin := time.Now()
	select {
	case out = <-res:
	case <-ctx.Done():
		r.client.Close() // ends the transaction Allocate waits on
		out = <-res
		if out.err == nil {
			out.pc.Close()
		}
		out.err = ctx.Err()
	}
	if out.err != nil {
		err := r.allocateError(out.err, time.Since(begin))
		r.shutdown()
		return nil, err
	}
	r.relayed = out.pc
	ua, _ := out.pc.LocalAddr().(*net.UDPAddr)
	if ua == nil || ua.AddrPort().Port() == 0 {
		r.Close()
		return nil, errorf(ErrGarbage, "%s allocated no usable relayed address (%v)", r.where(), out.pc.LocalAddr())
	}
	r.addr = netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port())
	r.wg.Add(1)
	go r.readRelayed()
	return r, nil
}

// resolve finds the server's address: an IP literal as is, a name by DNS
// (IPv4 preferred: most relays and most paths are IPv4).
func resolve(ctx context.Context, s Server) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s.Host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), s.Port), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", s.Host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		return netip.AddrPort{}, errorf(ErrResolve, "TURN server %s: the name did not resolve: %v", s, err)
	}
	best := ips[0].Unmap()
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			best = ip.Unmap()
			break
		}
	}
	return netip.AddrPortFrom(best, s.Port), nil
}

// relayError is an error in plain words that wraps one of the sentinel
// errors without repeating its text.
type relayError struct {
	kind error
	msg  string
}

func (e *relayError) Error() string { return e.msg }
func (e *relayError) Unwrap() error { return e.kind }

func errorf(kind error, format string, args ...any) error {
	return &relayError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// where names the server for the user: its URI, and the address a name
// resolved to.
func (r *Relay) where() string {
	if _, err := netip.ParseAddr(r.cfg.Server.Host); err == nil {
		return "TURN server " + r.cfg.Server.String()
	}
	return fmt.Sprintf("TURN server %s (%s)", r.cfg.Server, r.server)
}

// allocateError turns pion's error into one that says what happened.
func (r *Relay) allocateError(err error, took time.Duration) error {
	st := r.Stats()
	r.mu.Lock()
	last := r.lastError
	r.mu.Unlock()
	who := r.cfg.Credentials.describe(r.cfg.Now())
	var te *stun.TurnError
	code := last.Code
	reason := string(last.Reason)
	if errors.As(err, &te) {
		code, reason = te.ErrorCodeAttr.Code, string(te.ErrorCodeAttr.Reason)
	}
	took = took.Round(100 * time.Millisecond)
	switch {
	case code == stun.CodeUnauthorized:
		return errorf(ErrUnauthorized, "%s refused %s (401 %s): check the user name and the password or shared secret",
			r.where(), who, reason)
	case code != 0:
		return errorf(ErrRefused, "%s refused an allocation for %s (%d %s)", r.where(), who, code, reason)
	case st.Garbage > 0 && st.Successes == 0:
		return errorf(ErrGarbage, "%s answered %d request(s) with %d datagram(s) that are not TURN: is that a TURN server's address and port?",
			r.where(), st.Requests(), st.Garbage)
	case st.Successes+st.Errors == 0:
		return errorf(ErrNoAnswer, "%s did not answer (%d request(s) over %v): it is down, or UDP to it is blocked",
			r.where(), st.Requests(), took)
	}
	return fmt.Errorf("%s: the allocation for %s failed: %w", r.where(), who, err)
}

// readServer is the reader of the socket to the server: every datagram
// from the server goes to pion; anything else, and anything pion cannot
// use, is counted and dropped (pion's own reader would stop at the first
// malformed datagram).
func (r *Relay) readServer() {
	defer r.wg.Done()
	buf := make([]byte, readBuffer)
	for {
		n, from, err := r.conn.ReadFrom(buf)
		if err != nil {
			// Anything but a closed socket concerns one datagram (an
			// ICMP error, a buffer shortage): read on, a little later.
			if errors.Is(err, net.ErrClosed) || !r.pause() {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()) != r.server {
			r.count(func(s *Stats) { s.Foreign++ })
			continue
		}
		data := buf[:n]
		if stun.IsMessage(data) {
			r.noteResponse(data)
		}
		if handled, err := r.client.HandleInbound(data, from); !handled || err != nil {
			r.count(func(s *Stats) { s.Garbage++ })
		}
	}
}

// noteResponse counts a response from the server and keeps the last
// error response's code for allocateError.
func (r *Relay) noteResponse(b []byte) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if m.Decode() != nil {
		return
	}
	switch m.Type.Class {
	case stun.ClassSuccessResponse:
		r.count(func(s *Stats) { s.Successes++ })
	case stun.ClassErrorResponse:
		var code stun.ErrorCodeAttribute
		_ = code.GetFrom(m)
		r.mu.Lock()
		r.stats.Errors++
		r.lastError = code
		r.mu.Unlock()
	}
}

// readRelayed delivers what peers send through the relay.
func (r *Relay) readRelayed() {
	defer r.wg.Done()
	buf := make([]byte, readBuffer)
	for {
		n, from, err := r.relayed.ReadFrom(buf)
		if err != nil {
			// pion's relayed conn fails only once closed (by stop, after
			// done) or on a datagram too big for buf, which readBuffer
			// rules out: wait for done rather than spin.
			if !r.pause() {
				return
			}
			continue
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok {
			continue
		}
		r.count(func(s *Stats) { s.DataIn++ })
		d := punch.Datagram{
			From:   netip.AddrPortFrom(ua.AddrPort().Addr().Unmap(), ua.AddrPort().Port()),
			Data:   append([]byte(nil), buf[:n]...),
			At:     time.Now(),
			Socket: r.cfg.Socket,
		}
		select {
		case r.out <- d:
		case <-r.done:
			return
		}
	}
}

// pause waits a little before a reader tries again; false once the relay
// is stopping.
func (r *Relay) pause() bool {
	select {
	case <-r.done:
		return false
	case <-time.After(readErrorPause):
		return true
	}
}

func (r *Relay) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// Addr is the relayed address: what the peer sends to.
func (r *Relay) Addr() netip.AddrPort { return r.addr }

// LocalAddr is the relayed address (punch.PacketSocket).
func (r *Relay) LocalAddr() netip.AddrPort { return r.addr }

// Server is the TURN server the relay is allocated on, as configured, and
// ServerAddr its address.
func (r *Relay) Server() Server { return r.cfg.Server }

// ServerAddr is the address the server's name resolved to.
func (r *Relay) ServerAddr() netip.AddrPort { return r.server }

// Candidate is the relayed address as a candidate for the peer.
func (r *Relay) Candidate() punch.Candidate {
	return punch.Candidate{Type: punch.CandidateRelayed, Addr: r.addr, Priority: punch.RelayedCandidatePriority()}
}

// LocalSocket describes the relay to a punch machine.
func (r *Relay) LocalSocket() punch.LocalSocket {
	fam := punch.FamilyIPv4
	if r.addr.Addr().Is6() {
		fam = punch.FamilyIPv6
	}
	return punch.LocalSocket{ID: r.cfg.Socket, Family: fam, Relayed: r.addr}
}

// Datagrams delivers what peers send through the relay; nil when Config
// named a channel to deliver to. It is never closed: a closed relay just
// stops sending.
func (r *Relay) Datagrams() <-chan punch.Datagram {
	if r.own == nil {
		return nil
	}
	return r.own
}

// Stats returns the counters so far.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Permit lets the relay exchange datagrams with the peers' addresses and
// installs the permissions on the server now (TURN permissions are per
// IP address, RFC 8656 section 9), so that neither side's first packets
// wait for them; addresses of the other family than the relayed address
// are skipped. It blocks until the server has answered for every new
// address, or ctx ends. pion creates a permission only when a datagram is
// written, and refreshes only those, so each new address gets one empty
// datagram, which any p2ptui peer ignores. Only permitted addresses can be
// written to afterwards: the relay never opens a permission for anyone
// but the peer.
func (r *Relay) Permit(ctx context.Context, peers []netip.AddrPort) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	var fresh []netip.AddrPort
	for _, p := range peers {
		a := p.Addr().Unmap()
		if !a.IsValid() || a.Is4() != r.addr.Addr().Is4() || r.permitted[a] || p.Port() == 0 {
			continue
		}
		r.permitted[a] = true
		fresh = append(fresh, netip.AddrPortFrom(a, p.Port()))
	}
	r.mu.Unlock()
	errs := make(chan error, len(fresh))
	for _, p := range fresh {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if _, err := r.relayed.WriteTo(nil, net.UDPAddrFromAddrPort(p)); err != nil {
				r.mu.Lock()
				delete(r.permitted, p.Addr())
				r.mu.Unlock()
				errs <- r.permitError(p.Addr(), err)
				return
			}
			errs <- nil
		}()
	}
	var all []error
	for range fresh {
		select {
		case err := <-errs:
			if err != nil {
				all = append(all, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("%s: permissions: %w", r.where(), ctx.Err())
		case <-r.done:
			return ErrClosed
		}
	}
	return errors.Join(all...)
}

func (r *Relay) permitError(a netip.Addr, err error) error {
	var te *stun.TurnError
	if errors.As(err, &te) {
		return errorf(ErrRefused, "%s refused a permission for %v (%d %s)", r.where(), a,
			te.ErrorCodeAttr.Code, te.ErrorCodeAttr.Reason)
	}
	return errorf(ErrNoAnswer, "%s did not answer a permission request for %v (%v)", r.where(), a, err)
}

// WriteTo sends one datagram through the relay to a permitted address.
func (r *Relay) WriteTo(b []byte, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	r.mu.Lock()
	closed, ok := r.closed, r.permitted[to.Addr()]
	r.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case !ok:
		return fmt.Errorf("relay to %v: %w", to, ErrNotPermitted)
	}
	if _, err := r.relayed.WriteTo(b, net.UDPAddrFromAddrPort(to)); err != nil {
		return fmt.Errorf("relay %d bytes to %v via %s: %w", len(b), to, r.where(), err)
	}
	r.count(func(s *Stats) { s.DataOut++ })
	return nil
}

// Close releases the allocation (a Refresh with lifetime 0, not waited
// for) and stops everything the relay runs. Safe to call more than once.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() { err = r.stop(true) })
	return err
}

// shutdown stops a relay whose allocation failed.
func (r *Relay) shutdown() {
	r.closeOnce.Do(func() { r.stop(false) })
}

// stop ends the readers, the permission requests and pion's transactions,
// releasing the allocation first if asked, and waits for them.
func (r *Relay) stop(release bool) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	close(r.done)
	var err error
	if release && r.relayed != nil {
		err = r.relayed.Close() // sends the release while the socket is open
	}
	r.client.Close()
	r.conn.Close()
	r.wg.Wait()
	return err
}

// countingConn counts what pion sends to the server, by kind.
type countingConn struct {
	net.PacketConn
	r *Relay
}

func (c countingConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if len(b) >= 2 && stun.IsMessage(b) {
		t := stun.MessageType{}
		t.ReadValue(uint16(b[0])<<8 | uint16(b[1]))
		if t.Class == stun.ClassRequest {
			c.r.count(func(s *Stats) {
				switch t.Method {
				case stun.MethodAllocate:
					s.Allocate++
				case stun.MethodCreatePermission:
					s.CreatePermission++
				case stun.MethodChannelBind:
					s.ChannelBind++
				case stun.MethodRefresh:
					s.Refresh++
				}
			})
		}
	}
	return c.PacketConn.WriteTo(b, to)
}

// anyFamilyNet resolves the server address for either family: pion's
// client asks for "udp4" only, and an IPv6 literal would not resolve.
type anyFamilyNet struct{ *stdnet.Net }

func (n anyFamilyNet) ResolveUDPAddr(_, address string) (*net.UDPAddr, error) {
	return net.ResolveUDPAddr("udp", address)
}

// slogFactory hands pion's log lines to a slog logger (or drops them).
type slogFactory struct{ l *slog.Logger }

func (f slogFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLogger{l: f.l, scope: scope}
}

type slogLogger struct {
	l     *slog.Logger
	scope string
}

func (s slogLogger) log(level slog.Level, msg string) {
	if s.l != nil {
		s.l.Log(context.Background(), level, msg, "pion", s.scope)
	}
}

func (s slogLogger) Trace(msg string)      {}
func (s slogLogger) Tracef(string, ...any) {}
func (s slogLogger) Debug(msg string)      { s.log(slog.LevelDebug, msg) }
func (s slogLogger) Debugf(format string, args ...any) {
	s.log(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (s slogLogger) Info(msg string) { s.log(slog.LevelInfo, msg) }
func (s slogLogger) Infof(format string, args ...any) {
	s.log(slog.LevelInfo, fmt.Sprintf(format, args...))
}
func (s slogLogger) Warn(msg string) { s.log(slog.LevelWarn, msg) }
func (s slogLogger) Warnf(format string, args ...any) {
	s.log(slog.LevelWarn, fmt.Sprintf(format, args...))
}
func (s slogLogger) Error(msg string) { s.log(slog.LevelError, msg) }
func (s slogLogger) Errorf(format string, args ...any) {
	s.log(slog.LevelError, fmt.Sprintf(format, args...))
}
