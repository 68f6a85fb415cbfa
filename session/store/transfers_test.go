package store

import (
	"errors"
	"reflect"
	"testing"

	"github.com/p2ptui/p2ptui/session/transfer"
	bolt "go.etcd.io/bbolt"
)

func storeTransfer(peer byte, id byte, out bool) transfer.Record {
	r := transfer.Record{ID: transfer.ID{id}, Outgoing: out, State: transfer.StateActive, Name: "photo.jpg",
		Size: 5 << 20, ChunkSize: transfer.DefaultChunkSize, Created: storeEpoch, Updated: storeEpoch,
		Dir: "/home/u/Downloads", Temp: "/home/u/Downloads/photo.jpg.part", Next: 7}
	r.Peer[0] = peer
	r.Hash[0], r.PrevHash[0] = 0xaa, 0xbb
	return r
}

// Records survive a reopen, one per (peer, direction, ID); a put replaces;
// a delete removes only its own.
func TestTransferRecords(t *testing.T) {
	s, dir := storeOpen(t)
	a1, a2, b1 := storeTransfer(1, 1, true), storeTransfer(1, 2, false), storeTransfer(2, 1, false)
	// Same ID, other direction: a different transfer.
	a1in := storeTransfer(1, 1, false)
	for _, r := range []transfer.Record{a1, a2, b1, a1in} {
		if err := s.PutTransfer(r); err != nil {
			t.Fatal(err)
		}
	}
	a2.Next, a2.State = 9, transfer.StateDone
	if err := s.PutTransfer(a2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Transfers(a1.Peer)
	if err != nil {
		t.Fatal(err)
	}
	want := map[transfer.Key]transfer.Record{}
	for _, r := range []transfer.Record{a1, a2, a1in} {
		want[transfer.Key{Peer: r.Peer, Outgoing: r.Outgoing, ID: r.ID}] = r
	}
	if len(got) != len(want) {
		t.Fatalf("%d records for peer 1, want %d", len(got), len(want))
	}
	for _, r := range got {
		w := want[transfer.Key{Peer: r.Peer, Outgoing: r.Outgoing, ID: r.ID}]
		w.Created, w.Updated = w.Created.Local(), w.Updated.Local()
		r.Created, r.Updated = r.Created.Local(), r.Updated.Local()
		if !reflect.DeepEqual(r, w) {
			t.Errorf("stored %+v, read back %+v", w, r)
		}
	}
	peers, err := s.TransferPeers()
	if err != nil {
		t.Fatal(err)
	}
	if len(peers) != 2 {
		t.Errorf("TransferPeers = %x, want peers 1 and 2", peers)
	}
	if err := s.DeleteTransfer(transfer.Key{Peer: a1.Peer, Outgoing: true, ID: a1.ID}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTransfer(transfer.Key{Peer: [32]byte{9}, ID: a1.ID}); err != nil {
		t.Fatalf("deleting from a peer with no transfers: %v", err)
	}
	got, _ = s.Transfers(a1.Peer)
	if len(got) != 2 || got[0].Outgoing || got[1].Outgoing {
		t.Fatalf("after deleting the outgoing one: %+v", got)
	}
}

// A record that does not decode is reported, kept, and does not hide the
// others.
func TestTransferRecordUnreadable(t *testing.T) {
	s, _ := storeOpen(t)
	r := storeTransfer(1, 1, true)
	if err := s.PutTransfer(r); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketXfers).Bucket(r.Peer[:]).Put([]byte{1, 5, 5}, []byte{99, 0, 0})
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Transfers(r.Peer)
	if !errors.Is(err, transfer.ErrRecord) {
		t.Errorf("error %v, want one wrapping ErrRecord", err)
	}
	if len(got) != 1 || got[0].ID != r.ID {
		t.Errorf("records %+v, want the readable one", got)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketXfers).Bucket(r.Peer[:]).Get([]byte{1, 5, 5}) == nil {
			t.Error("the unreadable record was removed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
