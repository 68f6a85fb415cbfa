package ui

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session/conn"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/transfer"
	"github.com/p2ptui/p2ptui/signal"
)

// Offering a file to an online contact without a session hashes it in the
// worker, stores the offer, says so, and connects for it.
func TestSendFileOffersAndConnects(t *testing.T) {
	u := newUnitModel(t, 31, true, nil)
	u.run(u.m.Init())
	bob, _ := identity.NewIdentity(newSeeded(131))
	u.sig.mu.Lock()
	u.sig.presence[bob.ID()] = signal.Presence{ID: bob.ID(), DisplayName: "bob", LastSeen: u.clock.now()}
	u.sig.mu.Unlock()
	u.update(AddContactIntent{Name: "bob", ID: bob.ID()})
	src := filepath.Join(t.TempDir(), "plan.txt")
	if err := os.WriteFile(src, []byte("the plan"), 0o644); err != nil {
		t.Fatal(err)
	}
	u.runUntil("bob's transfers read", func() bool { return u.m.eng.Transfers(bob.ID()) != nil })
	u.update(SendFileIntent{ContactID: bob.ID(), Path: src})
	u.runUntil("file_offered", func() bool { return u.has("file_offered", nil) })
	var off Event
	for _, e := range u.events() {
		if e.Ev == "file_offered" {
			off = e
		}
	}
	if off.To != bob.ID() || off.File != "plan.txt" || *off.Size != 8 || off.Direction != "out" || len(off.ID) != 32 {
		t.Fatalf("file_offered = %+v", off)
	}
	if k := u.sig.sentKinds(bob.ID()); len(k) != 1 || k[0] != "offer" {
		t.Fatalf("signals to bob %v; want one offer (the transfer wants a session)", k)
	}
	recs, err := u.store.Transfers(bob.Public)
	if err != nil || len(recs) != 1 || recs[0].State != transfer.StateOffered || recs[0].Hash != sha256.Sum256([]byte("the plan")) {
		t.Fatalf("stored %+v, %v; want the offer", recs, err)
	}
	// A second offer of a path that does not exist fails in words.
	u.update(SendFileIntent{ContactID: bob.ID(), Path: filepath.Join(t.TempDir(), "gone.txt")})
	u.runUntil("file_failed", func() bool { return u.has("file_failed", nil) })
	if !u.has("file_failed", func(e Event) bool {
		return e.Reason == "source-unreadable" && strings.HasPrefix(e.Words, "gone.txt could not be sent: the file to send could not be read (")
	}) {
		t.Fatalf("no file_failed in words: %+v", u.events())
	}
}

// A transfer left unfinished with someone who is not a contact brings the
// program back to them after a restart.
func TestUnfinishedTransferReconnectsAtStart(t *testing.T) {
	u := newUnitModel(t, 32, true, nil)
	carol, _ := identity.NewIdentity(newSeeded(132))
	src := filepath.Join(t.TempDir(), "half.bin")
	if err := os.WriteFile(src, []byte("0123456789"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := u.clock.now()
	rec := transfer.Record{Peer: carol.Public, ID: transfer.ID{1, 2, 3}, Outgoing: true, State: transfer.StateActive, Name: "half.bin",
		Size: 10, ChunkSize: transfer.DefaultChunkSize, Hash: sha256.Sum256([]byte("0123456789")), Path: src, Created: now.Add(-time.Hour), Updated: now.Add(-time.Minute)}
	if err := u.store.PutTransfer(rec); err != nil {
		t.Fatal(err)
	}
	u.sig.mu.Lock()
	u.sig.presence[carol.ID()] = signal.Presence{ID: carol.ID(), DisplayName: "carol", LastSeen: now}
	u.sig.mu.Unlock()
	u.run(u.m.Init())
	u.runUntil("an offer to carol", func() bool { return len(u.sig.sentKinds(carol.ID())) > 0 })
	if k := u.sig.sentKinds(carol.ID()); k[0] != "offer" {
		t.Fatalf("signals to carol %v, want an offer", k)
	}
	st := u.m.eng.Peer(carol.ID())
	if st.Contact || st.Phase != conn.PhaseConnecting {
		t.Fatalf("carol is %+v; want a stranger being connected to", st)
	}
	if ts := u.m.eng.Transfers(carol.ID()); len(ts) != 1 || ts[0].ID != rec.ID || ts[0].State != transfer.StateActive {
		t.Fatalf("transfers with carol %+v", ts)
	}
}

// File commands that cannot work say why and change nothing.
func TestFileCommandsSayWhatIsWrong(t *testing.T) {
	u := newUnitModel(t, 33, true, nil)
	u.run(u.m.Init())
	for _, c := range []struct{ line, words string }{
		{"sendfile bob", "sendfile ID|NAME PATH"},
		{"acceptfile", "acceptfile ID [DIR]"},
		{"declinefile a b", "declinefile ID"},
	} {
		if _, err := parseCommand(c.line); err == nil || !strings.Contains(err.Error(), c.words) {
			t.Errorf("%q: %v, want the usage %q", c.line, err, c.words)
		}
	}
	for _, c := range []struct{ line, words string }{
		{"sendfile nobody /etc/hostname", `no contact called "nobody"`},
		{"acceptfile 00112233", "acceptfile: 00112233 is not a transfer ID"},
		{"declinefile 00112233445566778899aabbccddeeff", "declinefile: there is no file transfer with that ID"},
		{"cancelfile 00112233445566778899AABBCCDDEEFF", "cancelfile: there is no file transfer with that ID"},
	} {
		cmd, err := parseCommand(c.line)
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		u.update(cmd)
		if !u.has("error", func(e Event) bool { return e.Words == c.words || strings.HasPrefix(e.Words, c.words) }) {
			t.Errorf("%q: no error %q in %+v", c.line, c.words, u.events())
		}
	}
}

// The screen observer turns file notifications into the notice, the
// transfer line and the words left in the chat.
func TestScreenObserverShowsFiles(t *testing.T) {
	s, clk := newTestScreen(100, 30)
	o := newScreenObserver(s, "local", clk.now)
	o.Notify(conn.ContactsChanged{Contacts: []conn.Contact{{ID: idAlice, Name: "alice"}}})
	o.Notify(conn.PeerChanged{Status: conn.PeerStatus{ID: idAlice, Name: "alice", Contact: true, Phase: conn.PhaseConnected}})
	st := transfer.Status{ID: transfer.ID{9}, State: transfer.StateOffered, Name: "x\x1b[2J.pdf", Size: 5 << 20}
	o.Notify(conn.FileOffer{FileNote: conn.FileNote{Peer: idAlice, File: st}})
	if len(s.files.queue) != 1 || s.files.queue[0].PeerName != "alice" || s.files.queue[0].Name != "x.pdf" {
		t.Fatalf("offers %+v", s.files.queue)
	}
	st.State, st.Done, st.Rate = transfer.StateActive, 1<<20, 1<<20
	o.Notify(conn.FileStarted{FileNote: conn.FileNote{Peer: idAlice, File: st}})
	o.Notify(conn.FileProgress{FileNote: conn.FileNote{Peer: idAlice, File: st}})
	if len(s.files.queue) != 0 || len(s.xfers) != 1 || s.xfers[0].Done != 1<<20 || s.xfers[0].Phase != TransferActive {
		t.Fatalf("after start: offers %+v, transfers %+v", s.files.queue, s.xfers)
	}
	st.State, st.Done, st.Path = transfer.StateDone, st.Size, "/dl/x.pdf"
	o.Notify(conn.FileDone{FileNote: conn.FileNote{Peer: idAlice, File: st}})
	if len(s.xfers) != 0 {
		t.Fatalf("a finished transfer is still shown: %+v", s.xfers)
	}
	c := s.convs[idAlice]
	if c == nil || len(c.msgs) != 1 || !c.msgs[0].Notice || c.msgs[0].Body != "x.pdf (5.0 MiB) from alice saved as /dl/x.pdf" {
		t.Fatalf("chat %+v", c)
	}
}
