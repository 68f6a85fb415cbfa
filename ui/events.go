package ui

import (
	"encoding/json"
	"io"
	"sync"
)

// Event is one line of headless output: a JSON object whose "ev" field names
// what happened. Fields that do not apply to an event are left out.
//
//	ready      id, fingerprint (my own key's), nat, backend, version (of
//	           this build: module version and commit, as p2ptui --version)
//	id         id, fingerprint                       (answer to "id")
//	contacts   contacts [{name,id,online}]            (answer to "contacts")
//	blocked    contacts [{name,id}]                   (answer to "blocked")
//	contact    name, id                               (a contact was added, renamed)
//	presence   peer, name, online, last_seen
//	offer      from, name, known, session, fingerprint
//	offer_gone from, session, words                    (withdrawn, expired, answered)
//	connecting peer, session, words
//	waiting    peer, words                             (wanted, but the peer is offline)
//	connected  peer, path ("direct", "direct (IPv6)" or "relayed via HOST"),
//	           path_kind (the machine that found it: "direct", "predicted" by
//	           birthday probing, or "relayed"), local, remote, rtt_ms (a
//	           probe's round trip on the path, when one was measured), encrypted, and
//	           how long the attempt took: signal_ms (from connect, or from
//	           accepting, until punching began: STUN refresh, offer, the
//	           peer's answer), punch_ms (until a path was selected),
//	           handshake_ms (until the Noise handshake completed)
//	path       peer, session, path, path_kind, local, remote, rtt_ms (the
//	           live session moved: a direct path came up under the relayed one)
//	nat        nat (words), mapping, filtering (RFC 4787 names), mapped,
//	           mapped6 (my public addresses as STUN saw them), when discovery
//	           learns something new
//	relay      ok, server, local (my relayed address), words (why not)
//	relay_stats server, requests (sent to the TURN server in all, when the
//	           allocation is released)
//	message    from, id, body, at (arrival), sent_at (the sender's clock)
//	receipt    to, id
//	queued     to, id, body                            (stored, waiting for a session)
//	sent       to, id                                  (handed to a live session)
//	typing     peer, active
//	failure    peer, reason, words
//	closed     peer, words                             (the peer hung up: not a failure)
//	health     backend, ok, words
//	error      words
//	note       words                                   (e.g. a group joined)
//
// File transfers (id is the transfer's, 32 hex digits; direction "in" or
// "out"; size and done in bytes; file is the name offered, sanitised):
//
//	file_offer     from, name (the sender's), id, file, size: answer with
//	               acceptfile or declinefile
//	file_offered   to, id, file, size            (my file is read and offered)
//	file_started   peer, id, file, size, direction (accepted; data moves)
//	file_progress  peer, id, file, size, done, rate (bytes/s), left_s, direction;
//	               at most five a second per transfer
//	file_done      peer, id, file, size, direction, path (where it was saved,
//	               incoming), words
//	file_failed    peer, id, file, direction, reason (declined, cancelled,
//	               source-unreadable, source-changed, no-space, write-failed,
//	               bad-chunk, hash-mismatch, protocol, unknown-transfer,
//	               too-many-offers, bad-offer), by_peer, words
type Event struct {
	Ev          string         `json:"ev"`
	ID          string         `json:"id,omitempty"`
	Fingerprint string         `json:"fingerprint,omitempty"`
	NAT         string         `json:"nat,omitempty"`
	Backend     string         `json:"backend,omitempty"`
	Peer        string         `json:"peer,omitempty"`
	From        string         `json:"from,omitempty"`
	To          string         `json:"to,omitempty"`
	Name        string         `json:"name,omitempty"`
	Known       *bool          `json:"known,omitempty"`
	Online      *bool          `json:"online,omitempty"`
	Active      *bool          `json:"active,omitempty"`
	OK          *bool          `json:"ok,omitempty"`
	Session     string         `json:"session,omitempty"`
	Path        string         `json:"path,omitempty"`
	PathKind    string         `json:"path_kind,omitempty"`
	Local       string         `json:"local,omitempty"`
	Remote      string         `json:"remote,omitempty"`
	Encrypted   *bool          `json:"encrypted,omitempty"`
	Body        string         `json:"body,omitempty"`
	At          string         `json:"at,omitempty"`
	SentAt      string         `json:"sent_at,omitempty"`
	LastSeen    string         `json:"last_seen,omitempty"`
	SignalMs    *float64       `json:"signal_ms,omitempty"`
	PunchMs     *float64       `json:"punch_ms,omitempty"`
	HandshakeMs *float64       `json:"handshake_ms,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	Words       string         `json:"words,omitempty"`
	Contacts    []EventContact `json:"contacts,omitempty"`
	Version     string         `json:"version,omitempty"`
	File        string         `json:"file,omitempty"`
	Direction   string         `json:"direction,omitempty"`
	Size        *uint64        `json:"size,omitempty"`
	Done        *uint64        `json:"done,omitempty"`
	Rate        *float64       `json:"rate,omitempty"`
	LeftS       *float64       `json:"left_s,omitempty"`
	ByPeer      *bool          `json:"by_peer,omitempty"`
	Mapping     string         `json:"mapping,omitempty"`
	Filtering   string         `json:"filtering,omitempty"`
	Mapped      string         `json:"mapped,omitempty"`
	Mapped6     string         `json:"mapped6,omitempty"`
	Server      string         `json:"server,omitempty"`
	Requests    *int           `json:"requests,omitempty"`
	RTTMs       *float64       `json:"rtt_ms,omitempty"`
}

// EventContact is one entry of a "contacts" event.
type EventContact struct {
	Name   string `json:"name"`
	ID     string `json:"id"`
	Online bool   `json:"online"`
}

func boolp(b bool) *bool { return &b }

// eventWriter writes headless events as JSON lines from one goroutine it
// owns, so Update only appends to a queue and never blocks on a slow reader
// of stdout. Close flushes what is queued and waits for the goroutine.
type eventWriter struct {
	w    io.Writer
	wake chan struct{}
	done chan struct{}

	mu     sync.Mutex
	queue  []Event
	busy   bool // a batch is being written
	closed bool
}

func newEventWriter(w io.Writer) *eventWriter {
	ew := &eventWriter{w: w, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go ew.run()
	return ew
}

// emit queues one event; it never blocks. After Close it drops the event.
func (ew *eventWriter) emit(e Event) {
	ew.mu.Lock()
	if ew.closed {
		ew.mu.Unlock()
		return
	}
	ew.queue = append(ew.queue, e)
	ew.mu.Unlock()
	select {
	case ew.wake <- struct{}{}:
	default:
	}
}

func (ew *eventWriter) run() {
	defer close(ew.done)
	enc := json.NewEncoder(ew.w)
	enc.SetEscapeHTML(false)
	for {
		ew.mu.Lock()
		batch, closed := ew.queue, ew.closed
		ew.queue = nil
		ew.busy = len(batch) > 0
		ew.mu.Unlock()
		for _, e := range batch {
			// A gone reader (closed stdout) leaves nothing to do; the
			// program goes on until told to quit.
			_ = enc.Encode(e)
		}
		ew.mu.Lock()
		ew.busy = false
		ew.mu.Unlock()
		if closed {
			return
		}
		<-ew.wake
	}
}

// idle reports that everything emitted so far has been written.
func (ew *eventWriter) idle() bool {
	ew.mu.Lock()
	defer ew.mu.Unlock()
	return len(ew.queue) == 0 && !ew.busy
}

// Close writes what is queued and waits for the writer goroutine to end.
func (ew *eventWriter) Close() {
	ew.mu.Lock()
	if ew.closed {
		ew.mu.Unlock()
		<-ew.done
		return
	}
	ew.closed = true
	ew.mu.Unlock()
	select {
	case ew.wake <- struct{}{}:
	default:
	}
	<-ew.done
}
