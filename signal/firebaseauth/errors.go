package firebaseauth

import "errors"

// Kinds of sign-in failure, for callers to branch on with errors.Is. The
// error that carries one says what happened in plain words.
var (
	// ErrSignedOut: the sign-in saved in the profile no longer works (the
	// account was disabled, deleted or revoked by the group's admin, or the
	// saved token is damaged). Retrying does not help until the admin acts.
	ErrSignedOut = errors.New("signed out")
	// ErrAPIKey: the project refused the Web API key (mistyped, deleted, or
	// restricted so that it may not call Firebase Authentication).
	ErrAPIKey = errors.New("web API key refused")
	// ErrAnonymousDisabled: the project does not allow anonymous sign-in.
	ErrAnonymousDisabled = errors.New("anonymous sign-in disabled")
	// ErrNotConfigured: Firebase Authentication is not set up in the project.
	ErrNotConfigured = errors.New("firebase authentication not set up")
	// ErrWrongProject: the API key belongs to another project than the one
	// named with it, so the join code is wrong.
	ErrWrongProject = errors.New("API key of another project")
	// ErrUnreachable: Firebase Authentication could not be reached or was
	// busy; a later attempt may work.
	ErrUnreachable = errors.New("firebase authentication unreachable")
	// ErrRefused: any other refusal by Firebase Authentication.
	ErrRefused = errors.New("sign-in refused")
	// ErrTokenFile: the profile's token file is damaged or readable by
	// other users.
	ErrTokenFile = errors.New("token file unusable")
)

// authError is a failure in plain words that unwraps to its kind.
type authError struct {
	kind  error
	words string
}

func (e *authError) Error() string { return e.words }
func (e *authError) Unwrap() error { return e.kind }

func failure(kind error, words string) error { return &authError{kind: kind, words: words} }

// permanent reports whether err will not go away by itself: retrying it at
// once only costs calls.
func permanent(err error) bool {
	return err != nil && !errors.Is(err, ErrUnreachable)
}
