package punch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Socket timings and sizes.
const (
	// socketQueue is how many received datagrams wait for the consumer
	// before the reader stops reading (the kernel's buffer then absorbs
	// bursts, and drops like any full UDP buffer would).
	socketQueue = 128
	// maxDatagram is the largest UDP payload over IPv4 (65535 - 8 - 20): no
	// datagram is ever truncated by our buffer.
	maxDatagram = 65507
	// readErrorPause keeps a reader that hits a persistent non-fatal error
	// (say, ENOBUFS) from spinning a core.
	readErrorPause = 10 * time.Millisecond
)

// Socket is a UDP socket for STUN, punching and the session: the main one
// carries all three, so the NAT mapping STUN discovers is the one the peer
// is told about; an owner may keep more (extra sockets for birthday
// probing, a separate IPv6 one). A reader goroutine owned by the Socket
// delivers every datagram on Datagrams (or on the channel its ListenConfig
// names); Close (or the context given at listening ending) stops it.
type Socket struct {
	conn    *net.UDPConn
	local   netip.AddrPort
	family  Family
	id      SocketID
	out     chan<- Datagram
	own     chan Datagram // out when the socket has its own channel; nil otherwise
	bufSize int

	done     chan struct{} // closed by shutdown: the reader must stop
	stopOnce sync.Once
	wg       sync.WaitGroup // the reader
	unwatch  func() bool    // stops the context watcher
	closeErr error
}

// Family is which address families a socket can send to.
type Family int

// The families.
const (
	// FamilyAny is a dual-stack socket: IPv4 and IPv6.
	FamilyAny Family = iota
	// FamilyIPv4 is an IPv4-only socket.
	FamilyIPv4
	// FamilyIPv6 is an IPv6-only socket.
	FamilyIPv6
)

// String names the family for logs.
func (f Family) String() string {
	switch f {
	case FamilyAny:
		return "dual-stack"
	case FamilyIPv4:
		return "IPv4"
	case FamilyIPv6:
		return "IPv6"
	}
	return fmt.Sprintf("family%d", int(f))
}

// Allows reports whether a socket of family f can send to a.
func (f Family) Allows(a netip.Addr) bool {
	a = a.Unmap()
	switch f {
	case FamilyAny:
		return a.IsValid()
	case FamilyIPv4:
		return a.Is4()
	case FamilyIPv6:
		return a.Is6()
	}
	return false
}

// PacketSocket is what an owner needs of any local socket, a UDP Socket or
// a TURN relay alike: datagrams out with a destination (in with a source
// arrive on the channel the socket was given), its address, and Close.
type PacketSocket interface {
	WriteTo(b []byte, to netip.AddrPort) error
	LocalAddr() netip.AddrPort
	Close() error
}

// ListenConfig says how to open a socket that is one of several an owner
// keeps. The zero value opens a main socket with its own channel.
type ListenConfig struct {
	// ID is stamped on every Datagram the socket delivers.
	ID SocketID
	// Deliver, when set, receives the socket's datagrams instead of a
	// channel of its own, so that one reader serves several sockets; the
	// socket never closes it, and Datagrams returns nil.
	Deliver chan<- Datagram
	// BufferSize is the largest datagram read whole; 0 means any UDP
	// datagram (65,507 bytes). Extra sockets that only ever carry punch
	// and session packets (at most 1,200 bytes of payload) take a small
	// one: 256 birthday sockets at 64 KiB each would hold 16 MiB.
	BufferSize int
}

// ListenUDP opens a UDP socket on addr and starts its reader: "0.0.0.0:0"
// (or "host:port" with an IPv4 address, or ":0") gives an IPv4 socket,
// "[::]:0" one dual-stack socket for IPv4 and IPv6 where the system allows
// it (IPv4 only where it has no IPv6), a specific IPv6 address an IPv6
// socket. When ctx ends the socket closes as if Close had been called, but
// the caller must still call Close to wait for the reader.
func ListenUDP(ctx context.Context, addr string) (*Socket, error) {
	return ListenConfig{}.Listen(ctx, addr)
}

// Listen is ListenUDP with lc's ID, delivery channel and buffer size.
func (lc ListenConfig) Listen(ctx context.Context, addr string) (*Socket, error) {
	if lc.BufferSize < 0 || lc.BufferSize > maxDatagram {
		return nil, fmt.Errorf("listen on %s: buffer size %d out of range", addr, lc.BufferSize)
	}
	network := "udp4"
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() && !ap.Addr().Is4In6() {
		network = "udp6"
		if ap.Addr().IsUnspecified() {
			network = "udp" // Go clears IPV6_V6ONLY for a wildcard "udp" socket
		}
	}
	var nlc net.ListenConfig
	pc, err := nlc.ListenPacket(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", network, addr, err)
	}
	conn := pc.(*net.UDPConn)
	local, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("local address of the UDP socket: %w", err)
	}
	s := &Socket{
		conn:    conn,
		local:   netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		id:      lc.ID,
		out:     lc.Deliver,
		bufSize: lc.BufferSize,
		done:    make(chan struct{}),
	}
	switch {
	case s.local.Addr().Is4():
		s.family = FamilyIPv4
	case network == "udp" && s.local.Addr().IsUnspecified():
		s.family = FamilyAny
	default:
		s.family = FamilyIPv6
	}
	if s.bufSize == 0 {
		s.bufSize = maxDatagram
	}
	if s.out == nil {
		s.own = make(chan Datagram, socketQueue)
		s.out = s.own
	}
	s.unwatch = context.AfterFunc(ctx, s.shutdown)
	s.wg.Add(1)
	go s.read()
	return s, nil
}

// read is the reader goroutine: it copies each datagram out of its buffer
// and hands it on until the socket closes.
func (s *Socket) read() {
	defer s.wg.Done()
	if s.own != nil {
		defer close(s.own)
	}
	buf := make([]byte, s.bufSize)
	for {
		n, from, err := s.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Anything else (an ICMP error reported on the socket, a
			// transient buffer shortage) concerns one datagram, not the
			// socket: keep reading, a little later.
			select {
			case <-s.done:
				return
			case <-time.After(readErrorPause):
			}
			continue
		}
		d := Datagram{
			From:   netip.AddrPortFrom(from.Addr().Unmap(), from.Port()),
			Data:   append([]byte(nil), buf[:n]...),
			At:     time.Now(),
			Socket: s.id,
		}
		select {
		case s.out <- d:
		case <-s.done:
			return
		}
	}
}

// shutdown closes the socket once, which ends the reader's blocking read.
func (s *Socket) shutdown() {
	s.stopOnce.Do(func() {
		close(s.done)
		s.closeErr = s.conn.Close()
	})
}

// Datagrams delivers what the socket receives, in order. It is closed once
// the socket is closed and the reader has stopped. It is nil for a socket
// whose ListenConfig named a channel to deliver to.
func (s *Socket) Datagrams() <-chan Datagram {
	if s.own == nil {
		return nil
	}
	return s.own
}

// ID is the SocketID stamped on the socket's datagrams.
func (s *Socket) ID() SocketID { return s.id }

// Family is which address families the socket can send to.
func (s *Socket) Family() Family { return s.family }

// WriteTo sends one datagram. It does not block on the consumer of
// Datagrams.
func (s *Socket) WriteTo(b []byte, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("send %d bytes to %v: %w", len(b), to, err)
	}
	return nil
}

// LocalAddr is the address the socket is bound to (0.0.0.0:port or
// [::]:port when it listens on every interface).
func (s *Socket) LocalAddr() netip.AddrPort { return s.local }

// Close closes the socket and waits for the reader to stop. It is safe to
// call more than once; later calls return the first call's error.
func (s *Socket) Close() error {
	s.unwatch()
	s.shutdown()
	s.wg.Wait()
	return s.closeErr
}

// HostCandidates lists the socket's port on every address of every
// interface that is up and that the socket's family can use: global IPv6
// addresses first (RFC 8421 prefers IPv6 pairs), then IPv4, then IPv6
// unique-local ones. Link-local addresses (IPv4 169.254/16, IPv6 fe80::/10)
// are left out: they need an interface zone that means nothing on the
// other host, and two hosts on one link share a routable address family
// anyway. Loopback is listed only when nothing else is (two peers on one
// machine can still meet there). A socket bound to one address gives just
// that address.
func (s *Socket) HostCandidates() []Candidate {
	port := s.local.Port()
	if !s.local.Addr().IsUnspecified() {
		return []Candidate{{Type: CandidateHost, Addr: s.local, Priority: hostCandidatePriority(0)}}
	}
	var addrs []netip.Addr
	for _, a := range hostAddrs() {
		if s.family.Allows(a) {
			addrs = append(addrs, a)
		}
	}
	out := make([]Candidate, 0, len(addrs))
	for i, a := range addrs {
		out = append(out, Candidate{Type: CandidateHost, Addr: netip.AddrPortFrom(a, port), Priority: hostCandidatePriority(i)})
	}
	return out
}

// hostAddrs is the host's usable addresses in HostCandidates's order, or
// its loopback ones when it has nothing else.
func hostAddrs() []netip.Addr {
	v6, v4, ula, loop := interfaceAddrs()
	all := append(append(v6, v4...), ula...)
	if len(all) == 0 {
		return loop
	}
	return all
}

// interfaceAddrs lists the addresses of the interfaces that are up, in the
// system's interface order, sorted into global IPv6, IPv4, unique-local
// IPv6 and loopback; link-local, multicast and unspecified ones are left
// out.
func interfaceAddrs() (v6, v4, ula, loopback []netip.Addr) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil, nil, nil
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			switch {
			case ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast():
			case ip.IsLoopback() || ifc.Flags&net.FlagLoopback != 0:
				loopback = append(loopback, ip)
			case ip.Is4():
				v4 = append(v4, ip)
			case ip.IsPrivate(): // fc00::/7
				ula = append(ula, ip)
			case ip.IsGlobalUnicast():
				v6 = append(v6, ip)
			}
		}
	}
	return v6, v4, ula, loopback
}

// Candidate priorities follow RFC 8445 section 5.1.2.1:
// 2^24*type preference + 2^8*local preference + (256 - component), with
// the recommended type preferences (host 126, server reflexive 100) and one
// component.
const (
	hostTypePreference  = 126
	srflxTypePreference = 100
	relayTypePreference = 0
)

// hostCandidatePriority is the priority of the i-th host candidate: earlier
// interfaces rank higher.
func hostCandidatePriority(i int) uint32 {
	local := 65535 - min(i, 65535)
	return hostTypePreference<<24 | uint32(local)<<8 | 255
}

// srflxCandidatePriority is the priority of the server-reflexive candidate.
func srflxCandidatePriority() uint32 {
	return srflxTypePreference<<24 | 65535<<8 | 255
}

// RelayedCandidatePriority is the priority of a TURN relayed candidate:
// RFC 8445's recommended type preference for relayed is 0, below every
// direct candidate.
func RelayedCandidatePriority() uint32 {
	return relayTypePreference<<24 | 65535<<8 | 255
}

// ResolveSTUNServers turns host:port names (DefaultSTUNServers, or the
// user's) into IPv4 addresses for a Discovery, one per name. Names that do
// not resolve are skipped; the error is set only when none did.
func ResolveSTUNServers(ctx context.Context, names []string) ([]netip.AddrPort, error) {
	return resolveSTUN(ctx, names, "ip4")
}

// ResolveSTUNServers6 is ResolveSTUNServers for IPv6 addresses, for the
// discovery of a socket that can send IPv6 (a server without one is
// skipped).
func ResolveSTUNServers6(ctx context.Context, names []string) ([]netip.AddrPort, error) {
	return resolveSTUN(ctx, names, "ip6")
}

func resolveSTUN(ctx context.Context, names []string, network string) ([]netip.AddrPort, error) {
	fam := map[string]string{"ip4": "IPv4", "ip6": "IPv6"}[network]
	var out []netip.AddrPort
	var errs []error
	for _, name := range names {
		host, portStr, err := net.SplitHostPort(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("STUN server %q: %w", name, err))
			continue
		}
		port, err := net.DefaultResolver.LookupPort(ctx, "udp", portStr)
		if err != nil {
			errs = append(errs, fmt.Errorf("STUN server %q: %w", name, err))
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
		if err == nil && len(ips) == 0 {
			err = fmt.Errorf("no %s address", fam)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve STUN server %q: %w", name, err))
			continue
		}
		out = append(out, netip.AddrPortFrom(ips[0].Unmap(), uint16(port)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no STUN server resolved to an %s address: %w", fam, errors.Join(errs...))
	}
	return out, nil
}
