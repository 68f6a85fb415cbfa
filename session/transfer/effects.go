package transfer

import "errors"

// Effects are the file and store work a Machine asks its owner to do; the
// owner hands each one to Files.Run (or a Worker, which runs them off the
// event loop) and feeds every Result back through Machine.HandleResult.
// Effects of one transfer must run in the order they were emitted: a
// checkpoint covers the writes before it, a removal comes after the last
// write. Effects of different transfers are independent.
type Effect interface {
	// Key names the transfer the effect belongs to.
	Key() Key
}

// Key names one transfer of one peer: the store's key, the worker's queue.
type Key struct {
	Peer     [32]byte
	Outgoing bool
	ID       ID
}

// Result is what became of an Effect.
type Result interface {
	Key() Key
}

// HashFile asks for the size and SHA-256 of a file about to be offered.
type HashFile struct {
	K    Key
	Path string
}

// Hashed answers HashFile.
type Hashed struct {
	K    Key
	Path string // absolute, so a restart elsewhere still finds the file
	Name string // the file's base name
	Size uint64
	Hash [32]byte
	Err  error
}

// ReadChunk asks for chunk Index of the file being sent, as a CHUNK
// message (header and data; Files builds it in one buffer so the data is
// never copied again). Gen is the Machine's, returned as is. Only when
// HashOnly is set no message is built: the chunk's hash is all that is
// needed (to check a resume point).
type ReadChunk struct {
	K        Key
	Gen      uint64
	Path     string
	Size     uint64 // the offered size; a file of another size has changed
	Index    uint64
	Offset   int64
	Len      int
	HashOnly bool
}

// ChunkRead answers ReadChunk.
type ChunkRead struct {
	K        Key
	Gen      uint64
	Index    uint64
	HashOnly bool
	Msg      []byte // the CHUNK message, unless HashOnly
	Hash     [32]byte
	Err      error // ErrSourceChanged, or why the file could not be read
}

// CreateFile asks for the temporary file of an accepted offer in Dir,
// after checking that Dir has room for Size bytes.
type CreateFile struct {
	K    Key
	Dir  string
	Name string // sanitised
	Size uint64
}

// Created answers CreateFile.
type Created struct {
	K    Key
	Temp string
	Err  error // ErrNoSpace, or why the file could not be created
}

// ResumeFile asks to reopen the temporary file of a transfer restored from
// the store: it must hold Next whole chunks whose last one still has the
// hash PrevHash; anything after them is cut off. When the file is missing
// or that chunk no longer matches, it starts again from chunk 0.
type ResumeFile struct {
	K         Key
	Temp      string
	Size      uint64
	ChunkSize uint32
	Next      uint64
	PrevHash  [32]byte
}

// Resumed answers ResumeFile with the chunk to continue from.
type Resumed struct {
	K    Key
	Next uint64
	Err  error // ErrNoSpace, or why the file could not be reopened
}

// WriteChunk asks to check Data against Hash and write it at Offset.
type WriteChunk struct {
	K      Key
	Gen    uint64
	Temp   string
	Index  uint64
	Offset int64
	Data   []byte
	Hash   [32]byte
}

// Written answers WriteChunk.
type Written struct {
	K     Key
	Gen   uint64
	Index uint64
	Err   error // ErrChunkHash, ErrNoSpace, or why the write failed
}

// Checkpoint asks to make the temporary file durable (fsync) and then
// store Record, whose Next counts only chunks written before this effect.
type Checkpoint struct {
	Record Record
}

// Checkpointed answers Checkpoint.
type Checkpointed struct {
	K    Key
	Next uint64
	Err  error
}

// FinishFile asks to verify the complete temporary file (size and SHA-256,
// read back from disk) and to give it its final name in Dir: Name, or
// "Name (1)", "Name (2)"… when taken. An existing file is never replaced.
// On failure the temporary file is removed.
type FinishFile struct {
	K    Key
	Temp string
	Dir  string
	Name string // sanitised
	Size uint64
	Hash [32]byte
}

// Finished answers FinishFile.
type Finished struct {
	K    Key
	Path string
	Err  error // ErrFileHash, or why the file could not be finished
}

// RemoveFile asks to delete a transfer's temporary file.
type RemoveFile struct {
	K    Key
	Temp string
}

// CloseFile tells the executor the transfer needs no open file for now.
type CloseFile struct{ K Key }

// SaveRecord asks to store a record.
type SaveRecord struct{ Record Record }

// DeleteRecord asks to remove a record from the store.
type DeleteRecord struct{ K Key }

// Done answers the effects that need no answer unless they fail
// (RemoveFile, SaveRecord, DeleteRecord); CloseFile has no answer.
type Done struct {
	K   Key
	Op  string
	Err error
}

func (e HashFile) Key() Key     { return e.K }
func (e ReadChunk) Key() Key    { return e.K }
func (e CreateFile) Key() Key   { return e.K }
func (e ResumeFile) Key() Key   { return e.K }
func (e WriteChunk) Key() Key   { return e.K }
func (e Checkpoint) Key() Key   { return e.Record.key() }
func (e FinishFile) Key() Key   { return e.K }
func (e RemoveFile) Key() Key   { return e.K }
func (e CloseFile) Key() Key    { return e.K }
func (e SaveRecord) Key() Key   { return e.Record.key() }
func (e DeleteRecord) Key() Key { return e.K }

func (r Hashed) Key() Key       { return r.K }
func (r ChunkRead) Key() Key    { return r.K }
func (r Created) Key() Key      { return r.K }
func (r Resumed) Key() Key      { return r.K }
func (r Written) Key() Key      { return r.K }
func (r Checkpointed) Key() Key { return r.K }
func (r Finished) Key() Key     { return r.K }
func (r Done) Key() Key         { return r.K }

func (r *Record) key() Key { return Key{Peer: r.Peer, Outgoing: r.Outgoing, ID: r.ID} }

// Errors the file work reports, for the machine to tell apart.
var (
	// ErrNoSpace: the disk is full or has less room than the file needs.
	ErrNoSpace = errors.New("not enough free disk space")
	// ErrSourceChanged: the file being sent is not the one offered.
	ErrSourceChanged = errors.New("the file changed after it was offered")
	// ErrChunkHash: a received chunk does not match its hash.
	ErrChunkHash = errors.New("chunk does not match its hash")
	// ErrFileHash: the complete file does not match the offered hash.
	ErrFileHash = errors.New("file does not match the offered hash")
)
