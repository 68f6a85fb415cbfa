package transfer

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// RecordStore keeps transfer records; session/store's Store is one.
type RecordStore interface {
	PutTransfer(r Record) error
	DeleteTransfer(k Key) error
}

// FilesConfig configures Files.
type FilesConfig struct {
	// Store keeps the records (required).
	Store RecordStore
	// FreeSpace overrides the free-space probe (tests); nil uses FreeSpace.
	FreeSpace func(dir string) (free uint64, known bool, err error)
}

// Files performs a Machine's effects synchronously: reading, hashing and
// writing files and storing records. It keeps each transfer's file open
// between effects. Run may be called from several goroutines at once for
// different transfers, never for the same one (Worker guarantees that).
type Files struct {
	cfg  FilesConfig
	mu   sync.Mutex
	open map[Key]*os.File

	// fault, when set by a test, may fail an operation ("write", "sync",
	// "read") on a transfer before it happens.
	fault func(op string, k Key) error
}

// NewFiles returns an executor that keeps records in cfg.Store.
func NewFiles(cfg FilesConfig) (*Files, error) {
	if cfg.Store == nil {
		return nil, errors.New("new files: no record store")
	}
	if cfg.FreeSpace == nil {
		cfg.FreeSpace = FreeSpace
	}
	return &Files{cfg: cfg, open: map[Key]*os.File{}}, nil
}

// freeReserve is room left on the disk besides the file itself, so that
// accepting a file never fills a disk to the last byte (the store and the
// rest of the system need to write too).
const freeReserve = 4 << 20

// hashBufSize is the read size when hashing a whole file.
const hashBufSize = 1 << 20

// Run performs one effect and returns its result (nil for CloseFile).
func (f *Files) Run(e Effect) Result {
	switch e := e.(type) {
	case HashFile:
		return f.hashFile(e)
	case ReadChunk:
		return f.readChunk(e)
	case CreateFile:
		return f.createFile(e)
	case ResumeFile:
		return f.resumeFile(e)
	case WriteChunk:
		return f.writeChunk(e)
	case Checkpoint:
		return f.checkpoint(e)
	case FinishFile:
		return f.finishFile(e)
	case RemoveFile:
		f.closeFile(e.K)
		err := os.Remove(e.Temp)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		return Done{K: e.K, Op: "remove", Err: wrap(err, "remove %s", e.Temp)}
	case CloseFile:
		f.closeFile(e.K)
		return nil
	case SaveRecord:
		return Done{K: e.Key(), Op: "save", Err: wrap(f.cfg.Store.PutTransfer(e.Record), "store transfer")}
	case DeleteRecord:
		return Done{K: e.K, Op: "delete", Err: wrap(f.cfg.Store.DeleteTransfer(e.K), "delete transfer")}
	}
	panic(fmt.Sprintf("transfer: unknown effect %T", e))
}

// Close closes every file still open.
func (f *Files) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for k, fh := range f.open {
		errs = append(errs, fh.Close())
		delete(f.open, k)
	}
	return errors.Join(errs...)
}

func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

func (f *Files) file(k Key) *os.File {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open[k]
}

func (f *Files) setFile(k Key, fh *os.File) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.open[k]; old != nil && old != fh {
		old.Close()
	}
	f.open[k] = fh
}

func (f *Files) closeFile(k Key) {
	f.mu.Lock()
	fh := f.open[k]
	delete(f.open, k)
	f.mu.Unlock()
	if fh != nil {
		fh.Close()
	}
}

func (f *Files) injected(op string, k Key) error {
	if f.fault == nil {
		return nil
	}
	return f.fault(op, k)
}

func (f *Files) hashFile(e HashFile) Result {
	r := Hashed{K: e.K, Path: e.Path, Name: filepath.Base(e.Path)}
	if abs, err := filepath.Abs(e.Path); err == nil {
		r.Path = abs
	}
	fh, err := os.Open(e.Path)
	if err != nil {
		r.Err = fmt.Errorf("open %s: %w", e.Path, err)
		return r
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		r.Err = fmt.Errorf("stat %s: %w", e.Path, err)
		return r
	}
	if !st.Mode().IsRegular() {
		r.Err = fmt.Errorf("%s is not a regular file", e.Path)
		return r
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, fh, make([]byte, hashBufSize))
	if err != nil {
		r.Err = fmt.Errorf("read %s: %w", e.Path, err)
		return r
	}
	r.Size = uint64(n)
	h.Sum(r.Hash[:0])
	return r
}

func (f *Files) readChunk(e ReadChunk) Result {
	r := ChunkRead{K: e.K, Gen: e.Gen, Index: e.Index, HashOnly: e.HashOnly}
	fh := f.file(e.K)
	if fh == nil {
		var err error
		if fh, err = os.Open(e.Path); err != nil {
			r.Err = fmt.Errorf("open %s: %w", e.Path, err)
			return r
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			r.Err = fmt.Errorf("stat %s: %w", e.Path, err)
			return r
		}
		if !st.Mode().IsRegular() || uint64(st.Size()) != e.Size {
			fh.Close()
			r.Err = fmt.Errorf("%s: %w (%d bytes now, %d offered)", e.Path, ErrSourceChanged, st.Size(), e.Size)
			return r
		}
		f.setFile(e.K, fh)
	}
	if err := f.injected("read", e.K); err != nil {
		r.Err = err
		return r
	}
	msg := make([]byte, chunkHeaderLen+e.Len)
	data := msg[chunkHeaderLen:]
	if _, err := fh.ReadAt(data, e.Offset); err != nil {
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w (it is shorter now)", ErrSourceChanged)
		}
		r.Err = fmt.Errorf("read %s at %d: %w", e.Path, e.Offset, err)
		return r
	}
	r.Hash = sha256.Sum256(data)
	if !e.HashOnly {
		appendChunkHeader(msg[:0], chunkHeader{index: e.Index, hash: r.Hash})
		r.Msg = msg
	}
	return r
}

// checkRoom fails with ErrNoSpace when dir has less than need bytes free
// besides the reserve.
func (f *Files) checkRoom(dir string, need uint64) error {
	free, known, err := f.cfg.FreeSpace(dir)
	if err != nil {
		return err
	}
	if known && free < need+freeReserve {
		return fmt.Errorf("%w in %s: %s needed and %s to spare, %s free", ErrNoSpace, dir,
			formatBytes(need), formatBytes(freeReserve), formatBytes(free))
	}
	return nil
}

func (f *Files) createFile(e CreateFile) Result {
	r := Created{K: e.K}
	if err := os.MkdirAll(e.Dir, 0o755); err != nil {
		r.Err = fmt.Errorf("create folder %s: %w", e.Dir, err)
		return r
	}
	if err := f.checkRoom(e.Dir, e.Size); err != nil {
		r.Err = err
		return r
	}
	temp := filepath.Join(e.Dir, tempName(e.Name, e.K.ID))
	// The name carries the transfer's ID, so an old file under it can
	// only be a lost earlier attempt at this very transfer.
	fh, err := os.OpenFile(temp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		r.Err = fmt.Errorf("create %s: %w", temp, err)
		return r
	}
	f.setFile(e.K, fh)
	r.Temp = temp
	return r
}

func (f *Files) resumeFile(e ResumeFile) Result {
	r := Resumed{K: e.K, Next: e.Next}
	fh, err := os.OpenFile(e.Temp, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		r.Err = fmt.Errorf("reopen %s: %w", e.Temp, err)
		return r
	}
	off := min(e.Next*uint64(e.ChunkSize), e.Size)
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		r.Err = fmt.Errorf("stat %s: %w", e.Temp, err)
		return r
	}
	if uint64(st.Size()) < off {
		r.Next, off = 0, 0
	} else if e.Next > 0 {
		start := (e.Next - 1) * uint64(e.ChunkSize)
		buf := make([]byte, off-start)
		if _, err := fh.ReadAt(buf, int64(start)); err != nil || sha256.Sum256(buf) != e.PrevHash {
			r.Next, off = 0, 0
		}
	}
	if err := fh.Truncate(int64(off)); err != nil {
		fh.Close()
		r.Err = fmt.Errorf("truncate %s: %w", e.Temp, err)
		return r
	}
	f.setFile(e.K, fh)
	if err := f.checkRoom(filepath.Dir(e.Temp), e.Size-off); err != nil {
		r.Err = err
	}
	return r
}

func (f *Files) openTemp(k Key, temp string) (*os.File, error) {
	if fh := f.file(k); fh != nil {
		return fh, nil
	}
	fh, err := os.OpenFile(temp, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("reopen %s: %w", temp, err)
	}
	f.setFile(k, fh)
	return fh, nil
}

func (f *Files) writeChunk(e WriteChunk) Result {
	r := Written{K: e.K, Gen: e.Gen, Index: e.Index}
	if sha256.Sum256(e.Data) != e.Hash {
		r.Err = fmt.Errorf("chunk %d: %w", e.Index, ErrChunkHash)
		return r
	}
	fh, err := f.openTemp(e.K, e.Temp)
	if err != nil {
		r.Err = err
		return r
	}
	err = f.injected("write", e.K)
	if err == nil {
		_, err = fh.WriteAt(e.Data, e.Offset)
	}
	if err != nil {
		if isNoSpace(err) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		r.Err = fmt.Errorf("write %s: %w", e.Temp, err)
	}
	return r
}

func (f *Files) checkpoint(e Checkpoint) Result {
	r := Checkpointed{K: e.Key(), Next: e.Record.Next}
	fh, err := f.openTemp(r.K, e.Record.Temp)
	if err == nil {
		err = f.injected("sync", r.K)
	}
	if err == nil {
		err = wrap(fh.Sync(), "sync %s", e.Record.Temp)
	}
	if err != nil {
		if isNoSpace(err) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		r.Err = err
		return r
	}
	r.Err = wrap(f.cfg.Store.PutTransfer(e.Record), "store transfer")
	return r
}

func (f *Files) finishFile(e FinishFile) Result {
	r := Finished{K: e.K}
	fail := func(err error) Result {
		f.closeFile(e.K)
		os.Remove(e.Temp)
		r.Err = err
		return r
	}
	fh, err := f.openTemp(e.K, e.Temp)
	if err != nil {
		return fail(err)
	}
	if err := fh.Sync(); err != nil {
		return fail(fmt.Errorf("sync %s: %w", e.Temp, err))
	}
	// Read the file back: what is checked is what is on the disk.
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(fh, 0, int64(e.Size)+1), make([]byte, hashBufSize))
	if err != nil {
		return fail(fmt.Errorf("read back %s: %w", e.Temp, err))
	}
	if uint64(n) != e.Size || !bytes.Equal(h.Sum(nil), e.Hash[:]) {
		return fail(fmt.Errorf("%w (%d bytes received)", ErrFileHash, n))
	}
	f.closeFile(e.K)
	path, err := claimName(e.Temp, e.Dir, e.Name)
	if err != nil {
		return fail(err)
	}
	r.Path = path
	syncDir(e.Dir)
	return r
}

// maxNameTries bounds the search for a free "name (k)".
const maxNameTries = 10000

// claimName moves temp to the first free name among name, "name (1)",
// "name (2)"… in dir without ever replacing an existing file: a hard link
// fails when the name exists; where links are not supported, an
// exclusively created placeholder reserves the name before the rename.
func claimName(temp, dir, name string) (string, error) {
	for k := range maxNameTries {
		final := filepath.Join(dir, numberedName(name, k))
		err := os.Link(temp, final)
		if err == nil {
			if err := os.Remove(temp); err != nil {
				return "", fmt.Errorf("remove %s: %w", temp, err)
			}
			return final, nil
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		ph, err := os.OpenFile(final, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create %s: %w", final, err)
		}
		ph.Close()
		if err := os.Rename(temp, final); err != nil {
			os.Remove(final)
			return "", fmt.Errorf("rename %s: %w", temp, err)
		}
		return final, nil
	}
	return "", fmt.Errorf("no free name for %s in %s after %d tries", name, dir, maxNameTries)
}

// syncDir makes a rename durable where the system allows syncing a
// directory; elsewhere (Windows) it does nothing.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	d.Close()
}

// formatBytes is a size in plain words: "1.5 GiB".
func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
