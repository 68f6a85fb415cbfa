package transfer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session"
)

// Fuzz targets for every decoder of the transfer protocol and of its
// stored records, and one for the machine behind them. Seed corpora live
// in testdata/fuzz/<Target>/; regenerate them with
//
//	TRANSFER_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus ./session/transfer/

func FuzzHello(f *testing.F) {
	for _, s := range fuzzSeeds().hello {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHello(b)
		if err != nil {
			return
		}
		if again := appendHello(nil, h); !bytes.Equal(again, b) {
			t.Fatalf("hello round trip: %x became %x", b, again)
		}
	})
}

func FuzzControl(f *testing.F) {
	for _, s := range fuzzSeeds().control {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c control
		if err := parseControl(b, &c); err != nil {
			return
		}
		if len(c.name) > MaxWireName {
			t.Fatalf("accepted a name of %d bytes", len(c.name))
		}
		if again := appendControl(nil, &c); !bytes.Equal(again, b) {
			t.Fatalf("control round trip: %x became %x", b, again)
		}
	})
}

func FuzzChunk(f *testing.F) {
	for _, s := range fuzzSeeds().chunk {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, data, err := parseChunk(b)
		if err != nil {
			return
		}
		if again := append(appendChunkHeader(nil, h), data...); !bytes.Equal(again, b) {
			t.Fatalf("chunk round trip: %x became %x", b, again)
		}
	})
}

func FuzzRecord(f *testing.F) {
	for _, s := range fuzzSeeds().record {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			return
		}
		if r.check() != nil {
			t.Fatalf("decoded a record that fails its own check: %+v", r)
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("record round trip: %x became %x", b, again)
		}
	})
}

// fakeStreams stands in for a session in the machine fuzz target.
type fakeStreams struct {
	next session.StreamID
	sent int
}

func (f *fakeStreams) OpenStream(time.Time) (session.StreamID, error) { f.next++; return f.next, nil }
func (f *fakeStreams) SendStream(time.Time, session.StreamID, []byte) (uint64, error) {
	f.sent++
	return uint64(f.sent), nil
}
func (f *fakeStreams) CommitStream(time.Time, session.StreamID, uint64) error { return nil }
func (f *fakeStreams) CloseStream(time.Time, session.StreamID)                {}
func (f *fakeStreams) StopStream(time.Time, session.StreamID)                 {}

// FuzzMachineStreams feeds a machine, which has accepted one offer and
// sent one of its own, arbitrary messages on a control stream and a data
// stream of the peer: it must never panic, never write or read outside
// the two transfers, never start file work for a transfer it did not
// accept, and never show an offered name that could leave the folder.
func FuzzMachineStreams(f *testing.F) {
	seeds := fuzzSeeds()
	for i, c := range seeds.control {
		f.Add(c, seeds.chunk[i%len(seeds.chunk)])
	}
	f.Fuzz(func(t *testing.T, ctl, data []byte) {
		peer := [32]byte{7}
		m, err := NewMachine(Config{Peer: peer, Rand: chacha(1)})
		if err != nil {
			t.Fatal(err)
		}
		now := simEpoch
		s := &fakeStreams{}
		m.SessionUp(now, s)
		offered := ID{0x01}
		offer := appendControl(nil, &control{kind: msgOffer, id: offered, size: 3 * MinChunkSize, chunkSize: MinChunkSize, name: "x.bin"})
		out, _ := m.Offer(now, "/src/file")
		m.HandleResult(now, Hashed{K: Key{Peer: peer, Outgoing: true, ID: out}, Path: "/src/file", Name: "file", Size: 10 * MinChunkSize})
		// Control stream 1, data stream 2 (for the offered transfer).
		for _, ev := range []session.StreamReceived{
			{Stream: 1, Seq: 0, Body: appendHello(nil, hello{})},
			{Stream: 1, Seq: 1, Body: offer},
		} {
			m.HandleSessionEvent(now, ev)
		}
		if err := m.Accept(now, offered, "/downloads"); err != nil {
			t.Fatal(err)
		}
		m.HandleResult(now, Created{K: Key{Peer: peer, ID: offered}, Temp: "/downloads/x.bin.part"})
		for i, ev := range []session.StreamReceived{
			{Stream: 1, Seq: 2, Body: ctl},
			{Stream: 2, Seq: 0, Body: appendHello(nil, hello{data: true, id: offered})},
			{Stream: 2, Seq: 1, Body: data},
			{Stream: 1, Seq: 3, Body: ctl},
			{Stream: 3, Seq: 0, Body: ctl},
			{Stream: 3, Seq: 1, Body: data},
		} {
			m.HandleSessionEvent(now.Add(time.Duration(i)*time.Second), ev)
		}
		m.HandleTimeout(now.Add(time.Minute))
		for _, e := range m.Effects() {
			switch e := e.(type) {
			case WriteChunk:
				if e.K.ID != offered || e.Temp != "/downloads/x.bin.part" || e.Offset+int64(len(e.Data)) > 3*MinChunkSize {
					t.Fatalf("write outside the accepted transfer: %+v", e)
				}
			case ReadChunk:
				if e.K.ID != out || e.Offset+int64(e.Len) > 10*MinChunkSize {
					t.Fatalf("read outside our file: %+v", e)
				}
			case CreateFile, FinishFile, ResumeFile:
				if e.Key().ID != offered {
					t.Fatalf("file work for a transfer never accepted: %+v", e)
				}
			}
		}
		for _, st := range m.Transfers() {
			if !st.Outgoing && filepath.Base(st.Name) != st.Name {
				t.Fatalf("an offered name escaped: %q", st.Name)
			}
		}
	})
}

// fuzzCorpus holds seed inputs per target.
type fuzzCorpus struct{ hello, control, chunk, record [][]byte }

func fuzzSeeds() fuzzCorpus {
	var c fuzzCorpus
	id := ID{0xde, 0xad}
	c.hello = [][]byte{
		appendHello(nil, hello{}),
		appendHello(nil, hello{data: true, id: id, first: 42}),
		{helloData, wireVersion}, // truncated
		{helloControl, 9},        // another version
		append(appendHello(nil, hello{}), 0),
	}
	offer := appendControl(nil, &control{kind: msgOffer, id: id, size: 1 << 30, chunkSize: DefaultChunkSize, name: "holiday photos.zip"})
	longName := bytes.Clone(offer)
	binary.BigEndian.PutUint16(longName[offerFixedLen-2:], 0xffff) // says 65535 bytes, has 18
	hugeName := appendControl(nil, &control{kind: msgOffer, id: id, size: 1, chunkSize: MinChunkSize, name: string(bytes.Repeat([]byte{'n'}, MaxWireName+1))})
	c.control = [][]byte{
		offer, longName, hugeName,
		appendControl(nil, &control{kind: msgOffer, id: id, size: MaxFileSize + 1, chunkSize: 1, name: "../../x"}),
		appendControl(nil, &control{kind: msgAccept, id: id, first: 7, hash: [32]byte{1}}),
		appendControl(nil, &control{kind: msgAccept, id: ID{0x01}, first: 1 << 62}),
		appendControl(nil, &control{kind: msgDecline, id: ID{0x01}}),
		appendControl(nil, &control{kind: msgCancel, id: ID{0x01}, reason: 200}),
		appendControl(nil, &control{kind: msgDone, id: ID{0x01}}),
		{msgAccept}, {0x7f},
	}
	data := bytes.Repeat([]byte{'d'}, MinChunkSize)
	c.chunk = [][]byte{
		append(appendChunkHeader(nil, chunkHeader{index: 0}), data...),
		append(appendChunkHeader(nil, chunkHeader{index: 2}), data[:10]...),
		appendChunkHeader(nil, chunkHeader{index: 1 << 63}),
		{0, 0, 0},
	}
	r := Record{Peer: [32]byte{7}, ID: id, Outgoing: false, State: StateActive, Name: "a.bin", Size: 1 << 20,
		ChunkSize: DefaultChunkSize, Created: simEpoch, Updated: simEpoch, Dir: "/d", Temp: "/d/a.part", Next: 3, Told: true}
	good, _ := r.MarshalBinary()
	badLen := bytes.Clone(good)
	binary.BigEndian.PutUint16(badLen[recordFixedLen:], 0xffff)
	r.Next = 99 // past the end
	pastEnd, _ := r.MarshalBinary()
	c.record = [][]byte{good, badLen, pastEnd, good[:recordFixedLen], {recordVersion + 1}}
	return c
}

// TestWriteFuzzCorpus writes the seeds as Go fuzz corpus files under
// testdata/fuzz when TRANSFER_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("TRANSFER_WRITE_CORPUS") != "1" {
		t.Skip("set TRANSFER_WRITE_CORPUS=1 to rewrite testdata/fuzz")
	}
	c := fuzzSeeds()
	for target, seeds := range map[string][][]byte{
		"FuzzHello": c.hello, "FuzzControl": c.control, "FuzzChunk": c.chunk, "FuzzRecord": c.record,
	} {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
