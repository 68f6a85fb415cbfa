package conn

import (
	"fmt"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
)

// Every timer of the connection lifecycle, with where its number comes
// from. Timers can override each one (sansio.Override: zero keeps the
// default; none of these can be off).
const (
	// DefaultPresenceEvery: my presence is published and every contact's
	// looked up twice a minute, so a contact shows as online within a
	// minute of starting for two small reads and one write per minute.
	DefaultPresenceEvery = 30 * time.Second
	// DefaultWaitingPoll: while the user waits for an offline contact
	// (chat open or mail queued), that contact's presence is read this
	// often, so the conversation starts within seconds of them appearing.
	DefaultWaitingPoll = 5 * time.Second
	// DefaultOfferTimeout: an offer lives signal.DefaultTTL (2 min) in the
	// peer's inbox; a person who is there answers within a minute or not
	// at all, and a program answers within a round trip.
	DefaultOfferTimeout = 60 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the reconnect backoff:
	// first retry soon (a blip), then doubling to a minute.
	DefaultRetryMin = 2 * time.Second
	DefaultRetryMax = 60 * time.Second
	// DefaultSlowRetry paces attempts once the quick retries are spent
	// without a sign of the peer: one offer per ten minutes at most.
	DefaultSlowRetry = 10 * time.Minute
	// DefaultRediscover: home NAT mappings commonly last minutes; a STUN
	// result older than this is refreshed (in the background) at the next
	// attempt.
	DefaultRediscover = 5 * time.Minute
	// DefaultOfferMaxAge: an offer older than this (by its sealed time) is
	// stale: it outlived the inbox TTL, so its sender has given up and its
	// addresses' NAT mappings are likely gone.
	DefaultOfferMaxAge = 2 * time.Minute
	// DefaultClockSkew is how far the two clocks may disagree. NTP keeps
	// desktops within a second; two minutes also forgives a laptop that
	// slept through its sync. A signal is accepted when its sealed time is
	// within [now-OfferMaxAge-ClockSkew, now+ClockSkew], and its session ID
	// is remembered for that whole window.
	DefaultClockSkew = 2 * time.Minute
	// DefaultVerifyTimeout bounds the wait for a sender's presence before
	// an offer is acted on (a presence read takes milliseconds; a backend
	// that does not answer must not hide the offer).
	DefaultVerifyTimeout = 3 * time.Second
	// DefaultRelayWait bounds how long an offer or answer waits for my
	// TURN allocation when one is under way, counted from when the
	// allocation was asked for: the relayed candidate travels only in the
	// sealed offer or answer, but a direct path must not wait for the
	// relay. An allocation is two round trips to the server (a 401
	// challenge, then the authenticated request), tens of milliseconds
	// in-region; the allocation starts with the program, so an offer
	// rarely waits at all, and one that would wait longer goes without.
	DefaultRelayWait = 300 * time.Millisecond
	// DefaultRelayIdle: an allocation no attempt or session has used for
	// this long is released. A person chatting on and off keeps one, and
	// a program left running costs the TURN server nothing (time-limited
	// credentials, a day by default, would also end a forgotten one).
	DefaultRelayIdle = 2 * time.Minute
	// DefaultRelayRetry: after every TURN server failed, the next
	// attempt that needs a relay asks again once this has passed (a
	// server restarting, a network coming back).
	DefaultRelayRetry = 30 * time.Second
	// DefaultRelayLinger keeps a relayed path the session has moved away
	// from for this long after the first packet over the new path: the
	// peer may still be sending over the relay until its own machine
	// selects the direct pair, a round trip or two later.
	DefaultRelayLinger = 3 * time.Second
)

// Bounds on what peers (or an attacker who can write my inbox, or send me
// datagrams) can make the engine remember.
const (
	// maxEarly bounds session datagrams held for a link whose peer
	// selected the path a moment before this side did.
	maxEarly = 8
	// maxSeenSessions bounds the remembered session IDs of offers (for
	// replay rejection); entries expire after the acceptance window.
	maxSeenSessions = 4096
	// maxPendingOffers bounds offers waiting for the user, and
	// maxOffersPerSender those of one sender (a flood from one ID cannot
	// push a contact's offer out).
	maxPendingOffers   = 32
	maxOffersPerSender = 2
	// maxVerifying bounds offers parked while the sender's presence is
	// read.
	maxVerifying = 32
	// rediscoverFailed: a STUN discovery that found no public address is
	// tried again after this long (at the next attempt or presence round):
	// STUN answers within a second when the network works.
	rediscoverFailed = 30 * time.Second
	// maxBlindRetries: reconnect attempts without any sign of the peer
	// before waiting for its presence (or the user) instead.
	maxBlindRetries = 5
)

// Timers overrides the engine's timers; zero fields keep the defaults.
type Timers struct {
	PresenceEvery, WaitingPoll, OfferTimeout  time.Duration
	RetryMin, RetryMax, SlowRetry, Rediscover time.Duration
	OfferMaxAge, ClockSkew, VerifyTimeout     time.Duration
	RelayWait, RelayIdle, RelayRetry          time.Duration
	RelayLinger                               time.Duration
}

func (t Timers) withDefaults() (Timers, error) {
	var err error
	set := func(v *time.Duration, def time.Duration, name string) {
		if *v < 0 && err == nil {
			err = fmt.Errorf("conn: timer %s cannot be off", name)
		}
		*v = sansio.Override(*v, def)
	}
	set(&t.PresenceEvery, DefaultPresenceEvery, "PresenceEvery")
	set(&t.WaitingPoll, DefaultWaitingPoll, "WaitingPoll")
	set(&t.OfferTimeout, DefaultOfferTimeout, "OfferTimeout")
	set(&t.RetryMin, DefaultRetryMin, "RetryMin")
	set(&t.RetryMax, DefaultRetryMax, "RetryMax")
	set(&t.SlowRetry, DefaultSlowRetry, "SlowRetry")
	set(&t.Rediscover, DefaultRediscover, "Rediscover")
	set(&t.OfferMaxAge, DefaultOfferMaxAge, "OfferMaxAge")
	set(&t.ClockSkew, DefaultClockSkew, "ClockSkew")
	set(&t.VerifyTimeout, DefaultVerifyTimeout, "VerifyTimeout")
	set(&t.RelayWait, DefaultRelayWait, "RelayWait")
	set(&t.RelayIdle, DefaultRelayIdle, "RelayIdle")
	set(&t.RelayRetry, DefaultRelayRetry, "RelayRetry")
	set(&t.RelayLinger, DefaultRelayLinger, "RelayLinger")
	return t, err
}

// seenWindow is how long a session ID stays remembered: as long as any
// signal with that ID can still be accepted.
func (t Timers) seenWindow() time.Duration { return t.OfferMaxAge + 2*t.ClockSkew }

// onlineFor is how long a presence stays fresh: two and a half publishing
// periods, so one late heartbeat does not flip a contact to offline.
func (t Timers) onlineFor() time.Duration { return t.PresenceEvery * 5 / 2 }
