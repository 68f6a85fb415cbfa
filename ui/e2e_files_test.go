package ui

import (
	"bytes"
	"crypto/rand"
	"flag"
	"io"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/signal"
)

// fileTune gives a test program its own downloads folder and small chunks,
// so a transfer of a few MiB takes long enough over loopback to be
// interrupted in the middle.
func fileTune(downloads string) func(*Deps) {
	return func(d *Deps) {
		d.Downloads = downloads
		d.TransferChunkSize = 4 << 10
	}
}

// randomFile writes n random bytes to a new file in dir.
func randomFile(t *testing.T, dir, name string, n int) (string, []byte) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, b
}

// noPartials fails if a downloads folder holds a partial file.
func noPartials(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".part") {
			t.Errorf("%s holds the partial file %s", dir, e.Name())
		}
	}
}

// TestEndToEndFileTransfer moves a file each way between two headless
// programs over real loopback sockets: the first while the receiver quits
// and comes back in the middle, the second while the sender is killed and
// comes back; chat goes on meanwhile. Both arrive byte-identical, resumed
// rather than started again.
func TestEndToEndFileTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2×32 MiB through two programs: skipped in -short mode")
	}
	checkGoroutines(t)
	hub := signal.NewMemoryHub()
	dirA, dirB := t.TempDir(), t.TempDir()
	downA, downB := filepath.Join(t.TempDir(), "down A"), filepath.Join(t.TempDir(), "down B")
	a := startE2EPeerWith(t, hub, dirA, "alice", fileTune(downA))
	b := startE2EPeerWith(t, hub, dirB, "bob", fileTune(downB))
	connectPair(t, a, b, "bob")
	const size = 32<<20 + 777

	// Alice to bob; bob quits at a quarter and comes back.
	src, want := randomFile(t, t.TempDir(), "holiday photos.tar", size)
	a.cmd("sendfile bob " + src)
	off := a.log.expect("file_offered", ev("file_offered"))
	if off.To != b.id.ID() || off.File != "holiday photos.tar" || off.Size == nil || *off.Size != size || off.Direction != "out" {
		t.Fatalf("file_offered = %+v", off)
	}
	in := b.log.expect("file_offer", ev("file_offer"))
	if in.From != a.id.ID() || in.ID != off.ID || in.File != "holiday photos.tar" || in.Size == nil || *in.Size != size || in.Name != "alice" {
		t.Fatalf("file_offer = %+v, want alice's %s", in, off.ID)
	}
	b.cmd("acceptfile " + in.ID)
	b.log.expect("file_started", ev("file_started"))
	a.cmd("send bob a message while the file moves")
	if m := b.log.expect("message during the transfer", ev("message")); m.Body != "a message while the file moves" {
		t.Fatalf("bob got %+v", m)
	}
	p := b.log.expect("a quarter", func(e Event) bool { return e.Ev == "file_progress" && *e.Done >= size/4 })
	if *p.Done >= size {
		t.Fatalf("the file arrived before bob could quit in the middle (%d bytes): make it bigger", *p.Done)
	}
	b.close()
	b2 := startE2EPeerWith(t, hub, dirB, "bob", fileTune(downB))
	first := b2.log.expect("progress after the restart", ev("file_progress"))
	if *first.Done < *p.Done {
		t.Errorf("after the restart bob's transfer went on from %d bytes; he had %d when he quit", *first.Done, *p.Done)
	}
	done := b2.log.expect("file_done", ev("file_done"))
	a.log.expect("file_done at alice", func(e Event) bool { return e.Ev == "file_done" && e.ID == off.ID })
	if got, err := os.ReadFile(done.Path); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("bob's copy at %q: %d bytes, err %v; want %d bytes identical to alice's", done.Path, len(got), err, len(want))
	}
	if filepath.Dir(done.Path) != downB {
		t.Errorf("saved as %s, want it in bob's downloads %s", done.Path, downB)
	}
	noPartials(t, downB)

	// Bob to alice, into a folder alice names; bob is killed at a third
	// and comes back.
	src2, want2 := randomFile(t, t.TempDir(), "notes.bin", size)
	b2.cmd("sendfile alice " + src2)
	in2 := a.log.expect("file_offer from bob", ev("file_offer"))
	chosen := filepath.Join(t.TempDir(), "chosen folder")
	a.cmd("acceptfile " + in2.ID + " " + chosen)
	p2 := a.log.expect("a third", func(e Event) bool { return e.Ev == "file_progress" && e.ID == in2.ID && *e.Done >= size/3 })
	if *p2.Done >= size {
		t.Fatalf("the file arrived before bob could be killed in the middle")
	}
	b2.crash()
	b3 := startE2EPeerWith(t, hub, dirB, "bob", fileTune(downB))
	done2 := a.log.expect("file_done from bob", func(e Event) bool { return e.Ev == "file_done" && e.ID == in2.ID })
	b3.log.expect("file_done at bob", func(e Event) bool { return e.Ev == "file_done" && e.ID == in2.ID })
	if got, err := os.ReadFile(done2.Path); err != nil || !bytes.Equal(got, want2) {
		t.Fatalf("alice's copy at %q: %d bytes, err %v; want %d bytes identical to bob's", done2.Path, len(got), err, len(want2))
	}
	if filepath.Dir(done2.Path) != chosen {
		t.Errorf("saved as %s, want it in the folder alice chose, %s", done2.Path, chosen)
	}
	noPartials(t, chosen)
	if a.log.has("file_failed") || b3.log.has("file_failed") {
		t.Error("a transfer failed on the way")
	}
}

// A file that cannot be read, a declined offer and a cancelled transfer
// each end with words, and the chat goes on.
func TestEndToEndFileRefusals(t *testing.T) {
	checkGoroutines(t)
	hub := signal.NewMemoryHub()
	down := filepath.Join(t.TempDir(), "down")
	a := startE2EPeerWith(t, hub, t.TempDir(), "alice", fileTune(down))
	b := startE2EPeerWith(t, hub, t.TempDir(), "bob", fileTune(down))
	connectPair(t, a, b, "bob")

	a.cmd("sendfile bob " + filepath.Join(t.TempDir(), "no such file.txt"))
	f := a.log.expect("file_failed", ev("file_failed"))
	if f.Reason != "source-unreadable" || !strings.Contains(f.Words, "no such file.txt could not be sent") {
		t.Fatalf("file_failed = %+v", f)
	}

	src, _ := randomFile(t, t.TempDir(), "unwanted.bin", 1000)
	a.cmd("sendfile bob " + src)
	in := b.log.expect("file_offer", ev("file_offer"))
	b.cmd("declinefile " + in.ID)
	f = a.log.expect("declined", func(e Event) bool { return e.Ev == "file_failed" && e.ID == in.ID })
	if f.Reason != "declined" || f.ByPeer == nil || !*f.ByPeer || f.Words != "bob declined unwanted.bin" {
		t.Fatalf("alice's file_failed = %+v", f)
	}

	src, _ = randomFile(t, t.TempDir(), "big.bin", 64<<20)
	a.cmd("sendfile bob " + src)
	in = b.log.expect("file_offer", ev("file_offer"))
	b.cmd("acceptfile " + in.ID)
	b.log.expect("progress", func(e Event) bool { return e.Ev == "file_progress" && *e.Done > 0 })
	a.cmd("cancelfile " + in.ID)
	f = b.log.expect("cancelled", func(e Event) bool { return e.Ev == "file_failed" && e.ID == in.ID })
	if f.Reason != "cancelled" || !*f.ByPeer || f.Words != "alice cancelled big.bin" {
		t.Fatalf("bob's file_failed = %+v", f)
	}
	b.cmd("acceptfile " + in.ID)
	if e := b.log.expect("error", ev("error")); !strings.Contains(e.Words, "already") {
		t.Fatalf("accepting a cancelled transfer: %+v", e)
	}
	b.cmd("acceptfile 00112233")
	if e := b.log.expect("error", ev("error")); !strings.Contains(e.Words, "not a transfer ID") {
		t.Fatalf("a bad ID: %+v", e)
	}
	a.cmd("send bob still talking")
	if m := b.log.expect("message", ev("message")); m.Body != "still talking" {
		t.Fatalf("bob got %+v", m)
	}
	// The cancelled file's partial copy is gone.
	deadline := time.Now().Add(e2eWait)
	for {
		ents, _ := os.ReadDir(down)
		partial := false
		for _, e := range ents {
			partial = partial || strings.HasSuffix(e.Name(), ".part")
		}
		if !partial {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled transfer's partial file stayed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var benchFileMiB = flag.Int("file.mib", 256, "BenchmarkFileTransfer: the file's size in MiB")

// BenchmarkFileTransfer moves one file between two whole headless programs
// (engine, Bubble Tea loop, transfer worker, bbolt stores) over loopback,
// with the default 64 KiB chunks, from the accept to file_done on both
// sides:
//
//	go test -run '^$' -bench FileTransfer -benchtime 1x ./ui/
func BenchmarkFileTransfer(b *testing.B) {
	hub := signal.NewMemoryHub()
	down := b.TempDir()
	a := startE2EPeerWith(b, hub, b.TempDir(), "alice", func(d *Deps) { d.Downloads = down })
	c := startE2EPeerWith(b, hub, b.TempDir(), "bob", func(d *Deps) { d.Downloads = down })
	connectPair(b, a, c, "bob")
	size := int64(*benchFileMiB) << 20
	src := filepath.Join(b.TempDir(), "bench.bin")
	f, err := os.Create(src)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.CopyN(f, mrand.NewChaCha8([32]byte{1}), size); err != nil {
		b.Fatal(err)
	}
	f.Close()
	limit := time.Duration(size/(1<<20)) * time.Second // 1 MiB/s would be a failure anyway
	b.ResetTimer()
	for range b.N {
		a.cmd("sendfile bob " + src)
		in := c.log.expect("file_offer", ev("file_offer"))
		start := time.Now()
		c.cmd("acceptfile " + in.ID)
		c.log.expectWithin("file_done", limit, func(e Event) bool { return e.Ev == "file_done" && e.ID == in.ID })
		a.log.expectWithin("file_done at alice", limit, func(e Event) bool { return e.Ev == "file_done" && e.ID == in.ID })
		b.ReportMetric(float64(size)/time.Since(start).Seconds()/1e6, "MB/s")
	}
}
