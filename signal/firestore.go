package signal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

// Firestore document fields. Short, stable names: they are the schema the
// security rules in signal/deploy/firestore.rules check.
const (
	fVersion   = "v"
	fFrom      = "from"
	fTo        = "to"
	fKind      = "kind"
	fSession   = "sessionId"
	fPayload   = "payload"
	fCreatedAt = "createdAt"
	fExpiresAt = "expiresAt"
	fName      = "displayName"
	fPublicKey = "publicKey"
	fLastSeen  = "lastSeen"
	fInstance  = "instance"
	fOffline   = "offline"
	fUID       = "uid"
)

// FirestoreOptions tunes the Firestore backend; zero values are defaults.
type FirestoreOptions struct {
	// Heartbeat is how often presence is refreshed; the refresh doubles as
	// the health probe, because the client's watch stream retries silently.
	Heartbeat time.Duration
	// RetryMin and RetryMax bound the listener's reconnect backoff.
	RetryMin, RetryMax time.Duration
	// FirstSnapshot bounds the wait for a new listener's first snapshot
	// before it is rebuilt.
	FirstSnapshot time.Duration
	// Auth, when set, makes this a Firebase-authenticated client: every
	// request carries Auth's ID token and the project's security rules
	// judge it (see auth.go). Unset, the client uses IAM credentials
	// (Application Default Credentials), which the rules do not bind.
	Auth *firebaseauth.Auth
	// Emulator is the Firestore emulator's host:port for an Auth client,
	// which must not find FIRESTORE_EMULATOR_HOST set (see dialSignedIn).
	Emulator string
}

// DefaultHeartbeat keeps "last seen" fresh enough for an online dot and
// notices an outage within half a minute, for one write per interval.
const DefaultHeartbeat = 20 * time.Second

// OpCounts is what a Firestore signaller has spent, in billed operations:
// every document a listener receives is a read. Document reads that the
// security rules make to judge a request are billed too but not counted
// here (the README has them).
type OpCounts struct {
	Reads, Writes, Deletes int64
	// Claims is how many of the Writes created an ID claim.
	Claims int64
}

// FirestoreSignaller is the Signaller for Cloud Firestore (native mode):
// presence in peers/{id}, signals in peers/{id}/inbox/{signalId}.
type FirestoreSignaller struct {
	client  *firestore.Client
	project string
	me      string
	log     *slog.Logger
	opts    FirestoreOptions
	now     func() time.Time
	auth    *firebaseauth.Auth // nil: IAM client
	*lifetime

	reads, writes, deletes, claims atomic.Int64
	listening                      atomic.Bool
	presence                       atomic.Pointer[Presence]

	// The ID claim of a signed-in client (see ready).
	claimed       atomic.Bool
	claimLock     chan struct{} // holds a token while a claim is made
	claimErr      error         // guarded by claimLock
	claimFailedAt time.Time
}

// OpenFirestore connects to projectID: as a Firebase-authenticated client
// when opts.Auth is set, else with IAM credentials (FIRESTORE_EMULATOR_HOST
// is honoured by the client; otherwise Application Default Credentials are
// used). It does not contact the service.
func OpenFirestore(ctx context.Context, projectID, me string, logger *slog.Logger, opts FirestoreOptions) (*FirestoreSignaller, error) {
	if projectID == "" {
		return nil, errors.New("open firestore: no project ID (use --project or GOOGLE_CLOUD_PROJECT)")
	}
	if err := ValidID(me); err != nil {
		return nil, fmt.Errorf("open firestore: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = 250 * time.Millisecond
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 10 * time.Second
	}
	if opts.FirstSnapshot <= 0 {
		// Real Firestore answers in well under a second; an emulator JVM
		// starting cold on a loaded machine can take several.
		opts.FirstSnapshot = 15 * time.Second
	}
	var client *firestore.Client
	var err error
	if opts.Auth != nil {
		if opts.Auth.ProjectID() != projectID {
			return nil, fmt.Errorf("open firestore project %s: signed in to project %s", projectID, opts.Auth.ProjectID())
		}
		client, err = dialSignedIn(ctx, projectID, opts.Emulator, opts.Auth)
	} else {
		client, err = firestore.NewClient(ctx, projectID)
	}
	if err != nil {
		return nil, fmt.Errorf("open firestore project %s: %w", projectID, err)
	}
	return &FirestoreSignaller{client: client, project: projectID, me: me, log: logger, opts: opts, now: time.Now, auth: opts.Auth, lifetime: newLifetime(), claimLock: make(chan struct{}, 1)}, nil
}

// Name implements Signaller.
func (f *FirestoreSignaller) Name() string { return "firestore " + f.project }

// Ops reports the operations spent so far.
func (f *FirestoreSignaller) Ops() OpCounts {
	return OpCounts{Reads: f.reads.Load(), Writes: f.writes.Load(), Deletes: f.deletes.Load(), Claims: f.claims.Load()}
}

func (f *FirestoreSignaller) peer(id string) *firestore.DocumentRef {
	return f.client.Collection("peers").Doc(id)
}

// PublishPresence implements Signaller.
func (f *FirestoreSignaller) PublishPresence(ctx context.Context, p Presence) error {
	if err := f.usable(); err != nil {
		return err
	}
	if err := validPresence(p); err != nil {
		return err
	}
	p.Version = ProtocolVersion
	f.presence.Store(&p)
	if err := f.writePresence(ctx, p); err != nil {
		return fmt.Errorf("publish presence: %w", err)
	}
	return nil
}

// writePresence writes p; its error is in words without the operation's
// name, as the heartbeat reports it for the status line.
func (f *FirestoreSignaller) writePresence(ctx context.Context, p Presence) error {
	if err := f.ready(ctx); err != nil {
		return err
	}
	doc := map[string]any{
		fVersion: ProtocolVersion, fName: p.DisplayName, fPublicKey: p.PublicKey, fLastSeen: firestore.ServerTimestamp,
		fInstance: p.Instance, fOffline: p.Offline,
	}
	if f.auth != nil {
		// The rules let later writes through by this field, without
		// reading the claim each heartbeat.
		doc[fUID] = f.auth.UID()
	}
	f.writes.Add(1)
	_, err := f.peer(p.ID).Set(ctx, doc)
	return f.explain("publish its presence", err)
}

// LookupPresence implements Signaller.
func (f *FirestoreSignaller) LookupPresence(ctx context.Context, id string) (Presence, error) {
	if err := f.usable(); err != nil {
		return Presence{}, err
	}
	if err := ValidID(id); err != nil {
		return Presence{}, err
	}
	f.reads.Add(1)
	snap, err := f.peer(id).Get(ctx)
	if status.Code(err) == codes.NotFound {
		return Presence{}, fmt.Errorf("presence of %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Presence{}, fmt.Errorf("presence of %s: %w", id, f.explain("look up a peer", err))
	}
	return presenceFromDoc(id, snap.Data())
}

// presenceFromDoc reads a presence document, refusing one of wrong shape.
func presenceFromDoc(id string, d map[string]any) (Presence, error) {
	p := Presence{ID: id}
	var ok1, ok2 bool
	p.DisplayName, ok1 = d[fName].(string)
	p.PublicKey, ok2 = d[fPublicKey].([]byte)
	v, _ := d[fVersion].(int64)
	p.Version = int(v)
	p.LastSeen, _ = d[fLastSeen].(time.Time)
	ok3, ok4 := true, true
	if v, present := d[fInstance]; present {
		p.Instance, ok3 = v.(string)
	}
	if v, present := d[fOffline]; present {
		p.Offline, ok4 = v.(bool)
	}
	if !ok1 || !ok2 || !ok3 || !ok4 || validInstance(p.Instance) != nil {
		return Presence{}, fmt.Errorf("presence of %s: %w: malformed presence document", id, ErrInvalid)
	}
	return p, nil
}

// WatchPresence implements Signaller with a snapshot listener on the
// peer's presence document, set up again (after a pause that grows while
// it keeps failing) whenever it breaks.
func (f *FirestoreSignaller) WatchPresence(ctx context.Context, id string) (<-chan PresenceUpdate, error) {
	return f.startWatch(ctx, id, func(ctx context.Context, out chan<- PresenceUpdate) { f.watchPresence(ctx, id, out) })
}

func (f *FirestoreSignaller) watchPresence(ctx context.Context, id string, out chan<- PresenceUpdate) {
	pause := watchRetryMin
	for {
		it := f.peer(id).Snapshots(ctx)
		for {
			snap, err := it.Next()
			if err != nil {
				if ctx.Err() == nil {
					f.log.Debug("presence watch broke", "peer", id, "err", err, "again in", pause)
					sendUpdate(ctx, out, PresenceUpdate{Err: fmt.Errorf("presence of %s: %w", id, f.explain("watch a peer", err))})
				}
				break
			}
			f.reads.Add(1)
			pause = watchRetryMin
			var u PresenceUpdate
			if snap.Exists() {
				u.Presence, u.Err = presenceFromDoc(id, snap.Data())
			} else {
				u.Err = fmt.Errorf("presence of %s: %w", id, ErrNotFound)
			}
			if !sendUpdate(ctx, out, u) {
				break
			}
		}
		it.Stop()
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// Send implements Signaller.
func (f *FirestoreSignaller) Send(ctx context.Context, s Signal) (string, error) {
	if err := f.usable(); err != nil {
		return "", err
	}
	if s.From == "" {
		s.From = f.me
	}
	s, err := prepare(s, f.now())
	if err != nil {
		return "", err
	}
	if err := f.ready(ctx); err != nil {
		return "", fmt.Errorf("send %s to %s: %w", s.Kind, s.To, err)
	}
	ref := f.peer(s.To).Collection("inbox").NewDoc()
	doc := map[string]any{
		fVersion: ProtocolVersion, fFrom: s.From, fTo: s.To, fKind: string(s.Kind), fSession: s.SessionID,
		fPayload: s.Payload, fCreatedAt: s.CreatedAt, fExpiresAt: s.ExpiresAt,
	}
	if f.auth != nil {
		// The rules want createdAt to be the server's time of the
		// write, so a sender cannot reorder an inbox, and expiresAt
		// within ten minutes of it: keep the lifetime asked for, on the
		// server's clock.
		doc[fCreatedAt] = firestore.ServerTimestamp
		doc[fExpiresAt] = f.auth.ServerNow().Add(min(s.ExpiresAt.Sub(s.CreatedAt), authMaxTTL))
	}
	err = createRetrying(ctx, func(ctx context.Context) error {
		f.writes.Add(1)
		_, err := ref.Create(ctx, doc)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("send %s to %s: %w", s.Kind, s.To, f.explain("send a signal to "+s.To, err))
	}
	return ref.ID, nil
}

// Ack implements Signaller.
func (f *FirestoreSignaller) Ack(ctx context.Context, signalID string) error {
	if err := f.usable(); err != nil {
		return err
	}
	if signalID == "" || len(signalID) > 128 {
		return fmt.Errorf("ack: %w: bad signal ID", ErrInvalid)
	}
	if err := f.ready(ctx); err != nil {
		return fmt.Errorf("ack %s: %w", signalID, err)
	}
	ref := f.peer(f.me).Collection("inbox").Doc(signalID)
	err := retryTransient(ctx, func(ctx context.Context) error {
		f.deletes.Add(1)
		_, err := ref.Delete(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack %s: %w", signalID, f.explain("delete a handled signal from its inbox", err))
	}
	return nil
}

// Listen implements Signaller: one snapshot listener on my inbox, ordered
// by creation time, rebuilt whenever the backend comes back.
func (f *FirestoreSignaller) Listen(ctx context.Context) (<-chan Event, error) {
	if err := f.usable(); err != nil {
		return nil, err
	}
	if !f.listening.CompareAndSwap(false, true) {
		return nil, ErrAlreadyListening
	}
	st := newStream()
	runCtx := f.start(ctx)
	recovered := make(chan struct{}, 1)
	in := &inboxState{delivered: map[string]time.Time{}}
	f.goWait(func() { st.run(runCtx) })
	f.goWait(func() { f.listenLoop(runCtx, st, in, recovered) })
	f.goWait(func() { f.heartbeat(runCtx, st, in, recovered) })
	return st.out, nil
}

// inboxState remembers which inbox documents were delivered, and when. The
// snapshot iterator and the catch-up queries share it, so a signal reaches
// the app once whichever of them sees it first. Entries outlive the
// documents (a catch-up read may return one that was acked a moment later)
// and are forgotten after deliveredMemory, when any copy would have expired.
type inboxState struct {
	mu        sync.Mutex
	delivered map[string]time.Time
	listening bool // ListeningEvent was pushed
}

// deliveredMemory is longer than any signal may live (the rules cap
// expiresAt at ten minutes after creation).
const deliveredMemory = 15 * time.Minute

// seen reports whether id was delivered; the caller holds mu.
func (in *inboxState) seen(id string) bool {
	_, ok := in.delivered[id]
	return ok
}

// forgetOld drops entries past deliveredMemory; the caller holds mu.
func (in *inboxState) forgetOld(now time.Time) {
	for id, at := range in.delivered {
		if now.Sub(at) > deliveredMemory {
			delete(in.delivered, id)
		}
	}
}

// catchUpDelay is how long after a listener's first snapshot the inbox is
// queried once directly. The emulator has been seen to lose a signal
// written while a listener was being set up (a test waited 30 s in vain);
// the query finds it. It costs one read on an empty inbox.
const catchUpDelay = time.Second

// catchUp reads the inbox directly and delivers what the listener missed.
func (f *FirestoreSignaller) catchUp(ctx context.Context, st *stream, in *inboxState) error {
	if err := f.ready(ctx); err != nil {
		return err
	}
	docs, err := f.peer(f.me).Collection("inbox").OrderBy(fCreatedAt, firestore.Asc).Documents(ctx).GetAll()
	f.reads.Add(int64(max(len(docs), 1))) // an empty result is billed as one read
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	var batch []Signal
	for _, doc := range docs {
		if in.seen(doc.Ref.ID) {
			continue
		}
		if s, ok := f.judgeDoc(ctx, doc, st); ok {
			in.delivered[doc.Ref.ID] = f.now()
			batch = append(batch, s)
		}
	}
	if len(batch) > 0 {
		f.log.Warn("the inbox listener missed signals; a direct read found them", "count", len(batch))
	}
	sortByCreated(batch)
	for _, s := range batch {
		st.push(SignalEvent{Signal: s})
	}
	return nil
}

// heartbeat refreshes presence (or reads it, before any is published) and
// reports health changes. On recovery it nudges the listener to reconnect at
// once rather than after the client's own backoff, which reaches a minute.
func (f *FirestoreSignaller) heartbeat(ctx context.Context, st *stream, in *inboxState, recovered chan<- struct{}) {
	t := time.NewTicker(f.opts.Heartbeat)
	defer t.Stop()
	healthy := true
	var reported string // the words of the outage last reported
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, f.opts.Heartbeat)
		var err error
		if p := f.presence.Load(); p != nil {
			err = f.writePresence(cctx, *p)
		} else {
			f.reads.Add(1)
			_, err = f.peer(f.me).Get(cctx)
			if status.Code(err) == codes.NotFound {
				err = nil
			}
		}
		if err == nil {
			// The listener is trusted but checked: a signal it missed
			// waits at most one heartbeat.
			err = f.catchUp(cctx, st, in)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			err = f.explain("read its inbox", err)
		}
		switch {
		case err != nil && (healthy || err.Error() != reported):
			// Reported again when the reason changes, e.g. from "cannot
			// reach" to "signed out".
			healthy = false
			reported = err.Error()
			f.log.Warn("firestore unavailable", "err", err)
			st.push(HealthEvent{Backend: f.Name(), Err: err})
		case err == nil && !healthy:
			healthy = true
			reported = ""
			f.log.Info("firestore available again")
			st.push(HealthEvent{Backend: f.Name()})
			select {
			case recovered <- struct{}{}:
			default:
			}
		}
	}
}

// listenLoop runs snapshot iterators one after another. Document IDs already
// delivered are remembered (inboxState), so a rebuilt listener's first
// snapshot does not deliver them again.
func (f *FirestoreSignaller) listenLoop(ctx context.Context, st *stream, in *inboxState, recovered <-chan struct{}) {
	backoff := f.opts.RetryMin
	for ctx.Err() == nil {
		itCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			// Rebuild the iterator when the heartbeat sees the backend return.
			defer close(done)
			select {
			case <-recovered:
				stop()
			case <-itCtx.Done():
			}
		}()
		err := f.ready(itCtx)
		switch {
		case err == nil:
			err = f.runIterator(itCtx, st, in)
		case itCtx.Err() != nil:
			err = nil // rebuilt or stopped while signing in
		}
		stop()
		<-done
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.log.Warn("inbox listener stopped; reconnecting", "err", err, "in", backoff)
			st.push(HealthEvent{Backend: f.Name(), Err: f.explain("read its inbox", err)})
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, f.opts.RetryMax)
			continue
		}
		backoff = f.opts.RetryMin
	}
}

// runIterator delivers from one snapshot iterator until it fails (error) or
// is cancelled (nil).
func (f *FirestoreSignaller) runIterator(ctx context.Context, st *stream, in *inboxState) error {
	q := f.peer(f.me).Collection("inbox").OrderBy(fCreatedAt, firestore.Asc)
	// A watch stream that connects but never sends its first snapshot
	// would leave the inbox deaf with no error to retry on; a watchdog
	// cancels it so the loop builds a new one.
	itCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	gotFirst := make(chan struct{})
	var stalled atomic.Bool
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		t := time.NewTimer(f.opts.FirstSnapshot)
		defer t.Stop()
		select {
		case <-gotFirst:
		case <-itCtx.Done():
		case <-t.C:
			stalled.Store(true)
			cancel()
		}
	}()
	var catchUpDone sync.WaitGroup
	defer func() { cancel(); <-watchdogDone; catchUpDone.Wait() }()
	it := q.Snapshots(itCtx)
	defer it.Stop()
	first := true
	for {
		snap, err := it.Next()
		if ctx.Err() != nil {
			return nil
		}
		if stalled.Load() {
			return fmt.Errorf("%w: the inbox listener got no first snapshot within %v", ErrUnavailable, f.opts.FirstSnapshot)
		}
		if err != nil {
			return err
		}
		in.mu.Lock()
		if first && !in.listening {
			in.listening = true
			st.push(ListeningEvent{})
		}
		if first {
			close(gotFirst)
			catchUpDone.Add(1)
			go func() {
				defer catchUpDone.Done()
				select {
				case <-itCtx.Done():
				case <-time.After(catchUpDelay):
					if err := f.catchUp(itCtx, st, in); err != nil && itCtx.Err() == nil {
						f.log.Warn("inbox catch-up read failed", "err", err)
					}
				}
			}()
			first = false
			in.forgetOld(f.now())
		}
		var batch []Signal
		for _, ch := range snap.Changes {
			id := ch.Doc.Ref.ID
			switch ch.Kind {
			case firestore.DocumentRemoved, firestore.DocumentModified:
				continue
			}
			if in.seen(id) {
				continue
			}
			f.reads.Add(1)
			s, ok := f.judgeDoc(ctx, ch.Doc, st)
			if ok {
				in.delivered[id] = f.now()
				batch = append(batch, s)
			}
		}
		sortByCreated(batch)
		for _, s := range batch {
			st.push(SignalEvent{Signal: s})
		}
		in.mu.Unlock()
	}
}

// judgeDoc decodes one inbox document defensively: the database is shared,
// so any field may be missing or of the wrong type.
func (f *FirestoreSignaller) judgeDoc(ctx context.Context, doc *firestore.DocumentSnapshot, st *stream) (Signal, bool) {
	d := doc.Data()
	s := Signal{ID: doc.Ref.ID}
	var version int64
	var kind string
	var why string
	var ok bool
	switch {
	case d == nil:
		why = "empty document"
	default:
		if version, ok = d[fVersion].(int64); !ok {
			why = "missing or non-integer protocol version"
			break
		}
		fields := []struct {
			name string
			dst  *string
		}{{fFrom, &s.From}, {fTo, &s.To}, {fKind, &kind}, {fSession, &s.SessionID}}
		for _, fl := range fields {
			if *fl.dst, ok = d[fl.name].(string); !ok {
				why = fmt.Sprintf("field %q missing or not a string", fl.name)
				break
			}
		}
		if why != "" {
			break
		}
		if s.Payload, ok = d[fPayload].([]byte); !ok && d[fPayload] != nil {
			why = "payload is not bytes"
			break
		}
		if s.CreatedAt, ok = d[fCreatedAt].(time.Time); !ok {
			why = "createdAt missing or not a timestamp"
			break
		}
		if s.ExpiresAt, ok = d[fExpiresAt].(time.Time); !ok {
			why = "expiresAt missing or not a timestamp"
			break
		}
	}
	s.Kind = Kind(kind)
	verdict := reject
	if why == "" {
		verdict, why = judge(s, int(version), f.me, f.now())
	}
	switch verdict {
	case deliver:
		return s, true
	case dropExpired:
		f.log.Info("dropping expired signal", "id", s.ID, "from", s.From, "kind", s.Kind)
	default:
		f.log.Warn("rejected inbox document", "backend", "firestore", "doc", s.ID, "reason", why)
		st.push(RejectedEvent{DocID: s.ID, Reason: why})
	}
	f.deletes.Add(1)
	if _, err := doc.Ref.Delete(ctx); err != nil && ctx.Err() == nil {
		f.log.Warn("could not delete refused document", "doc", s.ID, "err", err)
	}
	return Signal{}, false
}

// Close implements Signaller.
func (f *FirestoreSignaller) Close() error {
	err := f.close()
	if cerr := f.client.Close(); cerr != nil && err == nil && status.Code(cerr) != codes.Canceled {
		err = cerr
	}
	return err
}

// wrapUnavailable marks transport failures so callers can tell "the service
// is down" from "the request was wrong".
func wrapUnavailable(err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return err
}

// writeRetries and writeRetryBackoff bound how hard a write is retried
// when the service fails it in passing (seen from the emulator under load:
// a create reported "call already cancelled" although it was stored).
const (
	writeRetries      = 3
	writeRetryBackoff = 100 * time.Millisecond
)

// transient reports whether err is a failure in passing that the same
// request may not meet again. A Canceled or DeadlineExceeded that comes
// from our own context is not: the caller gave up.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.Canceled, codes.DeadlineExceeded, codes.Aborted, codes.Internal:
		return true
	}
	return false
}

// retryTransient runs an idempotent operation (a delete, a set) until it
// succeeds, fails for good, or writeRetries attempts have failed in passing.
func retryTransient(ctx context.Context, op func(context.Context) error) error {
	var err error
	backoff := writeRetryBackoff
	for attempt := 0; attempt < writeRetries; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return err
			case <-time.After(backoff):
			}
			backoff *= 2
		}
		if err = op(ctx); err == nil || !transient(ctx, err) {
			return err
		}
	}
	return err
}

// createRetrying is retryTransient for a create of a document whose ID the
// client chose: when a retry finds the document already there, the attempt
// that seemed to fail did store it, and that is success, not a duplicate.
func createRetrying(ctx context.Context, create func(context.Context) error) error {
	tried := false
	return retryTransient(ctx, func(ctx context.Context) error {
		err := create(ctx)
		if tried && status.Code(err) == codes.AlreadyExists {
			return nil
		}
		tried = true
		return err
	})
}
