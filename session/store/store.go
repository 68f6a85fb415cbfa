package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/p2ptui/p2ptui/session"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/private"
	"github.com/p2ptui/p2ptui/session/transfer"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"golang.org/x/text/unicode/norm"
)

// Store is one profile's persistent state in a single bbolt file: contacts,
// every conversation's history, and the outbox of messages not yet
// delivered. Every write is one fsynced transaction, so what a method
// returned nil for survives a crash or power cut. The file is locked for
// the life of the Store: a second process on the same profile gets
// ErrAlreadyRunning instead of two writers fighting.
//
// A Store is safe for concurrent use; calls block on disk, so the UI makes
// them from a tea.Cmd or a writer goroutine, not inline in Update.
type Store struct {
	db  *bolt.DB
	dir string
}

// Store files inside a profile directory.
const (
	// StoreFile is the bbolt database.
	StoreFile = "p2ptui.db"
	// PIDFile names the process holding the store, for the "already
	// running" message only (the lock itself is bbolt's flock).
	PIDFile = "p2ptui.pid"

	// storeLockTimeout is how long OpenStore waits for the lock: long
	// enough to ride out a previous instance that is just closing, short
	// enough that the user is told at once.
	storeLockTimeout = 200 * time.Millisecond
	// storeSchema is the layout version kept in the meta bucket.
	storeSchema = 1
	// MaxContactNameBytes bounds a contact's name.
	MaxContactNameBytes = 64
)

// Errors of the store, for callers to branch on.
var (
	// ErrAlreadyRunning: another p2ptui process holds the profile.
	ErrAlreadyRunning = errors.New("p2ptui is already running with this profile")
	// ErrNoSuchContact: no contact has that ID.
	ErrNoSuchContact = errors.New("no such contact")
	// ErrContactExists: a contact with that ID is already in the list.
	ErrContactExists = errors.New("that ID is already a contact")
	// ErrInvalidName: a contact or profile name is empty, too long or holds
	// control characters.
	ErrInvalidName = errors.New("invalid name")
	// ErrNoSuchMessage: the message ID is not in this conversation.
	ErrNoSuchMessage = errors.New("no such message")
	// ErrUnknownStoreFormat: the file was written by a newer p2ptui.
	ErrUnknownStoreFormat = errors.New("store written by a newer version of p2ptui")
)

// AlreadyRunningError is the ErrAlreadyRunning a second OpenStore returns,
// with what the user needs to find the other instance.
type AlreadyRunningError struct {
	Profile string // the profile directory's name
	PID     int    // 0 when unknown
}

func (e *AlreadyRunningError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("p2ptui is already running with profile %s (pid %d); quit it first or choose another profile", e.Profile, e.PID)
	}
	return fmt.Sprintf("p2ptui is already running with profile %s; quit it first or choose another profile", e.Profile)
}

// Is makes errors.Is(err, ErrAlreadyRunning) true.
func (e *AlreadyRunningError) Is(target error) bool { return target == ErrAlreadyRunning }

// MessageState is where a message stands.
type MessageState uint8

// Message states. Ours go StateQueued → StateSent → StateDelivered; theirs are StateReceived.
const (
	// StateQueued: stored, not yet handed to a session.
	StateQueued MessageState = iota + 1
	// StateSent: handed to a session; stays in the outbox until StateDelivered.
	StateSent
	// StateDelivered: the peer stored it (its receipt arrived).
	StateDelivered
	// StateReceived: a message from the peer, stored.
	StateReceived
)

func (s MessageState) String() string {
	switch s {
	case StateQueued:
		return "queued"
	case StateSent:
		return "sent"
	case StateDelivered:
		return "delivered"
	case StateReceived:
		return "received"
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// Record is one message of a conversation.
type Record struct {
	// ContactID is the peer's ID (canonical form).
	ContactID string
	// Seq orders the conversation: 1 for the first message stored with this
	// contact, increasing by one per message, never reused.
	Seq   uint64
	MsgID session.MessageID
	// Mine is true for messages this user wrote.
	Mine bool
	Body string
	// At is when the message was queued (ours) or received (theirs), by
	// this machine's clock.
	At time.Time
	// SentAt is when the sender wrote it, by the sender's clock as the
	// sealed message claims (theirs; zero when unknown). For ours it is At.
	SentAt time.Time
	State  MessageState
}

// Contact is a name the user gave to an ID.
type Contact struct {
	Name   string
	ID     string
	Public [32]byte
	Added  time.Time
	// AskEachTime: the contact's requests are asked about like a
	// stranger's, and it is not reconnected automatically.
	AskEachTime bool
}

// Bucket layout:
//
//	meta                    schema → version
//	contacts                pub(32) → ver(1) added(8) name
//	blocked                 pub(32) → ver(1) since(8) name
//	convs/pub(32)/h         seq(8) → record
//	convs/pub(32)/mine      msgID(16) → seq(8)   our messages
//	convs/pub(32)/recv      msgID(16) → seq(8)   received messages (dedupe)
//	convs/pub(32)/out       seq(8) → msgID(16)   outbox, in queue order
//	convs/pub(32)/sent      seq(8) → time(8)     a received message's sender time
//	transfers/pub(32)       dir(1) id(16) → transfer.Record (dir 1: ours)
//
// blocked and sent came after schema 1 without changing it: an older
// p2ptui ignores buckets it does not know, and a conversation written by
// one simply has no sender times.
// Keys are big-endian so cursor order is sequence order. The two message
// ID indexes are separate so a peer reusing one of our IDs can't make us
// drop its message or mark ours.
var (
	bucketMeta     = []byte("meta")
	bucketContacts = []byte("contacts")
	bucketConvs    = []byte("convs")
	bucketHistory  = []byte("h")
	bucketMine     = []byte("mine")
	bucketRecv     = []byte("recv")
	bucketOut      = []byte("out")
	bucketSentAt   = []byte("sent")
	bucketBlocked  = []byte("blocked")
	bucketXfers    = []byte("transfers")
	keySchema      = []byte("schema")
)

// OpenStore opens (creating on first run) the store in dir, a profile
// directory, and holds its lock until Close.
func OpenStore(dir string) (*Store, error) {
	if err := private.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, StoreFile), 0o600, &bolt.Options{
		Timeout:      storeLockTimeout,
		FreelistType: bolt.FreelistMapType, // O(1) page allocation as history grows
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, &AlreadyRunningError{Profile: filepath.Base(dir), PID: readPID(dir)}
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 1 || v[0] > storeSchema {
				return ErrUnknownStoreFormat
			}
		} else if err := meta.Put(keySchema, []byte{storeSchema}); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketContacts, bucketConvs, bucketBlocked, bucketXfers} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	writePID(dir)
	return s, nil
}

// Close releases the store and its lock.
func (s *Store) Close() error {
	_ = os.Remove(filepath.Join(s.dir, PIDFile))
	return s.db.Close()
}

// writePID records our process ID for a second instance's message; it is
// advisory, so failures are ignored.
func writePID(dir string) {
	tmp := filepath.Join(dir, PIDFile+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err == nil {
		_ = os.Rename(tmp, filepath.Join(dir, PIDFile))
	}
}

func readPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, PIDFile))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// ProfileDir returns the directory of a profile: dataDir/profiles/<profile>,
// where an empty dataDir means this machine's DataDir. An empty profile is
// "default". Profile names are 1–32 characters of letters, digits, '.', '_'
// and '-', not starting with '.', so they can't escape the profiles
// directory. The directory is not created.
func ProfileDir(dataDir, profile string) (string, error) {
	if profile == "" {
		profile = "default"
	}
	if err := validateProfile(profile); err != nil {
		return "", err
	}
	if dataDir == "" {
		loc, err := DataDir(HostEnv())
		if err != nil {
			return "", fmt.Errorf("find a data directory (pass a data directory): %w", err)
		}
		dataDir = loc.Dir
	}
	return filepath.Join(dataDir, "profiles", profile), nil
}

func validateProfile(p string) error {
	if len(p) > 32 || p[0] == '.' {
		return fmt.Errorf("%w: profile %q: use 1-32 letters, digits, '.', '_' or '-', not starting with '.'", ErrInvalidName, p)
	}
	for _, c := range []byte(p) {
		ok := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: profile %q: use 1-32 letters, digits, '.', '_' or '-', not starting with '.'", ErrInvalidName, p)
		}
	}
	return nil
}

// CleanContactName makes a contact name what is stored and drawn, or says
// what is wrong with it: format characters (zero-width spaces and joiners,
// bidirectional controls, tag characters) and line or paragraph separators
// are removed, combining marks beyond maxNameMarks per character dropped,
// the rest NFC-normalised (one name, one encoding) and trimmed. Refused: a
// name with control characters or invalid UTF-8, one with nothing visible
// left, and one longer than MaxContactNameBytes.
func CleanContactName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", fmt.Errorf("%w: not valid UTF-8", ErrInvalidName)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return "", fmt.Errorf("%w: %q contains control characters", ErrInvalidName, name)
	}
	name = strings.TrimSpace(cleanNameRunes(norm.NFC.String(cleanNameRunes(name))))
	switch {
	case name == "":
		return "", fmt.Errorf("%w: a contact needs a name", ErrInvalidName)
	case !nameVisible(name):
		return "", fmt.Errorf("%w: %q shows nothing: use letters, digits or symbols", ErrInvalidName, name)
	case len(name) > MaxContactNameBytes:
		return "", fmt.Errorf("%w: %q is longer than %d bytes", ErrInvalidName, name, MaxContactNameBytes)
	}
	return name, nil
}

// maxNameMarks bounds the combining marks kept after one character of a
// name: living scripts need a few, "Zalgo" text stacks dozens.
const maxNameMarks = 4

// cleanNameRunes drops format characters and surplus combining marks, and
// turns line and paragraph separators into spaces.
func cleanNameRunes(s string) string {
	var b strings.Builder
	marks := 0
	for _, r := range s {
		switch {
		case r == 0x2028 || r == 0x2029:
			b.WriteByte(' ')
			marks = 0
		case unicode.Is(unicode.Cf, r):
		case unicode.In(r, unicode.Mn, unicode.Me):
			if marks < maxNameMarks {
				b.WriteRune(r)
			}
			marks++
		default:
			b.WriteRune(r)
			marks = 0
		}
	}
	return b.String()
}

// nameVisible reports a character that draws something: graphic, not a
// space, not a lone mark, not a letter that renders blank (the Hangul
// fillers and the Braille blank make "empty" names).
func nameVisible(s string) bool {
	for _, r := range s {
		switch r {
		case 0x115f, 0x1160, 0x3164, 0xffa0, 0x2800:
			continue
		}
		if unicode.IsGraphic(r) && !unicode.IsSpace(r) && !unicode.In(r, unicode.Mn, unicode.Me) {
			return true
		}
	}
	return false
}

// AddContact binds name to id (any pasted form ParseID accepts) at time at.
func (s *Store) AddContact(name, id string, at time.Time) (Contact, error) {
	name, err := CleanContactName(name)
	if err != nil {
		return Contact{}, err
	}
	pub, err := identity.ParseID(id)
	if err != nil {
		return Contact{}, err
	}
	c := Contact{Name: name, ID: identity.IDFromPublic(pub), Public: pub, Added: at}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		if v := b.Get(pub[:]); v != nil {
			old, _ := decodeContact(pub, v)
			return fmt.Errorf("%w (as %q)", ErrContactExists, old.Name)
		}
		return b.Put(pub[:], encodeContact(c))
	})
	if err != nil {
		return Contact{}, fmt.Errorf("add contact: %w", err)
	}
	return c, nil
}

// RenameContact gives an existing contact a new name.
func (s *Store) RenameContact(id, name string) error {
	name, err := CleanContactName(name)
	if err != nil {
		return err
	}
	if err := s.updateContact(id, func(c *Contact) { c.Name = name }); err != nil {
		return fmt.Errorf("rename contact: %w", err)
	}
	return nil
}

// SetAskEachTime changes whether a contact's requests are asked about.
func (s *Store) SetAskEachTime(id string, ask bool) error {
	if err := s.updateContact(id, func(c *Contact) { c.AskEachTime = ask }); err != nil {
		return fmt.Errorf("change contact: %w", err)
	}
	return nil
}

// updateContact applies change to one stored contact.
func (s *Store) updateContact(id string, change func(*Contact)) error {
	pub, err := identity.DecodeID(id)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContacts)
		v := b.Get(pub[:])
		if v == nil {
			return ErrNoSuchContact
		}
		c, err := decodeContact(pub, v)
		if err != nil {
			return err
		}
		change(&c)
		return b.Put(pub[:], encodeContact(c))
	})
}

// RemoveContact deletes a contact. The conversation stays: adding the ID
// again brings it back (and an undelivered outbox waits for that).
// Removing an ID that is not a contact (a caller accepted once, or a
// contact removed already) succeeds: afterwards it is not a contact, which
// is what was asked.
func (s *Store) RemoveContact(id string) error {
	pub, err := identity.DecodeID(id)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).Delete(pub[:])
	})
	if err != nil {
		return fmt.Errorf("remove contact: %w", err)
	}
	return nil
}

// Contact looks one contact up by ID; ErrNoSuchContact for strangers.
func (s *Store) Contact(id string) (Contact, error) {
	pub, err := identity.DecodeID(id)
	if err != nil {
		return Contact{}, err
	}
	var c Contact
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketContacts).Get(pub[:])
		if v == nil {
			return ErrNoSuchContact
		}
		c, err = decodeContact(pub, v)
		return err
	})
	return c, err
}

// Contacts returns every contact, sorted by name (case-insensitively), then ID.
func (s *Store) Contacts() ([]Contact, error) {
	var out []Contact
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContacts).ForEach(func(k, v []byte) error {
			var pub [32]byte
			copy(pub[:], k)
			c, err := decodeContact(pub, v)
			if err != nil {
				return err
			}
			out = append(out, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	slices.SortFunc(out, func(a, b Contact) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Contact encoding: ver(1)=2 added(8) flags(1) name. Version 1 (no flags)
// is still read.
const (
	contactVersion     = 2
	contactFlagAskEach = 1
)

// Blocked is an ID whose offers are dropped unseen. It need not be a
// contact: an unknown caller can be blocked from its request.
type Blocked struct {
	ID     string
	Public [32]byte
	// Name is what the user knew it as when blocking it (the contact's
	// name, or the name an unknown caller gave); may be empty.
	Name  string
	Since time.Time
}

// Block records that id's offers are to be dropped unseen, with the name
// it was known by (checked like a contact name when not empty; a bad one
// is left out rather than refusing to block). Blocking a blocked ID keeps
// its first time and name. Blocking leaves the contact, if any, and its
// history alone.
func (s *Store) Block(id, name string, at time.Time) error {
	pub, err := identity.ParseID(id)
	if err != nil {
		return err
	}
	if name != "" {
		if name, err = CleanContactName(name); err != nil {
			name = ""
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocked)
		if b.Get(pub[:]) != nil {
			return nil
		}
		return b.Put(pub[:], encodeContact(Contact{Name: name, Added: at}))
	})
	if err != nil {
		return fmt.Errorf("block: %w", err)
	}
	return nil
}

// Unblock lets id's offers through again. Unblocking an ID that is not
// blocked succeeds.
func (s *Store) Unblock(id string) error {
	pub, err := identity.ParseID(id)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketBlocked).Delete(pub[:]) }); err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	return nil
}

// IsBlocked reports whether id is blocked.
func (s *Store) IsBlocked(id string) (bool, error) {
	pub, err := identity.ParseID(id)
	if err != nil {
		return false, err
	}
	var blocked bool
	err = s.db.View(func(tx *bolt.Tx) error {
		blocked = tx.Bucket(bucketBlocked).Get(pub[:]) != nil
		return nil
	})
	return blocked, err
}

// BlockedIDs returns every blocked ID, the most recently blocked first.
func (s *Store) BlockedIDs() ([]Blocked, error) {
	var out []Blocked
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlocked).ForEach(func(k, v []byte) error {
			var pub [32]byte
			copy(pub[:], k)
			c, err := decodeContact(pub, v)
			if err != nil {
				return fmt.Errorf("damaged block record: %w", err)
			}
			out = append(out, Blocked{ID: c.ID, Public: pub, Name: c.Name, Since: c.Added})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list blocked IDs: %w", err)
	}
	slices.SortStableFunc(out, func(a, b Blocked) int { return b.Since.Compare(a.Since) })
	return out, nil
}

func encodeContact(c Contact) []byte {
	b := make([]byte, 0, 10+len(c.Name))
	b = append(b, contactVersion)
	b = binary.BigEndian.AppendUint64(b, unixNano(c.Added))
	var flags byte
	if c.AskEachTime {
		flags |= contactFlagAskEach
	}
	b = append(b, flags)
	return append(b, c.Name...)
}

func decodeContact(pub [32]byte, v []byte) (Contact, error) {
	c := Contact{ID: identity.IDFromPublic(pub), Public: pub}
	switch {
	case len(v) >= 9 && v[0] == 1:
		c.Name = string(v[9:])
	case len(v) >= 10 && v[0] == contactVersion:
		c.AskEachTime = v[9]&contactFlagAskEach != 0
		c.Name = string(v[10:])
	default:
		return Contact{}, errors.New("damaged contact record")
	}
	c.Added = fromUnixNano(binary.BigEndian.Uint64(v[1:9]))
	return c, nil
}

// Record encoding: ver(1) state(1) mine(1) msgID(16) at(8) body.
const recordHeader = 1 + 1 + 1 + 16 + 8

func encodeRecord(r *Record) []byte {
	b := make([]byte, recordHeader, recordHeader+len(r.Body))
	b[0] = 1
	b[1] = byte(r.State)
	if r.Mine {
		b[2] = 1
	}
	copy(b[3:19], r.MsgID[:])
	binary.BigEndian.PutUint64(b[19:27], unixNano(r.At))
	return append(b, r.Body...)
}

func decodeRecord(contactID string, seq []byte, v []byte) (Record, error) {
	if len(v) < recordHeader || v[0] != 1 || len(seq) != 8 {
		return Record{}, errors.New("damaged message record")
	}
	r := Record{
		ContactID: contactID,
		Seq:       binary.BigEndian.Uint64(seq),
		State:     MessageState(v[1]),
		Mine:      v[2] == 1,
		At:        fromUnixNano(binary.BigEndian.Uint64(v[19:27])),
		Body:      string(v[recordHeader:]),
	}
	copy(r.MsgID[:], v[3:19])
	return r, nil
}

// unixNano and fromUnixNano store times as nanoseconds since 1970, with
// the zero Time as 0 (its own UnixNano is out of int64's range).
func unixNano(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano())
}

func fromUnixNano(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v))
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// conv is one conversation's buckets inside a transaction.
type conv struct {
	id                  string // canonical contact ID
	root                *bolt.Bucket
	h, mine, recv, outb *bolt.Bucket
	sent                *bolt.Bucket // nil until a sender time is stored
}

// openConv returns the conversation's buckets, creating them when create
// is set; ok is false when the conversation does not exist (read-only).
func openConv(tx *bolt.Tx, pub [32]byte, create bool) (c conv, ok bool, err error) {
	c.id = identity.IDFromPublic(pub)
	convs := tx.Bucket(bucketConvs)
	b := convs.Bucket(pub[:])
	if b == nil {
		if !create {
			return c, false, nil
		}
		if b, err = convs.CreateBucket(pub[:]); err != nil {
			return c, false, err
		}
		for _, name := range [][]byte{bucketHistory, bucketMine, bucketRecv, bucketOut} {
			if _, err := b.CreateBucket(name); err != nil {
				return c, false, err
			}
		}
	}
	c.root = b
	c.h, c.mine, c.recv, c.outb = b.Bucket(bucketHistory), b.Bucket(bucketMine), b.Bucket(bucketRecv), b.Bucket(bucketOut)
	c.sent = b.Bucket(bucketSentAt)
	if c.h == nil || c.mine == nil || c.recv == nil || c.outb == nil {
		return c, false, errors.New("damaged conversation")
	}
	return c, true, nil
}

// get returns the record at a sequence number stored in an index.
func (c conv) get(seq []byte) (Record, error) {
	v := c.h.Get(seq)
	if v == nil {
		return Record{}, errors.New("damaged conversation: index points nowhere")
	}
	return c.decode(seq, v)
}

// decode decodes a history record and adds its sender time.
func (c conv) decode(seq, v []byte) (Record, error) {
	r, err := decodeRecord(c.id, seq, v)
	if err != nil {
		return r, err
	}
	switch {
	case r.Mine:
		r.SentAt = r.At
	case c.sent != nil:
		if t := c.sent.Get(seq); len(t) == 8 {
			r.SentAt = fromUnixNano(binary.BigEndian.Uint64(t))
		}
	}
	return r, nil
}

// appendRecord stores r with the next sequence number and indexes it.
// c is a pointer: storing the first sender time creates c.sent.
func (c *conv) appendRecord(r *Record) error {
	seq, err := c.h.NextSequence()
	if err != nil {
		return err
	}
	r.Seq = seq
	r.ContactID = c.id
	k := seqKey(seq)
	if err := c.h.Put(k, encodeRecord(r)); err != nil {
		return err
	}
	if !r.Mine {
		if !r.SentAt.IsZero() {
			if c.sent == nil {
				if c.sent, err = c.root.CreateBucketIfNotExists(bucketSentAt); err != nil {
					return err
				}
			}
			if err := c.sent.Put(k, binary.BigEndian.AppendUint64(nil, unixNano(r.SentAt))); err != nil {
				return err
			}
		}
		return c.recv.Put(r.MsgID[:], k)
	}
	r.SentAt = r.At
	if err := c.mine.Put(r.MsgID[:], k); err != nil {
		return err
	}
	if r.State == StateQueued || r.State == StateSent {
		return c.outb.Put(k, r.MsgID[:])
	}
	return nil
}

// Append stores a record in its conversation and returns it with ContactID
// (canonical) and Seq set. It is idempotent by (conversation, direction,
// MsgID): appending a message already stored returns the stored record
// unchanged. Ours in state StateQueued or StateSent enter the outbox; theirs should
// have state StateReceived.
func (s *Store) Append(r Record) (Record, error) {
	out, _, err := s.append(r)
	return out, err
}

func (s *Store) append(r Record) (out Record, added bool, err error) {
	pub, err := identity.DecodeID(r.ContactID)
	if err != nil {
		return Record{}, false, err
	}
	if r.State < StateQueued || r.State > StateReceived || (r.State == StateReceived) == r.Mine {
		return Record{}, false, fmt.Errorf("append message: state %v does not fit mine=%v", r.State, r.Mine)
	}
	if len(r.Body) > session.MaxMessageSize {
		return Record{}, false, fmt.Errorf("append message of %d bytes: %w", len(r.Body), session.ErrTooLarge)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		c, _, err := openConv(tx, pub, true)
		if err != nil {
			return err
		}
		idx := c.recv
		if r.Mine {
			idx = c.mine
		}
		if seq := idx.Get(r.MsgID[:]); seq != nil {
			out, err = c.get(seq)
			return err
		}
		out, added = r, true
		return c.appendRecord(&out)
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("append message: %w", err)
	}
	return out, added, nil
}

// Queue stores a message of ours, state StateQueued, in the history and the
// outbox in one transaction. Call it before Machine.Send: once Queue
// returned, the message survives a crash and is resent, with the same ID,
// by the next session. Queueing an ID again returns the stored record.
func (s *Store) Queue(contactID string, id session.MessageID, body string, at time.Time) (Record, error) {
	return s.Append(Record{ContactID: contactID, MsgID: id, Mine: true, Body: body, At: at, State: StateQueued})
}

// AppendReceived stores a message from the peer unless (contact, id) is
// already stored; added reports whether it was new. Call it before
// Machine.Commit, and commit duplicates too.
func (s *Store) AppendReceived(contactID string, id session.MessageID, body string, at time.Time) (r Record, added bool, err error) {
	return s.append(Record{ContactID: contactID, MsgID: id, Body: body, At: at, State: StateReceived})
}

// AppendReceivedMessage is AppendReceived for a session.Received, keeping
// the sender's time (m.SentAt) beside the arrival time at, so the history
// shows when it was written and can tell a late arrival.
func (s *Store) AppendReceivedMessage(contactID string, m session.Received, at time.Time) (r Record, added bool, err error) {
	return s.append(Record{ContactID: contactID, MsgID: m.ID, Body: string(m.Body), At: at, SentAt: m.SentAt, State: StateReceived})
}

// AppendReceivedAll stores, in one transaction, every message of msgs not
// already stored (as AppendReceived does one by one) and returns the
// records it added, in order. A burst of Received events from one
// datagram batch costs one disk sync instead of one each; commit them all
// after it returns.
func (s *Store) AppendReceivedAll(contactID string, msgs []session.Received, at time.Time) ([]Record, error) {
	pub, err := identity.DecodeID(contactID)
	if err != nil {
		return nil, err
	}
	for _, m := range msgs {
		if len(m.Body) > session.MaxMessageSize {
			return nil, fmt.Errorf("append message of %d bytes: %w", len(m.Body), session.ErrTooLarge)
		}
	}
	var added []Record
	err = s.db.Update(func(tx *bolt.Tx) error {
		c, _, err := openConv(tx, pub, true)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if c.recv.Get(m.ID[:]) != nil {
				continue
			}
			r := Record{MsgID: m.ID, Body: string(m.Body), At: at, SentAt: m.SentAt, State: StateReceived}
			if err := c.appendRecord(&r); err != nil {
				return err
			}
			added = append(added, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append received messages: %w", err)
	}
	return added, nil
}

// HasReceived reports whether a message from the peer with this ID is
// stored, to drop a resend from a later session.
func (s *Store) HasReceived(contactID string, id session.MessageID) (bool, error) {
	pub, err := identity.DecodeID(contactID)
	if err != nil {
		return false, err
	}
	var has bool
	err = s.db.View(func(tx *bolt.Tx) error {
		c, ok, err := openConv(tx, pub, false)
		if ok {
			has = c.recv.Get(id[:]) != nil
		}
		return err
	})
	return has, err
}

// Outbox returns our undelivered messages to the contact (StateQueued or StateSent),
// in the order they were queued: what the next session sends first.
func (s *Store) Outbox(contactID string) ([]Record, error) {
	pub, err := identity.DecodeID(contactID)
	if err != nil {
		return nil, err
	}
	var out []Record
	err = s.db.View(func(tx *bolt.Tx) error {
		c, ok, err := openConv(tx, pub, false)
		if !ok {
			return err
		}
		return c.outb.ForEach(func(seq, _ []byte) error {
			r, err := c.get(seq)
			out = append(out, r)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// PendingContacts returns the IDs of every conversation with a non-empty
// outbox: whom to reconnect to at start.
func (s *Store) PendingContacts() ([]string, error) {
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConvs).ForEachBucket(func(k []byte) error {
			b := tx.Bucket(bucketConvs).Bucket(k).Bucket(bucketOut)
			if b != nil && len(k) == 32 {
				if k2, _ := b.Cursor().First(); k2 != nil {
					ids = append(ids, identity.IDFromPublic([32]byte(k)))
				}
			}
			return nil
		})
	})
	return ids, err
}

// MarkSent records that queued messages were handed to a session. They
// stay in the outbox until MarkDelivered.
func (s *Store) MarkSent(contactID string, ids ...session.MessageID) error {
	return s.mark(contactID, StateSent, ids)
}

// MarkDelivered records the peer's receipts and removes the messages from
// the outbox, all in one transaction (a receipt often covers several).
// Marking a delivered message again is a no-op. IDs not in the
// conversation are skipped and reported with ErrNoSuchMessage after the
// others were marked.
func (s *Store) MarkDelivered(contactID string, ids ...session.MessageID) error {
	return s.mark(contactID, StateDelivered, ids)
}

func (s *Store) mark(contactID string, state MessageState, ids []session.MessageID) error {
	pub, err := identity.DecodeID(contactID)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	var missing []session.MessageID
	err = s.db.Update(func(tx *bolt.Tx) error {
		c, ok, err := openConv(tx, pub, false)
		if err != nil {
			return err
		}
		for _, id := range ids {
			var seq []byte
			if ok {
				seq = c.mine.Get(id[:])
			}
			if seq == nil {
				missing = append(missing, id)
				continue
			}
			seq = bytes.Clone(seq)
			r, err := c.get(seq)
			if err != nil {
				return err
			}
			if r.State >= state {
				continue // a late or repeated event; never go back
			}
			r.State = state
			if err := c.h.Put(seq, encodeRecord(&r)); err != nil {
				return err
			}
			if state == StateDelivered {
				if err := c.outb.Delete(seq); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark messages %v: %w", state, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("mark message %v %v: %w", missing[0], state, ErrNoSuchMessage)
	}
	return nil
}

// History returns up to n records of the conversation with Seq < beforeSeq
// (0: from the newest), oldest first: the page above what the UI shows.
// Paging costs one B+tree seek plus n reads, whatever the history's size.
func (s *Store) History(contactID string, beforeSeq uint64, n int) ([]Record, error) {
	pub, err := identity.DecodeID(contactID)
	if err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	out := make([]Record, 0, min(n, 1024))
	err = s.db.View(func(tx *bolt.Tx) error {
		c, ok, err := openConv(tx, pub, false)
		if !ok {
			return err
		}
		cur := c.h.Cursor()
		var k, v []byte
		if beforeSeq == 0 {
			k, v = cur.Last()
		} else {
			k, _ = cur.Seek(seqKey(beforeSeq))
			if k == nil {
				k, v = cur.Last()
			} else {
				k, v = cur.Prev()
			}
		}
		for ; k != nil && len(out) < n; k, v = cur.Prev() {
			r, err := c.decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	slices.Reverse(out)
	return out, nil
}

// Count returns how many messages the conversation holds.
func (s *Store) Count(contactID string) (int, error) {
	pub, err := identity.DecodeID(contactID)
	if err != nil {
		return 0, err
	}
	var n uint64
	err = s.db.View(func(tx *bolt.Tx) error {
		c, ok, err := openConv(tx, pub, false)
		if ok {
			n = c.h.Sequence() // records are never deleted, so the last seq is the count
		}
		return err
	})
	return int(n), err
}

func transferKey(k transfer.Key) []byte {
	b := make([]byte, 0, 1+len(k.ID))
	if k.Outgoing {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(b, k.ID[:]...)
}

// PutTransfer stores (creates or replaces) a file transfer's record.
func (s *Store) PutTransfer(r transfer.Record) error {
	v, err := r.MarshalBinary()
	if err != nil {
		return fmt.Errorf("store transfer %s: %w", r.ID, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketXfers).CreateBucketIfNotExists(r.Peer[:])
		if err != nil {
			return err
		}
		return b.Put(transferKey(transfer.Key{Peer: r.Peer, Outgoing: r.Outgoing, ID: r.ID}), v)
	})
	if err != nil {
		return fmt.Errorf("store transfer %s: %w", r.ID, err)
	}
	return nil
}

// DeleteTransfer removes a transfer's record; a missing one is no error.
func (s *Store) DeleteTransfer(k transfer.Key) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketXfers).Bucket(k.Peer[:])
		if b == nil {
			return nil
		}
		return b.Delete(transferKey(k))
	})
	if err != nil {
		return fmt.Errorf("delete transfer %s: %w", k.ID, err)
	}
	return nil
}

// Transfers returns the file transfers stored for one peer. A record that
// does not decode (written by a newer p2ptui, or damaged) stays in the
// store and is left out, and the error (wrapping transfer.ErrRecord) says
// so beside the records that did decode.
func (s *Store) Transfers(peer [32]byte) ([]transfer.Record, error) {
	var out []transfer.Record
	var bad []error
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketXfers).Bucket(peer[:])
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r transfer.Record
			if err := r.UnmarshalBinary(v); err != nil {
				bad = append(bad, fmt.Errorf("transfer %x: %w", k, err))
				return nil
			}
			if r.Peer != peer || !bytes.Equal(k, transferKey(transfer.Key{Peer: r.Peer, Outgoing: r.Outgoing, ID: r.ID})) {
				bad = append(bad, fmt.Errorf("transfer %x: %w: stored under another key", k, transfer.ErrRecord))
				return nil
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return out, errors.Join(bad...)
}

// TransferPeers returns the peers with stored transfers that have not
// ended, so the program can reconnect to finish them.
func (s *Store) TransferPeers() ([][32]byte, error) {
	var peers [][32]byte
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketXfers).ForEachBucket(func(pk []byte) error {
			return tx.Bucket(bucketXfers).Bucket(pk).ForEach(func(_, v []byte) error {
				var r transfer.Record
				if r.UnmarshalBinary(v) != nil || r.State.Terminal() || len(pk) != 32 {
					return nil
				}
				var p [32]byte
				copy(p[:], pk)
				if len(peers) == 0 || peers[len(peers)-1] != p {
					peers = append(peers, p)
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", err)
	}
	return peers, nil
}
