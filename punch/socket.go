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

// Socket is the one UDP socket a peer uses for STUN, punching and the
// session, so the NAT mapping STUN discovers is the one the peer is told
// about. A reader goroutine owned by the Socket delivers every datagram on
// Datagrams; Close (or the context given to ListenUDP ending) stops it.
type Socket struct {
	conn  *net.UDPConn
	local netip.AddrPort
	out   chan Datagram

	done     chan struct{} // closed by shutdown: the reader must stop
	stopOnce sync.Once
	wg       sync.WaitGroup // the reader
	unwatch  func() bool    // stops the context watcher
	closeErr error
}

// ListenUDP opens an IPv4 UDP socket on addr ("0.0.0.0:0" for any port on
// every interface) and starts its reader. When ctx ends the socket closes as
// if Close had been called, but the caller must still call Close to wait for
// the reader.
func ListenUDP(ctx context.Context, addr string) (*Socket, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on udp4 %s: %w", addr, err)
	}
	conn := pc.(*net.UDPConn)
	local, err := netip.ParseAddrPort(conn.LocalAddr().String())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("local address of the UDP socket: %w", err)
	}
	s := &Socket{
		conn:  conn,
		local: netip.AddrPortFrom(local.Addr().Unmap(), local.Port()),
		out:   make(chan Datagram, socketQueue),
		done:  make(chan struct{}),
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
	defer close(s.out)
	buf := make([]byte, maxDatagram)
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
			From: netip.AddrPortFrom(from.Addr().Unmap(), from.Port()),
			Data: append([]byte(nil), buf[:n]...),
			At:   time.Now(),
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
// the socket is closed and the reader has stopped.
func (s *Socket) Datagrams() <-chan Datagram { return s.out }

// WriteTo sends one datagram. It does not block on the consumer of
// Datagrams.
func (s *Socket) WriteTo(b []byte, to netip.AddrPort) error {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("send %d bytes to %v: %w", len(b), to, err)
	}
	return nil
}

// LocalAddr is the address the socket is bound to (0.0.0.0:port when it
// listens on every interface).
func (s *Socket) LocalAddr() netip.AddrPort { return s.local }

// Close closes the socket and waits for the reader to stop. It is safe to
// call more than once; later calls return the first call's error.
func (s *Socket) Close() error {
	s.unwatch()
	s.shutdown()
	s.wg.Wait()
	return s.closeErr
}

// HostCandidates lists the socket's port on every IPv4 address of every
// interface that is up, except loopback and link-local addresses, which a
// peer on another host cannot use. Loopback is listed only when nothing else
// is (two peers on one machine can still meet there). A socket bound to one
// address gives just that address.
func (s *Socket) HostCandidates() []Candidate {
	port := s.local.Port()
	if !s.local.Addr().IsUnspecified() {
		return []Candidate{{Type: CandidateHost, Addr: s.local, Priority: hostCandidatePriority(0)}}
	}
	addrs, loop := interfaceAddrs()
	if len(addrs) == 0 {
		addrs = loop
	}
	out := make([]Candidate, 0, len(addrs))
	for i, a := range addrs {
		out = append(out, Candidate{Type: CandidateHost, Addr: netip.AddrPortFrom(a, port), Priority: hostCandidatePriority(i)})
	}
	return out
}

// interfaceAddrs lists the usable IPv4 addresses of the interfaces that are
// up, in the system's interface order, with loopback ones apart.
func interfaceAddrs() (usable, loopback []netip.Addr) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, nil
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
			case !ip.Is4() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsMulticast():
			case ip.IsLoopback() || ifc.Flags&net.FlagLoopback != 0:
				loopback = append(loopback, ip)
			default:
				usable = append(usable, ip)
			}
		}
	}
	return usable, loopback
}

// Candidate priorities follow RFC 8445 section 5.1.2.1:
// 2^24*type preference + 2^8*local preference + (256 - component), with
// the recommended type preferences (host 126, server reflexive 100) and one
// component.
const (
	hostTypePreference  = 126
	srflxTypePreference = 100
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

// ResolveSTUNServers turns host:port names (DefaultSTUNServers, or the
// user's) into IPv4 addresses for a Discovery, one per name. Names that do
// not resolve are skipped; the error is set only when none did.
func ResolveSTUNServers(ctx context.Context, names []string) ([]netip.AddrPort, error) {
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
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host)
		if err == nil && len(ips) == 0 {
			err = errors.New("no IPv4 address")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve STUN server %q: %w", name, err))
			continue
		}
		out = append(out, netip.AddrPortFrom(ips[0].Unmap(), uint16(port)))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no STUN server resolved: %w", errors.Join(errs...))
	}
	return out, nil
}
