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
//	SDATA  0x06 | stream 4 | seq 8 | flags 1 | len 2 | [first only: total 4] | len bytes
//	SACK   0x07 | stream 4 | cum 8 | committed 8 | window 8 | n 1 | n × (offset 2 | length 2)
//	STOP   0x08 | stream 4
//
// DATA and ACK belong to the chat stream (stream 0); SDATA and SACK carry
// the numbered streams (stream.go), whose messages have no ID or timestamp.
// A stream number in SDATA names one of the sender's streams, in SACK and
// STOP one of the receiver's: each direction numbers its own streams.
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
	frameSData  byte = 0x06
	frameSAck   byte = 0x07
	frameStop   byte = 0x08

	dataHeaderLen      = 1 + 8 + 1 + 2
	dataFirstHeaderLen = 16 + 8 + 4
	// fragmentSize is the body bytes per fragment: a first fragment with its
	// message header fills one datagram exactly. Every fragment uses the same
	// size so a retransmission always fits where the original did.
	fragmentSize = maxPayload - dataHeaderLen - dataFirstHeaderLen

	streamDataHeaderLen      = 1 + 4 + 8 + 1 + 2
	streamDataFirstHeaderLen = 4
	// streamFragmentSize is the body bytes per fragment of a numbered
	// stream, sized the same way as fragmentSize.
	streamFragmentSize = maxPayload - streamDataHeaderLen - streamDataFirstHeaderLen

	flagFirst byte = 1 << 0
	flagLast  byte = 1 << 1

	ackFixedLen = 1 + 8 + 8 + 8 + 1
	ackRangeLen = 4
	maxAckLen   = ackFixedLen + MaxAckRanges*ackRangeLen
	stopLen     = 1 + 4
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
	stream      StreamID // chatStream: a DATA frame; otherwise SDATA
	seq         uint64
	first, last bool
	// Set on the first fragment only.
	id     MessageID
	sentAt int64 // unix nanoseconds
	total  uint32
	data   []byte
}

func (f *dataFrame) encodedLen() int {
	if f.stream != chatStream {
		n := streamDataHeaderLen + len(f.data)
		if f.first {
			n += streamDataFirstHeaderLen
		}
		return n
	}
	n := dataHeaderLen + len(f.data)
	if f.first {
		n += dataFirstHeaderLen
	}
	return n
}

// appendAnyDataFrame appends f as DATA or SDATA, by its stream.
func appendAnyDataFrame(b []byte, f *dataFrame) []byte {
	if f.stream != chatStream {
		return appendStreamDataFrame(b, f)
	}
	return appendDataFrame(b, f)
}

func dataFlags(f *dataFrame) byte {
	var flags byte
	if f.first {
		flags |= flagFirst
	}
	if f.last {
		flags |= flagLast
	}
	return flags
}

// appendStreamDataFrame appends an SDATA frame (f.stream must not be 0).
func appendStreamDataFrame(b []byte, f *dataFrame) []byte {
	b = append(b, frameSData)
	b = binary.BigEndian.AppendUint32(b, uint32(f.stream))
	b = binary.BigEndian.AppendUint64(b, f.seq)
	b = append(b, dataFlags(f))
	b = binary.BigEndian.AppendUint16(b, uint16(len(f.data)))
	if f.first {
		b = binary.BigEndian.AppendUint32(b, f.total)
	}
	return append(b, f.data...)
}

// parseStreamDataFrame parses an SDATA frame at the start of b and returns
// the rest. f.data aliases b.
func parseStreamDataFrame(b []byte, f *dataFrame) ([]byte, error) {
	if len(b) < streamDataHeaderLen || b[0] != frameSData {
		return nil, fmt.Errorf("stream data frame: %w", errShort)
	}
	f.stream = StreamID(binary.BigEndian.Uint32(b[1:5]))
	if f.stream == chatStream {
		return nil, errors.New("stream data frame: stream 0 is the chat stream")
	}
	f.seq = binary.BigEndian.Uint64(b[5:13])
	flags := b[13]
	if flags&^(flagFirst|flagLast) != 0 {
		return nil, fmt.Errorf("stream data frame: unknown flags 0x%02x", flags)
	}
	f.first, f.last = flags&flagFirst != 0, flags&flagLast != 0
	n := int(binary.BigEndian.Uint16(b[14:16]))
	b = b[streamDataHeaderLen:]
	if n > streamFragmentSize {
		return nil, fmt.Errorf("stream data frame: fragment of %d bytes exceeds %d", n, streamFragmentSize)
	}
	f.id, f.sentAt, f.total = MessageID{}, 0, 0
	if f.first {
		if len(b) < streamDataFirstHeaderLen {
			return nil, fmt.Errorf("stream data frame header: %w", errShort)
		}
		f.total = binary.BigEndian.Uint32(b[:4])
		b = b[streamDataFirstHeaderLen:]
		if f.total > MaxStreamMessageSize {
			return nil, fmt.Errorf("stream data frame: message of %d bytes exceeds %d", f.total, MaxStreamMessageSize)
		}
		if uint32(n) > f.total || (f.last && uint32(n) != f.total) {
			return nil, fmt.Errorf("stream data frame: fragment of %d bytes does not match total %d", n, f.total)
		}
	}
	if len(b) < n {
		return nil, fmt.Errorf("stream data frame body: %w", errShort)
	}
	f.data = b[:n:n]
	return b[n:], nil
}

func appendDataFrame(b []byte, f *dataFrame) []byte {
	b = append(b, frameData)
	b = binary.BigEndian.AppendUint64(b, f.seq)
	b = append(b, dataFlags(f))
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
	f.stream = chatStream
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
	stream    StreamID // chatStream: an ACK frame; otherwise SACK
	cum       uint64   // every seq below cum was received
	committed uint64   // every message whose fragments lie below committed was stored
	window    uint64   // the receiver accepts seq < window
	ranges    []ackRange
}

// appendAnyAckFrame appends f as ACK or SACK, by its stream.
func appendAnyAckFrame(b []byte, f *ackFrame) []byte {
	if f.stream != chatStream {
		return appendStreamAckFrame(b, f)
	}
	return appendAckFrame(b, f)
}

func appendAckFrame(b []byte, f *ackFrame) []byte {
	b = append(b, frameAck)
	return appendAckBody(b, f)
}

// appendStreamAckFrame appends a SACK frame (f.stream must not be 0).
func appendStreamAckFrame(b []byte, f *ackFrame) []byte {
	b = append(b, frameSAck)
	b = binary.BigEndian.AppendUint32(b, uint32(f.stream))
	return appendAckBody(b, f)
}

func appendAckBody(b []byte, f *ackFrame) []byte {
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
	if len(b) < 1 || b[0] != frameAck {
		return nil, fmt.Errorf("ack frame: %w", errShort)
	}
	f.stream = chatStream
	return parseAckBody(b[1:], f)
}

// parseStreamAckFrame parses a SACK frame at the start of b and returns the
// rest, with the same checks as parseAckFrame.
func parseStreamAckFrame(b []byte, f *ackFrame) ([]byte, error) {
	if len(b) < 5 || b[0] != frameSAck {
		return nil, fmt.Errorf("stream ack frame: %w", errShort)
	}
	f.stream = StreamID(binary.BigEndian.Uint32(b[1:5]))
	if f.stream == chatStream {
		return nil, errors.New("stream ack frame: stream 0 is the chat stream")
	}
	return parseAckBody(b[5:], f)
}

// parseAckBody parses what follows the type byte (and stream) of an ACK.
func parseAckBody(b []byte, f *ackFrame) ([]byte, error) {
	if len(b) < ackFixedLen-1 {
		return nil, fmt.Errorf("ack frame: %w", errShort)
	}
	f.cum = binary.BigEndian.Uint64(b[0:8])
	f.committed = binary.BigEndian.Uint64(b[8:16])
	f.window = binary.BigEndian.Uint64(b[16:24])
	n := int(b[24])
	b = b[ackFixedLen-1:]
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
	stream StreamID // STOP
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
	case frameSData:
		return parseStreamDataFrame(b, &f.data)
	case frameSAck:
		return parseStreamAckFrame(b, &f.ack)
	case frameStop:
		if len(b) < stopLen {
			return nil, fmt.Errorf("stop frame: %w", errShort)
		}
		if f.stream = StreamID(binary.BigEndian.Uint32(b[1:5])); f.stream == chatStream {
			return nil, errors.New("stop frame: the chat stream cannot be stopped")
		}
		return b[stopLen:], nil
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
