package punch

// MappingBehavior is how a NAT picks the public address for an inside
// socket, in RFC 4787 section 4.1 terms. It decides whether the address STUN
// reports is the one a peer will see.
type MappingBehavior int

// The mapping behaviours. The zero value is "not measured".
const (
	MappingUnknown MappingBehavior = iota
	// MappingEndpointIndependent reuses one mapping for every destination
	// (a "cone" NAT): the STUN-reported address works for any peer.
	MappingEndpointIndependent
	// MappingAddressDependent makes a new mapping per destination IP.
	MappingAddressDependent
	// MappingAddressAndPortDependent makes a new mapping per destination
	// IP and port (the classic "symmetric" NAT).
	MappingAddressAndPortDependent
	// MappingNone means no NAT at all: the mapped address is the socket's
	// own address.
	MappingNone
)

// String is the RFC 4787 name, as printed in logs and by the NAT lab.
func (m MappingBehavior) String() string {
	switch m {
	case MappingEndpointIndependent:
		return "endpoint-independent"
	case MappingAddressDependent:
		return "address-dependent"
	case MappingAddressAndPortDependent:
		return "address-and-port-dependent"
	case MappingNone:
		return "none"
	}
	return "unknown"
}

// FilteringBehavior is which inbound packets a NAT lets through to a
// mapping, in RFC 4787 section 5 terms.
type FilteringBehavior int

// The filtering behaviours. The zero value is "not measured": only a STUN
// server with RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST; coturn with two
// listening addresses) can measure it, and most public servers have none.
const (
	FilteringUnknown FilteringBehavior = iota
	// FilteringEndpointIndependent lets anyone reach a mapping (full cone).
	FilteringEndpointIndependent
	// FilteringAddressDependent lets in only IPs the inside host has sent to.
	FilteringAddressDependent
	// FilteringAddressAndPortDependent lets in only the exact IP:port the
	// inside host has sent to (port-restricted cone).
	FilteringAddressAndPortDependent
)

// String is the RFC 4787 name.
func (f FilteringBehavior) String() string {
	switch f {
	case FilteringEndpointIndependent:
		return "endpoint-independent"
	case FilteringAddressDependent:
		return "address-dependent"
	case FilteringAddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return "unknown"
}

// NATBehavior is what is known about the NAT in front of one peer. Each side
// measures its own and sends it along with its candidates, so the machine
// can explain a failure in words.
type NATBehavior struct {
	Mapping   MappingBehavior
	Filtering FilteringBehavior
	// PortStep is, for a symmetric NAT that hands out its ports in
	// sequence, the difference between consecutive mappings as STUN saw
	// them (the second server's mapped port minus the first's); 0 when not
	// known or when the ports look random. Birthday probing then tries the
	// predicted ports first.
	PortStep int
}

// MaxPortStep bounds a port step taken as evidence of sequential
// allocation: two mappings made a few milliseconds apart by a sequential
// NAT differ by a handful of ports (the other mappings made in between);
// random ports (a 64,512-port range) land this close by chance about once
// in 500 discoveries, which costs only the order of the first probes.
const MaxPortStep = 64

// validStep reports whether PortStep is one the wire format carries: in
// range, and only with a symmetric mapping (a cone NAT's step is 0).
func (b NATBehavior) validStep() bool {
	return b.PortStep != 0 && b.PortStep >= -MaxPortStep && b.PortStep <= MaxPortStep && b.Symmetric()
}

// Symmetric reports whether the NAT gives each destination its own mapping,
// so the address STUN saw is not the one a peer will see.
func (b NATBehavior) Symmetric() bool {
	return b.Mapping == MappingAddressDependent || b.Mapping == MappingAddressAndPortDependent
}

// Open reports whether anyone can reach this side at its published
// address without it having sent to them first: no NAT, or a NAT with
// endpoint-independent mapping and filtering (full cone). Only such a peer
// can talk to one behind a symmetric NAT, whose real mapping is unknown
// until it sends. Unknown filtering counts as not open.
func (b NATBehavior) Open() bool {
	return b.Mapping == MappingNone || (!b.Symmetric() && b.Filtering == FilteringEndpointIndependent)
}

// Phrase says in plain words what the behaviour means for direct
// connections, for the status bar and the connection details.
func (b NATBehavior) Phrase() string {
	switch {
	case b.Mapping == MappingNone:
		return "no NAT: direct connections work with almost any peer"
	case b.Symmetric():
		return "symmetric NAT: direct connections only work with peers on open or full-cone NATs"
	case b.Mapping == MappingEndpointIndependent && b.Filtering == FilteringEndpointIndependent:
		return "full-cone NAT: direct connections work with almost any peer"
	case b.Mapping == MappingEndpointIndependent && b.Filtering == FilteringAddressDependent:
		return "address-restricted cone NAT: direct connections work with most peers"
	case b.Mapping == MappingEndpointIndependent && b.Filtering == FilteringAddressAndPortDependent:
		return "port-restricted cone NAT: direct connections work with most peers"
	case b.Mapping == MappingEndpointIndependent:
		return "cone NAT: direct connections work with most peers"
	}
	return "NAT type unknown: direct connections may or may not work"
}
