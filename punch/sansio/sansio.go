// Package sansio is the contract every protocol machine of p2ptui keeps —
// STUN discovery and the hole-punch machine (punch), the Noise session
// (session), the per-peer connection machine (session/conn) — and the few
// helpers they share, so that one driver can run any of them.
//
// The contract:
//
//   - A machine is a plain struct built by a constructor from a Config. It
//     never reads a clock, starts a goroutine, touches a socket or imports a
//     UI package, and it is not safe for concurrent use: one event loop
//     owns it.
//   - Time is an argument: every input method takes now (the instant the
//     input happened) as its first argument. Inputs are Start(now),
//     HandleDatagram(now, ...) for packets, HandleTimeout(now) for timers,
//     and domain verbs (Send, Accept, ...) that also take now first.
//   - Randomness comes from Config.Rand, an io.Reader; nil means
//     crypto/rand (use Rand). Tests pass a seeded reader.
//   - Outputs are drained, not pushed: Transmits() returns the datagrams
//     to send now and forgets them; Events() returns what happened and
//     forgets it. A machine whose owner decides the destination (the
//     session, which follows the path the connection machine chose)
//     returns bare datagrams; the others return Transmit values.
//   - A machine that uses several local sockets (the main one, a TURN
//     relay, extra sockets for birthday probing, an IPv6 one) names the
//     socket of each Transmit, and is told the socket of each datagram it
//     is given. Sockets are the owner's: it numbers them (SocketID, 0 for
//     the main socket), opens and closes them; a machine only asks.
//   - Deadline() is the instant HandleTimeout must next be called; the
//     zero time means no timer is running. Calling HandleTimeout early or
//     late is harmless: it runs what is due at now.
//   - Timer overrides in a Config mean the same everywhere (Override): zero
//     keeps the default, a positive value replaces it, a negative value
//     switches that timer off where the field's comment says it may be off;
//     elsewhere the constructor rejects a negative value.
package sansio

import (
	"crypto/rand"
	"io"
	"net/netip"
	"time"
)

// SocketID names one of the owner's local sockets. The owner assigns the
// numbers; MainSocket is the one every machine uses unless told otherwise.
type SocketID uint16

// MainSocket is the owner's main socket, the zero SocketID: a machine that
// knows of no other socket sends everything from it.
const MainSocket SocketID = 0

// Transmit is one datagram a machine wants sent, where to, and from which
// of the owner's local sockets (the zero value: the main socket).
type Transmit struct {
	To     netip.AddrPort
	Data   []byte
	Socket SocketID
}

// Machine is the part of the contract a driver needs to keep time for any
// machine.
type Machine interface {
	HandleTimeout(now time.Time)
	Deadline() time.Time
}

// Earliest returns the earliest of the instants, ignoring zero ones (which
// mean "no timer"); zero if all are zero.
func Earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// Due reports whether a deadline (zero: none) has come at now.
func Due(deadline, now time.Time) bool {
	return !deadline.IsZero() && !now.Before(deadline)
}

// Override resolves a timer override: zero keeps def, a positive value
// replaces it, a negative value switches the timer off (the result is 0).
func Override(v, def time.Duration) time.Duration {
	switch {
	case v == 0:
		return def
	case v < 0:
		return 0
	}
	return v
}

// Rand returns r, or crypto/rand's reader when r is nil.
func Rand(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
