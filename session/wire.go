package session

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire format. Every session datagram starts with a type byte in 0x60–0x6F
// (the demultiplexing rule shared with punch and STUN, RFC 7983 style).
//
//	handshake init  0x61 | Noise IK message 1 (96 bytes: e, s+tag, empty payload tag)
//	handshake resp  0x62 | Noise IK message 2 (48 bytes: e, empty payload tag)
//	transport       0x63 | counter (8, big endian) | ChaCha20-Poly1305(frames), AD = the 9 header bytes
//
// The plaintext of a transport datagram is a sequence of frames:
//
//	DATA   0x01 | seq 8 | flags 1 | len 2 | [first only: id 16 | sentAt 8 | total 4] | len bytes
//	ACK    0x02 | cum 8 | committed 8 | window 8 | n 1 | n × (offset 2 | length 2)
//	PING   0x03
//	TYPING 0x04 | active 1
//	CLOSE  0x05
//
// Every length is checked before it is read (the discipline of Tailscale's
// disco package); parsers never panic and never allocate except for ranges.
const (
	typeHandshakeInit byte = 0x61
	typeHandshakeResp byte = 0x62
	typeTransport     byte = 0x63

	handshakeInitLen = 1 + 32 + 32 + 16 + 16
	handshakeRespLen = 1 + 32 + 16

	transportHeaderLen = 1 + 8
	aeadTagLen         = 16
	transportOverhead  = transportHeaderLen + aeadTagLen
	// maxPayload is the plaintext room in one datagram.
	maxPayload = MaxDatagramSize - transportOverhead

	frameData   byte = 0x01
	frameAck    byte = 0x02
	framePing   byte = 0x03
	frameTyping byte = 0x04
	frameClose  byte = 0x05

	dataHeaderLen      = 1 + 8 + 1 + 2
	dataFirstHeaderLen = 16 + 8 + 4
	// fragmentSize is the body bytes per fragment: a first fragment with its
	// message header fills one datagram exactly. Every fragment uses the same
	// size so a retransmission always fits where the original did.
	fragmentSize = maxPayload - dataHeaderLen - dataFirstHeaderLen

	flagFirst byte = 1 << 0
	flagLast  byte = 1 << 1

	ackFixedLen = 1 + 8 + 8 + 8 + 1
	ackRangeLen = 4
	maxAckLen   = ackFixedLen + MaxAckRanges*ackRangeLen
)

var (
	errShort      = errors.New("truncated")
	errNotSession = errors.New("not a session packet")
)

// packetType checks the first byte and the fixed length of handshake packets.
func packetType(b []byte) (byte, error) {
	if len(b) == 0 {
		return 0, errShort
	}
	switch b[0] {
	case typeHandshakeInit:
		if len(b) != handshakeInitLen {
			return 0, fmt.Errorf("handshake init: %d bytes, want %d", len(b), handshakeInitLen)
		}
	case typeHandshakeResp:
		if len(b) != handshakeRespLen {
			return 0, fmt.Errorf("handshake response: %d bytes, want %d", len(b), handshakeRespLen)
		}
	case typeTransport:
		if len(b) < transportOverhead {
			return 0, fmt.Errorf("transport: %d bytes: %w", len(b), errShort)
		}
		if len(b) > MaxDatagramSize {
			return 0, fmt.Errorf("transport: %d bytes exceeds %d", len(b), MaxDatagramSize)
		}
	default:
		return 0, fmt.Errorf("type 0x%02x: %w", b[0], errNotSession)
	}
	return b[0], nil
}

// parseTransportHeader returns the counter and the ciphertext of a transport
// datagram.
func parseTransportHeader(b []byte) (counter uint64, header, ciphertext []byte, err error) {
	if t, err := packetType(b); err != nil {
		return 0, nil, nil, err
	} else if t != typeTransport {
		return 0, nil, nil, fmt.Errorf("type 0x%02x is not transport", t)
	}
	return binary.BigEndian.Uint64(b[1:9]), b[:transportHeaderLen], b[transportHeaderLen:], nil
}

// appendTransportHeader appends the 9 header bytes for counter.
func appendTransportHeader(b []byte, counter uint64) []byte {
	b = append(b, typeTransport)
	return binary.BigEndian.AppendUint64(b, counter)
}

// dataFrame is one fragment of a message.
type dataFrame struct {
	seq         uint64
	first, last bool
	// Set on the first fragment only.
	id     MessageID
	sentAt int64 // unix nanoseconds
	total  uint32
	data   []byte
}

func (f *dataFrame) encodedLen() int {
	n := dataHeaderLen + len(f.data)
	if f.first {
		n += dataFirstHeaderLen
	}
	return n
}

func appendDataFrame(b []byte, f *dataFrame) []byte {
	var flags byte
	if f.first {
		flags |= flagFirst
	}
	if f.last {
		flags |= flagLast
	}
	b = append(b, frameData)
	b = binary.BigEndian.AppendUint64(b, f.seq)
	b = append(b, flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.data)))
	if f.first {
		b = append(b, f.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(f.sentAt))
		b = binary.BigEndian.AppendUint32(b, f.total)
	}
	return append(b, f.data...)
}

// parseDataFrame parses a DATA frame at the start of b (type byte included)
// and returns the rest. f.data aliases b.
func parseDataFrame(b []byte, f *dataFrame) ([]byte, error) {
	if len(b) < dataHeaderLen || b[0] != frameData {
		return nil, fmt.Errorf("data frame: %w", errShort)
	}
	f.seq = binary.BigEndian.Uint64(b[1:9])
	flags := b[9]
	if flags&^(flagFirst|flagLast) != 0 {
		return nil, fmt.Errorf("data frame: unknown flags 0x%02x", flags)
	}
	f.first, f.last = flags&flagFirst != 0, flags&flagLast != 0
	n := int(binary.BigEndian.Uint16(b[10:12]))
	b = b[dataHeaderLen:]
	if n > fragmentSize {
		return nil, fmt.Errorf("data frame: fragment of %d bytes exceeds %d", n, fragmentSize)
	}
	if f.first {
		if len(b) < dataFirstHeaderLen {
			return nil, fmt.Errorf("data frame header: %w", errShort)
		}
		copy(f.id[:], b[:16])
		f.sentAt = int64(binary.BigEndian.Uint64(b[16:24]))
		f.total = binary.BigEndian.Uint32(b[24:28])
		b = b[dataFirstHeaderLen:]
		if f.total > MaxMessageSize {
			return nil, fmt.Errorf("data frame: message of %d bytes exceeds %d", f.total, MaxMessageSize)
		}
		if uint32(n) > f.total || (f.last && uint32(n) != f.total) {
			return nil, fmt.Errorf("data frame: fragment of %d bytes does not match total %d", n, f.total)
		}
	} else {
		f.id, f.sentAt, f.total = MessageID{}, 0, 0
	}
	if len(b) < n {
		return nil, fmt.Errorf("data frame body: %w", errShort)
	}
	f.data = b[:n:n]
	return b[n:], nil
}

// ackRange is a run [start, end) of received sequence numbers above cum.
type ackRange struct{ start, end uint64 }

// ackFrame acknowledges fragments and carries the receipt and the window.
type ackFrame struct {
	cum       uint64 // every seq below cum was received
	committed uint64 // every message whose fragments lie below committed was stored
	window    uint64 // the receiver accepts seq < window
	ranges    []ackRange
}

func appendAckFrame(b []byte, f *ackFrame) []byte {
	b = append(b, frameAck)
	b = binary.BigEndian.AppendUint64(b, f.cum)
	b = binary.BigEndian.AppendUint64(b, f.committed)
	b = binary.BigEndian.AppendUint64(b, f.window)
	b = append(b, byte(len(f.ranges)))
	for _, r := range f.ranges {
		b = binary.BigEndian.AppendUint16(b, uint16(r.start-f.cum))
		b = binary.BigEndian.AppendUint16(b, uint16(r.end-r.start))
	}
	return b
}

// parseAckFrame parses an ACK frame at the start of b and returns the rest.
// Ranges are appended to f.ranges[:0]; they must ascend without touching
// each other or cum.
func parseAckFrame(b []byte, f *ackFrame) ([]byte, error) {
	if len(b) < ackFixedLen || b[0] != frameAck {
		return nil, fmt.Errorf("ack frame: %w", errShort)
	}
	f.cum = binary.BigEndian.Uint64(b[1:9])
	f.committed = binary.BigEndian.Uint64(b[9:17])
	f.window = binary.BigEndian.Uint64(b[17:25])
	n := int(b[25])
	b = b[ackFixedLen:]
	if f.committed > f.cum || f.cum > f.window {
		return nil, fmt.Errorf("ack frame: committed %d, cum %d, window %d out of order", f.committed, f.cum, f.window)
	}
	if n > MaxAckRanges {
		return nil, fmt.Errorf("ack frame: %d ranges exceed %d", n, MaxAckRanges)
	}
	if len(b) < n*ackRangeLen {
		return nil, fmt.Errorf("ack ranges: %w", errShort)
	}
	f.ranges = f.ranges[:0]
	prev := f.cum
	for i := 0; i < n; i++ {
		off := uint64(binary.BigEndian.Uint16(b[0:2]))
		length := uint64(binary.BigEndian.Uint16(b[2:4]))
		b = b[ackRangeLen:]
		start := f.cum + off
		if length == 0 || start <= prev || start < f.cum || start+length > f.window || start+length < start {
			return nil, fmt.Errorf("ack frame: range %d (+%d, %d) invalid", i, off, length)
		}
		f.ranges = append(f.ranges, ackRange{start, start + length})
		prev = start + length
	}
	return b, nil
}

// frame is one decoded frame; kind selects the valid field.
type frame struct {
	kind   byte
	data   dataFrame
	ack    ackFrame
	typing bool
}

// nextFrame decodes the frame at the start of b into f and returns the rest.
func nextFrame(b []byte, f *frame) ([]byte, error) {
	if len(b) == 0 {
		return nil, errShort
	}
	f.kind = b[0]
	switch b[0] {
	case frameData:
		return parseDataFrame(b, &f.data)
	case frameAck:
		return parseAckFrame(b, &f.ack)
	case framePing, frameClose:
		return b[1:], nil
	case frameTyping:
		if len(b) < 2 || b[1] > 1 {
			return nil, errors.New("typing frame: want one byte 0 or 1")
		}
		f.typing = b[1] == 1
		return b[2:], nil
	}
	return nil, fmt.Errorf("unknown frame type 0x%02x", b[0])
}

// validateFrames checks that a whole plaintext parses, so a datagram is
// either applied entirely or dropped entirely.
func validateFrames(b []byte, scratch *frame) error {
	if len(b) == 0 {
		return errors.New("empty transport payload")
	}
	for len(b) > 0 {
		var err error
		if b, err = nextFrame(b, scratch); err != nil {
			return err
		}
	}
	return nil
}
