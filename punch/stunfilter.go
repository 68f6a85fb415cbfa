package punch

import (
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"github.com/pion/stun/v2"
)

// RFC 5780 attributes, which pion/stun has no typed helpers for.
const (
	// attrChangeRequest asks the server to answer from its alternate IP
	// and/or port (RFC 5780 section 7.2). Comprehension-required, so a
	// server without RFC 5780 answers 420 Unknown Attribute.
	attrChangeRequest stun.AttrType = 0x0003
	// attrOtherAddress is the server's alternate IP:port (RFC 5780 section
	// 7.4); its presence says the server can run the filtering tests.
	attrOtherAddress stun.AttrType = 0x802C

	changeIP   uint32 = 0x4
	changePort uint32 = 0x2
)

// The filtering tests' short retransmission (they are optional extras and
// must not hold up the mapping the application waits for): three requests
// 300 ms apart, so a NAT that drops the answers costs 0.9 s.
const (
	stunFilteringRTO   = 300 * time.Millisecond
	stunFilteringTries = 3
)

// changeRequest is a CHANGE-REQUEST attribute setter for stun.Build.
type changeRequest uint32

// AddTo appends the 4-byte CHANGE-REQUEST value.
func (c changeRequest) AddTo(m *stun.Message) error {
	v := make([]byte, 4)
	binary.BigEndian.PutUint32(v, uint32(c))
	m.Add(attrChangeRequest, v)
	return nil
}

// otherAddress reads OTHER-ADDRESS, which has the MAPPED-ADDRESS layout:
// reserved byte, family (1 = IPv4, 2 = IPv6), port, address. Anything
// short, of an unknown family or unusable reports false.
func otherAddress(m *stun.Message) (netip.AddrPort, bool) {
	v, err := m.Get(attrOtherAddress)
	if err != nil || len(v) < 4 {
		return netip.AddrPort{}, false
	}
	var n int
	switch v[1] {
	case 0x01:
		n = 4
	case 0x02:
		n = 16
	default:
		return netip.AddrPort{}, false
	}
	if len(v) < 4+n {
		return netip.AddrPort{}, false
	}
	return addrPortFromIP(v[4:4+n], int(binary.BigEndian.Uint16(v[2:4])))
}

// filterTest is one RFC 5780 filtering request (test II or III): sent to
// the first server's primary address, answered from a changed one.
type filterTest struct {
	id     [stun.TransactionIDSize]byte
	req    []byte
	from   netip.AddrPort // the only source an answer is taken from
	sent   int
	next   time.Time
	answer bool // a success response came from the changed address
}

// filtering runs RFC 5780 section 4.4 tests II and III together: both go
// out at once (they are told apart by transaction ID and answering address),
// so the whole probe is bounded by one short retransmission schedule.
type filtering struct {
	server netip.AddrPort
	tests  [2]*filterTest // [0] change IP and port, [1] change port
	start  time.Time
	giveUp time.Time
	done   bool
	result FilteringBehavior
}

// startFiltering begins the filtering tests if the first server's answer m
// advertised an alternate address usable for them. Any problem leaves
// filtering unknown without affecting the mapping result.
func (d *Discovery) startFiltering(now time.Time, server netip.AddrPort, m *stun.Message) {
	other, ok := otherAddress(m)
	if !ok || !other.Addr().Is4() || !server.Addr().Is4() ||
		other.Addr() == server.Addr() || other.Port() == server.Port() {
		return
	}
	f := &filtering{server: server, start: now}
	expect := [2]netip.AddrPort{
		other, // test II: alternate IP and port
		netip.AddrPortFrom(server.Addr(), other.Port()), // test III: alternate port
	}
	flags := [2]uint32{changeIP | changePort, changePort}
	for i := range f.tests {
		t := &filterTest{from: expect[i]}
		if _, err := io.ReadFull(d.rand, t.id[:]); err != nil {
			return
		}
		msg, err := stun.Build(stun.BindingRequest, stun.NewTransactionIDSetter(t.id),
			changeRequest(flags[i]), stun.Fingerprint)
		if err != nil {
			return
		}
		t.req = msg.Raw
		f.tests[i] = t
	}
	f.giveUp = now.Add(time.Duration(d.cfg.FilteringTries) * d.cfg.FilteringRTO)
	d.filter = f
	for _, t := range f.tests {
		d.sendFilter(t, now)
	}
}

func (d *Discovery) sendFilter(t *filterTest, now time.Time) {
	d.out = append(d.out, Transmit{To: d.filter.server, Data: t.req, Socket: d.cfg.Socket})
	t.sent++
	t.next = now.Add(d.cfg.FilteringRTO)
}

// handleFilterPacket takes a decoded Binding response if it answers a
// filtering test; it reports whether it did. A success counts only from
// the changed address the test asked for (a spoofer would also need the
// transaction ID); an error response, from there or from the primary
// address, means the server declines CHANGE-REQUEST: filtering unknown.
func (d *Discovery) handleFilterPacket(from netip.AddrPort, m *stun.Message) bool {
	f := d.filter
	if f == nil || f.done {
		return false
	}
	for _, t := range f.tests {
		if t.id != m.TransactionID {
			continue
		}
		if from != t.from && !(m.Type.Class == stun.ClassErrorResponse && from == f.server) {
			return false
		}
		if m.Contains(stun.AttrFingerprint) && stun.Fingerprint.Check(m) != nil {
			return false
		}
		if m.Type.Class == stun.ClassErrorResponse {
			f.finish(FilteringUnknown) // the server declines CHANGE-REQUEST
			return true
		}
		t.answer = true
		if f.tests[0].answer {
			// Test II answered: anyone may reach the mapping.
			f.finish(FilteringEndpointIndependent)
		}
		// A test III answer alone waits for test II's verdict.
		return true
	}
	return false
}

func (f *filtering) finish(r FilteringBehavior) {
	f.done = true
	f.result = r
}

// filterTimeout retransmits the filtering tests and concludes when their
// schedule has run out: test III answered → address-dependent; neither →
// address-and-port-dependent.
func (d *Discovery) filterTimeout(now time.Time) {
	f := d.filter
	if f == nil || f.done {
		return
	}
	if !now.Before(f.giveUp) {
		if f.tests[1].answer {
			f.finish(FilteringAddressDependent)
		} else {
			f.finish(FilteringAddressAndPortDependent)
		}
		return
	}
	for _, t := range f.tests {
		if !t.answer && t.sent < d.cfg.FilteringTries && !now.Before(t.next) {
			d.sendFilter(t, now)
		}
	}
}

// filterDeadline is when filterTimeout must next run; zero if it needn't.
func (d *Discovery) filterDeadline() time.Time {
	f := d.filter
	if f == nil || f.done {
		return time.Time{}
	}
	dl := f.giveUp
	for _, t := range f.tests {
		if !t.answer && t.sent < d.cfg.FilteringTries && t.next.Before(dl) {
			dl = t.next
		}
	}
	return dl
}
