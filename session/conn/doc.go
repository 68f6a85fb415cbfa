// Package conn is the connection lifecycle of p2ptui as sans-I/O machines:
// one Link per peer (offer and answer, crossing offers, accept, decline and
// cancel, retries and backoff, presence, early datagrams, re-establishment)
// driving the punch machine and the Noise session it owns, and the Engine
// that holds every Link together with what they share: STUN discovery, the
// contacts, presence, the demultiplexing of datagrams and the offers
// waiting for the user.
//
// The Engine keeps the contract of punch/sansio. Every input carries now;
// randomness comes from Config.Rand; outputs are drained: Effects (datagrams
// to write, signals to send, store operations, presence reads and writes)
// for the owner to perform, reporting their outcomes back as inputs, and
// Notifications (typed, each change reported once) for an Observer — the
// screen and the headless JSON writer are the two implementations. Deadline
// says when to call HandleTimeout. It never reads a clock, touches a socket
// or a file, starts a goroutine or imports a UI package; it knows no
// signalling backend either: signals and presence are its own small types,
// which the owner maps to and from package signal.
//
// Offers cannot be replayed: the sealed part carries its creation time, a
// reader refuses offers older than OfferMaxAge (with ClockSkew tolerated
// either way) and remembers the session IDs it has seen for that window,
// pending offers are keyed by (sender, session), and an established session
// is only replaced by an offer provably newer than the one that set it up
// (both times come from the peer's own clock, so skew does not matter there).
package conn
