package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	bolt "go.etcd.io/bbolt"
)

var storeEpoch = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// storeOpen opens a store in a fresh directory and closes it at the end.
func storeOpen(tb testing.TB) (*Store, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "alice")
	s, err := OpenStore(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, dir
}

// storePeer is the ID of a deterministic test key.
func storePeer(tb testing.TB, seed byte) string {
	tb.Helper()
	var seedBytes [32]byte
	for i := range seedBytes {
		seedBytes[i] = seed + byte(i)*7
	}
	id, err := identity.NewIdentity(bytes.NewReader(seedBytes[:]))
	if err != nil {
		tb.Fatal(err)
	}
	return id.ID()
}

// storeMsgID is a readable deterministic message ID.
func storeMsgID(n int) session.MessageID {
	var id session.MessageID
	copy(id[:], fmt.Sprintf("m%015d", n))
	return id
}

// storeFill appends n received/ours messages to one conversation in a
// single transaction (fast setup for big histories).
func storeFill(tb testing.TB, s *Store, contactID string, n int) {
	tb.Helper()
	pub, err := identity.ParseID(contactID)
	if err != nil {
		tb.Fatal(err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		c, _, err := openConv(tx, pub, true)
		if err != nil {
			return err
		}
		for i := range n {
			r := Record{MsgID: storeMsgID(i), Mine: i%3 == 0, Body: fmt.Sprintf("message number %d, of typical length for a chat line", i),
				At: storeEpoch.Add(time.Duration(i) * time.Second), State: StateReceived}
			if r.Mine {
				r.State = StateDelivered
			}
			if err := c.appendRecord(&r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

func TestStoreSecondOpenIsAlreadyRunning(t *testing.T) {
	s, dir := storeOpen(t)
	_ = s
	start := time.Now()
	s2, err := OpenStore(dir)
	if err == nil {
		s2.Close()
		t.Fatal("a second OpenStore of the same profile succeeded")
	}
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("err %v; want ErrAlreadyRunning", err)
	}
	want := fmt.Sprintf("p2ptui is already running with profile alice (pid %d)", os.Getpid())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q does not say %q", err, want)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waited %v for the lock", waited) // a hang, not a speed check
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := OpenStore(dir)
	if err != nil {
		t.Fatalf("reopen after Close: %v", err)
	}
	s3.Close()
	fi, err := os.Stat(filepath.Join(dir, StoreFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file mode: %v %v", fi.Mode(), err)
	}
}

func TestStoreContacts(t *testing.T) {
	s, dir := storeOpen(t)
	bob, carol := storePeer(t, 2), storePeer(t, 3)
	if _, err := s.AddContact("  Bob ", strings.ToUpper(bob[:20])+"-"+bob[20:], storeEpoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddContact("alice-from-work", carol, storeEpoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddContact("Bob again", bob, storeEpoch); !errors.Is(err, ErrContactExists) {
		t.Fatalf("duplicate ID: %v", err)
	}
	typo := bob[:5] + map[bool]string{true: "b", false: "a"}[bob[5] == 'a'] + bob[6:]
	for name, c := range map[string]struct {
		name, id string
		want     error
	}{
		"empty name":    {"  ", storePeer(t, 4), ErrInvalidName},
		"long name":     {strings.Repeat("x", 65), storePeer(t, 4), ErrInvalidName},
		"control chars": {"evil\x1b[2J", storePeer(t, 4), ErrInvalidName},
		"typo":          {"Dan", typo, identity.ErrIDTypo},
		"not an id":     {"Dan", "hello", identity.ErrIDMalformed},
	} {
		if _, err := s.AddContact(c.name, c.id, storeEpoch); !errors.Is(err, c.want) {
			t.Errorf("%s: err %v; want %v", name, err, c.want)
		}
	}
	if err := s.RenameContact(carol, "Carol"); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameContact(storePeer(t, 9), "X"); !errors.Is(err, ErrNoSuchContact) {
		t.Fatalf("rename stranger: %v", err)
	}
	// Reopen: contacts persist.
	s.Close()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs, err := s.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 2 || cs[0].Name != "Bob" || cs[0].ID != bob || cs[1].Name != "Carol" || cs[1].ID != carol {
		t.Fatalf("contacts %+v", cs)
	}
	if pub, _ := identity.ParseID(bob); cs[0].Public != pub || !cs[0].Added.Equal(storeEpoch) {
		t.Fatalf("contact fields %+v", cs[0])
	}
	if c, err := s.Contact(bob); err != nil || c.Name != "Bob" {
		t.Fatalf("Contact(bob) = %+v, %v", c, err)
	}
	if err := s.RemoveContact(bob); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Contact(bob); !errors.Is(err, ErrNoSuchContact) {
		t.Fatalf("removed contact still found: %v", err)
	}
	// Removing what is not a contact (removed already, or a caller
	// accepted once) reaches the state asked for: no error.
	if err := s.RemoveContact(bob); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if err := s.RemoveContact(storePeer(t, 9)); err != nil {
		t.Fatalf("remove a stranger: %v", err)
	}
	if err := s.RemoveContact("not an id"); !errors.Is(err, identity.ErrIDMalformed) {
		t.Fatalf("remove a malformed ID: %v", err)
	}
}

func TestStoreContactNamesAreCleaned(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"  Bob ", "Bob"},
		{"Jose\u0301", "José"},               // NFC
		{"\u200bal\u200dice\ufeff", "alice"}, // format characters gone
		{"\u202eevil\u202c", "evil"},         // bidi controls gone
		{"bob\U000E0041", "bob"},             // tag characters gone
		{"two\u2028lines", "two lines"},      // separators become spaces
		{"z" + strings.Repeat("\u0336", 20), "z\u0336\u0336\u0336\u0336"}, // marks bounded
	} {
		got, err := CleanContactName(c.in)
		if err != nil || got != c.want {
			t.Errorf("CleanContactName(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "  ", "\u200b\u200b", "\u3164", "\u2800", "\u0301", "a\x00b", "a\u0085", "\xff", strings.Repeat("é", 33)} {
		if got, err := CleanContactName(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CleanContactName(%q) = %q, %v; want ErrInvalidName", bad, got, err)
		}
	}
}

func TestStoreBlocking(t *testing.T) {
	s, dir := storeOpen(t)
	bob, stranger := storePeer(t, 2), storePeer(t, 7)
	if _, err := s.AddContact("Bob", bob, storeEpoch); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{bob, stranger} {
		if b, err := s.IsBlocked(id); err != nil || b {
			t.Fatalf("IsBlocked(%s) before blocking = %v, %v", id, b, err)
		}
	}
	// A contact and an ID that is not one, in any pasted form.
	if err := s.Block(bob, "Bob", storeEpoch); err != nil {
		t.Fatal(err)
	}
	if err := s.Block(strings.ToUpper(stranger), "totally-alice\u200b", storeEpoch.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Blocking again keeps the first record.
	if err := s.Block(bob, "Robert", storeEpoch.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.Block("hello", "", storeEpoch); !errors.Is(err, identity.ErrIDMalformed) {
		t.Fatalf("block a malformed ID: %v", err)
	}
	// Persisted across a reopen.
	s.Close()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	list, err := s.BlockedIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != stranger || list[0].Name != "totally-alice" || !list[0].Since.Equal(storeEpoch.Add(time.Minute)) ||
		list[1].ID != bob || list[1].Name != "Bob" || !list[1].Since.Equal(storeEpoch) {
		t.Fatalf("blocked list %+v", list)
	}
	if b, err := s.IsBlocked(stranger); err != nil || !b {
		t.Fatalf("IsBlocked(stranger) = %v, %v", b, err)
	}
	// Blocking does not touch the contact.
	if c, err := s.Contact(bob); err != nil || c.Name != "Bob" {
		t.Fatalf("blocked contact: %+v, %v", c, err)
	}
	if err := s.Unblock(bob); err != nil {
		t.Fatal(err)
	}
	if err := s.Unblock(bob); err != nil { // not blocked any more: fine
		t.Fatalf("second unblock: %v", err)
	}
	if b, err := s.IsBlocked(bob); err != nil || b {
		t.Fatalf("IsBlocked(bob) after unblocking = %v, %v", b, err)
	}
	if list, err := s.BlockedIDs(); err != nil || len(list) != 1 || list[0].ID != stranger {
		t.Fatalf("blocked list after unblocking bob: %+v, %v", list, err)
	}
}

func TestStoreSenderTime(t *testing.T) {
	s, dir := storeOpen(t)
	bob := storePeer(t, 2)
	written := storeEpoch.Add(-3 * time.Hour)
	r, added, err := s.AppendReceivedMessage(bob, session.Received{ID: storeMsgID(1), Body: []byte("late"), SentAt: written}, storeEpoch)
	if err != nil || !added || !r.SentAt.Equal(written) || !r.At.Equal(storeEpoch) {
		t.Fatalf("AppendReceivedMessage = %+v, %v, %v", r, added, err)
	}
	if _, err := s.AppendReceivedAll(bob, []session.Received{{ID: storeMsgID(2), Body: []byte("batch"), SentAt: written.Add(time.Minute)}, {ID: storeMsgID(3), Body: []byte("no time")}}, storeEpoch); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Queue(bob, storeMsgID(4), "mine", storeEpoch.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AppendReceived(bob, storeMsgID(5), "old api", storeEpoch); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h, err := s.History(bob, 0, 10)
	if err != nil || len(h) != 5 {
		t.Fatalf("history %+v, %v", h, err)
	}
	want := []time.Time{written, written.Add(time.Minute), {}, storeEpoch.Add(time.Second), {}}
	for i, r := range h {
		if !r.SentAt.Equal(want[i]) {
			t.Errorf("record %d (%q): SentAt %v, want %v", i, r.Body, r.SentAt, want[i])
		}
	}
	// The sender time is the sender's: a message already stored keeps it.
	if r, added, err := s.AppendReceivedMessage(bob, session.Received{ID: storeMsgID(1), Body: []byte("late"), SentAt: storeEpoch}, storeEpoch); err != nil || added || !r.SentAt.Equal(written) {
		t.Fatalf("duplicate: %+v, %v, %v", r, added, err)
	}
}

func TestStoreOutboxLifecycle(t *testing.T) {
	s, dir := storeOpen(t)
	bob, carol := storePeer(t, 2), storePeer(t, 3)
	for i := range 5 {
		r, err := s.Queue(bob, storeMsgID(i), fmt.Sprint("hi ", i), storeEpoch.Add(time.Duration(i)))
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) || r.State != StateQueued || !r.Mine || r.ContactID != bob {
			t.Fatalf("queued record %+v", r)
		}
	}
	// Queueing the same ID again changes nothing.
	if r, err := s.Queue(bob, storeMsgID(2), "other body", storeEpoch); err != nil || r.Seq != 3 || r.Body != "hi 2" {
		t.Fatalf("re-queue: %+v %v", r, err)
	}
	if err := s.MarkSent(bob, storeMsgID(0)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(bob, storeMsgID(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(bob, storeMsgID(1)); err != nil {
		t.Fatalf("repeated receipt: %v", err)
	}
	if err := s.MarkSent(bob, storeMsgID(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkDelivered(carol, storeMsgID(1)); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("receipt in the wrong conversation: %v", err)
	}
	if err := s.MarkDelivered(bob, storeMsgID(99)); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("unknown message: %v", err)
	}
	// A peer claiming one of our IDs for its own message neither hides it
	// nor touches ours.
	if _, added, err := s.AppendReceived(bob, storeMsgID(3), "from bob", storeEpoch); err != nil || !added {
		t.Fatalf("received with our ID: added=%v %v", added, err)
	}
	if pend, err := s.PendingContacts(); err != nil || len(pend) != 1 || pend[0] != bob {
		t.Fatalf("pending contacts %v %v", pend, err)
	}
	s.Close()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Outbox(bob)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out {
		got = append(got, fmt.Sprintf("%s:%v", r.Body, r.State))
	}
	if want := "hi 0:sent hi 2:queued hi 3:queued hi 4:queued"; strings.Join(got, " ") != want {
		t.Fatalf("outbox %q; want %q", strings.Join(got, " "), want)
	}
	h, _ := s.History(bob, 0, 10)
	if len(h) != 6 || h[1].State != StateDelivered || h[5].Mine || h[5].Body != "from bob" {
		t.Fatalf("history %+v", h)
	}
	var ids []session.MessageID
	for _, r := range out {
		ids = append(ids, r.MsgID)
	}
	if err := s.MarkDelivered(bob, append(ids, storeMsgID(77))...); !errors.Is(err, ErrNoSuchMessage) {
		t.Fatalf("batch with an unknown ID: %v", err)
	}
	if out, _ := s.Outbox(bob); len(out) != 0 {
		t.Fatalf("outbox not empty after delivery: %v", out)
	}
	if pend, _ := s.PendingContacts(); len(pend) != 0 {
		t.Fatalf("pending contacts %v", pend)
	}
	if out, err := s.Outbox(carol); err != nil || len(out) != 0 {
		t.Fatalf("empty conversation outbox: %v %v", out, err)
	}
}

func TestStoreReceivedIsIdempotent(t *testing.T) {
	s, _ := storeOpen(t)
	bob := storePeer(t, 2)
	if has, err := s.HasReceived(bob, storeMsgID(1)); err != nil || has {
		t.Fatalf("HasReceived before: %v %v", has, err)
	}
	r1, added, err := s.AppendReceived(bob, storeMsgID(1), "hello", storeEpoch)
	if err != nil || !added {
		t.Fatal(added, err)
	}
	r2, added, err := s.AppendReceived(bob, storeMsgID(1), "hello again", storeEpoch.Add(time.Hour))
	if err != nil || added || r2.Seq != r1.Seq || r2.Body != "hello" || !r2.At.Equal(r1.At) {
		t.Fatalf("duplicate: added=%v %+v vs %+v %v", added, r2, r1, err)
	}
	if has, _ := s.HasReceived(bob, storeMsgID(1)); !has {
		t.Fatal("HasReceived after store: false")
	}
	if has, _ := s.HasReceived(storePeer(t, 3), storeMsgID(1)); has {
		t.Fatal("dedupe leaks across conversations")
	}
	if n, _ := s.Count(bob); n != 1 {
		t.Fatalf("count %d", n)
	}
	if _, err := s.Append(Record{ContactID: bob, MsgID: storeMsgID(2), Mine: true, State: StateReceived}); err == nil {
		t.Fatal("ours with state received accepted")
	}
	if _, err := s.Append(Record{ContactID: "nope", State: StateReceived}); !errors.Is(err, identity.ErrIDMalformed) {
		t.Fatalf("bad contact id: %v", err)
	}
}

func TestStoreHistoryPaging(t *testing.T) {
	s, _ := storeOpen(t)
	bob := storePeer(t, 2)
	const n = 1000
	storeFill(t, s, bob, n)
	if c, _ := s.Count(bob); c != n {
		t.Fatalf("count %d", c)
	}
	// Page backwards from the newest, 64 at a time: every record once, in order.
	var all []Record
	before := uint64(0)
	for {
		page, err := s.History(bob, before, 64)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for i := 1; i < len(page); i++ {
			if page[i].Seq != page[i-1].Seq+1 {
				t.Fatalf("page not consecutive: %d then %d", page[i-1].Seq, page[i].Seq)
			}
		}
		all = append(page, all...)
		before = page[0].Seq
	}
	if len(all) != n {
		t.Fatalf("paged %d records; want %d", len(all), n)
	}
	for i, r := range all {
		if r.Seq != uint64(i+1) || r.MsgID != storeMsgID(i) || !r.At.Equal(storeEpoch.Add(time.Duration(i)*time.Second)) || r.ContactID != bob {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	for _, c := range []struct {
		before uint64
		n      int
		first  uint64
		count  int
	}{
		{0, 10, 991, 10}, {11, 10, 1, 10}, {5, 10, 1, 4}, {1, 10, 0, 0}, {n + 50, 3, 998, 3}, {0, 0, 0, 0},
	} {
		page, err := s.History(bob, c.before, c.n)
		if err != nil || len(page) != c.count || (c.count > 0 && page[0].Seq != c.first) {
			t.Errorf("History(before %d, n %d): %d records (first %v), err %v; want %d from %d",
				c.before, c.n, len(page), page, err, c.count, c.first)
		}
	}
	if h, err := s.History(storePeer(t, 3), 0, 10); err != nil || len(h) != 0 {
		t.Fatalf("empty conversation: %v %v", h, err)
	}
}

func TestStoreProfileDir(t *testing.T) {
	got, err := ProfileDir("/data", "")
	if err != nil || got != "/data/profiles/default" {
		t.Fatalf("ProfileDir default: %q %v", got, err)
	}
	// Which data directory each OS uses is TestDataDir's; here only that
	// an empty one means this machine's.
	loc, err := DataDir(HostEnv())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ProfileDir("", "work"); got != filepath.Join(loc.Dir, "profiles", "work") {
		t.Fatalf("default data directory: %q; want under %q", got, loc.Dir)
	}
	for _, bad := range []string{"..", "../x", "a/b", ".hidden", "a b", strings.Repeat("p", 33), "x\x00"} {
		if _, err := ProfileDir("/data", bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("profile %q accepted (%v)", bad, err)
		}
	}
}

// BenchmarkStoreHistoryPage reads a 100-message page at a random depth of
// a 100,000-message conversation, as the UI does when scrolling back.
//
//	go test -run '^$' -bench StoreHistoryPage ./session/
func BenchmarkStoreHistoryPage(b *testing.B) {
	s, _ := storeOpen(b)
	bob := storePeer(b, 2)
	const n = 100_000
	storeFill(b, s, bob, n)
	r := rand.New(rand.NewPCG(1, 99))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		before := uint64(r.IntN(n)) + 1
		page, err := s.History(bob, before, 100)
		if err != nil || (before > 100 && len(page) != 100) {
			b.Fatalf("page before %d: %d records, %v", before, len(page), err)
		}
	}
}

// BenchmarkStoreAppend is the cost of storing one received message (one
// fsynced transaction) into a conversation that already holds 100,000,
// and of Queue + MarkDelivered for one of ours.
//
//	go test -run '^$' -bench StoreAppend ./session/
func BenchmarkStoreAppend(b *testing.B) {
	b.Run("received", func(b *testing.B) {
		s, _ := storeOpen(b)
		bob := storePeer(b, 2)
		storeFill(b, s, bob, 100_000)
		body := strings.Repeat("x", 100)
		i := 0
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			i++
			if _, _, err := s.AppendReceived(bob, storeMsgID(1_000_000+i), body, storeEpoch); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("received-batch-32", func(b *testing.B) {
		s, _ := storeOpen(b)
		bob := storePeer(b, 2)
		storeFill(b, s, bob, 100_000)
		body := []byte(strings.Repeat("x", 100))
		batch := make([]session.Received, 32)
		i := 0
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			for j := range batch {
				i++
				batch[j] = session.Received{ID: storeMsgID(1_000_000 + i), Body: body}
			}
			if added, err := s.AppendReceivedAll(bob, batch, storeEpoch); err != nil || len(added) != len(batch) {
				b.Fatal(len(added), err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/msg")
	})
	b.Run("queue+delivered", func(b *testing.B) {
		s, _ := storeOpen(b)
		bob := storePeer(b, 2)
		storeFill(b, s, bob, 100_000)
		body := strings.Repeat("x", 100)
		i := 0
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			i++
			if _, err := s.Queue(bob, storeMsgID(1_000_000+i), body, storeEpoch); err != nil {
				b.Fatal(err)
			}
			if err := s.MarkDelivered(bob, storeMsgID(1_000_000+i)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func TestStoreReceivedBatchAndZeroTime(t *testing.T) {
	s, _ := storeOpen(t)
	bob := storePeer(t, 2)
	if _, _, err := s.AppendReceived(bob, storeMsgID(1), "one", time.Time{}); err != nil {
		t.Fatal(err)
	}
	batch := []session.Received{
		{ID: storeMsgID(1), Body: []byte("one again")}, // stored before
		{ID: storeMsgID(2), Body: []byte("two")},
		{ID: storeMsgID(3), Body: []byte("three")},
		{ID: storeMsgID(2), Body: []byte("two twice in one batch")},
	}
	added, err := s.AppendReceivedAll(bob, batch, storeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || added[0].Body != "two" || added[1].Body != "three" || added[1].Seq != 3 {
		t.Fatalf("added %+v", added)
	}
	h, _ := s.History(bob, 0, 10)
	if len(h) != 3 || !h[0].At.IsZero() || !h[1].At.Equal(storeEpoch) {
		t.Fatalf("history %+v", h)
	}
	if _, err := s.AppendReceivedAll(bob, []session.Received{{ID: storeMsgID(9), Body: make([]byte, session.MaxMessageSize+1)}}, storeEpoch); !errors.Is(err, session.ErrTooLarge) {
		t.Fatalf("oversized body: %v", err)
	}
}

// TestStoreConcurrentWriters appends from several goroutines at once (the
// UI's writer and a receive path, say): every record lands, sequence
// numbers stay unique and dense.
func TestStoreConcurrentWriters(t *testing.T) {
	s, _ := storeOpen(t)
	bob := storePeer(t, 2)
	const writers, each = 4, 25
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for i := range each {
				if _, _, err := s.AppendReceived(bob, storeMsgID(w*1000+i), "x", storeEpoch); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	h, _ := s.History(bob, 0, 1000)
	if len(h) != writers*each {
		t.Fatalf("%d records", len(h))
	}
	for i, r := range h {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
}

// "Ask me each time" is stored with the contact, survives a rename and a
// reopen, and a contact written by the previous format reads as not set.
func TestStoreAskEachTime(t *testing.T) {
	s, dir := storeOpen(t)
	bob := storePeer(t, 2)
	if _, err := s.AddContact("bob", bob, storeEpoch); err != nil {
		t.Fatal(err)
	}
	get := func(s *Store) Contact {
		t.Helper()
		c, err := s.Contact(bob)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if get(s).AskEachTime {
		t.Fatal("a new contact is asked about")
	}
	if err := s.SetAskEachTime(bob, true); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameContact(bob, "robert"); err != nil {
		t.Fatal(err)
	}
	if c := get(s); !c.AskEachTime || c.Name != "robert" {
		t.Fatalf("after set and rename: %+v", c)
	}
	if err := s.SetAskEachTime(storePeer(t, 5), true); !errors.Is(err, ErrNoSuchContact) {
		t.Fatalf("set on a stranger: %v", err)
	}
	s.Close()
	s2, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if c := get(s2); !c.AskEachTime || c.Name != "robert" {
		t.Fatalf("after reopening: %+v", c)
	}
	pub, _ := identity.ParseID(bob)
	old := append([]byte{1}, make([]byte, 8)...)
	old = append(old, "bob v1"...)
	if c, err := decodeContact(pub, old); err != nil || c.Name != "bob v1" || c.AskEachTime {
		t.Fatalf("version 1 record: %+v, %v", c, err)
	}
	if _, err := decodeContact(pub, []byte{2, 0, 0}); err == nil {
		t.Fatal("a truncated version 2 record was read")
	}
}
