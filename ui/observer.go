package ui

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"time"

	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/transfer"
)

// observer is what the root model reports to: the engine's notifications
// (conn.Observer) plus the few things only the adapter knows (an error of
// its own, the chat the user opened or is looking at). The screen and the
// headless JSON writer are its two implementations.
type observer interface {
	conn.Observer
	problem(words string)
	note(words string)
	opened(peer string)
	focus(peer string)
	setNAT(words string)
}

// peerName is how a peer is named on screen: its (sanitized) name, else
// the start of its ID.
func peerName(st conn.PeerStatus) string {
	if st.Name != "" {
		return sanitize(st.Name)
	}
	return abbrevID(st.ID)
}

func abbrevID(id string) string {
	if len(id) > 12 {
		return id[:12] + "…"
	}
	return id
}

// pathWords describes a peer's connection for the status bar.
func pathWords(st conn.PeerStatus) string {
	switch st.Phase {
	case conn.PhaseConnected:
		return fmt.Sprintf("%s, encrypted %v ⇄ %v", st.Path.Words(), st.Path.Local, st.Path.Remote)
	case conn.PhaseConnecting:
		return "connecting: " + st.Words
	case conn.PhaseWaiting:
		return st.Words
	case conn.PhaseFailed:
		return "not connected: " + st.Words
	}
	if st.Words != "" {
		return "not connected: " + st.Words
	}
	return "not connected"
}

// screenObserver turns notifications into the screen's setters, keeping
// what the screen needs beyond them: the contact rows (pushed only when
// they change), unread counts, the status bar.
type screenObserver struct {
	s       *Screen
	now     func() time.Time
	backend string

	healthy bool
	health  string // words while unhealthy
	nat     string
	order   []string // contacts, in the store's order
	peers   map[string]conn.PeerStatus
	unread  map[string]int
	focused string

	rows      []ContactView
	rowsSet   bool
	status    StatusView
	statusSet bool
	// details fills the details view for the focused chat (nil: none).
	details func(focused string) DetailsView
}

func newScreenObserver(s *Screen, backend string, now func() time.Time) *screenObserver {
	o := &screenObserver{s: s, now: now, backend: backend, healthy: true,
		peers: map[string]conn.PeerStatus{}, unread: map[string]int{}}
	o.refresh()
	return o
}

// Notify implements conn.Observer.
func (o *screenObserver) Notify(n conn.Notification) {
	s := o.s
	switch n := n.(type) {
	case conn.Ready:
		o.nat = n.NAT
	case conn.NATChanged:
		o.nat = n.Words
	case conn.Health:
		o.healthy = n.OK
		o.health = ""
		if !n.OK {
			o.health = n.Words
		}
	case conn.ContactsChanged:
		o.order = o.order[:0]
		for _, c := range n.Contacts {
			o.order = append(o.order, c.ID)
		}
	case conn.PeerChanged:
		o.peers[n.Status.ID] = n.Status
	case conn.BlockedChanged:
		bs := make([]BlockedView, 0, len(n.Blocked))
		for _, b := range n.Blocked {
			bs = append(bs, BlockedView{ID: b.ID, Name: b.Name, Since: b.Since})
		}
		s.SetBlocked(bs)
	case conn.PeerRemoved:
		delete(o.peers, n.ID)
		delete(o.unread, n.ID)
		o.order = slices.DeleteFunc(o.order, func(id string) bool { return id == n.ID })
	case conn.OfferShown:
		s.ShowOffer(OfferView{ContactID: n.From, Name: n.Name, Known: n.Contact, Fingerprint: n.Fingerprint, SessionID: n.SessionID})
	case conn.OfferGone:
		s.HideOffer(n.From, n.SessionID)
	case conn.Failed:
		if n.Peer == o.focused {
			s.ShowError(peerName(o.peers[n.Peer]) + ": " + n.Words)
		}
	case conn.MessageOut:
		s.AppendMessage(n.Peer, MessageView{Key: n.ID.String(), Mine: true, Sender: s.self.Name, Body: n.Body, At: n.At, Mark: MarkQueued})
	case conn.MessageSent:
		s.SetMark(n.Peer, n.ID.String(), MarkSent)
	case conn.MessageDelivered:
		s.SetMark(n.Peer, n.ID.String(), MarkDelivered)
	case conn.MessageIn:
		s.AppendMessage(n.Peer, MessageView{Key: n.ID.String(), Sender: peerName(o.peers[n.Peer]), Body: n.Body, At: n.At, SentAt: n.SentAt, Mark: MarkReceived})
		if n.Peer != o.focused {
			o.unread[n.Peer]++
		}
	case conn.Typing:
		s.SetTyping(n.Peer, n.Active)
	case conn.Problem:
		s.ShowError(n.Words)
	case conn.FileOffer, conn.FileOffered, conn.FileStarted, conn.FileProgress, conn.FileDone, conn.FileFailed:
		o.file(n)
	case conn.RelayChanged:
		if !n.OK && n.Words != "" {
			s.ShowError("no relay: " + n.Words)
		}
	}
}

// file shows a transfer's change: an offer as a notice, an unfinished
// transfer on the chat's transfer lines, its end as a line in the chat.
func (o *screenObserver) file(n conn.Notification) {
	s := o.s
	f := fileNote(n)
	name := o.name(f.Peer)
	v := transferView(f.Peer, name, f.File)
	switch n.(type) {
	case conn.FileOffer:
		s.ShowFileOffer(FileOfferView{Peer: f.Peer, PeerName: name, ID: v.ID, Name: f.File.Name, Size: f.File.Size})
	case conn.FileStarted:
		s.HideFileOffer(f.Peer, v.ID)
		s.SetTransfer(v)
	case conn.FileOffered, conn.FileProgress:
		s.SetTransfer(v)
	case conn.FileDone:
		s.EndTransfer(v, fileDoneWords(name, f.File), true)
	case conn.FileFailed:
		s.HideFileOffer(f.Peer, v.ID)
		s.EndTransfer(v, fileFailWords(name, f.File), false)
	}
}

// name is how a peer is named on screen.
func (o *screenObserver) name(id string) string {
	if st, ok := o.peers[id]; ok {
		return peerName(st)
	}
	return abbrevID(id)
}

// fileNote is what every file notification carries.
func fileNote(n conn.Notification) conn.FileNote {
	switch n := n.(type) {
	case conn.FileOffer:
		return n.FileNote
	case conn.FileOffered:
		return n.FileNote
	case conn.FileStarted:
		return n.FileNote
	case conn.FileProgress:
		return n.FileNote
	case conn.FileDone:
		return n.FileNote
	case conn.FileFailed:
		return n.FileNote
	}
	return conn.FileNote{}
}

func (o *screenObserver) problem(words string) { o.s.ShowError(words) }
func (o *screenObserver) note(words string)    { o.s.ShowNote(words) }

func (o *screenObserver) opened(peer string) {
	delete(o.unread, peer)
	o.focus(peer)
}

func (o *screenObserver) focus(peer string) {
	if peer != o.focused {
		o.focused = peer
		delete(o.unread, peer)
	}
	o.refresh()
}

func (o *screenObserver) setNAT(words string) {
	o.nat = words
	o.refresh()
}

// refresh pushes the contact rows and the status bar when they changed.
func (o *screenObserver) refresh() {
	rows := make([]ContactView, 0, len(o.peers))
	seen := map[string]bool{}
	row := func(st conn.PeerStatus) {
		seen[st.ID] = true
		v := ContactView{ID: st.ID, Name: st.Name, Unread: o.unread[st.ID], LastActivity: st.LastActive, Fingerprint: st.Fingerprint,
			Blocked: st.Blocked, AskEachTime: st.AskEachTime, Contact: st.Contact}
		switch st.Phase {
		case conn.PhaseConnected:
			v.Presence = PresenceConnected
		case conn.PhaseConnecting:
			v.Presence = PresenceConnecting
		case conn.PhaseFailed:
			v.Presence, v.Detail = PresenceFailed, st.Words
		default:
			if st.Online {
				v.Presence = PresenceOnline
			}
			v.Detail = st.Words
		}
		if st.Queued > 0 && v.Detail == "" {
			v.Detail = fmt.Sprintf("%d waiting to be sent", st.Queued)
		}
		rows = append(rows, v)
	}
	for _, id := range o.order {
		if st, ok := o.peers[id]; ok {
			row(st)
		}
	}
	var rest []string
	for id := range o.peers {
		if !seen[id] {
			rest = append(rest, id)
		}
	}
	sort.Strings(rest)
	for _, id := range rest {
		row(o.peers[id])
	}
	if !o.rowsSet || !slices.Equal(rows, o.rows) {
		o.rows, o.rowsSet = rows, true
		o.s.SetContacts(rows)
	}
	st := StatusView{Backend: o.backend, BackendHealthy: o.healthy, NAT: o.nat, Err: o.health}
	if p, ok := o.peers[o.focused]; ok && o.focused != "" {
		st.Path = pathWords(p)
	}
	if !o.statusSet || st != o.status {
		o.status, o.statusSet = st, true
		o.s.SetStatus(st)
	}
	if o.details != nil {
		o.s.SetDetails(o.details(o.focused))
	}
}

// jsonObserver writes notifications as headless events. A script sees
// ready first: what happens before it (an offer the engine made while the
// listener started) is held and written right after it.
type jsonObserver struct {
	w       *eventWriter
	backend string
	version string
	peers   map[string]conn.PeerStatus
	ready   bool
	held    []Event
}

func newJSONObserver(w *eventWriter, backend, version string) *jsonObserver {
	return &jsonObserver{w: w, backend: backend, version: version, peers: map[string]conn.PeerStatus{}}
}

func ms(d time.Duration) *float64 {
	v := float64(d.Microseconds()) / 1000
	return &v
}

func (o *jsonObserver) emit(e Event) {
	if !o.ready && e.Ev != "error" && e.Ev != "health" {
		o.held = append(o.held, e)
		return
	}
	o.w.emit(e)
}

// Notify implements conn.Observer.
func (o *jsonObserver) Notify(n conn.Notification) {
	emit := o.emit
	switch n := n.(type) {
	case conn.Ready:
		o.ready = true
		emit(Event{Ev: "ready", ID: n.ID, Fingerprint: n.Fingerprint, NAT: n.NAT, Backend: o.backend, Version: o.version})
		for _, e := range o.held {
			emit(e)
		}
		o.held = nil
	case conn.Health:
		emit(Event{Ev: "health", Backend: o.backend, OK: boolp(n.OK), Words: n.Words})
	case conn.ContactsChanged:
		if n.Added != "" {
			for _, c := range n.Contacts {
				if c.ID == n.Added {
					emit(Event{Ev: "contact", ID: c.ID, Name: c.Name})
				}
			}
		}
	case conn.PeerChanged:
		o.peers[n.Status.ID] = n.Status
	case conn.PresenceChanged:
		emit(Event{Ev: "presence", Peer: n.Peer, Name: sanitize(n.Name), Online: boolp(n.Online), LastSeen: rfc3339(n.LastSeen)})
	case conn.OfferShown:
		emit(Event{Ev: "offer", From: n.From, Name: sanitize(n.Name), Known: boolp(n.Contact), Session: n.SessionID, Fingerprint: n.Fingerprint})
	case conn.OfferGone:
		emit(Event{Ev: "offer_gone", From: n.From, Session: n.SessionID, Words: n.Words})
	case conn.Connecting:
		emit(Event{Ev: "connecting", Peer: n.Peer, Session: n.SessionID, Words: n.Words})
	case conn.Waiting:
		emit(Event{Ev: "waiting", Peer: n.Peer, Words: n.Words})
	case conn.Connected:
		e := Event{Ev: "connected", Peer: n.Peer, Path: n.Path.Words(), PathKind: n.Path.Kind, Local: n.Path.Local.String(), Remote: n.Path.Remote.String(),
			Encrypted: boolp(true), Session: n.SessionID, PunchMs: ms(n.Punching), HandshakeMs: ms(n.Handshake)}
		if n.Measured {
			e.SignalMs = ms(n.Signalling)
		}
		if n.Path.RTT > 0 {
			e.RTTMs = ms(n.Path.RTT)
		}
		emit(e)
	case conn.PathMoved:
		e := Event{Ev: "path", Peer: n.Peer, Session: n.SessionID, Path: n.Path.Words(), PathKind: n.Path.Kind,
			Local: n.Path.Local.String(), Remote: n.Path.Remote.String()}
		if n.Path.RTT > 0 {
			e.RTTMs = ms(n.Path.RTT)
		}
		emit(e)
	case conn.NATChanged:
		emit(Event{Ev: "nat", NAT: n.Words, Mapping: n.Mapping, Filtering: n.Filtering, Mapped: addrOrEmpty(n.Mapped), Mapped6: addrOrEmpty(n.Mapped6)})
	case conn.RelayChanged:
		emit(Event{Ev: "relay", OK: boolp(n.OK), Server: n.Server, Local: addrOrEmpty(n.Addr), Words: n.Words})
	case conn.Failed:
		emit(Event{Ev: "failure", Peer: n.Peer, Reason: n.Reason.String(), Words: n.Words})
	case conn.Closed:
		emit(Event{Ev: "closed", Peer: n.Peer, Words: n.Words})
	case conn.MessageQueued:
		emit(Event{Ev: "queued", To: n.Peer, ID: n.ID.String(), Body: n.Body})
	case conn.MessageSent:
		emit(Event{Ev: "sent", To: n.Peer, ID: n.ID.String()})
	case conn.MessageDelivered:
		emit(Event{Ev: "receipt", To: n.Peer, ID: n.ID.String()})
	case conn.MessageIn:
		emit(Event{Ev: "message", From: n.Peer, ID: n.ID.String(), Body: n.Body, At: n.At.UTC().Format(time.RFC3339Nano), SentAt: rfc3339Nano(n.SentAt)})
	case conn.Typing:
		emit(Event{Ev: "typing", Peer: n.Peer, Active: boolp(n.Active)})
	case conn.Problem:
		emit(Event{Ev: "error", Words: n.Words})
	case conn.FileOffer, conn.FileOffered, conn.FileStarted, conn.FileProgress, conn.FileDone, conn.FileFailed:
		o.file(n)
	}
}

// file writes a transfer's change as a file_* event.
func (o *jsonObserver) file(n conn.Notification) {
	f := fileNote(n)
	s := f.File
	name := sanitize(s.Name)
	e := Event{Peer: f.Peer, ID: s.ID.String(), File: name, Size: u64p(s.Size), Direction: "in"}
	if s.Outgoing {
		e.Direction = "out"
	}
	peer := abbrevID(f.Peer)
	if st, ok := o.peers[f.Peer]; ok {
		peer = peerName(st)
	}
	switch n.(type) {
	case conn.FileOffer:
		e.Ev, e.Peer, e.From, e.Name = "file_offer", "", f.Peer, peer
	case conn.FileOffered:
		e.Ev, e.Peer, e.To = "file_offered", "", f.Peer
	case conn.FileStarted:
		e.Ev = "file_started"
	case conn.FileProgress:
		e.Ev, e.Done = "file_progress", u64p(s.Done)
		if s.Rate > 0 {
			rate := s.Rate
			left := float64(s.Size-min(s.Done, s.Size)) / s.Rate
			e.Rate, e.LeftS = &rate, &left
		}
	case conn.FileDone:
		e.Ev, e.Done, e.Words = "file_done", u64p(s.Size), fileDoneWords(peer, s)
		if !s.Outgoing {
			e.Path = sanitizeLine(s.Path)
		}
	case conn.FileFailed:
		e.Ev, e.Reason, e.ByPeer, e.Words = "file_failed", reasonToken(s.Reason), boolp(s.ByPeer), fileFailWords(peer, s)
	}
	o.emit(e)
}

func u64p(v uint64) *uint64 { return &v }

// reasonToken names a transfer's failure for scripts to branch on.
func reasonToken(r transfer.Reason) string {
	switch r {
	case transfer.ReasonDeclined:
		return "declined"
	case transfer.ReasonCancelled:
		return "cancelled"
	case transfer.ReasonSourceUnreadable:
		return "source-unreadable"
	case transfer.ReasonSourceChanged:
		return "source-changed"
	case transfer.ReasonNoSpace:
		return "no-space"
	case transfer.ReasonWriteFailed:
		return "write-failed"
	case transfer.ReasonBadChunk:
		return "bad-chunk"
	case transfer.ReasonHashMismatch:
		return "hash-mismatch"
	case transfer.ReasonProtocol:
		return "protocol"
	case transfer.ReasonUnknownTransfer:
		return "unknown-transfer"
	case transfer.ReasonTooManyOffers:
		return "too-many-offers"
	case transfer.ReasonBadOffer:
		return "bad-offer"
	}
	return fmt.Sprintf("reason%d", uint8(r))
}

func (o *jsonObserver) problem(words string) { o.emit(Event{Ev: "error", Words: words}) }
func (o *jsonObserver) note(words string)    { o.emit(Event{Ev: "note", Words: words}) }
func (o *jsonObserver) opened(string)        {}
func (o *jsonObserver) focus(string)         {}
func (o *jsonObserver) setNAT(string)        {}

func addrOrEmpty(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func rfc3339Nano(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
