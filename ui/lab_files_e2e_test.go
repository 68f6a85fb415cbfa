package ui_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/ui"
)

var (
	labFileMiB  = flag.Int("lab.filemib", 100, "TestLabFileTransfer: the file's size in MiB")
	labFileLoss = flag.Int("lab.fileloss", 5, "TestLabFileTransfer: UDP loss in percent on each NAT's WAN side, both ways")
)

// TestLabFileTransfer moves a file (100 MiB by default) between two
// headless p2ptui processes behind two port-restricted Linux NATs that
// drop UDP at random (5% on each NAT's WAN side, in and out, by default:
// about one datagram in ten on the whole path), with a Firestore emulator
// on the lab's internet as signalling. The copy must be byte-identical;
// the time it took is printed (the README's figure).
//
//	go test -run TestLabFileTransfer -v ./ui/   # root
func TestLabFileTransfer(t *testing.T) {
	sh, bin := needLab(t)
	l := upLab(t, sh, bin, "port-restricted", "port-restricted")
	a, b := l.start("a", "alice", "lab"), l.start("b", "bob", "lab")
	a.send("add bob " + b.id)
	b.send("add alice " + a.id)
	a.await("contact", 10*time.Second, nil)
	b.await("contact", 10*time.Second, nil)
	connect(t, a, b)
	l.run("loss", l.name, strconv.Itoa(*labFileLoss))

	size := int64(*labFileMiB) << 20
	src := filepath.Join(t.TempDir(), "lab file.bin")
	want := writeRandom(t, src, size)
	down := filepath.Join(t.TempDir(), "bob's downloads")
	a.send("sendfile bob " + src)
	off := a.await("file_offered", time.Minute, nil)
	in := b.await("file_offer", time.Minute, func(e ui.Event) bool { return e.ID == off.ID })
	if in.Size == nil || int64(*in.Size) != size || in.File != "lab file.bin" {
		t.Fatalf("bob was offered %+v", in)
	}
	start := time.Now()
	b.send("acceptfile " + in.ID + " " + down)
	// Progress goes by; a chat message still gets through meanwhile.
	b.await("file_progress", time.Minute, func(e ui.Event) bool { return e.Done != nil && *e.Done > 0 })
	a.send("send bob still here")
	b.await("message", time.Minute, func(e ui.Event) bool { return e.Body == "still here" })
	done := b.await("file_done", 15*time.Minute, func(e ui.Event) bool { return e.ID == in.ID })
	took := time.Since(start)
	a.await("file_done", time.Minute, func(e ui.Event) bool { return e.ID == off.ID })
	if got := fileHash(t, done.Path); !bytes.Equal(got, want) {
		t.Fatalf("bob's copy %s differs from alice's file", done.Path)
	}
	mib := float64(size) / (1 << 20)
	fmt.Printf("lab file transfer: %.0f MiB across two port-restricted NATs with %d%% loss on each NAT's WAN side: %v (%.1f MiB/s), byte-identical\n",
		mib, *labFileLoss, took.Round(100*time.Millisecond), mib/took.Seconds())
}

// writeRandom writes size random bytes to path and returns their SHA-256.
func writeRandom(t *testing.T, path string, size int64) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rand.Reader, size)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return h.Sum(nil)
}

func fileHash(t *testing.T, path string) []byte {
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
	return h.Sum(nil)
}
