// Package punch owns the UDP sockets and everything needed to get a path
// to a peer through NATs: STUN discovery (pion/stun/v2) over IPv4 and
// IPv6, candidate gathering and encoding, NAT behaviour probing, and the
// sans-I/O hole-punch machine with its keepalives. One machine punches one
// kind of path (PathKind): direct (host and reflexive pairs, IPv6
// preferred), relayed (pairs through a TURN relay; the relay itself lives
// in punch/relay) or predicted (birthday probing between a symmetric and a
// cone NAT, over extra sockets the owner opens when the machine asks).
// Every packet names the local socket it uses (SocketID), so one owner
// runs all the kinds over its sockets at once. It knows nothing about chat
// messages: once a path is selected, the session layer uses that socket
// and address.
package punch

import (
	"net/netip"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
)

// Datagram is one packet read from a socket, with where and when it came
// and which of the owner's sockets read it (the zero value: the main one).
type Datagram struct {
	From   netip.AddrPort
	Data   []byte
	At     time.Time
	Socket SocketID
}

// Transmit is a packet a machine wants written to one of the owner's
// sockets (Transmit.Socket; the zero value is the main socket).
type Transmit = sansio.Transmit

// SocketID names one of the owner's local sockets (sansio.SocketID).
type SocketID = sansio.SocketID

// MainSocket is the owner's main socket: the zero SocketID.
const MainSocket = sansio.MainSocket

// Class is what kind of protocol a datagram belongs to, judged by its first
// bytes so STUN, punching and the chat session can share one socket (the
// NAT mapping STUN learned is then the one the peer is told about).
type Class int

// The classes of datagram.
const (
	ClassUnknown Class = iota
	ClassSTUN          // first byte 0x00-0x03 and the RFC 8489 magic cookie
	ClassPunch         // first byte 0x50: probes, replies, keepalives
	ClassSession       // first byte 0x60-0x6F: the session layer's packets
)

// PunchByte is the first byte of every hole-punch packet.
const PunchByte = 0x50

// stunMagicCookie is RFC 8489 section 5's fixed value at bytes 4-7.
const stunMagicCookie = 0x2112A442

// Classify sorts a datagram by its first bytes, in the spirit of RFC 7983.
func Classify(b []byte) Class {
	if len(b) == 0 {
		return ClassUnknown
	}
	switch {
	case b[0] <= 0x03:
		if len(b) >= 20 && uint32(b[4])<<24|uint32(b[5])<<16|uint32(b[6])<<8|uint32(b[7]) == stunMagicCookie {
			return ClassSTUN
		}
		return ClassUnknown
	case b[0] == PunchByte:
		return ClassPunch
	case b[0] >= 0x60 && b[0] <= 0x6F:
		return ClassSession
	}
	return ClassUnknown
}
