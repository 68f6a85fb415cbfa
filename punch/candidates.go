package punch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// CandidateType says where a candidate address came from.
type CandidateType int

// The candidate types (RFC 8445 section 5.1.1 names).
const (
	// CandidateHost is the socket's own address on a local interface.
	CandidateHost CandidateType = iota
	// CandidateServerReflexive is the address a STUN server saw: the NAT's
	// public mapping of the socket.
	CandidateServerReflexive
	// CandidateRelayed is an address allocated on a TURN server (RFC 8656):
	// what reaches it is relayed to the socket that allocated it.
	CandidateRelayed
)

// String is the RFC 8445 short name.
func (t CandidateType) String() string {
	switch t {
	case CandidateHost:
		return "host"
	case CandidateServerReflexive:
		return "srflx"
	case CandidateRelayed:
		return "relay"
	}
	return fmt.Sprintf("type%d", int(t))
}

// Candidate is one address a peer may be reached at, sent to the other side
// through signalling. Higher Priority is tried first.
type Candidate struct {
	Type     CandidateType
	Addr     netip.AddrPort
	Priority uint32
}

// String is e.g. "host 10.1.0.2:4000".
func (c Candidate) String() string {
	return c.Type.String() + " " + c.Addr.String()
}

// MaxCandidates bounds a candidate list on the wire, so a hostile offer
// cannot make us probe a whole network.
const MaxCandidates = 16

// candidatesVersion is the first byte of an encoded candidate list.
// Version 2 added relayed candidates and the NAT's port step; a peer with
// version 1 is told "unsupported candidate list version" rather than
// misreading the list.
const candidatesVersion = 2

// candidatesHeaderLen is the fixed part before the candidates.
const candidatesHeaderLen = 6

// Address families on the wire.
const (
	famIPv4 = 4
	famIPv6 = 6
)

// Errors from DecodeCandidates.
var (
	ErrCandidatesMalformed = errors.New("punch: malformed candidate list")
	ErrCandidatesVersion   = errors.New("punch: unsupported candidate list version")
	ErrTooManyCandidates   = errors.New("punch: too many candidates")
)

// knownType reports whether t is a candidate type the wire format carries.
func knownType(t CandidateType) bool {
	return t == CandidateHost || t == CandidateServerReflexive || t == CandidateRelayed
}

// EncodeCandidates packs candidates and this side's NAT behaviour into a
// compact binary form for the signalling payload:
//
//	version(1) mapping(1) filtering(1) port step(2, signed) count(1)
//	count × { type(1: 0 host, 1 srflx, 2 relay) family(1: 4|6) addr(4|16) port(2) priority(4) }
//
// Candidates beyond MaxCandidates, unknown types and addresses the other
// side could not use (invalid, unspecified, port 0) are left out; a port
// step that is out of range or comes without a symmetric mapping is sent
// as 0 (not known).
func EncodeCandidates(c []Candidate, nat NATBehavior) []byte {
	b := make([]byte, candidatesHeaderLen, candidatesHeaderLen+len(c)*24)
	b[0] = candidatesVersion
	b[1] = byte(nat.Mapping)
	b[2] = byte(nat.Filtering)
	if nat.validStep() {
		binary.BigEndian.PutUint16(b[3:], uint16(int16(nat.PortStep)))
	}
	n := 0
	for _, cand := range c {
		if n == MaxCandidates {
			break
		}
		if !cand.Addr.IsValid() || cand.Addr.Port() == 0 || cand.Addr.Addr().IsUnspecified() || !knownType(cand.Type) {
			continue
		}
		addr := cand.Addr.Addr().Unmap()
		if addr.Zone() != "" {
			addr = addr.WithZone("") // zones mean nothing to the other host
		}
		b = append(b, byte(cand.Type))
		if addr.Is4() {
			b = append(b, famIPv4)
			a := addr.As4()
			b = append(b, a[:]...)
		} else {
			b = append(b, famIPv6)
			a := addr.As16()
			b = append(b, a[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, cand.Addr.Port())
		b = binary.BigEndian.AppendUint32(b, cand.Priority)
		n++
	}
	b[5] = byte(n)
	return b
}

// DecodeCandidates is the inverse of EncodeCandidates. It checks every
// length before reading, refuses more than MaxCandidates, unknown candidate
// types, unspecified addresses and port 0, a port step out of range or
// without a symmetric mapping, and trailing bytes.
func DecodeCandidates(b []byte) ([]Candidate, NATBehavior, error) {
	var nat NATBehavior
	if len(b) >= 1 && b[0] != candidatesVersion {
		return nil, nat, fmt.Errorf("%w: %d", ErrCandidatesVersion, b[0])
	}
	if len(b) < candidatesHeaderLen {
		return nil, nat, fmt.Errorf("%w: %d bytes", ErrCandidatesMalformed, len(b))
	}
	if b[1] > byte(MappingNone) || b[2] > byte(FilteringAddressAndPortDependent) {
		return nil, nat, fmt.Errorf("%w: NAT behaviour %d/%d", ErrCandidatesMalformed, b[1], b[2])
	}
	nat = NATBehavior{Mapping: MappingBehavior(b[1]), Filtering: FilteringBehavior(b[2]),
		PortStep: int(int16(binary.BigEndian.Uint16(b[3:])))}
	if nat.PortStep != 0 && !nat.validStep() {
		return nil, NATBehavior{}, fmt.Errorf("%w: port step %d with %v mapping", ErrCandidatesMalformed, nat.PortStep, nat.Mapping)
	}
	n := int(b[5])
	if n > MaxCandidates {
		return nil, NATBehavior{}, fmt.Errorf("%w: %d > %d", ErrTooManyCandidates, n, MaxCandidates)
	}
	rest := b[candidatesHeaderLen:]
	out := make([]Candidate, 0, n)
	for i := range n {
		if len(rest) < 2 {
			return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d truncated", ErrCandidatesMalformed, i)
		}
		typ, fam := CandidateType(rest[0]), rest[1]
		if !knownType(typ) {
			return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d type %d", ErrCandidatesMalformed, i, typ)
		}
		rest = rest[2:]
		var addr netip.Addr
		switch fam {
		case famIPv4:
			if len(rest) < 4 {
				return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d truncated", ErrCandidatesMalformed, i)
			}
			addr = netip.AddrFrom4([4]byte(rest[:4]))
			rest = rest[4:]
		case famIPv6:
			if len(rest) < 16 {
				return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d truncated", ErrCandidatesMalformed, i)
			}
			addr = netip.AddrFrom16([16]byte(rest[:16])).Unmap()
			rest = rest[16:]
		default:
			return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d family %d", ErrCandidatesMalformed, i, fam)
		}
		if len(rest) < 6 {
			return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d truncated", ErrCandidatesMalformed, i)
		}
		port := binary.BigEndian.Uint16(rest)
		prio := binary.BigEndian.Uint32(rest[2:])
		rest = rest[6:]
		if port == 0 || addr.IsUnspecified() {
			return nil, NATBehavior{}, fmt.Errorf("%w: candidate %d address %v:%d", ErrCandidatesMalformed, i, addr, port)
		}
		out = append(out, Candidate{Type: typ, Addr: netip.AddrPortFrom(addr, port), Priority: prio})
	}
	if len(rest) != 0 {
		return nil, NATBehavior{}, fmt.Errorf("%w: %d trailing bytes", ErrCandidatesMalformed, len(rest))
	}
	return out, nat, nil
}
