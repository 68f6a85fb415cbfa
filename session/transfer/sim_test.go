package transfer

import (
	"bytes"
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/punch/sansio"
	"github.com/p2ptui/p2ptui/session"
	"golang.org/x/crypto/curve25519"
)

// A seeded simulation of two peers, each with a session machine, a
// transfer machine and a Files executor on a real temporary directory,
// over a lossy, duplicating, reordering link driven by a fake clock. The
// harness plays the connection machine: it makes sessions, hands them to
// the transfer machines, routes stream events, runs effects and feeds
// their results back (each transfer's in order, after a random delay, as a
// disk would), and can drop the path, switch it, or restart either side.

var simEpoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// memStore is a RecordStore in memory that keeps records encoded, so every
// restart goes through MarshalBinary and UnmarshalBinary.
type memStore struct {
	mu   sync.Mutex
	recs map[Key][]byte
}

func newMemStore() *memStore { return &memStore{recs: map[Key][]byte{}} }

func (s *memStore) PutTransfer(r Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[r.key()] = b
	return nil
}

func (s *memStore) DeleteTransfer(k Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.recs, k)
	return nil
}

func (s *memStore) records(t testing.TB, peer [32]byte) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for k, b := range s.recs {
		if k.Peer != peer {
			continue
		}
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			t.Fatalf("stored record %s does not decode: %v", k.ID, err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

func simKeyPair(t testing.TB, seed byte) (priv, pub [32]byte) {
	t.Helper()
	for i := range priv {
		priv[i] = seed + byte(i)*7
	}
	p, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], p)
	return priv, pub
}

func chacha(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

type simPacket struct {
	at  time.Time
	ord int
	to  int
	gen int // the session pair it belongs to
	b   []byte
}

type simQueue []simPacket

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].ord < q[j].ord
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(simPacket)) }
func (q *simQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

type simPeer struct {
	priv, pub [32]byte
	store     *memStore
	files     *Files
	tm        *Machine
	sess      *session.Machine
	up        bool // tm has the session
	dir       string
	// busy is when each transfer's "disk" is free: results of one
	// transfer come back in order.
	busy map[Key]time.Time
	life int // restarts: results of a previous life are dropped
}

type simTask struct {
	at time.Time
	fn func()
}

type tsim struct {
	t        testing.TB
	rng      *rand.Rand
	now      time.Time
	loss     float64
	dup      float64
	reorder  float64
	delay    time.Duration
	jitter   time.Duration
	blackout time.Time // until then every datagram is lost (a path switch)
	q        simQueue
	ord      int
	gen      int
	p        [2]*simPeer
	tasks    []simTask
	onEvent  func(peer int, ev Event)
	steps    int
	// read counts the bytes senders read per transfer, resumes the
	// resume points they checked (ACCEPT past chunk 0).
	read    map[ID]uint64
	resumes map[ID]int
	// tamper, if set, may change a result before the machine sees it.
	tamper func(peer int, r Result) Result
	// chat counts chat messages received per peer.
	chat [2]int
	// log keeps every transfer event per peer.
	log [2][]Event
	// wrap, if set, stands between a peer's transfer machine and its
	// session (a lying peer).
	wrap [2]func(Streams) Streams
}

// rewriteStreams rewrites what a transfer machine sends.
type rewriteStreams struct {
	Streams
	rewrite func(body []byte) []byte
}

func (r rewriteStreams) SendStream(now time.Time, id session.StreamID, body []byte) (uint64, error) {
	return r.Streams.SendStream(now, id, r.rewrite(body))
}

func newTsim(t testing.TB, seed uint64, loss float64) *tsim {
	s := &tsim{t: t, rng: rand.New(rand.NewPCG(seed, 7)), now: simEpoch, loss: loss, dup: 0.02,
		reorder: 0.05, delay: 20 * time.Millisecond, jitter: 20 * time.Millisecond,
		read: map[ID]uint64{}, resumes: map[ID]int{}}
	for i := range s.p {
		priv, pub := simKeyPair(t, byte(i+1))
		s.p[i] = &simPeer{priv: priv, pub: pub, store: newMemStore(), dir: filepath.Join(t.TempDir(), "downloads"),
			busy: map[Key]time.Time{}}
	}
	for i := range s.p {
		s.startPeer(i)
	}
	return s
}

// startPeer (re)builds peer i's transfer machine from its store.
func (s *tsim) startPeer(i int) {
	p := s.p[i]
	other := s.p[1-i].pub
	var err error
	if p.files, err = NewFiles(FilesConfig{Store: p.store}); err != nil {
		s.t.Fatal(err)
	}
	p.tm, err = NewMachine(Config{Peer: other, Records: p.store.records(s.t, other), Rand: chacha(uint64(1000*i + p.life))})
	if err != nil {
		s.t.Fatal(err)
	}
	p.tm.Start(s.now)
}

// connect makes a new session pair; each side gets it when established.
func (s *tsim) connect() {
	s.gen++
	a, b := s.p[0], s.p[1]
	id := fmt.Sprintf("simsession%04d", s.gen)
	timers := session.Timers{DeadPeerTimeout: time.Hour, HandshakeTimeout: time.Hour}
	var err error
	a.sess, err = session.NewMachine(session.Config{Initiator: true, LocalPrivate: a.priv, LocalPublic: a.pub,
		RemoteStatic: b.pub, SessionID: id, Rand: chacha(uint64(s.gen)), Timers: timers})
	if err != nil {
		s.t.Fatal(err)
	}
	b.sess, err = session.NewMachine(session.Config{LocalPrivate: b.priv, LocalPublic: b.pub,
		RemoteStatic: a.pub, SessionID: id, Rand: chacha(uint64(s.gen) + 500), Timers: timers})
	if err != nil {
		s.t.Fatal(err)
	}
	a.sess.Start(s.now)
	b.sess.Start(s.now)
}

// dropPath loses the session: both sides notice, and a new one comes up
// after pause (as the connection machine re-establishes through
// signalling).
func (s *tsim) dropPath(pause time.Duration) {
	for _, p := range s.p {
		if p.up {
			p.tm.SessionDown(s.now)
			p.up = false
		}
		p.sess = nil
	}
	s.q = s.q[:0]
	s.after(pause, s.connect)
}

// restart kills peer i as a crash would: memory and open files go, and
// what was written after the last checkpoint may be lost or garbled, as
// unsynced pages are after a power cut.
func (s *tsim) restart(i int, pause time.Duration) {
	p := s.p[i]
	s.dropPath(pause)
	p.files.Close()
	p.life++
	p.busy = map[Key]time.Time{}
	for _, r := range p.store.records(s.t, s.p[1-i].pub) {
		if r.Outgoing || r.State != StateActive || r.Temp == "" {
			continue
		}
		s.garbleAfter(r.Temp, int64(r.Next)*int64(r.ChunkSize))
	}
	s.startPeer(i)
}

// garbleAfter overwrites a random part of a file past off and cuts or
// extends it at random.
func (s *tsim) garbleAfter(path string, off int64) {
	st, err := os.Stat(path)
	if err != nil {
		return
	}
	if st.Size() > off {
		junk := make([]byte, s.rng.IntN(int(min(st.Size()-off, 1<<20)))+1)
		for i := range junk {
			junk[i] = byte(s.rng.Uint32())
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		if _, err := f.WriteAt(junk, off+s.rng.Int64N(st.Size()-off)); err != nil {
			s.t.Fatal(err)
		}
		f.Close()
	}
	if err := os.Truncate(path, off+s.rng.Int64N(2<<20)); err != nil {
		s.t.Fatal(err)
	}
}

// switchPath moves the session to another path: a different delay, and a
// moment in which nothing gets through, as when a relay gives way to a
// direct pair.
func (s *tsim) switchPath() {
	s.delay = time.Duration(5+s.rng.IntN(60)) * time.Millisecond
	s.blackout = s.now.Add(time.Duration(100+s.rng.IntN(400)) * time.Millisecond)
}

func (s *tsim) after(d time.Duration, fn func()) {
	s.tasks = append(s.tasks, simTask{at: s.now.Add(d), fn: fn})
}

func (s *tsim) send(from int, b []byte) {
	if s.now.Before(s.blackout) {
		return
	}
	copies := 1
	if s.rng.Float64() < s.dup {
		copies = 2
	}
	for range copies {
		if s.rng.Float64() < s.loss {
			continue
		}
		d := s.delay
		if s.rng.Float64() < s.reorder {
			d += time.Duration(s.rng.Int64N(int64(s.jitter)))
		}
		s.ord++
		heap.Push(&s.q, simPacket{at: s.now.Add(d), ord: s.ord, to: 1 - from, gen: s.gen, b: bytes.Clone(b)})
	}
}

// pump moves everything the machines produced at the current time until
// all are quiet.
func (s *tsim) pump() {
	for busy := true; busy; {
		busy = false
		for i, p := range s.p {
			if p.sess != nil {
				for _, b := range p.sess.Transmits() {
					busy = true
					s.send(i, b)
				}
				for _, ev := range p.sess.Events() {
					busy = true
					s.sessionEvent(i, ev)
				}
			}
			for _, e := range p.tm.Effects() {
				busy = true
				s.effect(i, e)
			}
			for _, ev := range p.tm.Events() {
				busy = true
				s.log[i] = append(s.log[i], ev)
				if s.onEvent != nil {
					s.onEvent(i, ev)
				}
			}
		}
	}
}

func (s *tsim) sessionEvent(i int, ev session.Event) {
	p := s.p[i]
	switch ev := ev.(type) {
	case session.Established:
		var streams Streams = p.sess
		if s.wrap[i] != nil {
			streams = s.wrap[i](streams)
		}
		p.tm.SessionUp(s.now, streams)
		p.up = true
	case session.Failed:
		s.t.Fatalf("peer %d: session failed: %v", i, ev)
	case session.Received:
		s.chat[i]++
		if err := p.sess.Commit(s.now, ev.ID); err != nil {
			s.t.Fatal(err)
		}
	case session.Delivered, session.Typing:
	default:
		if !p.tm.HandleSessionEvent(s.now, ev) {
			s.t.Fatalf("peer %d: unexpected session event %T", i, ev)
		}
	}
}

// effect runs an effect at once and schedules its result after a random
// disk delay, keeping each transfer's results in order.
func (s *tsim) effect(i int, e Effect) {
	p := s.p[i]
	if rc, ok := e.(ReadChunk); ok {
		if rc.HashOnly {
			s.resumes[rc.K.ID]++
		} else {
			s.read[rc.K.ID] += uint64(rc.Len)
		}
	}
	r := p.files.Run(e)
	if r == nil {
		return
	}
	if s.tamper != nil {
		r = s.tamper(i, r)
	}
	k := e.Key()
	at := s.now
	if b := p.busy[k]; b.After(at) {
		at = b
	}
	at = at.Add(time.Duration(s.rng.Int64N(int64(2 * time.Millisecond))))
	p.busy[k] = at
	life := p.life
	s.tasks = append(s.tasks, simTask{at: at, fn: func() {
		if p.life == life {
			p.tm.HandleResult(s.now, r)
		}
	}})
}

// run advances the fake clock from event to event until done or limit.
func (s *tsim) run(done func() bool, limit time.Duration) {
	s.t.Helper()
	end := s.now.Add(limit)
	for {
		s.pump()
		if done() {
			return
		}
		next := time.Time{}
		if len(s.q) > 0 {
			next = s.q[0].at
		}
		for _, p := range s.p {
			if p.sess != nil {
				next = sansio.Earliest(next, p.sess.Deadline())
			}
			next = sansio.Earliest(next, p.tm.Deadline())
		}
		for _, task := range s.tasks {
			next = sansio.Earliest(next, task.at)
		}
		if next.IsZero() {
			s.t.Fatalf("simulation stalled at %v: nothing in flight, no timer\n%s", s.now.Sub(simEpoch), s.dump())
		}
		if next.After(end) {
			s.t.Fatalf("simulation passed its limit of %v", limit)
		}
		if next.After(s.now) {
			s.now = next
		}
		s.steps++
		for len(s.q) > 0 && !s.q[0].at.After(s.now) {
			pk := heap.Pop(&s.q).(simPacket)
			if pk.gen == s.gen && s.p[pk.to].sess != nil {
				s.p[pk.to].sess.HandleDatagram(s.now, pk.b)
			}
		}
		for _, p := range s.p {
			if p.sess != nil && sansio.Due(p.sess.Deadline(), s.now) {
				p.sess.HandleTimeout(s.now)
			}
			if sansio.Due(p.tm.Deadline(), s.now) {
				p.tm.HandleTimeout(s.now)
			}
		}
		var due []simTask
		rest := s.tasks[:0]
		for _, task := range s.tasks {
			if task.at.After(s.now) {
				rest = append(rest, task)
			} else {
				due = append(due, task)
			}
		}
		s.tasks = rest
		sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
		for _, task := range due {
			task.fn()
		}
	}
}

// simFile writes a file of n pseudo-random bytes and returns its path.
func simFile(t testing.TB, dir, name string, n int64, seed uint64) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, chacha(seed), n); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameFile(t testing.TB, a, b string) {
	t.Helper()
	ha, hb := fileHash(t, a), fileHash(t, b)
	if ha != hb {
		t.Fatalf("%s and %s differ", a, b)
	}
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// simSize draws a file size up to max, log-uniformly, so small and large
// files both come up.
func simSize(rng *rand.Rand, maxSize int64) int64 {
	bits := rng.IntN(27) // up to 64 MiB
	return min(maxSize, rng.Int64N(int64(1)<<bits+1))
}

// TestSimulatedTransfers moves files of random sizes both ways at 0, 10
// and 30% loss while the path drops, switches, and each side restarts
// mid-transfer (losing or garbling what it wrote after its last
// checkpoint); every file must arrive byte for byte, under its own name or
// "name (n)" when taken, and nothing may be left under a temporary name.
func TestSimulatedTransfers(t *testing.T) {
	maxSize := int64(64 << 20)
	if testing.Short() {
		maxSize = 8 << 20
	}
	for _, loss := range []float64{0, 0.10, 0.30} {
		for _, seed := range []uint64{1, 2} {
			t.Run(fmt.Sprintf("loss=%.0f%%/seed=%d", loss*100, seed), func(t *testing.T) {
				simTransfers(t, seed, loss, maxSize)
			})
		}
	}
}

func simTransfers(t *testing.T, seed uint64, loss float64, maxSize int64) {
	s := newTsim(t, seed, loss)
	src := t.TempDir()
	type sent struct {
		from int
		path string
		id   ID
	}
	var files []sent
	// One large file (half to all of maxSize), and a few random ones,
	// some both ways; two share a name, and the receiver already has a
	// file under that name, which must survive.
	sizes := []int64{maxSize/2 + s.rng.Int64N(maxSize/2+1)}
	for range 4 {
		sizes = append(sizes, simSize(s.rng, maxSize))
	}
	sizes = append(sizes, 0) // an empty file
	for n, size := range sizes {
		from := n % 2
		name := fmt.Sprintf("file-%d.bin", n)
		if n == 1 || n == 3 {
			name = "same name.bin"
		}
		path := simFile(t, filepath.Join(src, fmt.Sprint(from), fmt.Sprint(n)), name, size, seed*100+uint64(n))
		files = append(files, sent{from: from, path: path})
	}
	existing := simFile(t, s.p[0].dir, "same name.bin", 1000, 99)
	existingHash := fileHash(t, existing)

	s.onEvent = func(peer int, ev Event) {
		switch ev := ev.(type) {
		case OfferReceived:
			if err := s.p[peer].tm.Accept(s.now, ev.ID, s.p[peer].dir); err != nil {
				t.Fatal(err)
			}
		case Failed:
			t.Fatalf("peer %d: transfer %s failed: %v (%s)", peer, ev.Name, ev.Reason, ev.Detail)
		}
	}
	s.connect()
	for i := range files {
		id, err := s.p[files[i].from].tm.Offer(s.now, files[i].path)
		if err != nil {
			t.Fatal(err)
		}
		files[i].id = id
	}
	bigTotal := uint64(sizes[0])
	progress := func() uint64 {
		st, ok := s.p[1].tm.Transfer(files[0].id)
		if !ok {
			return 0
		}
		return st.Done
	}
	allDone := func() bool {
		for _, f := range files {
			for side := range 2 {
				st, ok := s.p[side].tm.Transfer(f.id)
				if !ok || st.State != StateDone {
					return false
				}
			}
		}
		return true
	}
	// Disturb the big transfer at a quarter, half and three quarters.
	var lost uint64 // what the receiver wrote but had not checkpointed when it restarted
	for _, step := range []struct {
		at   uint64
		what func()
	}{
		{bigTotal / 4, func() { s.dropPath(3 * time.Second) }},
		{bigTotal / 2, func() {
			x := s.p[1].tm.xfers[Key{Peer: s.p[0].pub, ID: files[0].id}]
			lost = (x.written - x.rec.Next) * uint64(x.rec.ChunkSize)
			s.restart(1, 2*time.Second)
		}},
		{bigTotal * 5 / 8, func() { s.switchPath() }},
		{bigTotal * 3 / 4, func() { s.restart(0, time.Second) }},
	} {
		s.run(func() bool { return progress() >= step.at && s.p[0].up && s.p[1].up || allDone() }, 24*time.Hour)
		if allDone() {
			t.Fatalf("everything finished before the disturbance at %d of %d bytes", step.at, bigTotal)
		}
		step.what()
	}
	s.run(allDone, 24*time.Hour)
	big := files[0].id
	t.Logf("%d files (%d bytes the largest) in %v simulated, %d steps; the largest was read %.2f times over, resumed %d times past chunk 0",
		len(files), bigTotal, s.now.Sub(simEpoch).Round(time.Millisecond), s.steps, float64(s.read[big])/float64(bigTotal), s.resumes[big])
	// The path drop and the sender's restart lose nothing the receiver
	// stored; the receiver's restart loses what it wrote since its last
	// checkpoint; and each of the three costs what was read ahead.
	if s.resumes[big] < 2 {
		t.Errorf("the largest file resumed past chunk 0 %d times, want at least 2 (after the path drop and the sender's restart)", s.resumes[big])
	}
	if limit := bigTotal + lost + 3*(SendAhead+1)*DefaultChunkSize; s.read[big] > limit {
		t.Errorf("the largest file (%d bytes) was read %d bytes' worth, more than %d: resuming repeats too much", bigTotal, s.read[big], limit)
	}

	// Every file arrived intact; the one already there is untouched.
	names := map[string]bool{}
	for _, f := range files {
		to := 1 - f.from
		st, _ := s.p[to].tm.Transfer(f.id)
		if filepath.Dir(st.Path) != s.p[to].dir {
			t.Fatalf("%s saved as %s, outside %s", f.path, st.Path, s.p[to].dir)
		}
		sameFile(t, f.path, st.Path)
		if names[st.Path] {
			t.Fatalf("two files saved as %s", st.Path)
		}
		names[st.Path] = true
	}
	if fileHash(t, existing) != existingHash {
		t.Fatal("the file already in the download folder was overwritten")
	}
	for i, p := range s.p {
		entries, err := os.ReadDir(p.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if filepath.Ext(e.Name()) == ".part" {
				t.Errorf("peer %d: temporary file %s left behind", i, e.Name())
			}
		}
	}
	// Both files called "same name.bin" went to peer 0, which had one.
	clash := map[string]bool{}
	for _, f := range files[1:4:4] {
		if f.from == 1 && filepath.Base(f.path) == "same name.bin" {
			st, _ := s.p[0].tm.Transfer(f.id)
			clash[filepath.Base(st.Path)] = true
		}
	}
	if !clash["same name (1).bin"] || !clash["same name (2).bin"] {
		t.Fatalf("clashing names saved as %v, want \"same name (1).bin\" and \"same name (2).bin\"", clash)
	}
}

// dump describes both sides' transfers, for a failing test.
func (s *tsim) dump() string {
	var b bytes.Buffer
	for i, p := range s.p {
		fmt.Fprintf(&b, "peer %d (up %v, session %v):\n", i, p.up, p.sess != nil)
		for _, k := range p.tm.order {
			x := p.tm.xfers[k]
			fmt.Fprintf(&b, "  %s out=%v %v size=%d done=%d streaming=%v queued=%v verifying=%v delivered=%d nextRead=%d nextSend=%d asked=%v bound=%v expect=%d written=%d writes=%d next=%d restoring=%v finishing=%v\n",
				x.rec.Name, k.Outgoing, x.rec.State, x.rec.Size, x.done, x.streaming, x.queued, x.verifying, x.delivered, x.nextRead, x.nextSend,
				x.asked, x.bound, x.expect, x.written, len(x.writes), x.rec.Next, x.restoring, x.finishing)
		}
	}
	return b.String()
}
