package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// State is where a transfer stands.
type State uint8

// Transfer states. An outgoing transfer goes Hashing → Offered → Active →
// Done; an incoming one Offered → Preparing → Active → Done. Any of them
// can end in Failed instead.
const (
	// StateHashing: outgoing, the file is being hashed before it is
	// offered (not stored: a restart forgets it).
	StateHashing State = iota + 1
	// StateOffered: outgoing, offered and not answered; incoming, waiting
	// for the user.
	StateOffered
	// StatePreparing: incoming, accepted; the file is being created.
	StatePreparing
	// StateActive: accepted; chunks move whenever a session is up.
	StateActive
	// StateDone: the receiver verified the whole file and gave it its name.
	StateDone
	// StateFailed: ended without the file; Record.Reason says why.
	StateFailed

	stateLast = StateFailed
)

func (s State) String() string {
	switch s {
	case StateHashing:
		return "hashing"
	case StateOffered:
		return "offered"
	case StatePreparing:
		return "preparing"
	case StateActive:
		return "active"
	case StateDone:
		return "done"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Terminal reports whether the transfer has ended.
func (s State) Terminal() bool { return s == StateDone || s == StateFailed }

// Record is what survives a restart of one transfer: the store keeps it
// under (Peer, Outgoing, ID).
type Record struct {
	Peer     [32]byte // the peer's static public key
	ID       ID
	Outgoing bool
	State    State
	// Name is the name offered: the source's base name when outgoing, the
	// peer's unsanitised name when incoming.
	Name      string
	Size      uint64
	ChunkSize uint32
	Hash      [32]byte // SHA-256 of the whole file
	Created   time.Time
	Updated   time.Time

	// Path is the source file (outgoing).
	Path string
	// Dir is the destination directory, Temp the file being written and
	// Final the name it got when complete (incoming).
	Dir, Temp, Final string
	// Next is the number of chunks written, synced and checkpointed
	// (incoming), and PrevHash the SHA-256 of chunk Next-1.
	Next     uint64
	PrevHash [32]byte

	// Reason, ByPeer and Detail say why a failed transfer ended and who
	// ended it; Detail is local text (an OS error), never the peer's.
	Reason Reason
	ByPeer bool
	Detail string
	// Told is set once the peer has received our final word (DONE,
	// DECLINE or CANCEL); until then it is sent again in every session.
	Told bool
}

// Chunks is the number of chunks of the file.
func (r *Record) Chunks() uint64 {
	if r.ChunkSize == 0 {
		return 0
	}
	return (r.Size + uint64(r.ChunkSize) - 1) / uint64(r.ChunkSize)
}

// chunkLen is the length of chunk i.
func (r *Record) chunkLen(i uint64) int {
	off := i * uint64(r.ChunkSize)
	return int(min(uint64(r.ChunkSize), r.Size-off))
}

const (
	recordVersion = 1

	flagOutgoing = 1 << 0
	flagByPeer   = 1 << 1
	flagTold     = 1 << 2

	recordFixedLen = 1 + 1 + 1 + 1 + 32 + idLen + 8 + 4 + hashLen + 8 + hashLen + 8 + 8
	// maxRecordString bounds each string of a stored record: paths and
	// names are far shorter on every system p2ptui runs on.
	maxRecordString = 8 << 10
)

// ErrRecord: a stored record does not decode (a newer version, or damage).
var ErrRecord = errors.New("unreadable transfer record")

// MarshalBinary encodes the record for the store.
func (r *Record) MarshalBinary() ([]byte, error) {
	var flags byte
	if r.Outgoing {
		flags |= flagOutgoing
	}
	if r.ByPeer {
		flags |= flagByPeer
	}
	if r.Told {
		flags |= flagTold
	}
	b := make([]byte, 0, recordFixedLen+len(r.Name)+len(r.Path)+len(r.Dir)+len(r.Temp)+len(r.Final)+len(r.Detail)+12)
	b = append(b, recordVersion, flags, byte(r.State), byte(r.Reason))
	b = append(b, r.Peer[:]...)
	b = append(b, r.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Size)
	b = binary.BigEndian.AppendUint32(b, r.ChunkSize)
	b = append(b, r.Hash[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Next)
	b = append(b, r.PrevHash[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.Created)))
	b = binary.BigEndian.AppendUint64(b, uint64(unixNano(r.Updated)))
	for _, s := range []string{r.Name, r.Path, r.Dir, r.Temp, r.Final, r.Detail} {
		if len(s) > maxRecordString {
			return nil, fmt.Errorf("transfer record: a string of %d bytes exceeds %d", len(s), maxRecordString)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded; anything else is
// ErrRecord.
func (r *Record) UnmarshalBinary(b []byte) error {
	if len(b) < recordFixedLen {
		return fmt.Errorf("%w: %d bytes", ErrRecord, len(b))
	}
	if b[0] != recordVersion {
		return fmt.Errorf("%w: version %d", ErrRecord, b[0])
	}
	flags, state, reason := b[1], State(b[2]), Reason(b[3])
	if flags&^(flagOutgoing|flagByPeer|flagTold) != 0 || state < StateHashing || state > stateLast || reason > reasonLast {
		return fmt.Errorf("%w: flags 0x%02x, state %d, reason %d", ErrRecord, flags, state, reason)
	}
	var n Record
	n.Outgoing, n.ByPeer, n.Told = flags&flagOutgoing != 0, flags&flagByPeer != 0, flags&flagTold != 0
	n.State, n.Reason = state, reason
	b = b[4:]
	copy(n.Peer[:], b[:32])
	copy(n.ID[:], b[32:32+idLen])
	b = b[32+idLen:]
	n.Size = binary.BigEndian.Uint64(b[0:8])
	n.ChunkSize = binary.BigEndian.Uint32(b[8:12])
	copy(n.Hash[:], b[12:12+hashLen])
	b = b[12+hashLen:]
	n.Next = binary.BigEndian.Uint64(b[0:8])
	copy(n.PrevHash[:], b[8:8+hashLen])
	b = b[8+hashLen:]
	n.Created = fromUnixNano(int64(binary.BigEndian.Uint64(b[0:8])))
	n.Updated = fromUnixNano(int64(binary.BigEndian.Uint64(b[8:16])))
	b = b[16:]
	for _, s := range []*string{&n.Name, &n.Path, &n.Dir, &n.Temp, &n.Final, &n.Detail} {
		if len(b) < 2 {
			return fmt.Errorf("%w: %w", ErrRecord, errShort)
		}
		l := int(binary.BigEndian.Uint16(b))
		if l > maxRecordString || len(b) < 2+l {
			return fmt.Errorf("%w: string of %d bytes", ErrRecord, l)
		}
		*s = string(b[2 : 2+l])
		b = b[2+l:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d bytes too many", ErrRecord, len(b))
	}
	if err := n.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	*r = n
	return nil
}

// check rejects what no version of the machine stores, so a damaged record
// cannot make it divide by zero or seek past the file.
func (r *Record) check() error {
	if r.Size > MaxFileSize {
		return fmt.Errorf("size %d exceeds %d", r.Size, uint64(MaxFileSize))
	}
	if r.ChunkSize < MinChunkSize || r.ChunkSize > MaxChunkSize {
		return fmt.Errorf("chunk size %d outside %d..%d", r.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if r.Next > r.Chunks() {
		return fmt.Errorf("%d of %d chunks written", r.Next, r.Chunks())
	}
	return nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}
