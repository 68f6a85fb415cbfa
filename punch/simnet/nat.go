// Package simnet models NATs for the seeded simulations of p2ptui's
// protocol machines (the hole-punch machine in punch, the connection engine
// in session/conn): one simulated internet, so both are tested against the
// same behaviours. It is deterministic for a given random source and reads
// no clock.
//
// What is modelled (RFC 4787 terms):
//   - Open: no NAT, no firewall; the host's address is public.
//   - FullCone: endpoint-independent mapping and filtering.
//   - AddrRestricted: endpoint-independent mapping, address-dependent
//     filtering (inbound from any port of an IP the inside host sent to).
//   - PortRestricted: endpoint-independent mapping, address-and-port-
//     dependent filtering (Linux MASQUERADE).
//   - Symmetric: address-and-port-dependent mapping (a new random port per
//     destination) and filtering (MASQUERADE --random-fully).
//   - Sequential: symmetric, with ports handed out in sequence (with gaps
//     where other users' mappings take one), as some carrier NATs do.
//
// Every NAT has one public IP ("paired" pooling, RFC 4787 REQ-2), mappings
// are refreshed by outbound packets only (REQ-6's MUST; inbound refresh is
// a MAY) and expire after an idle timeout.
package simnet

import (
	"math/rand/v2"
	"net/netip"
	"time"
)

// Kind is a NAT's behaviour.
type Kind int

// The kinds.
const (
	Open Kind = iota
	FullCone
	AddrRestricted
	PortRestricted
	Symmetric
	Sequential
	// Kinds is how many there are.
	Kinds = 6
)

// String names the kind.
func (k Kind) String() string {
	return [...]string{"open", "full-cone", "address-restricted", "port-restricted", "symmetric", "sequential"}[k]
}

// Symmetric reports whether the kind maps per destination.
func (k Kind) Symmetric() bool { return k == Symmetric || k == Sequential }

// ExpectConnect is whether two hosts behind NATs of these kinds can reach
// each other directly by simultaneous probing, as the model predicts: with
// one public IP per NAT, a symmetric NAT connects only to a peer whose NAT
// admits its fresh port (open, full cone, or address-restricted, which
// admits any port of an IP it has sent to).
func ExpectConnect(a, b Kind) bool {
	if a.Symmetric() && b.Symmetric() {
		return false
	}
	if a.Symmetric() {
		a, b = b, a
	}
	if b.Symmetric() {
		return a != PortRestricted
	}
	return true
}

// mapKey names a mapping: the inside address, and the destination for a
// symmetric NAT (zero otherwise).
type mapKey struct {
	in, dst netip.AddrPort
}

// Mapping is one NAT mapping: In is the inside address, Ext the public port.
type Mapping struct {
	In         netip.AddrPort
	Ext        uint16
	sentTo     map[netip.AddrPort]bool
	sentToIP   map[netip.Addr]bool
	lastActive time.Time
}

// NAT is one simulated NAT: a public IP in front of a LAN.
type NAT struct {
	Kind    Kind
	Public  netip.Addr
	LAN     netip.Prefix
	Timeout time.Duration // idle time after which a mapping is forgotten
	byKey   map[mapKey]*Mapping
	byPort  map[uint16]*Mapping
	next    int // a sequential NAT's next port
}

// NewNAT returns an empty NAT.
func NewNAT(kind Kind, public netip.Addr, lan netip.Prefix, timeout time.Duration) *NAT {
	return &NAT{Kind: kind, Public: public, LAN: lan, Timeout: timeout, byKey: map[mapKey]*Mapping{}, byPort: map[uint16]*Mapping{}}
}

func (n *NAT) expired(m *Mapping, now time.Time) bool {
	return now.Sub(m.lastActive) >= n.Timeout
}

// Outbound returns the mapping for a packet from in to dst, making or
// refreshing it; rng picks new ports.
func (n *NAT) Outbound(now time.Time, rng *rand.Rand, in, dst netip.AddrPort) *Mapping {
	key := mapKey{in: in}
	if n.Kind.Symmetric() {
		key.dst = dst
	}
	m := n.byKey[key]
	if m != nil && n.expired(m, now) {
		delete(n.byKey, key)
		delete(n.byPort, m.Ext)
		m = nil
	}
	if m == nil {
		m = &Mapping{In: in, sentTo: map[netip.AddrPort]bool{}, sentToIP: map[netip.Addr]bool{}}
		for {
			if n.Kind == Sequential {
				if n.next == 0 {
					n.next = 1024 + rng.IntN(20000)
				}
				// Other users' mappings take a port now and then.
				n.next += 1 + rng.IntN(4)/3
				if n.next > 65535 {
					n.next = 1024
				}
				m.Ext = uint16(n.next)
			} else {
				m.Ext = uint16(1024 + rng.IntN(65536-1024))
			}
			if n.byPort[m.Ext] == nil {
				break
			}
		}
		n.byKey[key] = m
		n.byPort[m.Ext] = m
	}
	m.sentTo[dst] = true
	m.sentToIP[dst.Addr()] = true
	m.lastActive = now
	return m
}

// Inbound returns the inside address for a packet from src to the public
// port, or false if the NAT drops it.
func (n *NAT) Inbound(now time.Time, src netip.AddrPort, port uint16) (netip.AddrPort, bool) {
	m := n.byPort[port]
	if m == nil || n.expired(m, now) {
		return netip.AddrPort{}, false
	}
	switch n.Kind {
	case AddrRestricted:
		if !m.sentToIP[src.Addr()] {
			return netip.AddrPort{}, false
		}
	case PortRestricted, Symmetric, Sequential:
		if !m.sentTo[src] {
			return netip.AddrPort{}, false
		}
	}
	return m.In, true
}
