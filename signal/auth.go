package signal

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

// This file is the Firestore backend as a Firebase-authenticated client
// (FirestoreOptions.Auth): its requests carry the profile's ID token, the
// project's security rules (signal/deploy/firestore.rules) judge each one,
// and the first use claims the profile's ID for its account.

// Errors of a signed-in Firestore backend, for callers to branch on. Each
// comes wrapped in an error whose message says what happened in plain
// words, starting with the sentinel's.
var (
	// ErrSignedOut: the profile's sign-in no longer works (revoked,
	// disabled, deleted, or its saved token is damaged). Open chats are not
	// affected; new ones cannot be signalled until the admin acts.
	ErrSignedOut = errors.New("signed out of signalling")
	// ErrSignIn: signing in failed for a reason the group's admin or the
	// join code must fix (API key refused, anonymous sign-in off, ...).
	ErrSignIn = errors.New("cannot sign in to signalling")
	// ErrRefused: the project's security rules refused a request.
	ErrRefused = errors.New("refused by the signalling project's security rules")
	// ErrIDTaken: another account claimed this profile's ID first.
	ErrIDTaken = errors.New("this ID is claimed by another sign-in")
)

// authMaxTTL caps a signal's lifetime for a signed-in client: the rules
// refuse an expiresAt more than ten minutes after the request; a minute
// less leaves room for the estimate of the server's clock.
const authMaxTTL = 9 * time.Minute

// claimRetry is how long a claim refused for good is reported without
// trying again.
const claimRetry = firebaseauth.RetrySignedOut

// fClaimUID is the claim document's one field.
const fClaimUID = "uid"

// dialSignedIn opens a Firestore client whose every request carries auth's
// ID token. The client library's own emulator support cannot be used: it
// sends the emulator's "owner" credential, which bypasses the rules.
func dialSignedIn(ctx context.Context, project, emulatorHost string, auth *firebaseauth.Auth) (*firestore.Client, error) {
	if os.Getenv("FIRESTORE_EMULATOR_HOST") != "" {
		return nil, errors.New("FIRESTORE_EMULATOR_HOST is set: with it the Firestore client library talks to the emulator as its owner, past the security rules; pass the emulator's address in FirestoreOptions.Emulator and unset the variable")
	}
	if auth.Emulated() && emulatorHost == "" {
		return nil, errors.New("the Auth emulator's tokens are unsigned and only a Firestore emulator accepts them: set FIRESTORE_EMULATOR_HOST too")
	}
	target := "dns:///firestore.googleapis.com:443"
	transport := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	secure := true
	if emulatorHost != "" {
		target, transport, secure = "passthrough:///"+emulatorHost, insecure.NewCredentials(), false
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(transport), grpc.WithPerRPCCredentials(auth.Credentials(secure)))
	if err != nil {
		return nil, fmt.Errorf("open firestore project %s: %w", project, err)
	}
	// The client closes conn when it is closed.
	client, err := firestore.NewClient(ctx, project, option.WithGRPCConn(conn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("open firestore project %s: %w", project, err)
	}
	return client, nil
}

// ready makes sure, for a signed-in client, that it is signed in and that
// its account holds the claim on my ID; every operation that the rules
// check against the claim calls it first. A claim is made once per
// identity and project and remembered in the profile.
func (f *FirestoreSignaller) ready(ctx context.Context) error {
	if f.auth == nil || f.claimed.Load() {
		return nil
	}
	// One claim at a time, but a caller whose context ends stops waiting
	// (the holder may be stuck on the network with a longer deadline).
	select {
	case f.claimLock <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-f.claimLock }()
	if f.claimed.Load() {
		return nil
	}
	if f.claimErr != nil && time.Since(f.claimFailedAt) < claimRetry {
		return f.claimErr
	}
	if _, err := f.auth.Token(ctx); err != nil {
		return f.explain("sign in", err)
	}
	if !f.auth.Claimed(f.me) {
		err := f.claim(ctx)
		if err != nil {
			if errors.Is(err, ErrIDTaken) || errors.Is(err, ErrRefused) {
				f.claimErr, f.claimFailedAt = err, time.Now()
			}
			return err
		}
		if err := f.auth.MarkClaimed(f.me); err != nil {
			// The claim stands; the next start finds it is ours again.
			f.log.Warn("could not note the ID claim in the profile", "err", err)
		}
	}
	f.claimErr = nil
	f.claimed.Store(true)
	return nil
}

// claim creates claims/{me} naming my account. If it exists the rules
// refuse the create (it would be an update): reading it tells whether it is
// mine (a claim whose note in the profile was lost), and if it cannot be
// read, a lookup that the rules allow every signed-in client tells "taken"
// from "these are not p2ptui's rules".
func (f *FirestoreSignaller) claim(ctx context.Context) error {
	uid := f.auth.UID()
	ref := f.client.Collection("claims").Doc(f.me)
	err := createRetrying(ctx, func(ctx context.Context) error {
		f.writes.Add(1)
		_, err := ref.Create(ctx, map[string]any{fClaimUID: uid})
		return err
	})
	if err == nil {
		f.claims.Add(1)
		f.log.Info("claimed my ID in the signalling project", "project", f.project, "uid", uid)
		return nil
	}
	if c := status.Code(err); c != codes.AlreadyExists && c != codes.PermissionDenied {
		return f.explain("claim this profile's ID", err)
	}
	f.reads.Add(1)
	snap, gerr := ref.Get(ctx)
	if gerr == nil {
		if owner, _ := snap.Data()[fClaimUID].(string); owner == uid {
			return nil
		}
	}
	if gerr != nil && status.Code(gerr) != codes.PermissionDenied {
		return f.explain("claim this profile's ID", gerr)
	}
	f.reads.Add(1)
	_, perr := f.peer(f.me).Get(ctx)
	if status.Code(perr) == codes.PermissionDenied {
		return refusedError{what: "claim this profile's ID"}
	}
	return fmt.Errorf("%w in project %s: if it was yours on another device or in a lost profile, the group's admin can free it by deleting claims/%s", ErrIDTaken, f.project, f.me)
}

// refusedError is a request the security rules refused, in words.
type refusedError struct{ what string }

func (e refusedError) Error() string {
	return ErrRefused.Error() + ": they would not let this profile " + e.what + " (are p2ptui's rules deployed in the project, and is this profile's ID its own there?)"
}

func (e refusedError) Is(target error) bool { return target == ErrRefused }

// explain turns a failure of a signed-in client into plain words: a
// sign-in failure (which reaches here as a gRPC status that the Auth also
// remembers), a refusal by the rules, or else an outage.
func (f *FirestoreSignaller) explain(what string, err error) error {
	if err == nil || f.auth == nil {
		return wrapUnavailable(err)
	}
	for _, known := range []error{ErrSignedOut, ErrSignIn, ErrRefused, ErrIDTaken, ErrClosed, ErrInvalid} {
		if errors.Is(err, known) {
			return err
		}
	}
	var fail error
	if isSignInFailure(err) {
		fail = err
	} else if c := status.Code(err); c == codes.Unauthenticated || c == codes.Unavailable {
		fail = f.auth.Failure()
	}
	if fail != nil {
		switch {
		case errors.Is(fail, firebaseauth.ErrUnreachable):
			return fmt.Errorf("%w: %w", ErrUnavailable, fail)
		case errors.Is(fail, firebaseauth.ErrSignedOut), errors.Is(fail, firebaseauth.ErrTokenFile):
			return fmt.Errorf("%w: %w", ErrSignedOut, fail)
		}
		return fmt.Errorf("%w: %w", ErrSignIn, fail)
	}
	switch status.Code(err) {
	case codes.PermissionDenied:
		return refusedError{what: what}
	case codes.Unauthenticated:
		return fmt.Errorf("%w: project %s did not accept this profile's sign-in", ErrSignIn, f.project)
	}
	return wrapUnavailable(err)
}

func isSignInFailure(err error) bool {
	for _, kind := range []error{firebaseauth.ErrSignedOut, firebaseauth.ErrAPIKey, firebaseauth.ErrAnonymousDisabled,
		firebaseauth.ErrNotConfigured, firebaseauth.ErrWrongProject, firebaseauth.ErrUnreachable, firebaseauth.ErrRefused, firebaseauth.ErrTokenFile} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// Check signs in and claims my ID now, so that a join code can be tried
// before it is stored; for an IAM client it does nothing.
func (f *FirestoreSignaller) Check(ctx context.Context) error {
	if err := f.usable(); err != nil {
		return err
	}
	return f.ready(ctx)
}
