package conn

// File transfers in the simulated world: each person has a transfer record
// store that survives restarts, a transfer.Files executor (a new one per
// process) working on a real temporary directory, and FileWork performed
// with a disk's delays, each transfer's effects in order. The scenarios of
// sim_test.go run with files offered both ways across restarts, path loss,
// partitions and signalling outages; every file must arrive byte-identical.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session/transfer"
)

var simFileScenarios = flag.Int("sim.files", 0, "TestSimulatedTransfers: how many seeds (default 60; 16 under -race, 10 with -short)")

// simRecords is a transfer.RecordStore in memory; records are kept
// encoded, so every restart goes through the store's encoding.
type simRecords struct {
	recs map[transfer.Key][]byte
}

func newSimRecords() *simRecords { return &simRecords{recs: map[transfer.Key][]byte{}} }

func (s *simRecords) PutTransfer(r transfer.Record) error {
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	s.recs[transfer.Key{Peer: r.Peer, Outgoing: r.Outgoing, ID: r.ID}] = b
	return nil
}

func (s *simRecords) DeleteTransfer(k transfer.Key) error {
	delete(s.recs, k)
	return nil
}

func (s *simRecords) all(t testing.TB) []transfer.Record {
	out := make([]transfer.Record, 0, len(s.recs))
	for _, b := range s.recs {
		var r transfer.Record
		if err := r.UnmarshalBinary(b); err != nil {
			t.Fatalf("a stored transfer record does not decode: %v", err)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return bytes.Compare(out[i].ID[:], out[j].ID[:]) < 0
	})
	return out
}

func (s *simRecords) records(t testing.TB, peer [32]byte) []transfer.Record {
	return slices.DeleteFunc(s.all(t), func(r transfer.Record) bool { return r.Peer != peer })
}

func (s *simRecords) unfinishedPeers(t testing.TB) [][32]byte {
	var out [][32]byte
	for _, r := range s.all(t) {
		if !r.State.Terminal() && !slices.Contains(out, r.Peer) {
			out = append(out, r.Peer)
		}
	}
	return out
}

// simFiles is one person's file side.
type simFiles struct {
	files *transfer.Files
	free  time.Time // when all file work issued so far is done
	busy  map[transfer.Key]time.Time
	dir   string // downloads
	src   string // files to send
	sent  []simFile
	read  int64 // bytes read to be sent (chunks, not hashes)
	fails []FileFailed
}

// simFile is a file a person means to send.
type simFile struct {
	path string
	to   *simPerson
	size int
	hash [32]byte
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// dirs makes the person's folders (once).
func (p *simPerson) dirs() {
	if p.xf.dir == "" {
		base := p.w.t.TempDir()
		p.xf.dir, p.xf.src = filepath.Join(base, "downloads"), filepath.Join(base, "send")
		if err := os.MkdirAll(p.xf.src, 0o755); err != nil {
			p.w.t.Fatal(err)
		}
	}
}

// startFiles gives a new process its file executor.
func (p *simPerson) startFiles() {
	p.stopFiles()
	fs, err := transfer.NewFiles(transfer.FilesConfig{Store: p.st.xfers})
	if err != nil {
		p.w.t.Fatal(err)
	}
	p.xf.files = fs
	p.xf.busy = map[transfer.Key]time.Time{}
}

// stopFiles closes the process's files (what was written stays on disk).
func (p *simPerson) stopFiles() {
	if p.xf.files != nil {
		p.xf.files.Close()
		p.xf.files = nil
	}
}

// fileWork runs the effects as a disk would: each transfer's in order,
// each after a short delay; a process that died meanwhile does none.
func (p *simPerson) fileWork(gen int, fw FileWork) {
	w := p.w
	files := p.xf.files
	for _, ef := range fw.Work {
		k := ef.Key()
		done := later(w.now, p.xf.busy[k]).Add(time.Duration(50+w.rng.IntN(1000)) * time.Microsecond)
		p.xf.busy[k] = done
		p.xf.free = later(p.xf.free, done)
		if rc, ok := ef.(transfer.ReadChunk); ok && !rc.HashOnly {
			p.xf.read += int64(rc.Len)
		}
		w.at(done.Sub(w.now), func() {
			if p.gen != gen || !p.running {
				return
			}
			if r := files.Run(ef); r != nil {
				p.input(gen, func(e *Engine) { e.HandleFileResult(w.now, r) })
			}
		})
	}
}

// observeFile plays the person's part: an offered file is accepted after a
// while (unless the test answers it).
func (p *simPerson) observeFile(n Notification) {
	w := p.w
	switch n := n.(type) {
	case FileOffer:
		w.logf("%s is offered %s (%d bytes) by %s", p.name, n.File.ID, n.File.Size, w.nameOf(n.Peer))
		if p.manual {
			return
		}
		p.dirs()
		gen, peer, id, dir := p.gen, n.Peer, n.File.ID, p.xf.dir
		w.at(time.Duration(1+w.rng.IntN(5))*time.Second, func() {
			p.input(gen, func(e *Engine) {
				if err := e.AcceptFile(w.now, peer, id, dir); err != nil {
					w.logf("%s: accept %s: %v", p.name, id, err)
				}
			})
		})
	case FileOffered:
		w.logf("%s offers %s (%d bytes) to %s", p.name, n.File.ID, n.File.Size, w.nameOf(n.Peer))
	case FileStarted:
		w.logf("%s: transfer %s started", p.name, n.File.ID)
	case FileDone:
		w.logf("%s: transfer %s done", p.name, n.File.ID)
	case FileFailed:
		w.logf("%s: transfer %s failed: %s (by peer %v) %s", p.name, n.File.ID, n.File.Reason, n.File.ByPeer, n.File.Detail)
		p.xf.fails = append(p.xf.fails, n)
	}
}

// makeFile writes a file of size random bytes to send.
func (p *simPerson) makeFile(r *rand.Rand, size int) simFile {
	p.dirs()
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(r.Uint32())
	}
	path := filepath.Join(p.xf.src, fmt.Sprintf("file-%d.bin", len(p.xf.sent)))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.w.t.Fatal(err)
	}
	return simFile{path: path, size: size, hash: sha256.Sum256(b)}
}

// offer has the person offer f, trying again a second later while its
// program is down or its transfers are still being read.
func (p *simPerson) offer(f simFile, until time.Duration) {
	w := p.w
	ok := false
	p.input(p.gen, func(e *Engine) {
		if _, err := e.OfferFile(w.now, f.to.idStr, f.path); err == nil {
			ok = true
		}
	})
	if !ok && w.elapsed() < until {
		w.at(time.Second, func() { p.offer(f, until) })
	}
}

// offeredStored reports whether an offer of path is in the store (an
// offer still being hashed when the program died is not).
func (p *simPerson) offeredStored(path string) bool {
	for _, r := range p.st.xfers.all(p.w.t) {
		if r.Outgoing && r.Path == path {
			return true
		}
	}
	return false
}

// planFiles has each person offer f.files files of random sizes at random
// moments, and offer again after the faults any whose offer was lost.
func (w *simWorld) planFiles(people []*simPerson) {
	r := rand.New(rand.NewPCG(w.seed, 0xf11e))
	for _, p := range people {
		other := people[0]
		if other == p {
			other = people[len(people)-1]
		}
		for range w.f.files {
			var size int
			switch r.IntN(8) {
			case 0:
				size = 0
			case 1:
				size = transfer.MinChunkSize * (1 + r.IntN(64)) // whole chunks
			default:
				size = 1 + r.IntN(1<<20)
			}
			f := p.makeFile(r, size)
			f.to = other
			p.xf.sent = append(p.xf.sent, f)
			w.at(time.Duration(r.Int64N(int64(w.f.quietAfter))), func() { p.offer(f, w.f.quietAfter+time.Minute) })
		}
		// The person sees an offer that got lost in a crash and makes it
		// again.
		for _, d := range []time.Duration{30 * time.Second, 90 * time.Second} {
			w.at(w.f.quietAfter+d, func() {
				for _, f := range p.xf.sent {
					if !p.offeredStored(f.path) {
						w.logf("%s offers %s again (the offer was lost)", p.name, filepath.Base(f.path))
						p.offer(f, w.f.quietAfter+2*time.Minute)
					}
				}
			})
		}
	}
}

// checkFiles: every file offered arrived byte-identical, both sides say
// done, and no partial file is left in a downloads folder.
func (w *simWorld) checkFiles(people []*simPerson) {
	for _, p := range people {
		for _, f := range p.xf.fails {
			w.fail("%s: transfer %s failed: %s (by peer %v) %s", p.name, f.File.ID, f.File.Reason, f.File.ByPeer, f.File.Detail)
		}
		for _, f := range p.xf.sent {
			n := 0
			for _, out := range p.st.xfers.all(w.t) {
				if !out.Outgoing || out.Path != f.path {
					continue
				}
				n++
				if out.State != transfer.StateDone {
					w.fail("%s's transfer %s of %s (%d bytes) to %s is %v, not done", p.name, out.ID, filepath.Base(f.path), f.size, f.to.name, out.State)
				}
				in := f.to.st.xfers.recs[transfer.Key{Peer: p.id.Public, ID: out.ID}]
				var rec transfer.Record
				if err := rec.UnmarshalBinary(in); err != nil {
					w.fail("%s has no record of transfer %s: %v", f.to.name, out.ID, err)
				}
				if rec.State != transfer.StateDone || rec.Final == "" {
					w.fail("%s's side of transfer %s is %v (final %q)", f.to.name, out.ID, rec.State, rec.Final)
				}
				got, err := os.ReadFile(rec.Final)
				if err != nil || sha256.Sum256(got) != f.hash || len(got) != f.size {
					w.fail("%s received %s as %s: %d bytes (err %v), want %d bytes identical to the sent file", f.to.name, filepath.Base(f.path), rec.Final, len(got), err, f.size)
				}
			}
			if n == 0 {
				w.fail("%s's offer of %s is not in its store", p.name, filepath.Base(f.path))
			}
		}
		if p.xf.dir == "" {
			continue
		}
		ents, _ := os.ReadDir(p.xf.dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".part") {
				w.fail("%s's downloads hold a partial file %s", p.name, e.Name())
			}
		}
	}
}

// TestSimulatedTransfers runs lifecycle scenarios (restarts, crashes,
// partitions, lost paths, signalling outages, replays) with files offered
// both ways while they happen.
func TestSimulatedTransfers(t *testing.T) {
	n := *simFileScenarios
	switch {
	case n > 0:
	case testing.Short():
		n = 10
	case raceEnabled:
		n = 16
	default:
		n = 60
	}
	first := uint64(1)
	if *simSeed != 0 {
		first, n = *simSeed, 1
	}
	start := time.Now()
	files, restarts := 0, 0
	var bytes int64
	for seed := first; seed < first+uint64(n); seed++ {
		f := simRandomFaults(seed)
		f.unanswering = false
		f.files = 1 + int(seed%2)
		w := simScenario(t, seed, f)
		restarts += w.restarts
		for _, p := range w.people {
			files += len(p.xf.sent)
			for _, s := range p.xf.sent {
				bytes += int64(s.size)
			}
		}
	}
	t.Logf("%d scenarios in %v: %d files (%d bytes) moved across %d restarts", n, time.Since(start).Round(time.Millisecond), files, bytes, restarts)
}

// One file crosses a crash of the sender, a partition long enough to lose
// the path, and a clean restart of the receiver; it resumes each time from
// what the receiver holds, and arrives byte-identical.
func TestTransferResumesAcrossRestartsAndPathLoss(t *testing.T) {
	w := newSimWorld(t, 7, simFaults{latency: 5 * time.Millisecond, sigLatency: 10 * time.Millisecond})
	a, b := w.addPerson("alice", 1), w.addPerson("bob", 2)
	befriend(a, b)
	startBoth(w, a, b)
	f := a.makeFile(rand.New(rand.NewPCG(1, 2)), 24<<20+123)
	f.to = b
	a.xf.sent = append(a.xf.sent, f)
	a.offer(f, time.Minute)
	done := func() int64 {
		if b.eng == nil {
			return 0
		}
		for _, s := range b.eng.Transfers(a.idStr) {
			return int64(s.Done)
		}
		return 0
	}
	past := func(frac float64) func() bool {
		return func() bool { return float64(done()) >= frac*float64(f.size) }
	}
	w.runUntil("a quarter arrived", time.Minute, past(0.25))
	a.crash()
	w.runFor(2 * time.Second)
	a.start()
	w.runUntil("half arrived", time.Minute, past(0.5))
	w.f.partitions = []simSpan{{w.elapsed(), w.elapsed() + 45*time.Second}}
	w.runFor(50 * time.Second)
	if notes := notesSince[Failed](a, 0); len(notes) == 0 {
		t.Fatal("the partition did not lose the path")
	}
	w.runUntil("three quarters arrived", 2*time.Minute, past(0.75))
	held := done()
	b.quit()
	w.runFor(time.Second)
	nb := len(b.notes)
	b.start()
	w.runUntil("the file arrived", 2*time.Minute, func() bool {
		return len(notesSince[FileDone](a, 0)) == 1 && len(notesSince[FileDone](b, 0)) == 1
	})
	// The receiver resumed from what it held when it quit: its first
	// progress after the restart starts there.
	if ps := notesSince[FileProgress](b, nb); len(ps) == 0 || int64(ps[0].File.Done) < held {
		t.Errorf("after bob's restart the transfer went on from %v; he held %d bytes", firstDone(ps), held)
	}
	w.runFor(time.Second) // the last records are written
	w.checkFiles([]*simPerson{a, b})
	// Each interruption costs at most what was in flight (SendAhead chunks)
	// plus one chunk re-read to check the resume point.
	slack := int64(3 * (transfer.SendAhead + 1) * transfer.DefaultChunkSize)
	if a.xf.read > int64(f.size)+slack {
		t.Errorf("alice read %d bytes to send %d: the transfer restarted instead of resuming", a.xf.read, f.size)
	}
	t.Logf("alice read %d bytes to send %d across a crash, a lost path and bob's restart", a.xf.read, f.size)
}

func firstDone(ps []FileProgress) any {
	if len(ps) == 0 {
		return "nothing (no progress reported)"
	}
	return ps[0].File.Done
}

// Peers with unfinished transfers reconnect by themselves even when they
// are not contacts (the transfer was agreed in a chat the user accepted),
// and a removed contact's transfers end instead.
func TestUnfinishedTransfersReconnect(t *testing.T) {
	w, a, b := quietWorld(t)
	startBoth(w, a, b)
	f := a.makeFile(rand.New(rand.NewPCG(3, 4)), 8<<20)
	f.to = b
	a.xf.sent = append(a.xf.sent, f)
	a.offer(f, time.Minute)
	w.runUntil("bob accepted", 20*time.Second, func() bool { return len(notesSince[FileStarted](b, 0)) == 1 })
	// They forget each other as contacts; the transfer keeps the link.
	a.st.contacts, b.st.contacts = nil, nil
	a.crash()
	b.crash()
	w.runFor(time.Second)
	a.start()
	b.start()
	w.runUntil("the file arrived", 2*time.Minute, func() bool {
		return len(notesSince[FileDone](a, 0)) == 1 && len(notesSince[FileDone](b, 0)) == 1
	})
	w.runFor(time.Second) // the last records are written
	w.checkFiles([]*simPerson{a, b})
	if st := a.eng.Peer(b.idStr); st.Contact {
		t.Fatalf("bob became a contact: %+v", st)
	}

	// A second file, then bob removes alice (a stranger's link): the
	// transfer ends and its partial file goes.
	g := a.makeFile(rand.New(rand.NewPCG(5, 6)), 16<<20)
	g.to = b
	a.offer(g, time.Minute)
	w.runUntil("bob is receiving", 20*time.Second, func() bool {
		ts := b.eng.Transfers(a.idStr)
		return len(ts) == 2 && ts[1].Done > 0
	})
	b.input(b.gen, func(e *Engine) { e.RemoveContact(w.now, a.idStr) })
	// The cancel goes out just before the session closes.
	w.runUntil("alice hears of the cancel", time.Second, func() bool { return len(notesSince[FileFailed](a, 0)) > 0 })
	w.runFor(time.Second)
	fails := notesSince[FileFailed](a, 0)
	if len(fails) != 1 || fails[0].File.Reason != transfer.ReasonCancelled || !fails[0].File.ByPeer {
		t.Fatalf("alice's failures %+v; want one, cancelled by bob", fails)
	}
	for _, r := range b.st.xfers.records(t, a.id.Public) {
		if !r.State.Terminal() {
			t.Fatalf("bob still has an unfinished transfer %+v", r)
		}
	}
	ents, _ := os.ReadDir(b.xf.dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Fatalf("bob's downloads hold %s after the transfer was cancelled", e.Name())
		}
	}
}

// A session can come up before the peer's stored transfers are read (a
// slow disk): the stream events that arrive meanwhile are held and handed
// to the transfer machine once it is there, and nothing is lost.
func TestStreamEventsWaitForTheTransfers(t *testing.T) {
	w, a, b := quietWorld(t)
	a.start()
	w.runFor(time.Second)
	f := a.makeFile(rand.New(rand.NewPCG(7, 8)), 3<<20)
	f.to = b
	a.xf.sent = append(a.xf.sent, f)
	a.offer(f, time.Minute)
	w.runFor(time.Second)
	b.slowStore = 300 * time.Millisecond
	b.start()
	w.runUntil("connected", 10*time.Second, func() bool { return connected(a, b) })
	if b.eng.links[a.idStr].xm != nil {
		t.Fatal("bob's transfers were read before the session came up: the test shows nothing")
	}
	w.runUntil("the file arrived", time.Minute, func() bool {
		return len(notesSince[FileDone](a, 0)) == 1 && len(notesSince[FileDone](b, 0)) == 1
	})
	w.runFor(5 * time.Second)
	w.checkFiles([]*simPerson{a, b})
	if st := b.eng.TransferStats(a.idStr); st != (transfer.Stats{}) {
		t.Fatalf("bob's transfer machine refused input: %+v", st)
	}
}
