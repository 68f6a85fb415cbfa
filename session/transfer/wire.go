package transfer

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// Wire format. Every numbered stream the transfer layer opens starts with a
// hello message saying what the stream is for:
//
//	control hello  'C' | version 1
//	data hello     'D' | version 1 | transfer 16 | first chunk 8
//
// Every later message of the control stream is one control message:
//
//	OFFER    0x01 | transfer 16 | size 8 | chunk size 4 | sha256 32 | name length 2 | name
//	ACCEPT   0x02 | transfer 16 | first chunk 8 | sha256 of the chunk before it 32 (zero for chunk 0)
//	DECLINE  0x03 | transfer 16
//	CANCEL   0x04 | transfer 16 | reason 1
//	DONE     0x05 | transfer 16
//
// and every later message of a data stream is one chunk, in order:
//
//	CHUNK    index 8 | sha256 32 | data (the chunk size, or what is left of the file)
//
// The receiver of an offer answers ACCEPT with the chunk to start from (0,
// or where it got to before a lost path or a restart); the sender then
// opens a data stream that starts there. Parsers check every length before
// reading it and never allocate.
const (
	helloControl byte = 'C'
	helloData    byte = 'D'
	wireVersion  byte = 1

	msgOffer   byte = 0x01
	msgAccept  byte = 0x02
	msgDecline byte = 0x03
	msgCancel  byte = 0x04
	msgDone    byte = 0x05

	idLen          = 16
	hashLen        = 32
	controlHello   = 2
	dataHelloLen   = 2 + idLen + 8
	offerFixedLen  = 1 + idLen + 8 + 4 + hashLen + 2
	acceptLen      = 1 + idLen + 8 + hashLen
	shortLen       = 1 + idLen
	cancelLen      = 1 + idLen + 1
	chunkHeaderLen = 8 + hashLen

	// MaxWireName bounds the name in an offer; SafeName shortens it further
	// before it touches a disk.
	MaxWireName = 1024
)

var errShort = errors.New("truncated")

// ID identifies one transfer for good: the offering side picks it at
// random, and it names the transfer in every message and in the store.
type ID [idLen]byte

// String is the ID in hex, for logs and the headless protocol.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads the String form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*idLen {
		return ID{}, fmt.Errorf("transfer id %q: want %d hex digits", s, 2*idLen)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("transfer id %q: %w", s, err)
	}
	return id, nil
}

// hello is the first message of a stream.
type hello struct {
	data  bool
	id    ID
	first uint64 // data streams: the chunk the stream starts at
}

func appendHello(b []byte, h hello) []byte {
	if !h.data {
		return append(b, helloControl, wireVersion)
	}
	b = append(b, helloData, wireVersion)
	b = append(b, h.id[:]...)
	return binary.BigEndian.AppendUint64(b, h.first)
}

func parseHello(b []byte) (hello, error) {
	if len(b) < 2 {
		return hello{}, fmt.Errorf("stream hello: %w", errShort)
	}
	if b[1] != wireVersion {
		return hello{}, fmt.Errorf("stream hello: version %d, want %d", b[1], wireVersion)
	}
	switch b[0] {
	case helloControl:
		if len(b) != controlHello {
			return hello{}, fmt.Errorf("control hello: %d bytes, want %d", len(b), controlHello)
		}
		return hello{}, nil
	case helloData:
		if len(b) != dataHelloLen {
			return hello{}, fmt.Errorf("data hello: %d bytes, want %d", len(b), dataHelloLen)
		}
		h := hello{data: true, first: binary.BigEndian.Uint64(b[2+idLen:])}
		copy(h.id[:], b[2:2+idLen])
		return h, nil
	}
	return hello{}, fmt.Errorf("stream hello: unknown kind 0x%02x", b[0])
}

// control is one decoded control message; kind selects the valid fields.
type control struct {
	kind      byte
	id        ID
	size      uint64   // OFFER
	chunkSize uint32   // OFFER
	hash      [32]byte // OFFER: the file; ACCEPT: the chunk before first
	name      string   // OFFER
	first     uint64   // ACCEPT
	reason    Reason   // CANCEL
}

func appendControl(b []byte, c *control) []byte {
	b = append(b, c.kind)
	b = append(b, c.id[:]...)
	switch c.kind {
	case msgOffer:
		b = binary.BigEndian.AppendUint64(b, c.size)
		b = binary.BigEndian.AppendUint32(b, c.chunkSize)
		b = append(b, c.hash[:]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.name)))
		b = append(b, c.name...)
	case msgAccept:
		b = binary.BigEndian.AppendUint64(b, c.first)
		b = append(b, c.hash[:]...)
	case msgCancel:
		b = append(b, byte(c.reason))
	}
	return b
}

// parseControl decodes one control message; it checks the encoding, not
// whether the values make sense for a transfer (Machine does that).
func parseControl(b []byte, c *control) error {
	if len(b) < shortLen {
		return fmt.Errorf("control message: %w", errShort)
	}
	*c = control{kind: b[0]}
	copy(c.id[:], b[1:1+idLen])
	rest := b[shortLen:]
	switch c.kind {
	case msgOffer:
		if len(b) < offerFixedLen {
			return fmt.Errorf("offer: %w", errShort)
		}
		c.size = binary.BigEndian.Uint64(rest[0:8])
		c.chunkSize = binary.BigEndian.Uint32(rest[8:12])
		copy(c.hash[:], rest[12:12+hashLen])
		n := int(binary.BigEndian.Uint16(rest[12+hashLen:]))
		rest = rest[12+hashLen+2:]
		if n > MaxWireName {
			return fmt.Errorf("offer: name of %d bytes exceeds %d", n, MaxWireName)
		}
		if len(rest) != n {
			return fmt.Errorf("offer: name of %d bytes in %d", n, len(rest))
		}
		c.name = string(rest)
		return nil
	case msgAccept:
		if len(b) != acceptLen {
			return fmt.Errorf("accept: %d bytes, want %d", len(b), acceptLen)
		}
		c.first = binary.BigEndian.Uint64(rest[0:8])
		copy(c.hash[:], rest[8:])
		return nil
	case msgDecline, msgDone:
		if len(b) != shortLen {
			return fmt.Errorf("message 0x%02x: %d bytes, want %d", c.kind, len(b), shortLen)
		}
		return nil
	case msgCancel:
		if len(b) != cancelLen {
			return fmt.Errorf("cancel: %d bytes, want %d", len(b), cancelLen)
		}
		c.reason = Reason(rest[0])
		return nil
	}
	return fmt.Errorf("unknown control message 0x%02x", c.kind)
}

// chunkHeader is what precedes a chunk's data.
type chunkHeader struct {
	index uint64
	hash  [32]byte
}

func appendChunkHeader(b []byte, h chunkHeader) []byte {
	b = binary.BigEndian.AppendUint64(b, h.index)
	return append(b, h.hash[:]...)
}

// parseChunk splits a CHUNK message into its header and data (which
// aliases b).
func parseChunk(b []byte) (chunkHeader, []byte, error) {
	if len(b) < chunkHeaderLen {
		return chunkHeader{}, nil, fmt.Errorf("chunk: %w", errShort)
	}
	h := chunkHeader{index: binary.BigEndian.Uint64(b[:8])}
	copy(h.hash[:], b[8:chunkHeaderLen])
	return h, b[chunkHeaderLen:], nil
}
