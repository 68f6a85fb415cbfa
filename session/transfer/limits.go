package transfer

import "time"

// Every size and timer of the transfer protocol, with the reason for its
// value.
const (
	// DefaultChunkSize is the unit of hashing, writing and resuming: 64 KiB
	// keeps the per-chunk work (a hash, a write, one message) small against
	// the data, a lost path costs at most the chunks in flight, and a
	// chunk message stays well inside session.MaxStreamMessageSize.
	DefaultChunkSize = 64 << 10
	// MinChunkSize and MaxChunkSize bound the chunk size an offer may
	// name: smaller chunks would be all overhead, larger ones would not fit
	// a stream message with several in flight.
	MinChunkSize = 4 << 10
	MaxChunkSize = 64 << 10
	// MaxFileSize bounds the size an offer may name (1 PiB).
	MaxFileSize = 1 << 50

	// SendAhead is how many chunks the sender keeps read or in flight ahead
	// of what the receiver has stored: 1.5 MiB, a little more than the
	// session's receive window, so the window stays full while memory
	// stays bounded whatever the file's size.
	SendAhead = 24
	// MaxActiveStreams bounds the data streams one side sends on at once;
	// further accepted transfers wait for a turn. With the control stream
	// it stays below session.MaxStreams.
	MaxActiveStreams = 8
	// MaxPendingOffers bounds the offers from one peer waiting for an
	// answer; more are refused, so a peer cannot grow our store at will.
	MaxPendingOffers = 32

	// CheckpointBytes and CheckpointInterval say how often the receiver
	// makes its progress durable (fsync, then the store): a crash repeats
	// at most that much, and an fsync every 32 MiB costs little.
	CheckpointBytes    = 32 << 20
	CheckpointInterval = 2 * time.Second
	// ProgressInterval bounds how often one transfer reports progress.
	ProgressInterval = 200 * time.Millisecond
	// MaxFinished bounds the ended transfers kept per peer (the oldest
	// whose final word was delivered go first), so a peer offering and
	// cancelling in a loop cannot grow the store without end.
	MaxFinished = 256
	// Retention is how long finished transfers stay in the store, so a
	// repeated offer or answer from a peer that missed our last word is
	// recognised.
	Retention = 30 * 24 * time.Hour
)
