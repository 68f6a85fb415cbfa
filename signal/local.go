package signal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/p2ptui/p2ptui/session/private"
)

// LocalDirEnv overrides the local mailbox directory.
const LocalDirEnv = "P2PTUI_SIGNAL_DIR"

// localPoll is how often a local listener looks at its inbox directory when
// the OS cannot notify it of changes. A directory read of a near-empty inbox costs
// microseconds, and 20 ms is below what a person notices between "connect"
// and the prompt appearing.
const localPoll = 20 * time.Millisecond

// localRescan is the safety-net poll while the OS's change notification
// wakes the listener: it catches whatever a notification could miss (queue
// overflow, network file systems that never notify) at a cost nobody
// notices.
const localRescan = 500 * time.Millisecond

// maxLocalDoc bounds what a listener reads from one file: the payload limit
// in base64 plus generous room for the other fields.
const maxLocalDoc = MaxPayload*2 + 4096

// DefaultLocalDir is the mailbox shared by every profile of this OS user;
// see localDirFor.
func DefaultLocalDir() string {
	return localDirFor(runtime.GOOS, os.Getenv, os.TempDir(), os.Getuid())
}

// localDirFor chooses the default mailbox from the OS, the environment,
// the temporary directory and the user ID, and nothing else, so every OS's
// choice is tested on any of them: $P2PTUI_SIGNAL_DIR when set; on Windows
// %LocalAppData%\p2ptui\signal (inside the user's profile, which other
// users cannot enter), else p2ptui-signal in the per-user %TEMP%; elsewhere
// $XDG_RUNTIME_DIR/p2ptui-signal, else a per-user directory in the
// temporary directory ($TMPDIR, already per user on macOS).
func localDirFor(goos string, getenv func(string) string, tempDir string, uid int) string {
	if d := getenv(LocalDirEnv); d != "" {
		return d
	}
	if goos == "windows" {
		if d := getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "p2ptui", "signal")
		}
		return filepath.Join(tempDir, "p2ptui-signal")
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "p2ptui-signal")
	}
	return filepath.Join(tempDir, fmt.Sprintf("p2ptui-signal-%d", uid))
}

// localDoc is the on-disk form of a signal.
type localDoc struct {
	Version   int       `json:"v"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Kind      Kind      `json:"kind"`
	SessionID string    `json:"sessionId"`
	Payload   []byte    `json:"payload"`
	CreatedAt time.Time `json:"createdAt"`
	ExpiresAt time.Time `json:"expiresAt"`
}

type localPresence struct {
	Version     int       `json:"v"`
	ID          string    `json:"id"`
	DisplayName string    `json:"name"`
	PublicKey   []byte    `json:"publicKey"`
	LastSeen    time.Time `json:"lastSeen"`
	Instance    string    `json:"instance,omitempty"`
	Offline     bool      `json:"offline,omitempty"`
}

// LocalSignaller exchanges signals through a mailbox directory on this
// machine: inbox/<id>/<signal>.json and peers/<id>.json.
type LocalSignaller struct {
	dir    string
	me     string
	log    *slog.Logger
	now    func() time.Time
	listen bool
	// watch starts the inbox watcher; tests replace it to take the
	// fallback paths.
	watch func(dir string) (*fsnotify.Watcher, error)
	*lifetime
}

// OpenLocal opens the mailbox at dir for me, creating it for this user
// alone if missing and refusing one other users could write to.
func OpenLocal(dir, me string, logger *slog.Logger) (*LocalSignaller, error) {
	if err := ValidID(me); err != nil {
		return nil, fmt.Errorf("open local signalling: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	for _, d := range []string{dir, filepath.Join(dir, "inbox"), filepath.Join(dir, "peers"), filepath.Join(dir, "tmp"), filepath.Join(dir, "inbox", me)} {
		if err := ensurePrivateDir(d); err != nil {
			return nil, fmt.Errorf("open local signalling: %w", err)
		}
	}
	return &LocalSignaller{dir: dir, me: me, log: logger, now: time.Now, watch: watchInbox, lifetime: newLifetime()}, nil
}

// ensurePrivateDir creates d for this user alone, or checks that an
// existing one belongs to this user and that no one else can write to it:
// others could plant offers or remove ours. (Unix: owner and mode bits;
// Windows: owner and access control list; see session/private.)
func ensurePrivateDir(d string) error {
	if err := private.MkdirAll(d); err != nil {
		return err
	}
	err := private.CheckDir(d)
	if errors.Is(err, private.ErrNotOwner) {
		return fmt.Errorf("%w; choose another directory with --signal-dir or %s", err, LocalDirEnv)
	}
	return err
}

// Name implements Signaller.
func (l *LocalSignaller) Name() string { return "local " + l.dir }

// writeAtomic writes b to dst so a reader sees the whole file or none.
func (l *LocalSignaller) writeAtomic(dst string, b []byte) error {
	f, err := os.CreateTemp(filepath.Join(l.dir, "tmp"), "w-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(b)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := replaceFile(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// PublishPresence implements Signaller.
func (l *LocalSignaller) PublishPresence(ctx context.Context, p Presence) error {
	if err := l.usable(); err != nil {
		return err
	}
	if err := validPresence(p); err != nil {
		return err
	}
	b, err := json.Marshal(localPresence{Version: ProtocolVersion, ID: p.ID, DisplayName: p.DisplayName, PublicKey: p.PublicKey, LastSeen: l.now().UTC(),
		Instance: p.Instance, Offline: p.Offline})
	if err != nil {
		return err
	}
	if err := l.writeAtomic(filepath.Join(l.dir, "peers", p.ID+".json"), b); err != nil {
		return fmt.Errorf("publish presence: %w", err)
	}
	return nil
}

// LookupPresence implements Signaller.
func (l *LocalSignaller) LookupPresence(ctx context.Context, id string) (Presence, error) {
	if err := l.usable(); err != nil {
		return Presence{}, err
	}
	if err := ValidID(id); err != nil {
		return Presence{}, err
	}
	b, err := readBounded(filepath.Join(l.dir, "peers", id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return Presence{}, fmt.Errorf("presence of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Presence{}, fmt.Errorf("presence of %s: %w", id, err)
	}
	var lp localPresence
	if err := json.Unmarshal(b, &lp); err != nil || lp.ID != id || validInstance(lp.Instance) != nil {
		return Presence{}, fmt.Errorf("presence of %s: %w: malformed presence file", id, ErrInvalid)
	}
	return Presence{ID: lp.ID, DisplayName: lp.DisplayName, PublicKey: lp.PublicKey, Version: lp.Version, LastSeen: lp.LastSeen,
		Instance: lp.Instance, Offline: lp.Offline}, nil
}

// WatchPresence implements Signaller by reading the presence file often:
// it is small, and read only while someone waits for that peer.
func (l *LocalSignaller) WatchPresence(ctx context.Context, id string) (<-chan PresenceUpdate, error) {
	return l.startWatch(ctx, id, func(ctx context.Context, out chan<- PresenceUpdate) {
		pollPresence(ctx, out, localWatchPoll, nil, func(ctx context.Context) (Presence, error) { return l.LookupPresence(ctx, id) })
	})
}

// Send implements Signaller.
func (l *LocalSignaller) Send(ctx context.Context, s Signal) (string, error) {
	if err := l.usable(); err != nil {
		return "", err
	}
	if s.From == "" {
		s.From = l.me
	}
	s, err := prepare(s, l.now())
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(localDoc{Version: ProtocolVersion, From: s.From, To: s.To, Kind: s.Kind, SessionID: s.SessionID,
		Payload: s.Payload, CreatedAt: s.CreatedAt.UTC(), ExpiresAt: s.ExpiresAt.UTC()})
	if err != nil {
		return "", err
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	// The name sorts by creation time, so a directory listing is already in order.
	id := fmt.Sprintf("%019d-%s", s.CreatedAt.UnixNano(), hex.EncodeToString(rnd[:]))
	box := filepath.Join(l.dir, "inbox", s.To)
	if err := ensurePrivateDir(box); err != nil {
		return "", fmt.Errorf("send %s: %w", s.Kind, err)
	}
	if err := l.writeAtomic(filepath.Join(box, id+".json"), b); err != nil {
		return "", fmt.Errorf("send %s: %w", s.Kind, err)
	}
	return id, nil
}

// Listen implements Signaller.
func (l *LocalSignaller) Listen(ctx context.Context) (<-chan Event, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	l.lifetime.mu.Lock()
	if l.listen {
		l.lifetime.mu.Unlock()
		return nil, ErrAlreadyListening
	}
	l.listen = true
	l.lifetime.mu.Unlock()
	st := newStream()
	runCtx := l.start(ctx)
	l.goWait(func() { st.run(runCtx) })
	l.goWait(func() { l.poll(runCtx, st) })
	return st.out, nil
}

// poll watches the inbox directory. Seen names are remembered until their
// file disappears so a signal is delivered once however long it is unacked.
// The OS's change notification wakes it at once; a periodic rescan catches
// anything a notification could miss, and when watching is impossible or
// breaks the rescan becomes the short poll.
func (l *LocalSignaller) poll(ctx context.Context, st *stream) {
	box := filepath.Join(l.dir, "inbox", l.me)
	seen := map[string]bool{}
	period := localPoll
	var events <-chan fsnotify.Event
	var errs <-chan error
	if w, err := l.watch(box); err == nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
		period = localRescan
	} else {
		l.log.Info("polling the local inbox", "every", localPoll, "why", err)
	}
	// Watching (or polling) from here on, and the scan below reads what
	// came before: a signal sent from now on arrives.
	st.push(ListeningEvent{})
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	// fallBack turns the rescan into the short poll once the watcher has
	// stopped delivering.
	fallBack := func(why any) {
		events, errs = nil, nil
		ticker.Reset(localPoll)
		l.log.Warn("watching the local inbox stopped; polling it", "every", localPoll, "why", why)
	}
	healthy := true
	scan := true
	for {
		if scan {
			healthy = l.scan(box, seen, healthy, st)
		}
		scan = true
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case ev, ok := <-events:
			if !ok {
				fallBack("the watcher closed")
				break
			}
			scan = arrival(ev)
		case err, ok := <-errs:
			if !ok {
				fallBack("the watcher closed")
				break
			}
			// An overflow means lost events: the rescan below catches up.
			if !errors.Is(err, fsnotify.ErrEventOverflow) {
				l.log.Warn("watching the local inbox", "err", err)
			}
		}
	}
}

// scan reads the inbox once and pushes every signal not seen before, oldest
// first. It reports whether the inbox could be read, pushing a HealthEvent
// when that changes from healthy.
func (l *LocalSignaller) scan(box string, seen map[string]bool, healthy bool, st *stream) bool {
	entries, err := os.ReadDir(box)
	if err != nil {
		if healthy {
			st.push(HealthEvent{Backend: l.Name(), Err: fmt.Errorf("%w: read inbox: %v", ErrUnavailable, err)})
		}
		return false
	}
	if !healthy {
		st.push(HealthEvent{Backend: l.Name()})
	}
	present := make(map[string]bool, len(entries))
	var batch []Signal
	for _, e := range entries {
		name := e.Name()
		present[name] = true
		if seen[name] {
			continue
		}
		seen[name] = true
		if s, ok := l.load(box, name, st); ok {
			batch = append(batch, s)
		}
	}
	for name := range seen {
		if !present[name] {
			delete(seen, name)
		}
	}
	sortByCreated(batch)
	for _, s := range batch {
		st.push(SignalEvent{Signal: s})
	}
	return true
}

// load reads and judges one inbox file; anything not deliverable is removed.
func (l *LocalSignaller) load(box, name string, st *stream) (Signal, bool) {
	path := filepath.Join(box, name)
	id, ok := strings.CutSuffix(name, ".json")
	if !ok {
		l.rejectFile(path, name, "not a signal file", st)
		return Signal{}, false
	}
	b, err := readBounded(path)
	if errors.Is(err, os.ErrNotExist) {
		return Signal{}, false
	}
	if err != nil {
		l.rejectFile(path, name, err.Error(), st)
		return Signal{}, false
	}
	var d localDoc
	if err := json.Unmarshal(b, &d); err != nil {
		l.rejectFile(path, name, "malformed: "+err.Error(), st)
		return Signal{}, false
	}
	s := Signal{ID: id, From: d.From, To: d.To, Kind: d.Kind, SessionID: d.SessionID, Payload: d.Payload, CreatedAt: d.CreatedAt, ExpiresAt: d.ExpiresAt}
	switch v, why := judge(s, d.Version, l.me, l.now()); v {
	case reject:
		l.rejectFile(path, name, why, st)
		return Signal{}, false
	case dropExpired:
		l.log.Info("dropping expired signal", "id", id, "from", s.From, "kind", s.Kind)
		os.Remove(path)
		return Signal{}, false
	}
	return s, true
}

func (l *LocalSignaller) rejectFile(path, name, reason string, st *stream) {
	l.log.Warn("rejected inbox document", "backend", "local", "doc", name, "reason", reason)
	os.Remove(path)
	st.push(RejectedEvent{DocID: name, Reason: reason})
}

// readBounded reads a file but refuses one larger than any valid document.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxLocalDoc+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxLocalDoc {
		return nil, fmt.Errorf("oversized document (more than %d bytes)", maxLocalDoc)
	}
	return b, nil
}

// Ack implements Signaller.
func (l *LocalSignaller) Ack(ctx context.Context, signalID string) error {
	if err := l.usable(); err != nil {
		return err
	}
	if signalID == "" || strings.ContainsAny(signalID, `/\`) || strings.HasPrefix(signalID, ".") {
		return fmt.Errorf("ack: %w: bad signal ID", ErrInvalid)
	}
	err := os.Remove(filepath.Join(l.dir, "inbox", l.me, signalID+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("ack %s: %w", signalID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("ack %s: %w", signalID, err)
	}
	return nil
}

// Close implements Signaller.
func (l *LocalSignaller) Close() error { return l.close() }
