package transfer

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session"
)

// pair is a two-peer simulation on a clean link with both sessions up.
func pair(t *testing.T, seed uint64) *tsim {
	t.Helper()
	s := newTsim(t, seed, 0)
	s.dup, s.reorder = 0, 0
	s.connect()
	s.run(func() bool { return s.p[0].up && s.p[1].up }, time.Minute)
	return s
}

// autoAccept makes peer 1 accept every offer into its download folder.
func (s *tsim) autoAccept(t *testing.T) {
	s.onEvent = func(peer int, ev Event) {
		if o, ok := ev.(OfferReceived); ok && peer == 1 {
			if err := s.p[1].tm.Accept(s.now, o.ID, s.p[1].dir); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ended reports whether transfer id has ended on side peer.
func (s *tsim) ended(peer int, id ID) bool {
	st, ok := s.p[peer].tm.Transfer(id)
	return ok && st.State.Terminal()
}

func (s *tsim) status(t *testing.T, peer int, id ID) Status {
	t.Helper()
	st, ok := s.p[peer].tm.Transfer(id)
	if !ok {
		t.Fatalf("peer %d has no transfer %s", peer, id)
	}
	return st
}

// failedBoth waits until transfer id ended on both sides and checks both
// failed for reason, the receiving side (peer 1) kept no file, and the
// session still carries chat both ways.
func (s *tsim) failedBoth(t *testing.T, id ID, reason Reason, byReceiver bool, orReason ...Reason) {
	t.Helper()
	s.run(func() bool { return s.ended(0, id) && s.ended(1, id) }, time.Hour)
	for peer := range 2 {
		st := s.status(t, peer, id)
		if st.State != StateFailed || st.Reason != reason && !slices.Contains(orReason, st.Reason) {
			t.Fatalf("peer %d: %v (%v, %q), want failed with %v", peer, st.State, st.Reason, st.Detail, reason)
		}
		// Peer 1 receives; whoever detected the problem is not ByPeer.
		if want := (peer == 1) != byReceiver; st.ByPeer != want {
			t.Errorf("peer %d: ByPeer %v, want %v", peer, st.ByPeer, want)
		}
		if n := countEvents[Failed](s.log[peer]); n != 1 {
			t.Errorf("peer %d: %d Failed events, want 1", peer, n)
		}
		t.Logf("peer %d: %v: %s", peer, st.Reason, st.Detail)
	}
	s.noFiles(t)
	s.chatStillWorks(t)
}

// noFiles checks the download folder holds nothing but what the test put
// there itself (names starting with "keep").
func (s *tsim) noFiles(t *testing.T) {
	t.Helper()
	entries, _ := os.ReadDir(s.p[1].dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "keep") {
			t.Errorf("download folder holds %s after a failed transfer", e.Name())
		}
	}
}

func (s *tsim) chatStillWorks(t *testing.T) {
	t.Helper()
	before := s.chat
	for i := range 2 {
		var id session.MessageID
		id[0], id[1] = byte(i), byte(before[1-i])
		if err := s.p[i].sess.Send(s.now, session.OutMessage{ID: id, Body: []byte("still here?")}); err != nil {
			t.Fatalf("peer %d: chat after the failure: %v", i, err)
		}
	}
	s.run(func() bool { return s.chat[0] > before[0] && s.chat[1] > before[1] }, time.Minute)
}

func countEvents[T Event](evs []Event) int {
	n := 0
	for _, ev := range evs {
		if _, ok := ev.(T); ok {
			n++
		}
	}
	return n
}

func (s *tsim) offer(t *testing.T, from int, path string) ID {
	t.Helper()
	id, err := s.p[from].tm.Offer(s.now, path)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// runUntilStored runs until peer 1 stored at least n bytes of id.
func (s *tsim) runUntilStored(t *testing.T, id ID, n uint64) {
	t.Helper()
	s.run(func() bool {
		st, ok := s.p[1].tm.Transfer(id)
		return ok && st.Done >= n || s.ended(1, id)
	}, time.Hour)
	if s.ended(1, id) {
		t.Fatalf("transfer ended before %d bytes were stored: %+v", n, s.status(t, 1, id))
	}
}

func TestOfferAcceptDone(t *testing.T) {
	s := pair(t, 1)
	s.autoAccept(t)
	src := simFile(t, t.TempDir(), "report.pdf", 300_000, 5)
	id := s.offer(t, 0, src)
	s.run(func() bool { return s.ended(0, id) && s.ended(1, id) }, time.Minute)
	out, in := s.status(t, 0, id), s.status(t, 1, id)
	if out.State != StateDone || in.State != StateDone {
		t.Fatalf("states %v / %v, want done", out.State, in.State)
	}
	if in.Path != filepath.Join(s.p[1].dir, "report.pdf") || out.Path != src {
		t.Fatalf("paths %q / %q", out.Path, in.Path)
	}
	sameFile(t, src, in.Path)
	if in.Hash != fileHash(t, src) || in.Size != 300_000 || in.Done != in.Size || out.Done != out.Size {
		t.Fatalf("status %+v / %+v", out, in)
	}
	for peer, want := range [][]string{{"Offered", "Started", "Completed"}, {"OfferReceived", "Started", "Completed"}} {
		var got []string
		for _, ev := range s.log[peer] {
			if _, ok := ev.(Progress); !ok {
				got = append(got, strings.TrimPrefix(fmt.Sprintf("%T", ev), "transfer."))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("peer %d events %v, want %v", peer, got, want)
		}
		if countEvents[Progress](s.log[peer]) == 0 {
			t.Errorf("peer %d: no progress reported", peer)
		}
	}
	// Both sides learn that the other has the final word, so nothing is
	// resent in the next session.
	told := func() bool {
		for peer := range 2 {
			for _, x := range s.p[peer].tm.xfers {
				if !x.rec.Told {
					return false
				}
			}
		}
		return true
	}
	s.run(told, time.Minute)
	for peer := range 2 {
		for _, x := range s.p[peer].tm.xfers {
			if !x.rec.Told {
				t.Errorf("peer %d: transfer not marked told", peer)
			}
		}
	}
}

func TestDecline(t *testing.T) {
	s := pair(t, 2)
	src := simFile(t, t.TempDir(), "a.txt", 10, 1)
	id := s.offer(t, 0, src)
	s.run(func() bool { return countEvents[OfferReceived](s.log[1]) == 1 }, time.Minute)
	if err := s.p[1].tm.Decline(s.now, id); err != nil {
		t.Fatal(err)
	}
	if err := s.p[1].tm.Accept(s.now, id, s.p[1].dir); !errors.Is(err, ErrNotPending) {
		t.Errorf("accept after decline: %v, want ErrNotPending", err)
	}
	s.failedBoth(t, id, ReasonDeclined, true)
}

// Either side can cancel while the file moves; the partial file goes.
func TestCancelMidTransfer(t *testing.T) {
	for _, canceller := range []int{0, 1} {
		t.Run(fmt.Sprintf("by peer %d", canceller), func(t *testing.T) {
			s := pair(t, 3)
			s.autoAccept(t)
			id := s.offer(t, 0, simFile(t, t.TempDir(), "big.iso", 8<<20, 2))
			s.runUntilStored(t, id, 1<<20)
			if err := s.p[canceller].tm.Cancel(s.now, id); err != nil {
				t.Fatal(err)
			}
			if err := s.p[canceller].tm.Cancel(s.now, id); !errors.Is(err, ErrFinished) {
				t.Errorf("second cancel: %v, want ErrFinished", err)
			}
			s.failedBoth(t, id, ReasonCancelled, canceller == 1)
		})
	}
}

// The file to send vanished before it could be hashed: the offer fails
// here and the peer hears nothing.
func TestSourceMissing(t *testing.T) {
	s := pair(t, 4)
	id := s.offer(t, 0, filepath.Join(t.TempDir(), "gone.bin"))
	s.run(func() bool { return s.ended(0, id) }, time.Minute)
	st := s.status(t, 0, id)
	if st.State != StateFailed || st.Reason != ReasonSourceUnreadable || !strings.Contains(st.Detail, "gone.bin") {
		t.Fatalf("status %+v, want failed: source unreadable, naming the file", st)
	}
	if _, ok := s.p[1].tm.Transfer(id); ok {
		t.Fatal("the peer heard of an offer that never went out")
	}
	s.chatStillWorks(t)
	if _, err := s.p[0].tm.Offer(s.now, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	s.run(func() bool { return countEvents[Failed](s.log[0]) == 2 }, time.Minute)
	if f := s.log[0][len(s.log[0])-1].(Failed); !strings.Contains(f.Detail, "not a regular file") {
		t.Errorf("offering a folder: %q", f.Detail)
	}
}

// The file to send shrinks while it is sent: the sender stops with a
// clear reason and the receiver removes its partial file.
func TestSourceChangesMidTransfer(t *testing.T) {
	s := pair(t, 5)
	s.autoAccept(t)
	src := simFile(t, t.TempDir(), "log.txt", 8<<20, 3)
	id := s.offer(t, 0, src)
	s.runUntilStored(t, id, 1<<20)
	if err := os.Truncate(src, 2<<20); err != nil {
		t.Fatal(err)
	}
	s.failedBoth(t, id, ReasonSourceChanged, false)
}

// A file that changed between sessions is caught by the resume check
// (the hash of the chunk before the resume point), not after the rest was
// sent.
func TestSourceChangedBeforeResume(t *testing.T) {
	s := pair(t, 6)
	s.autoAccept(t)
	src := simFile(t, t.TempDir(), "db.sqlite", 8<<20, 4)
	id := s.offer(t, 0, src)
	s.runUntilStored(t, id, 2<<20)
	s.dropPath(time.Second)
	// Change a byte in every chunk from the last one the receiver holds:
	// wherever it resumes, the chunk before is not what it stored.
	x := s.p[1].tm.xfers[Key{Peer: s.p[0].pub, ID: id}]
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := x.written - 1; i < x.rec.Chunks(); i++ {
		if _, err := f.WriteAt([]byte{'!'}, int64(i)*DefaultChunkSize); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	// The old handle still sees the edit (same file), so the check is
	// what catches it, before another byte is read.
	readBefore := s.read[id]
	s.failedBoth(t, id, ReasonSourceChanged, false)
	if s.read[id] != readBefore {
		t.Errorf("%d more bytes were read after the resume check failed", s.read[id]-readBefore)
	}
}

// Not enough room for the file: the accept fails before anything is sent.
func TestNoSpaceOnAccept(t *testing.T) {
	s := pair(t, 7)
	s.p[1].files.cfg.FreeSpace = func(string) (uint64, bool, error) { return 5 << 20, true, nil }
	s.autoAccept(t)
	id := s.offer(t, 0, simFile(t, t.TempDir(), "movie.mkv", 3<<20, 5))
	s.failedBoth(t, id, ReasonNoSpace, true)
	if d := s.status(t, 1, id).Detail; !strings.Contains(d, "MiB needed") {
		t.Errorf("detail %q does not say how much is needed", d)
	}
	if s.read[id] != 0 {
		t.Errorf("%d bytes were read for a file the receiver had no room for", s.read[id])
	}
}

// The disk fills up during the transfer.
func TestDiskFullMidTransfer(t *testing.T) {
	s := pair(t, 8)
	s.autoAccept(t)
	id := s.offer(t, 0, simFile(t, t.TempDir(), "movie.mkv", 8<<20, 6))
	s.runUntilStored(t, id, 1<<20)
	s.p[1].files.fault = func(op string, k Key) error {
		if op == "write" {
			return &os.PathError{Op: "write", Path: "movie.mkv", Err: syscall.ENOSPC}
		}
		return nil
	}
	s.failedBoth(t, id, ReasonNoSpace, true)
}

// A sender that offers one hash and sends other bytes: every chunk is
// consistent with itself, so only the whole-file check can tell; the file
// never gets its name.
func TestLyingHash(t *testing.T) {
	s := pair(t, 9)
	s.autoAccept(t)
	s.tamper = func(peer int, r Result) Result {
		if h, ok := r.(Hashed); ok && peer == 0 {
			h.Hash[0] ^= 1
			return h
		}
		return r
	}
	id := s.offer(t, 0, simFile(t, t.TempDir(), "fake.zip", 1<<20, 7))
	s.failedBoth(t, id, ReasonHashMismatch, true)
}

// A sender whose chunk does not match the hash sent with it.
func TestBadChunkHash(t *testing.T) {
	s := pair(t, 10)
	s.autoAccept(t)
	s.tamper = func(peer int, r Result) Result {
		if c, ok := r.(ChunkRead); ok && peer == 0 && c.Index == 5 && !c.HashOnly {
			c.Msg[chunkHeaderLen] ^= 1
		}
		return r
	}
	id := s.offer(t, 0, simFile(t, t.TempDir(), "a.bin", 1<<20, 8))
	s.failedBoth(t, id, ReasonBadChunk, true)
}

// A sender that offers fewer bytes than it then sends: the first chunk
// past the offered size (or of the wrong length) ends the transfer. When
// the offered size is a whole number of chunks, the whole-file check may
// come first: the receiver has what was offered, and it does not match.
func TestLyingSize(t *testing.T) {
	for _, offered := range []uint64{100_000, 3 * DefaultChunkSize} {
		t.Run(fmt.Sprint(offered), func(t *testing.T) {
			s := newTsim(t, 11, 0)
			s.wrap[0] = func(st Streams) Streams {
				return rewriteStreams{st, func(b []byte) []byte {
					var c control
					if parseControl(b, &c) == nil && c.kind == msgOffer {
						c.size = offered
						return appendControl(nil, &c)
					}
					return b
				}}
			}
			s.connect()
			s.run(func() bool { return s.p[0].up && s.p[1].up }, time.Minute)
			s.autoAccept(t)
			id := s.offer(t, 0, simFile(t, t.TempDir(), "a.bin", 1<<20, 9))
			s.failedBoth(t, id, ReasonProtocol, true, ReasonHashMismatch)
		})
	}
}

// A peer that sends file data nobody asked for: for a transfer we do not
// know the stream is refused and nothing else changes; for one we were
// offered but did not accept, that transfer ends.
func TestDataNeverOffered(t *testing.T) {
	s := pair(t, 12)
	rogue := func(id ID) {
		sid, err := s.p[0].sess.OpenStream(s.now)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte("not asked for")
		h := sha256.Sum256(data)
		for _, m := range [][]byte{
			appendHello(nil, hello{data: true, id: id}),
			append(appendChunkHeader(nil, chunkHeader{hash: h}), data...),
		} {
			if _, err := s.p[0].sess.SendStream(s.now, sid, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	rogue(ID{0xee})
	s.run(func() bool { return s.p[1].tm.Stats().UnknownStreams == 1 }, time.Minute)
	entries, _ := os.ReadDir(s.p[1].dir)
	if len(entries) != 0 {
		t.Fatalf("download folder holds %d entries", len(entries))
	}

	id := s.offer(t, 0, simFile(t, t.TempDir(), "a.bin", 1000, 10))
	s.run(func() bool { return countEvents[OfferReceived](s.log[1]) == 1 }, time.Minute)
	rogue(id)
	s.failedBoth(t, id, ReasonProtocol, true)
}

// Both sides offer several files at once; all arrive.
func TestSeveralAtOnceBothWays(t *testing.T) {
	s := pair(t, 13)
	s.onEvent = func(peer int, ev Event) {
		if o, ok := ev.(OfferReceived); ok {
			if err := s.p[peer].tm.Accept(s.now, o.ID, s.p[peer].dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	var ids []ID
	var srcs []string
	for i := range 12 {
		src := simFile(t, t.TempDir(), fmt.Sprintf("f%d", i), int64(100_000*(i+1)), uint64(i))
		ids = append(ids, s.offer(t, i%2, src))
		srcs = append(srcs, src)
	}
	s.run(func() bool {
		for i, id := range ids {
			if !s.ended(i%2, id) || !s.ended(1-i%2, id) {
				return false
			}
		}
		return true
	}, time.Hour)
	for i, id := range ids {
		st := s.status(t, 1-i%2, id)
		if st.State != StateDone {
			t.Fatalf("transfer %d: %+v", i, st)
		}
		sameFile(t, srcs[i], st.Path)
	}
}

// A receiver already holding MaxPendingOffers unanswered offers refuses
// more.
func TestTooManyOffers(t *testing.T) {
	s := pair(t, 14)
	src := simFile(t, t.TempDir(), "x", 10, 1)
	for range MaxPendingOffers + 1 {
		s.offer(t, 0, src)
	}
	// Offers go out as their hashes are ready, in any order: one of them
	// is the one too many.
	s.run(func() bool { return countEvents[Failed](s.log[0]) == 1 }, time.Minute)
	for _, ev := range s.log[0] {
		if f, ok := ev.(Failed); ok && (f.Reason != ReasonTooManyOffers || !f.ByPeer) {
			t.Fatalf("the extra offer: %+v", f.Status)
		}
	}
	if n := countEvents[OfferReceived](s.log[1]); n != MaxPendingOffers {
		t.Fatalf("%d offers shown, want %d", n, MaxPendingOffers)
	}
}

// An offer left unanswered survives a restart of the receiver: it is
// shown again, once, and can still be accepted.
func TestPendingOfferSurvivesRestart(t *testing.T) {
	s := pair(t, 15)
	src := simFile(t, t.TempDir(), "notes.md", 5000, 2)
	id := s.offer(t, 0, src)
	s.run(func() bool { return countEvents[OfferReceived](s.log[1]) == 1 }, time.Minute)
	s.restart(1, time.Second)
	s.run(func() bool { return countEvents[OfferReceived](s.log[1]) == 2 && s.p[0].up && s.p[1].up }, time.Minute)
	// The sender offers again in the new session; it is not shown again.
	end := s.now.Add(10 * time.Second)
	s.after(10*time.Second, func() {})
	s.run(func() bool { return !s.now.Before(end) }, time.Minute)
	if n := countEvents[OfferReceived](s.log[1]); n != 2 {
		t.Fatalf("offer shown %d times, want twice (before and after the restart)", n)
	}
	if err := s.p[1].tm.Accept(s.now, id, s.p[1].dir); err != nil {
		t.Fatal(err)
	}
	s.run(func() bool { return s.ended(0, id) && s.ended(1, id) }, time.Minute)
	sameFile(t, src, s.status(t, 1, id).Path)
}

// A final word lost with the path is said again in the next session.
func TestFinalWordRepeated(t *testing.T) {
	s := pair(t, 16)
	src := simFile(t, t.TempDir(), "a", 10, 3)
	id := s.offer(t, 0, src)
	s.run(func() bool { return countEvents[OfferReceived](s.log[1]) == 1 }, time.Minute)
	s.blackout = s.now.Add(time.Hour) // the DECLINE is lost…
	if err := s.p[1].tm.Decline(s.now, id); err != nil {
		t.Fatal(err)
	}
	end := s.now.Add(30 * time.Second)
	s.after(30*time.Second, func() {})
	s.run(func() bool { return !s.now.Before(end) }, time.Minute)
	if s.ended(0, id) {
		t.Fatal("the sender learned of a decline that was lost")
	}
	s.blackout = time.Time{}
	s.dropPath(time.Second) // …and said again in the next session.
	s.failedBoth(t, id, ReasonDeclined, true)
}

// Finished transfers are forgotten after Retention, unless the peer was
// never told.
func TestRetention(t *testing.T) {
	old := simEpoch.Add(-Retention - time.Hour)
	peer := [32]byte{1}
	recs := []Record{
		{Peer: peer, ID: ID{1}, State: StateDone, ChunkSize: DefaultChunkSize, Told: true, Updated: old},
		{Peer: peer, ID: ID{2}, State: StateFailed, ChunkSize: DefaultChunkSize, Told: false, Updated: old},
		{Peer: peer, ID: ID{3}, State: StateDone, ChunkSize: DefaultChunkSize, Told: true, Updated: simEpoch},
	}
	m, err := NewMachine(Config{Peer: peer, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(simEpoch)
	effs := m.Effects()
	if len(effs) != 1 || effs[0].(DeleteRecord).K.ID != (ID{1}) {
		t.Fatalf("effects %v, want the old told one deleted", effs)
	}
	if len(m.Transfers()) != 2 {
		t.Fatalf("%d transfers kept, want 2", len(m.Transfers()))
	}
	if err := m.Forget(simEpoch, ID{3}); err != nil {
		t.Fatal(err)
	}
	if err := m.Forget(simEpoch, ID{3}); !errors.Is(err, ErrNoTransfer) {
		t.Fatalf("forgetting twice: %v", err)
	}
}

func TestNewMachineRejectsBadRecords(t *testing.T) {
	peer := [32]byte{1}
	good := Record{Peer: peer, ID: ID{1}, State: StateActive, ChunkSize: DefaultChunkSize, Size: 10}
	for name, recs := range map[string][]Record{
		"other peer": {{Peer: [32]byte{2}, ID: ID{1}, State: StateDone, ChunkSize: DefaultChunkSize}},
		"twice":      {good, good},
		"chunk size": {{Peer: peer, ID: ID{1}, State: StateDone, ChunkSize: 1}},
		"next":       {{Peer: peer, ID: ID{1}, State: StateActive, ChunkSize: DefaultChunkSize, Size: 10, Next: 2}},
	} {
		if _, err := NewMachine(Config{Peer: peer, Records: recs}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewMachine(Config{Peer: peer, ChunkSize: 100}); err == nil {
		t.Error("chunk size 100 accepted")
	}
}

// Ended transfers beyond MaxFinished are forgotten, oldest first.
func TestMaxFinished(t *testing.T) {
	peer := [32]byte{1}
	var recs []Record
	for i := range MaxFinished {
		recs = append(recs, Record{Peer: peer, ID: ID{byte(i), byte(i >> 8)}, State: StateFailed, Reason: ReasonCancelled,
			ChunkSize: DefaultChunkSize, Told: true, Updated: simEpoch})
	}
	m, err := NewMachine(Config{Peer: peer, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(simEpoch)
	s := &fakeStreams{}
	m.SessionUp(simEpoch, s)
	m.HandleSessionEvent(simEpoch, session.StreamReceived{Stream: 1, Seq: 0, Body: appendHello(nil, hello{})})
	for n := range 3 {
		id := ID{0xee, 0xee, byte(n)}
		m.HandleSessionEvent(simEpoch, session.StreamReceived{Stream: 1, Seq: uint64(1 + 2*n),
			Body: appendControl(nil, &control{kind: msgOffer, id: id, size: 1, chunkSize: MinChunkSize, name: "x"})})
		m.HandleSessionEvent(simEpoch, session.StreamReceived{Stream: 1, Seq: uint64(2 + 2*n),
			Body: appendControl(nil, &control{kind: msgCancel, id: id, reason: ReasonCancelled})})
	}
	var deleted []ID
	for _, e := range m.Effects() {
		if d, ok := e.(DeleteRecord); ok {
			deleted = append(deleted, d.K.ID)
		}
	}
	if len(m.Transfers()) != MaxFinished || len(deleted) != 3 || deleted[0] != (ID{0, 0}) || deleted[2] != (ID{2, 0}) {
		t.Fatalf("%d transfers kept, deleted %v", len(m.Transfers()), deleted)
	}
}

// A cancel that comes while the complete file is being verified and named
// leaves no file behind either.
func TestCancelWhileFinishing(t *testing.T) {
	s := pair(t, 17)
	s.autoAccept(t)
	id := s.offer(t, 0, simFile(t, t.TempDir(), "a.bin", 300_000, 11))
	s.run(func() bool {
		x := s.p[1].tm.xfers[Key{Peer: s.p[0].pub, ID: id}]
		return x != nil && x.finishing
	}, time.Minute)
	if err := s.p[1].tm.Cancel(s.now, id); err != nil {
		t.Fatal(err)
	}
	s.failedBoth(t, id, ReasonCancelled, true)
}
