package transfer

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
)

// Streams is the part of a live session a Machine uses; *session.Machine
// implements it.
type Streams interface {
	OpenStream(now time.Time) (session.StreamID, error)
	SendStream(now time.Time, id session.StreamID, body []byte) (uint64, error)
	CommitStream(now time.Time, id session.StreamID, seq uint64) error
	CloseStream(now time.Time, id session.StreamID)
	StopStream(now time.Time, id session.StreamID)
}

// Config describes the transfers with one peer.
type Config struct {
	// Peer is the peer's static public key; it keys every record.
	Peer [32]byte
	// Records are this peer's transfers from the store.
	Records []Record
	// Rand is the source of transfer IDs; nil means crypto/rand.
	Rand io.Reader
	// ChunkSize is the chunk size of our offers; 0 means DefaultChunkSize.
	ChunkSize uint32
}

// Status is a snapshot of one transfer, for the UI.
type Status struct {
	ID       ID
	Outgoing bool
	State    State
	// Name is the file's name as shown: the source's base name, or for
	// an incoming file the sanitised name it will be saved under (before
	// any " (n)" a clash adds).
	Name string
	Size uint64
	// Done is the bytes the receiver has stored; Rate is bytes per second
	// lately (0 when unknown).
	Done uint64
	Rate float64
	Hash [32]byte
	// Path is the source (outgoing) or, once done, the saved file
	// (incoming); Dir is where an accepted incoming file is saved.
	Path string
	Dir  string
	// Reason, ByPeer and Detail explain StateFailed.
	Reason Reason
	ByPeer bool
	Detail string
}

// Event is something the UI shows: OfferReceived, Offered, Started,
// Progress, Completed or Failed, each with the transfer's Status.
type Event interface{ transferEvent() }

// OfferReceived: the peer offers a file; ask the user (Accept, Decline).
// It comes again after a restart for offers still unanswered.
type OfferReceived struct{ Status }

// Offered: our file is hashed and offered to the peer.
type Offered struct{ Status }

// Started: the offer was accepted and data moves (or will, once a path is
// up).
type Started struct{ Status }

// Progress: more of the file is stored at the receiver.
type Progress struct{ Status }

// Completed: the receiver verified the file and saved it (Status.Path on
// the receiving side).
type Completed struct{ Status }

// Failed: the transfer ended without the file; Status says why.
type Failed struct{ Status }

func (OfferReceived) transferEvent() {}
func (Offered) transferEvent()       {}
func (Started) transferEvent()       {}
func (Progress) transferEvent()      {}
func (Completed) transferEvent()     {}
func (Failed) transferEvent()        {}

var _ sansio.Machine = (*Machine)(nil)

// Errors of the intent methods.
var (
	// ErrNoTransfer: no transfer has that ID.
	ErrNoTransfer = errors.New("no such transfer")
	// ErrNotPending: the transfer is not waiting for that answer.
	ErrNotPending = errors.New("the transfer is not waiting for an answer")
	// ErrFinished: the transfer has already ended.
	ErrFinished = errors.New("the transfer has already ended")
)

// Stats counts what a misbehaving peer sent, for logs and tests.
type Stats struct {
	// BadMessages counts control messages and stream hellos that did not
	// parse; they are dropped.
	BadMessages uint64
	// UnknownStreams counts data streams for no transfer we know; they are
	// stopped.
	UnknownStreams uint64
}

// Machine runs every file transfer with one peer; see the package doc. It
// is not safe for concurrent use: the peer's connection machine owns it.
//
// It has no datagrams of its own: it writes into the session it was given
// (SessionUp), so after every call into the Machine the owner drains that
// session's Transmits and Events as after any other session input.
type Machine struct {
	cfg  Config
	rand io.Reader

	xfers map[Key]*xfer
	order []Key // creation order, for Transfers

	s   Streams // the live session, nil when none
	gen uint64  // counts sessions, so results of old ones are recognised
	ctl session.StreamID
	// peer's streams in this session
	peerStreams map[session.StreamID]*peerStream
	// control message seq → the transfer whose final word it carries
	tell      map[uint64]Key
	activeOut int // our data streams open

	effects []Effect
	events  []Event
	stats   Stats
}

type peerStream struct {
	data bool
	key  Key // data streams: the transfer
}

// xfer is one transfer: its record and what only lives in memory.
type xfer struct {
	rec Record

	// Outgoing.
	streaming  bool
	stream     session.StreamID
	first      uint64 // the chunk the data stream starts at
	nextRead   uint64 // next chunk to read
	nextSend   uint64 // next chunk to hand to the stream
	delivered  uint64 // chunks below this are stored at the receiver
	readGen    uint64 // reads of another generation are stale
	verifying  bool   // reading chunk resumeFrom-1 to check the resume point
	queued     bool   // accepted, waiting for a data stream slot
	resumeFrom uint64
	resumeHash [32]byte

	// Incoming.
	restoring bool // ResumeFile outstanding
	asked     bool // ACCEPT sent in this session
	askedFrom uint64
	bound     bool // a data stream for it is open in this session
	inStream  session.StreamID
	expect    uint64 // next chunk expected on the data stream
	writes    []pendingWrite
	written   uint64 // chunks written (rec.Next is the checkpointed count)
	lastHash  [32]byte
	ckptAt    time.Time
	ckptBusy  bool
	finishing bool

	// Progress reports.
	done      uint64
	dirty     bool
	emittedAt time.Time
	rateAt    time.Time
	rateDone  uint64
	rate      float64
}

type pendingWrite struct {
	index  uint64
	seq    uint64 // the chunk's message in the data stream
	gen    uint64
	stream session.StreamID
	hash   [32]byte
}

// NewMachine returns a machine holding cfg.Records; call Start next.
func NewMachine(cfg Config) (*Machine, error) {
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkSize < MinChunkSize || cfg.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("new transfer machine: chunk size %d outside %d..%d", cfg.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	m := &Machine{cfg: cfg, rand: sansio.Rand(cfg.Rand), xfers: map[Key]*xfer{}}
	for _, r := range cfg.Records {
		if r.Peer != cfg.Peer {
			return nil, fmt.Errorf("new transfer machine: record %s belongs to another peer", r.ID)
		}
		if err := r.check(); err != nil {
			return nil, fmt.Errorf("new transfer machine: record %s: %w", r.ID, err)
		}
		k := r.key()
		if m.xfers[k] != nil {
			return nil, fmt.Errorf("new transfer machine: record %s twice", r.ID)
		}
		x := &xfer{rec: r, written: r.Next, lastHash: r.PrevHash}
		x.done = x.storedBytes()
		m.xfers[k] = x
		m.order = append(m.order, k)
	}
	return m, nil
}

// Start picks up the restored transfers: incoming ones reopen their files
// (ResumeFile), unanswered offers are reported again, and finished ones
// past Retention are deleted.
func (m *Machine) Start(now time.Time) {
	for _, k := range append([]Key(nil), m.order...) {
		x := m.xfers[k]
		switch {
		case x.rec.State.Terminal():
			if x.rec.Told && now.Sub(x.rec.Updated) > Retention {
				m.drop(k)
				m.effects = append(m.effects, DeleteRecord{K: k})
			}
		case k.Outgoing:
			// Offered or Active: the next session offers again, and the
			// receiver says where to resume.
		case x.rec.State == StateOffered:
			m.events = append(m.events, OfferReceived{m.status(x)})
		case x.rec.State == StatePreparing:
			m.effects = append(m.effects, CreateFile{K: k, Dir: x.rec.Dir, Name: SafeName(x.rec.Name), Size: x.rec.Size})
		case x.rec.State == StateActive:
			x.restoring = true
			m.effects = append(m.effects, ResumeFile{K: k, Temp: x.rec.Temp, Size: x.rec.Size,
				ChunkSize: x.rec.ChunkSize, Next: x.rec.Next, PrevHash: x.rec.PrevHash})
		}
	}
}

// Offer starts offering the file at path (absolute, or relative to the
// process's directory): it is hashed first (HashFile), then offered in
// the current or next session. The ID names the transfer from now on.
func (m *Machine) Offer(now time.Time, path string) (ID, error) {
	var id ID
	if _, err := io.ReadFull(m.rand, id[:]); err != nil {
		return ID{}, fmt.Errorf("offer %s: transfer id: %w", path, err)
	}
	k := Key{Peer: m.cfg.Peer, Outgoing: true, ID: id}
	x := &xfer{rec: Record{Peer: m.cfg.Peer, ID: id, Outgoing: true, State: StateHashing, Path: path,
		ChunkSize: m.cfg.ChunkSize, Created: now, Updated: now}}
	m.xfers[k] = x
	m.order = append(m.order, k)
	m.effects = append(m.effects, HashFile{K: k, Path: path})
	return id, nil
}

// Accept answers an incoming offer: the file will be saved in dir (created
// if missing), after a check that dir has room for it.
func (m *Machine) Accept(now time.Time, id ID, dir string) error {
	x, err := m.incoming(id)
	if err != nil {
		return err
	}
	if x.rec.State != StateOffered {
		return fmt.Errorf("accept %s: %w", id, ErrNotPending)
	}
	x.rec.State, x.rec.Dir, x.rec.Updated = StatePreparing, dir, now
	m.save(x)
	m.effects = append(m.effects, CreateFile{K: x.rec.key(), Dir: dir, Name: SafeName(x.rec.Name), Size: x.rec.Size})
	return nil
}

// Decline answers an incoming offer with no.
func (m *Machine) Decline(now time.Time, id ID) error {
	x, err := m.incoming(id)
	if err != nil {
		return err
	}
	if x.rec.State != StateOffered {
		return fmt.Errorf("decline %s: %w", id, ErrNotPending)
	}
	m.fail(now, x, ReasonDeclined, false, "")
	return nil
}

// Cancel ends a transfer in either direction that has not ended yet; an
// unanswered incoming offer is declined.
func (m *Machine) Cancel(now time.Time, id ID) error {
	x := m.xfers[Key{Peer: m.cfg.Peer, Outgoing: true, ID: id}]
	if x == nil {
		x = m.xfers[Key{Peer: m.cfg.Peer, ID: id}]
	}
	if x == nil {
		return fmt.Errorf("cancel %s: %w", id, ErrNoTransfer)
	}
	if x.rec.State.Terminal() {
		return fmt.Errorf("cancel %s: %w", id, ErrFinished)
	}
	reason := ReasonCancelled
	if !x.rec.Outgoing && x.rec.State == StateOffered {
		reason = ReasonDeclined
	}
	m.fail(now, x, reason, false, "")
	return nil
}

// Forget removes an ended transfer from the machine and the store.
func (m *Machine) Forget(now time.Time, id ID) error {
	for _, out := range []bool{true, false} {
		k := Key{Peer: m.cfg.Peer, Outgoing: out, ID: id}
		if x := m.xfers[k]; x != nil {
			if !x.rec.State.Terminal() {
				return fmt.Errorf("forget %s: the transfer is still running", id)
			}
			m.drop(k)
			m.effects = append(m.effects, DeleteRecord{K: k})
			return nil
		}
	}
	return fmt.Errorf("forget %s: %w", id, ErrNoTransfer)
}

func (m *Machine) incoming(id ID) (*xfer, error) {
	x := m.xfers[Key{Peer: m.cfg.Peer, ID: id}]
	if x == nil {
		return nil, fmt.Errorf("transfer %s: %w", id, ErrNoTransfer)
	}
	return x, nil
}

func (m *Machine) drop(k Key) {
	delete(m.xfers, k)
	for i, o := range m.order {
		if o == k {
			m.order = append(m.order[:i], m.order[i+1:]...)
			break
		}
	}
}

// SessionUp hands the machine a newly established session: it opens the
// control stream, offers again what is unanswered, asks for the rest of
// every incoming file and repeats final words the peer may have missed.
func (m *Machine) SessionUp(now time.Time, s Streams) {
	if m.s != nil {
		m.SessionDown(now)
	}
	m.s = s
	m.gen++
	m.peerStreams = map[session.StreamID]*peerStream{}
	m.tell = map[uint64]Key{}
	id, err := s.OpenStream(now)
	if err != nil {
		m.s = nil // a session that cannot open a stream is closed
		return
	}
	m.ctl = id
	if _, err := s.SendStream(now, id, appendHello(nil, hello{})); err != nil {
		m.s = nil
		return
	}
	for _, k := range m.order {
		x := m.xfers[k]
		switch {
		case x.rec.State.Terminal():
			if !x.rec.Told {
				m.sendFinalWord(now, x)
			}
		case k.Outgoing:
			if x.rec.State == StateOffered || x.rec.State == StateActive {
				m.sendOffer(now, x)
			}
		default:
			m.maybeAsk(now, x)
		}
	}
}

// SessionDown tells the machine the session is gone (failed or closed):
// transfers pause where they are until the next SessionUp.
func (m *Machine) SessionDown(now time.Time) {
	if m.s == nil {
		return
	}
	m.s = nil
	m.gen++
	m.peerStreams, m.tell, m.activeOut = nil, nil, 0
	for _, k := range m.order {
		x := m.xfers[k]
		x.streaming, x.verifying, x.queued, x.asked, x.bound = false, false, false, false, false
		x.readGen++
		if !k.Outgoing && x.rec.State == StateActive {
			m.checkpoint(now, x, true)
		}
	}
}

// Close prepares for the program's exit: progress is made durable and
// files are closed. The machine must not be used afterwards.
func (m *Machine) Close(now time.Time) {
	m.SessionDown(now)
	for _, k := range m.order {
		x := m.xfers[k]
		if !k.Outgoing && x.rec.State == StateActive {
			m.checkpoint(now, x, true)
		}
		m.effects = append(m.effects, CloseFile{K: k})
	}
}

// HandleSessionEvent takes the session's stream events (StreamReceived,
// StreamDelivered, StreamStopped) and reports whether ev was one; the
// owner passes every session event and handles the rest itself.
func (m *Machine) HandleSessionEvent(now time.Time, ev session.Event) bool {
	switch ev := ev.(type) {
	case session.StreamReceived:
		if m.s != nil {
			m.streamReceived(now, ev)
		}
	case session.StreamDelivered:
		if m.s != nil {
			m.streamDelivered(now, ev)
		}
	case session.StreamStopped:
		if m.s != nil {
			m.streamStopped(now, ev.Stream)
		}
	default:
		return false
	}
	return true
}

func (m *Machine) streamReceived(now time.Time, ev session.StreamReceived) {
	ps := m.peerStreams[ev.Stream]
	if ev.Seq == 0 {
		h, err := parseHello(ev.Body)
		if err != nil || ps != nil {
			m.stats.BadMessages++
			m.stopPeerStream(now, ev.Stream)
			return
		}
		m.commit(now, ev.Stream, 0)
		if !h.data {
			m.peerStreams[ev.Stream] = &peerStream{}
			return
		}
		m.dataHello(now, ev.Stream, h)
		return
	}
	if ps == nil {
		m.stopPeerStream(now, ev.Stream)
		return
	}
	if !ps.data {
		var c control
		if err := parseControl(ev.Body, &c); err != nil {
			m.stats.BadMessages++
		} else {
			m.handleControl(now, &c)
		}
		m.commit(now, ev.Stream, ev.Seq)
		return
	}
	x := m.xfers[ps.key]
	if x == nil || !x.bound || x.inStream != ev.Stream {
		m.stopPeerStream(now, ev.Stream)
		return
	}
	m.chunk(now, x, ev)
}

func (m *Machine) commit(now time.Time, id session.StreamID, seq uint64) {
	_ = m.s.CommitStream(now, id, seq) // fails only when the session did
}

func (m *Machine) stopPeerStream(now time.Time, id session.StreamID) {
	delete(m.peerStreams, id)
	m.s.StopStream(now, id)
}

// dataHello binds a data stream of the peer to the incoming transfer it
// names, if we asked for exactly that.
func (m *Machine) dataHello(now time.Time, id session.StreamID, h hello) {
	k := Key{Peer: m.cfg.Peer, ID: h.id}
	x := m.xfers[k]
	if x == nil {
		m.stats.UnknownStreams++
		m.stopPeerStream(now, id)
		return
	}
	if x.rec.State != StateActive || !x.asked || x.bound || h.first != x.askedFrom {
		m.stopPeerStream(now, id)
		if !x.rec.State.Terminal() {
			m.fail(now, x, ReasonProtocol, false,
				fmt.Sprintf("file data from chunk %d arrived that was not asked for", h.first))
		}
		return
	}
	m.peerStreams[id] = &peerStream{data: true, key: k}
	x.bound, x.inStream, x.expect = true, id, h.first
}

// chunk checks one chunk against the offer and hands it to be written; the
// stream message is committed once it is on disk.
func (m *Machine) chunk(now time.Time, x *xfer, ev session.StreamReceived) {
	h, data, err := parseChunk(ev.Body)
	n := x.rec.Chunks()
	switch {
	case err != nil:
		err = fmt.Errorf("a damaged chunk message: %w", err)
	case h.index >= n:
		err = fmt.Errorf("chunk %d, beyond the %d chunks of the offered %d bytes", h.index, n, x.rec.Size)
	case h.index != x.expect:
		err = fmt.Errorf("chunk %d where chunk %d was due", h.index, x.expect)
	case len(data) != x.rec.chunkLen(h.index):
		err = fmt.Errorf("chunk %d of %d bytes, want %d", h.index, len(data), x.rec.chunkLen(h.index))
	}
	if err != nil {
		m.fail(now, x, ReasonProtocol, false, err.Error())
		return
	}
	x.expect++
	x.writes = append(x.writes, pendingWrite{index: h.index, seq: ev.Seq, gen: m.gen, stream: ev.Stream, hash: h.hash})
	m.effects = append(m.effects, WriteChunk{K: x.rec.key(), Gen: m.gen, Temp: x.rec.Temp, Index: h.index,
		Offset: int64(h.index) * int64(x.rec.ChunkSize), Data: data, Hash: h.hash})
}

func (m *Machine) streamDelivered(now time.Time, ev session.StreamDelivered) {
	if ev.Stream == m.ctl {
		for seq, k := range m.tell {
			if seq > ev.Seq {
				continue
			}
			delete(m.tell, seq)
			if x := m.xfers[k]; x != nil && x.rec.State.Terminal() && !x.rec.Told {
				x.rec.Told = true
				m.save(x)
			}
		}
		return
	}
	x := m.sending(ev.Stream)
	if x == nil {
		return
	}
	// Message 0 is the hello; message i is chunk first+i-1.
	if d := x.first + ev.Seq; d > x.delivered {
		x.delivered = d
		x.done = min(d*uint64(x.rec.ChunkSize), x.rec.Size)
		m.progress(now, x)
	}
	if x.delivered == x.rec.Chunks() {
		m.stopSending(now, x) // everything stored: wait for DONE
		return
	}
	m.pump(x)
}

func (m *Machine) streamStopped(now time.Time, id session.StreamID) {
	// The receiver ended the stream: it finished, or gave up and says why
	// on the control stream, whose word decides.
	if x := m.sending(id); x != nil {
		x.streaming = false
		x.readGen++
		m.activeOut--
		m.startQueued(now)
	}
}

func (m *Machine) sending(id session.StreamID) *xfer {
	for _, k := range m.order {
		if x := m.xfers[k]; k.Outgoing && x.streaming && x.stream == id {
			return x
		}
	}
	return nil
}

// handleControl applies one control message from the peer.
func (m *Machine) handleControl(now time.Time, c *control) {
	out := m.xfers[Key{Peer: m.cfg.Peer, Outgoing: true, ID: c.id}]
	in := m.xfers[Key{Peer: m.cfg.Peer, ID: c.id}]
	switch c.kind {
	case msgOffer:
		m.offerReceived(now, c, in)
	case msgAccept:
		if out == nil {
			m.sendControl(now, &control{kind: msgCancel, id: c.id, reason: ReasonUnknownTransfer})
			return
		}
		m.accepted(now, out, c)
	case msgDecline:
		if out != nil && (out.rec.State == StateOffered || out.rec.State == StateActive) {
			m.fail(now, out, ReasonDeclined, true, "")
		}
	case msgCancel:
		reason := c.reason
		if reason == 0 || reason > reasonLast {
			reason = ReasonCancelled
		}
		for _, x := range []*xfer{out, in} {
			if x != nil && !x.rec.State.Terminal() && x.rec.State != StateHashing {
				m.fail(now, x, reason, true, "")
			}
		}
	case msgDone:
		// An empty file is done without ever being asked for.
		if out != nil && (out.rec.State == StateActive || out.rec.State == StateOffered) {
			m.stopSending(now, out)
			out.rec.State, out.rec.Told, out.rec.Updated = StateDone, true, now
			out.done = out.rec.Size
			m.save(out)
			m.effects = append(m.effects, CloseFile{K: out.rec.key()})
			m.events = append(m.events, Completed{m.status(out)})
		}
	default:
		m.stats.BadMessages++
	}
}

func (m *Machine) offerReceived(now time.Time, c *control, x *xfer) {
	if x != nil {
		// Offered again: the peer missed our answer, or lost its own
		// record. Repeat a final word; anything else is under way.
		if x.rec.State.Terminal() {
			m.sendFinalWord(now, x)
		}
		return
	}
	var reason Reason
	switch {
	case c.size > MaxFileSize || c.chunkSize < MinChunkSize || c.chunkSize > MaxChunkSize:
		reason = ReasonBadOffer
	case m.pendingOffers() >= MaxPendingOffers:
		reason = ReasonTooManyOffers
	}
	if reason != 0 {
		m.sendControl(now, &control{kind: msgCancel, id: c.id, reason: reason})
		return
	}
	k := Key{Peer: m.cfg.Peer, ID: c.id}
	x = &xfer{rec: Record{Peer: m.cfg.Peer, ID: c.id, State: StateOffered, Name: c.name, Size: c.size,
		ChunkSize: c.chunkSize, Hash: c.hash, Created: now, Updated: now}}
	m.xfers[k] = x
	m.order = append(m.order, k)
	m.save(x)
	m.events = append(m.events, OfferReceived{m.status(x)})
}

func (m *Machine) pendingOffers() int {
	n := 0
	for k, x := range m.xfers {
		if !k.Outgoing && x.rec.State == StateOffered {
			n++
		}
	}
	return n
}

// accepted handles ACCEPT for one of our offers: a first answer or a
// resume point. A resume point past chunk 0 is checked against our file
// first.
func (m *Machine) accepted(now time.Time, x *xfer, c *control) {
	switch x.rec.State {
	case StateOffered, StateActive:
	case StateFailed:
		if !x.rec.ByPeer {
			m.sendFinalWord(now, x)
		}
		return
	default:
		return
	}
	if c.first > x.rec.Chunks() {
		m.fail(now, x, ReasonProtocol, false, fmt.Sprintf("asked to resume at chunk %d of %d", c.first, x.rec.Chunks()))
		return
	}
	if x.rec.State == StateOffered {
		x.rec.State, x.rec.Updated = StateActive, now
		m.save(x)
		m.events = append(m.events, Started{m.status(x)})
	}
	m.stopSending(now, x)
	x.resumeFrom, x.resumeHash = c.first, c.hash
	x.delivered = c.first
	x.done = min(c.first*uint64(x.rec.ChunkSize), x.rec.Size)
	m.progress(now, x)
	if c.first == 0 {
		m.startSending(now, x)
		return
	}
	x.verifying = true
	x.readGen++
	m.effects = append(m.effects, m.read(x, c.first-1, true))
}

func (m *Machine) read(x *xfer, i uint64, hashOnly bool) ReadChunk {
	return ReadChunk{K: x.rec.key(), Gen: x.readGen, Path: x.rec.Path, Size: x.rec.Size, Index: i,
		Offset: int64(i) * int64(x.rec.ChunkSize), Len: x.rec.chunkLen(i), HashOnly: hashOnly}
}

// startSending opens the data stream from x.resumeFrom, or queues x when
// MaxActiveStreams are busy.
func (m *Machine) startSending(now time.Time, x *xfer) {
	from := x.resumeFrom
	if from == x.rec.Chunks() {
		return // the receiver has it all; DONE will come
	}
	if m.activeOut >= MaxActiveStreams {
		x.queued = true
		return
	}
	id, err := m.s.OpenStream(now)
	if err == nil {
		_, err = m.s.SendStream(now, id, appendHello(nil, hello{data: true, id: x.rec.ID, first: from}))
	}
	if err != nil {
		x.queued = true // the session is closing, or full: retry later
		return
	}
	m.activeOut++
	x.queued = false
	x.streaming, x.stream = true, id
	x.first, x.nextRead, x.nextSend, x.delivered = from, from, from, from
	x.readGen++
	m.pump(x)
}

// pump reads ahead while fewer than SendAhead chunks are read, queued or
// in flight.
func (m *Machine) pump(x *xfer) {
	for x.streaming && x.nextRead < x.rec.Chunks() && x.nextRead-x.delivered < SendAhead {
		m.effects = append(m.effects, m.read(x, x.nextRead, false))
		x.nextRead++
	}
}

// stopSending closes x's data stream, if any, and gives its slot away.
func (m *Machine) stopSending(now time.Time, x *xfer) {
	x.verifying, x.queued = false, false
	x.readGen++
	if !x.streaming {
		return
	}
	x.streaming = false
	if m.s != nil {
		m.s.CloseStream(now, x.stream)
	}
	m.activeOut--
	m.startQueued(now)
}

func (m *Machine) startQueued(now time.Time) {
	for _, k := range m.order {
		if m.activeOut >= MaxActiveStreams || m.s == nil {
			return
		}
		if x := m.xfers[k]; x.queued {
			m.startSending(now, x)
		}
	}
}

// maybeAsk sends ACCEPT for an incoming transfer when it is ready to take
// data in this session: not restoring, no writes of an earlier session
// outstanding, not complete.
func (m *Machine) maybeAsk(now time.Time, x *xfer) {
	if m.s == nil || x.rec.State != StateActive || x.asked || x.restoring || x.finishing || len(x.writes) > 0 ||
		x.written == x.rec.Chunks() {
		return
	}
	x.asked, x.askedFrom = true, x.written
	m.sendControl(now, &control{kind: msgAccept, id: x.rec.ID, first: x.written, hash: x.lastHash})
}

// HandleResult applies the result of an effect.
func (m *Machine) HandleResult(now time.Time, r Result) {
	x := m.xfers[r.Key()]
	if x == nil {
		return // forgotten meanwhile
	}
	switch r := r.(type) {
	case Hashed:
		m.hashed(now, x, r)
	case ChunkRead:
		m.chunkRead(now, x, r)
	case Created:
		m.created(now, x, r)
	case Resumed:
		m.resumed(now, x, r)
	case Written:
		m.written(now, x, r)
	case Checkpointed:
		x.ckptBusy = false
		if r.Err != nil && x.rec.State == StateActive {
			m.fail(now, x, ioReason(r.Err, ReasonWriteFailed), false, r.Err.Error())
		}
	case Finished:
		m.finished(now, x, r)
	case Done:
		// Nothing waits for these; a failed store write leaves the record
		// behind the machine, which the next successful save repairs.
	}
}

func (m *Machine) hashed(now time.Time, x *xfer, r Hashed) {
	if x.rec.State != StateHashing {
		return // cancelled meanwhile
	}
	if r.Err == nil && r.Size > MaxFileSize {
		r.Err = fmt.Errorf("%s is larger than %s", x.rec.Path, formatBytes(MaxFileSize))
	}
	if r.Err != nil {
		x.rec.Told = true // the peer never heard of it
		m.fail(now, x, ReasonSourceUnreadable, false, r.Err.Error())
		return
	}
	x.rec.Path, x.rec.Name, x.rec.Size, x.rec.Hash = r.Path, r.Name, r.Size, r.Hash
	x.rec.State, x.rec.Updated = StateOffered, now
	m.save(x)
	m.events = append(m.events, Offered{m.status(x)})
	if m.s != nil {
		m.sendOffer(now, x)
	}
}

func (m *Machine) chunkRead(now time.Time, x *xfer, r ChunkRead) {
	if r.Gen != x.readGen || x.rec.State != StateActive {
		return // from a stream that is gone
	}
	if r.Err != nil {
		m.fail(now, x, ioReason(r.Err, ReasonSourceUnreadable), false, r.Err.Error())
		return
	}
	if r.HashOnly {
		if !x.verifying || r.Index+1 != x.resumeFrom {
			return
		}
		x.verifying = false
		if r.Hash != x.resumeHash {
			m.fail(now, x, ReasonSourceChanged, false,
				fmt.Sprintf("chunk %d differs from what the receiver stored", r.Index))
			return
		}
		m.startSending(now, x)
		return
	}
	if !x.streaming || r.Index != x.nextSend {
		return
	}
	if _, err := m.s.SendStream(now, x.stream, r.Msg); err != nil {
		return // the session is failing; SessionDown follows
	}
	x.nextSend++
}

func (m *Machine) created(now time.Time, x *xfer, r Created) {
	if x.rec.State != StatePreparing {
		if r.Err == nil {
			m.effects = append(m.effects, RemoveFile{K: r.K, Temp: r.Temp})
		}
		return
	}
	if r.Err != nil {
		m.fail(now, x, ioReason(r.Err, ReasonWriteFailed), false, r.Err.Error())
		return
	}
	x.rec.Temp, x.rec.State, x.rec.Updated = r.Temp, StateActive, now
	x.rec.Next, x.written, x.ckptAt = 0, 0, now
	m.save(x)
	m.events = append(m.events, Started{m.status(x)})
	if x.rec.Chunks() == 0 {
		m.finish(x)
		return
	}
	m.maybeAsk(now, x)
}

func (m *Machine) resumed(now time.Time, x *xfer, r Resumed) {
	if x.rec.State != StateActive || !x.restoring {
		return
	}
	x.restoring = false
	if r.Err != nil {
		m.fail(now, x, ioReason(r.Err, ReasonWriteFailed), false, r.Err.Error())
		return
	}
	if r.Next != x.rec.Next {
		x.rec.Next, x.rec.PrevHash = r.Next, [32]byte{}
		m.save(x)
	}
	x.written, x.lastHash, x.ckptAt = x.rec.Next, x.rec.PrevHash, now
	x.done = x.storedBytes()
	if x.written == x.rec.Chunks() {
		m.finish(x)
		return
	}
	m.maybeAsk(now, x)
}

func (m *Machine) written(now time.Time, x *xfer, r Written) {
	if len(x.writes) == 0 || x.writes[0].index != r.Index {
		return // for a transfer that failed meanwhile
	}
	w := x.writes[0]
	x.writes = x.writes[1:]
	if x.rec.State != StateActive {
		return
	}
	if r.Err != nil {
		m.fail(now, x, ioReason(r.Err, ReasonWriteFailed), false, r.Err.Error())
		return
	}
	x.written++
	x.lastHash = w.hash
	x.done = x.storedBytes()
	if m.s != nil && w.gen == m.gen && x.bound && x.inStream == w.stream {
		m.commit(now, w.stream, w.seq)
	}
	m.progress(now, x)
	if x.written == x.rec.Chunks() {
		m.finish(x)
		return
	}
	m.checkpoint(now, x, false)
	m.maybeAsk(now, x)
}

// checkpoint makes the chunks written so far durable when enough
// accumulated (or at once when force is set).
func (m *Machine) checkpoint(now time.Time, x *xfer, force bool) {
	if x.ckptBusy || x.written == x.rec.Next || x.restoring {
		return
	}
	due := (x.written-x.rec.Next)*uint64(x.rec.ChunkSize) >= CheckpointBytes || now.Sub(x.ckptAt) >= CheckpointInterval
	if !force && !due {
		return
	}
	// Effects of one transfer run in order, so every later save of the
	// record comes after this one has synced the data it counts.
	x.rec.Next, x.rec.PrevHash, x.rec.Updated = x.written, x.lastHash, now
	x.ckptAt, x.ckptBusy = now, true
	m.effects = append(m.effects, Checkpoint{Record: x.rec})
}

func (m *Machine) finish(x *xfer) {
	x.finishing = true
	m.effects = append(m.effects, FinishFile{K: x.rec.key(), Temp: x.rec.Temp, Dir: x.rec.Dir,
		Name: SafeName(x.rec.Name), Size: x.rec.Size, Hash: x.rec.Hash})
}

func (m *Machine) finished(now time.Time, x *xfer, r Finished) {
	if x.rec.State == StateFailed && r.Err == nil {
		// Cancelled while the file was being verified and named: the
		// file under its final name is ours, and unwanted.
		m.effects = append(m.effects, RemoveFile{K: r.K, Temp: r.Path})
		return
	}
	if x.rec.State != StateActive || !x.finishing {
		return
	}
	x.finishing = false
	if r.Err != nil {
		x.rec.Temp = "" // FinishFile removed it
		m.fail(now, x, ioReason(r.Err, ReasonWriteFailed), false, r.Err.Error())
		return
	}
	m.unbind(now, x)
	x.rec.State, x.rec.Final, x.rec.Temp, x.rec.Updated = StateDone, r.Path, "", now
	x.rec.Next, x.rec.PrevHash = x.rec.Chunks(), x.lastHash
	x.done = x.rec.Size
	m.save(x)
	m.events = append(m.events, Completed{m.status(x)})
	m.sendFinalWord(now, x)
}

// unbind stops the peer's data stream of an incoming transfer.
func (m *Machine) unbind(now time.Time, x *xfer) {
	if x.bound && m.s != nil {
		m.stopPeerStream(now, x.inStream)
	}
	x.bound = false
}

// fail ends a transfer: its streams stop, an incoming partial file is
// removed, the record says why, and the peer is told unless it was the
// one who ended it.
func (m *Machine) fail(now time.Time, x *xfer, reason Reason, byPeer bool, detail string) {
	k := x.rec.key()
	wasHashing := x.rec.State == StateHashing
	if k.Outgoing {
		m.stopSending(now, x)
	} else {
		m.unbind(now, x)
		x.writes = nil
		if x.rec.Temp != "" {
			m.effects = append(m.effects, RemoveFile{K: k, Temp: x.rec.Temp})
			x.rec.Temp = ""
		}
	}
	m.effects = append(m.effects, CloseFile{K: k})
	x.finishing, x.restoring = false, false
	x.rec.State, x.rec.Reason, x.rec.ByPeer, x.rec.Detail, x.rec.Updated = StateFailed, reason, byPeer, detail, now
	if byPeer || wasHashing {
		x.rec.Told = true
	}
	if !wasHashing {
		m.save(x)
	}
	m.events = append(m.events, Failed{m.status(x)})
	if !x.rec.Told {
		m.sendFinalWord(now, x)
	}
}

func (m *Machine) sendOffer(now time.Time, x *xfer) {
	m.sendControl(now, &control{kind: msgOffer, id: x.rec.ID, size: x.rec.Size, chunkSize: x.rec.ChunkSize,
		hash: x.rec.Hash, name: truncateName(x.rec.Name, MaxWireName)})
}

// sendFinalWord tells the peer how a transfer ended (DONE, DECLINE or
// CANCEL) and marks it told once the message is delivered.
func (m *Machine) sendFinalWord(now time.Time, x *xfer) {
	c := &control{kind: msgCancel, id: x.rec.ID, reason: x.rec.Reason}
	switch {
	case x.rec.State == StateDone && !x.rec.Outgoing:
		c.kind = msgDone
	case x.rec.State == StateDone:
		return // DONE is the receiver's word
	case x.rec.Reason == ReasonDeclined && !x.rec.Outgoing:
		c.kind = msgDecline
	}
	if seq, ok := m.sendControl(now, c); ok {
		m.tell[seq] = x.rec.key()
	}
}

func (m *Machine) sendControl(now time.Time, c *control) (uint64, bool) {
	if m.s == nil {
		return 0, false
	}
	seq, err := m.s.SendStream(now, m.ctl, appendControl(nil, c))
	return seq, err == nil
}

func (m *Machine) save(x *xfer) {
	if x.rec.State != StateHashing {
		m.effects = append(m.effects, SaveRecord{Record: x.rec})
	}
	if x.rec.State.Terminal() {
		m.pruneFinished()
	}
}

// pruneFinished forgets the oldest ended transfers beyond MaxFinished.
func (m *Machine) pruneFinished() {
	n := 0
	for _, x := range m.xfers {
		if x.rec.State.Terminal() {
			n++
		}
	}
	for i := 0; n > MaxFinished && i < len(m.order); {
		k := m.order[i]
		if x := m.xfers[k]; x.rec.State.Terminal() && x.rec.Told {
			m.drop(k)
			m.effects = append(m.effects, DeleteRecord{K: k})
			n--
			continue
		}
		i++
	}
}

// ioReason maps an effect's error to the reason the peer is told.
func ioReason(err error, otherwise Reason) Reason {
	switch {
	case errors.Is(err, ErrNoSpace):
		return ReasonNoSpace
	case errors.Is(err, ErrSourceChanged):
		return ReasonSourceChanged
	case errors.Is(err, ErrChunkHash):
		return ReasonBadChunk
	case errors.Is(err, ErrFileHash):
		return ReasonHashMismatch
	}
	return otherwise
}

// progress reports x's progress, at most every ProgressInterval (the
// rest at Deadline), and the moment the last byte is stored at once.
func (m *Machine) progress(now time.Time, x *xfer) {
	x.dirty = true
	if now.Sub(x.emittedAt) >= ProgressInterval || x.done == x.rec.Size {
		m.emitProgress(now, x)
	}
}

func (m *Machine) emitProgress(now time.Time, x *xfer) {
	x.dirty = false
	x.emittedAt = now
	if dt := now.Sub(x.rateAt).Seconds(); !x.rateAt.IsZero() && dt > 0 && x.done >= x.rateDone {
		inst := float64(x.done-x.rateDone) / dt
		if x.rate == 0 {
			x.rate = inst
		} else {
			x.rate = 0.7*x.rate + 0.3*inst
		}
	}
	x.rateAt, x.rateDone = now, x.done
	m.events = append(m.events, Progress{m.status(x)})
}

// HandleTimeout reports progress held back by ProgressInterval.
func (m *Machine) HandleTimeout(now time.Time) {
	for _, k := range m.order {
		x := m.xfers[k]
		if x.dirty && !now.Before(x.emittedAt.Add(ProgressInterval)) {
			if x.rec.State == StateActive {
				m.emitProgress(now, x)
			} else {
				x.dirty = false
			}
		}
	}
}

// Deadline is when HandleTimeout must next be called; zero means never.
func (m *Machine) Deadline() time.Time {
	var d time.Time
	for _, x := range m.xfers {
		if x.dirty {
			d = sansio.Earliest(d, x.emittedAt.Add(ProgressInterval))
		}
	}
	return d
}

// Effects returns the file and store work to do, in order, and forgets it.
func (m *Machine) Effects() []Effect {
	e := m.effects
	m.effects = nil
	return e
}

// Events returns what happened since the last call.
func (m *Machine) Events() []Event {
	e := m.events
	m.events = nil
	return e
}

// Stats returns the counters of misbehaviour.
func (m *Machine) Stats() Stats { return m.stats }

// Transfers returns every transfer the machine holds, oldest first.
func (m *Machine) Transfers() []Status {
	out := make([]Status, 0, len(m.order))
	for _, k := range m.order {
		out = append(out, m.status(m.xfers[k]))
	}
	return out
}

// Transfer returns one transfer's status.
func (m *Machine) Transfer(id ID) (Status, bool) {
	for _, out := range []bool{true, false} {
		if x := m.xfers[Key{Peer: m.cfg.Peer, Outgoing: out, ID: id}]; x != nil {
			return m.status(x), true
		}
	}
	return Status{}, false
}

func (m *Machine) status(x *xfer) Status {
	s := Status{ID: x.rec.ID, Outgoing: x.rec.Outgoing, State: x.rec.State, Name: x.rec.Name, Size: x.rec.Size,
		Done: x.done, Rate: x.rate, Hash: x.rec.Hash, Path: x.rec.Path,
		Reason: x.rec.Reason, ByPeer: x.rec.ByPeer, Detail: x.rec.Detail}
	if !x.rec.Outgoing {
		s.Name, s.Path, s.Dir = SafeName(x.rec.Name), x.rec.Final, x.rec.Dir
	}
	if x.rec.State != StateActive {
		s.Rate = 0
	}
	return s
}

// storedBytes is how much of an incoming file is written.
func (x *xfer) storedBytes() uint64 {
	return min(x.written*uint64(x.rec.ChunkSize), x.rec.Size)
}
