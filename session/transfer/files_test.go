package transfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newTestFiles(t *testing.T) (*Files, *memStore) {
	t.Helper()
	st := newMemStore()
	f, err := NewFiles(FilesConfig{Store: st, FreeSpace: func(string) (uint64, bool, error) { return 1 << 40, true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, st
}

var testKey = Key{Peer: [32]byte{1}, ID: ID{2}}

// An existing file is never replaced: the finished file takes the next
// free "name (n)".
func TestFinishNeverOverwrites(t *testing.T) {
	f, _ := newTestFiles(t)
	dir := t.TempDir()
	for _, n := range []string{"a.txt", "a (1).txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("keep "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	content := []byte("the new a.txt")
	c := f.Run(CreateFile{K: testKey, Dir: dir, Name: "a.txt", Size: uint64(len(content))}).(Created)
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	if w := f.Run(WriteChunk{K: testKey, Temp: c.Temp, Data: content, Hash: sha256.Sum256(content)}).(Written); w.Err != nil {
		t.Fatal(w.Err)
	}
	r := f.Run(FinishFile{K: testKey, Temp: c.Temp, Dir: dir, Name: "a.txt", Size: uint64(len(content)), Hash: sha256.Sum256(content)}).(Finished)
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Path != filepath.Join(dir, "a (2).txt") {
		t.Fatalf("saved as %s, want a (2).txt", r.Path)
	}
	for n, want := range map[string]string{"a.txt": "keep a.txt", "a (1).txt": "keep a (1).txt", "a (2).txt": string(content)} {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || string(got) != want {
			t.Errorf("%s holds %q (%v), want %q", n, got, err, want)
		}
	}
	if _, err := os.Stat(c.Temp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file still there: %v", err)
	}
}

// A file that does not match the offered hash, or size, never gets a name
// and its temporary file goes.
func TestFinishRejectsWrongContent(t *testing.T) {
	for name, tc := range map[string]struct {
		size uint64
		hash func([]byte) [32]byte
	}{
		"hash":  {5, func([]byte) [32]byte { return [32]byte{1} }},
		"short": {6, func(b []byte) [32]byte { return sha256.Sum256(append(b, 'x')) }},
		"long":  {4, func(b []byte) [32]byte { return sha256.Sum256(b[:4]) }},
	} {
		t.Run(name, func(t *testing.T) {
			f, _ := newTestFiles(t)
			dir := t.TempDir()
			data := []byte("hello")
			c := f.Run(CreateFile{K: testKey, Dir: dir, Name: "h.txt", Size: tc.size}).(Created)
			f.Run(WriteChunk{K: testKey, Temp: c.Temp, Data: data, Hash: sha256.Sum256(data)})
			r := f.Run(FinishFile{K: testKey, Temp: c.Temp, Dir: dir, Name: "h.txt", Size: tc.size, Hash: tc.hash(data)}).(Finished)
			if !errors.Is(r.Err, ErrFileHash) {
				t.Fatalf("finish: %v, want ErrFileHash", r.Err)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("folder holds %v", entries)
			}
		})
	}
}

func TestWriteChecksChunkHash(t *testing.T) {
	f, _ := newTestFiles(t)
	c := f.Run(CreateFile{K: testKey, Dir: t.TempDir(), Name: "x", Size: 10}).(Created)
	w := f.Run(WriteChunk{K: testKey, Temp: c.Temp, Index: 3, Data: []byte("abc"), Hash: sha256.Sum256([]byte("abd"))}).(Written)
	if !errors.Is(w.Err, ErrChunkHash) || w.Index != 3 {
		t.Fatalf("write of a mismatching chunk: %+v", w)
	}
	if st, _ := os.Stat(c.Temp); st.Size() != 0 {
		t.Fatalf("a mismatching chunk was written (%d bytes)", st.Size())
	}
}

// Resuming keeps whole checkpointed chunks only when the last one still
// matches; anything else starts again from 0.
func TestResumeFile(t *testing.T) {
	const chunk = MinChunkSize
	content := bytes.Repeat([]byte("0123456789abcdef"), 5*chunk/16) // five chunks
	prevHash := sha256.Sum256(content[2*chunk : 3*chunk])
	for name, tc := range map[string]struct {
		prepare  func(path string)
		wantNext uint64
	}{
		"intact, with unsynced junk after the checkpoint": {func(p string) {
			os.WriteFile(p, append(bytes.Clone(content[:3*chunk]), "junk after the checkpoint"...), 0o644)
		}, 3},
		"last chunk damaged": {func(p string) {
			b := bytes.Clone(content[:3*chunk])
			b[2*chunk+5] ^= 1
			os.WriteFile(p, b, 0o644)
		}, 0},
		"shorter than the checkpoint": {func(p string) { os.WriteFile(p, content[:2*chunk], 0o644) }, 0},
		"missing":                     {func(p string) {}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			f, _ := newTestFiles(t)
			path := filepath.Join(t.TempDir(), "x.part")
			tc.prepare(path)
			r := f.Run(ResumeFile{K: testKey, Temp: path, Size: uint64(len(content)), ChunkSize: chunk, Next: 3, PrevHash: prevHash}).(Resumed)
			if r.Err != nil || r.Next != tc.wantNext {
				t.Fatalf("resumed at %d (%v), want %d", r.Next, r.Err, tc.wantNext)
			}
			st, err := os.Stat(path)
			if err != nil || uint64(st.Size()) != tc.wantNext*chunk {
				t.Fatalf("file is %d bytes (%v), want %d", st.Size(), err, tc.wantNext*chunk)
			}
		})
	}
}

func TestHashAndReadSource(t *testing.T) {
	f, _ := newTestFiles(t)
	dir := t.TempDir()
	if r := f.Run(HashFile{K: testKey, Path: dir}).(Hashed); r.Err == nil || !strings.Contains(r.Err.Error(), "not a regular file") {
		t.Errorf("hashing a folder: %v", r.Err)
	}
	missing := filepath.Join(dir, "missing")
	if r := f.Run(HashFile{K: testKey, Path: missing}).(Hashed); r.Err == nil || !strings.Contains(r.Err.Error(), missing) {
		t.Errorf("hashing a missing file: %v", r.Err)
	}
	path := simFile(t, dir, "src", 3*MinChunkSize+7, 1)
	h := f.Run(HashFile{K: testKey, Path: path}).(Hashed)
	if h.Err != nil || h.Size != 3*MinChunkSize+7 || h.Hash != fileHash(t, path) || h.Name != "src" || !filepath.IsAbs(h.Path) {
		t.Fatalf("hashed %+v", h)
	}
	r := f.Run(ReadChunk{K: testKey, Path: path, Size: h.Size, Index: 3, Offset: 3 * MinChunkSize, Len: 7}).(ChunkRead)
	hdr, data, err := parseChunk(r.Msg)
	if r.Err != nil || err != nil || hdr.index != 3 || hdr.hash != sha256.Sum256(data) || len(data) != 7 || r.Hash != hdr.hash {
		t.Fatalf("read %+v, %v", r, err)
	}
	// The file shrinks under an open handle: the read says it changed.
	if err := os.Truncate(path, MinChunkSize); err != nil {
		t.Fatal(err)
	}
	r = f.Run(ReadChunk{K: testKey, Path: path, Size: h.Size, Index: 2, Offset: 2 * MinChunkSize, Len: MinChunkSize}).(ChunkRead)
	if !errors.Is(r.Err, ErrSourceChanged) {
		t.Fatalf("read past the new end: %v, want ErrSourceChanged", r.Err)
	}
	// Opened afresh with another size: changed too.
	f.Run(CloseFile{K: testKey})
	r = f.Run(ReadChunk{K: testKey, Path: path, Size: h.Size, Index: 0, Len: 10}).(ChunkRead)
	if !errors.Is(r.Err, ErrSourceChanged) {
		t.Fatalf("read of a file with another size: %v, want ErrSourceChanged", r.Err)
	}
}

func TestNoSpaceBeforeCreating(t *testing.T) {
	st := newMemStore()
	f, err := NewFiles(FilesConfig{Store: st, FreeSpace: func(string) (uint64, bool, error) { return 10 << 20, true, nil }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := f.Run(CreateFile{K: testKey, Dir: dir, Name: "big", Size: 7 << 20}).(Created)
	if !errors.Is(c.Err, ErrNoSpace) || !strings.Contains(c.Err.Error(), "7.0 MiB needed and 4.0 MiB to spare, 10.0 MiB free") {
		t.Fatalf("create: %v", c.Err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("folder holds %v", entries)
	}
}

func TestFreeSpace(t *testing.T) {
	free, known, err := FreeSpace(t.TempDir())
	if err != nil || (runtime.GOOS == "linux" && (!known || free == 0)) {
		t.Fatalf("FreeSpace = %d, %v, %v", free, known, err)
	}
	if _, _, err := FreeSpace(filepath.Join(t.TempDir(), "missing")); err == nil && runtime.GOOS == "linux" {
		t.Fatal("free space of a missing folder: no error")
	}
}

// A real full disk: a 1 MiB tmpfs. Needs root (mount); CI runs as root.
func TestRealFullDisk(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI must run this as root on Linux (it mounts a tmpfs)")
		}
		t.Skip("needs root on Linux to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "p2ptui-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	// The real probe refuses a file that does not fit…
	st := newMemStore()
	real, err := NewFiles(FilesConfig{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	if c := real.Run(CreateFile{K: testKey, Dir: dir, Name: "big", Size: 2 << 20}).(Created); !errors.Is(c.Err, ErrNoSpace) {
		t.Fatalf("create on a 1 MiB disk: %v, want ErrNoSpace", c.Err)
	}
	// …and a write that fills the disk says so.
	f, _ := newTestFiles(t) // its probe says there is room
	k := Key{ID: ID{9}}
	c := f.Run(CreateFile{K: k, Dir: dir, Name: "big", Size: 2 << 20}).(Created)
	if c.Err != nil {
		t.Fatal(c.Err)
	}
	data := bytes.Repeat([]byte{'z'}, 64<<10)
	var werr error
	for i := range 32 {
		w := f.Run(WriteChunk{K: k, Temp: c.Temp, Index: uint64(i), Offset: int64(i) * int64(len(data)), Data: data, Hash: sha256.Sum256(data)}).(Written)
		if werr = w.Err; werr != nil {
			break
		}
	}
	if !errors.Is(werr, ErrNoSpace) {
		t.Fatalf("writing 2 MiB to a 1 MiB disk: %v, want ErrNoSpace", werr)
	}
	f.Run(RemoveFile{K: k, Temp: c.Temp})
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("disk holds %v after the removal", entries)
	}
}

// The worker keeps each transfer's results in order while transfers run
// side by side, and Close leaves no goroutine behind.
func TestWorkerOrderAndClose(t *testing.T) {
	before := runtime.NumGoroutine()
	f, _ := newTestFiles(t)
	w := NewWorker(f)
	dir := t.TempDir()
	const transfers, chunks = 4, 50
	temps := make([]string, transfers)
	for i := range transfers {
		k := Key{ID: ID{byte(i)}}
		c := f.Run(CreateFile{K: k, Dir: dir, Name: fmt.Sprint(i), Size: chunks * MinChunkSize}).(Created)
		temps[i] = c.Temp
	}
	for n := range chunks {
		for i := range transfers {
			data := bytes.Repeat([]byte{byte(n)}, MinChunkSize)
			w.Do(WriteChunk{K: Key{ID: ID{byte(i)}}, Temp: temps[i], Index: uint64(n), Offset: int64(n) * MinChunkSize,
				Data: data, Hash: sha256.Sum256(data)})
		}
	}
	next := make([]uint64, transfers)
	timeout := time.After(time.Minute)
	for got := 0; got < transfers*chunks; got++ {
		select {
		case r := <-w.Results():
			wr := r.(Written)
			i := wr.K.ID[0]
			if wr.Err != nil || wr.Index != next[i] {
				t.Fatalf("transfer %d: result for chunk %d (%v), want %d", i, wr.Index, wr.Err, next[i])
			}
			next[i]++
		case <-timeout:
			t.Fatalf("only %d results within a minute", got)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Do(RemoveFile{K: Key{ID: ID{0}}, Temp: temps[0]}) // dropped after Close
	if _, err := os.Stat(temps[0]); err != nil {
		t.Fatalf("an effect ran after Close: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before", n, before)
	}
}
