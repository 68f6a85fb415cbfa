package punch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
)

// The hole-punch packet, in the spirit of Tailscale's disco: a magic first
// byte, a fixed header, and a MAC. Every field has a fixed place, so a
// parser checks one length and reads.
//
//	 0      PunchByte (0x50)
//	 1      version (1)
//	 2      type: 1 probe, 2 reply, 3 keepalive
//	 3      flags: bit 0 sender is controlling, bit 1 sender has selected
//	        the path this packet travels on; other bits zero
//	 4-11   tag: routes the packet to its machine (Machine.Tag)
//	12-19   transaction ID: fresh for a probe or keepalive; a reply echoes
//	        the probe's
//	20      family of the address the sender sent to: 0 none, 4, 6
//	21-36   that address (IPv4 in the first 4 bytes, the rest zero)
//	37-38   its port
//	39-54   MAC: HMAC-SHA256 over bytes 0-38, truncated to 16 bytes, keyed
//	        from the punch secret and the session ID
//
// The destination address tells the receiver how the sender reached it, so
// the selected path names the local address the peer actually uses.
const (
	wireVersion  = 1
	headerLen    = 39
	macLen       = 16
	packetLen    = headerLen + macLen
	offTag       = 4
	offTxID      = 12
	offFamily    = 20
	offAddr      = 21
	offPort      = 37
	tagLen       = 8
	flagsDefined = flagControlling | flagSelected
)

// packetType is the kind of a punch packet.
type packetType byte

// The packet types.
const (
	typeProbe     packetType = 1 // "can you hear me here?": answered with a reply
	typeReply     packetType = 2 // answer to a probe, echoing its transaction ID
	typeKeepalive packetType = 3 // keeps a selected path's NAT mappings open; not answered
)

func (t packetType) String() string {
	switch t {
	case typeProbe:
		return "probe"
	case typeReply:
		return "reply"
	case typeKeepalive:
		return "keepalive"
	}
	return fmt.Sprintf("type%d", byte(t))
}

// The flag bits.
const (
	flagControlling = 1 << 0
	flagSelected    = 1 << 1
)

// Tag routes a punch packet to the machine it belongs to when one socket
// serves several sessions. It is derived from the secret and the session ID,
// so it says nothing to an observer and differs per session.
type Tag [tagLen]byte

// String is the tag in hex, for logs.
func (t Tag) String() string { return hex.EncodeToString(t[:]) }

// Errors from parsePacket.
var (
	errShort   = errors.New("punch packet: wrong length")
	errMagic   = errors.New("punch packet: not a punch packet")
	errVersion = errors.New("punch packet: unsupported version")
	errType    = errors.New("punch packet: unknown type")
	errFlags   = errors.New("punch packet: unknown flags")
	errAddr    = errors.New("punch packet: malformed address")
)

// packet is a parsed punch packet (without its MAC).
type packet struct {
	typ   packetType
	flags byte
	tag   Tag
	txid  uint64
	dst   netip.AddrPort // where the sender sent it; invalid when unknown
}

// macKey is the HMAC key of one session's punch packets.
type macKey [32]byte

// macer computes packet MACs with one keyed HMAC state, reset per packet
// rather than re-keyed (re-keying costs two extra SHA-256 blocks).
type macer struct {
	h   hash.Hash
	buf [sha256.Size]byte
}

func newMacer(key *macKey) *macer {
	return &macer{h: hmac.New(sha256.New, key[:])}
}

// sum is the truncated MAC of a header; valid until the next call.
func (m *macer) sum(header []byte) []byte {
	m.h.Reset()
	m.h.Write(header)
	return m.h.Sum(m.buf[:0])[:macLen]
}

// deriveKeys derives the routing tag and the MAC key of one path kind's
// packets from the punch secret and the session ID, with distinct labels
// so neither reveals the other and no kind's packets pass for another's.
// The direct kind keeps the labels of the first version.
func deriveKeys(secret [32]byte, sessionID string, kind PathKind) (Tag, macKey) {
	suffix := ""
	if kind != PathDirect {
		suffix = " " + kind.String()
	}
	derive := func(label string) []byte {
		h := hmac.New(sha256.New, secret[:])
		h.Write([]byte(label + suffix))
		h.Write([]byte{0})
		h.Write([]byte(sessionID))
		return h.Sum(nil)
	}
	var tag Tag
	copy(tag[:], derive("p2ptui punch tag v1"))
	var key macKey
	copy(key[:], derive("p2ptui punch mac v1"))
	return tag, key
}

// appendMarshal appends the packet, MAC included, to b.
func (p packet) appendMarshal(b []byte, mac *macer) []byte {
	start := len(b)
	b = append(b, PunchByte, wireVersion, byte(p.typ), p.flags)
	b = append(b, p.tag[:]...)
	b = binary.BigEndian.AppendUint64(b, p.txid)
	var addr [16]byte
	fam := byte(0)
	port := uint16(0)
	if p.dst.IsValid() {
		a := p.dst.Addr().Unmap()
		port = p.dst.Port()
		if a.Is4() {
			fam = famIPv4
			a4 := a.As4()
			copy(addr[:], a4[:])
		} else {
			fam = famIPv6
			addr = a.As16()
		}
	}
	b = append(b, fam)
	b = append(b, addr[:]...)
	b = binary.BigEndian.AppendUint16(b, port)
	return append(b, mac.sum(b[start:])...)
}

// verifyMAC reports whether b (a whole packet of packetLen bytes) carries
// the right MAC, in constant time.
func verifyMAC(mac *macer, b []byte) bool {
	if len(b) != packetLen {
		return false
	}
	return hmac.Equal(mac.sum(b[:headerLen]), b[headerLen:])
}

// parsePacket reads a punch packet's fields, checking the length once and
// every field's value; it does not check the MAC (the tag picks the key).
func parsePacket(b []byte) (packet, error) {
	var p packet
	if len(b) != packetLen {
		if len(b) >= 2 && b[0] == PunchByte && b[1] != wireVersion {
			return p, errVersion
		}
		return p, errShort
	}
	if b[0] != PunchByte {
		return p, errMagic
	}
	if b[1] != wireVersion {
		return p, errVersion
	}
	p.typ = packetType(b[2])
	if p.typ != typeProbe && p.typ != typeReply && p.typ != typeKeepalive {
		return p, errType
	}
	p.flags = b[3]
	if p.flags&^flagsDefined != 0 {
		return p, errFlags
	}
	copy(p.tag[:], b[offTag:offTag+tagLen])
	p.txid = binary.BigEndian.Uint64(b[offTxID:])
	addr := b[offAddr : offAddr+16]
	port := binary.BigEndian.Uint16(b[offPort:])
	switch b[offFamily] {
	case 0:
		if !allZero(addr) || port != 0 {
			return p, errAddr
		}
	case famIPv4:
		if !allZero(addr[4:]) {
			return p, errAddr
		}
		p.dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(addr[:4])), port)
	case famIPv6:
		a := netip.AddrFrom16([16]byte(addr))
		if a.Is4In6() {
			return p, errAddr // an IPv4 address travels as family 4
		}
		p.dst = netip.AddrPortFrom(a, port)
	default:
		return p, errAddr
	}
	return p, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// PacketTag reads the routing tag of a punch packet without authenticating
// it, so a socket shared by several sessions can hand each packet to the
// machine whose Tag matches; that machine then checks the MAC.
func PacketTag(b []byte) (Tag, bool) {
	if len(b) != packetLen || b[0] != PunchByte || b[1] != wireVersion {
		return Tag{}, false
	}
	return Tag(b[offTag : offTag+tagLen]), true
}
