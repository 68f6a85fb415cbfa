package relay

import (
	"errors"
	"fmt"
	"strings"
)

// The environment variables that may hold the TURN password or shared
// secret, so they never appear on a command line (which every user of
// the machine can read in the process list).
const (
	EnvPassword = "P2PTUI_TURN_PASSWORD"
	EnvSecret   = "P2PTUI_TURN_SECRET"
)

// ErrSettings is wrapped by every error of ParseSettings and
// CheckArgs: a usage error.
var ErrSettings = errors.New("TURN settings")

// Settings is a user's TURN configuration: the servers to allocate on and
// the credentials for them. The zero value means no relay.
type Settings struct {
	Servers     []Server
	Credentials Credentials
}

// Enabled reports whether a TURN server is configured.
func (s Settings) Enabled() bool { return len(s.Servers) > 0 }

// Input is what the command line and the environment said about TURN.
type Input struct {
	// URIs are the values of every --turn flag (each may be a
	// comma-separated list).
	URIs []string
	// User is --turn-user.
	User string
	// PasswordFile and SecretFile are --turn-password-file and
	// --turn-secret-file.
	PasswordFile, SecretFile string
	// EnvPassword and EnvSecret are the values of $P2PTUI_TURN_PASSWORD
	// and $P2PTUI_TURN_SECRET.
	EnvPassword, EnvSecret string
}

// ParseSettings checks the TURN flags and environment: malformed URIs,
// unreadable or malformed credential files, a password and a secret at
// once, a server without credentials, or credential flags without a
// server are errors in plain words (wrapping ErrSettings, and ErrBadURI or
// ErrBadCredentials where they apply). A file wins over its environment
// variable. Environment variables alone, without --turn, are ignored: a
// shell may export them for the runs that use a relay.
func ParseSettings(in Input) (Settings, error) {
	var s Settings
	for _, list := range in.URIs {
		servers, err := ParseURIs(list)
		if err != nil {
			return Settings{}, fmt.Errorf("%w: --turn: %w", ErrSettings, err)
		}
		for _, srv := range servers {
			dup := false
			for _, o := range s.Servers {
				dup = dup || (strings.EqualFold(o.Host, srv.Host) && o.Port == srv.Port)
			}
			if !dup {
				s.Servers = append(s.Servers, srv)
			}
		}
	}
	if len(in.URIs) == 0 {
		var given []string
		for _, f := range [][2]string{{"--turn-user", in.User}, {"--turn-password-file", in.PasswordFile}, {"--turn-secret-file", in.SecretFile}} {
			if f[1] != "" {
				given = append(given, f[0])
			}
		}
		if len(given) > 0 {
			return Settings{}, fmt.Errorf("%w: %s given without --turn turn:HOST[:PORT]", ErrSettings, strings.Join(given, " and "))
		}
		return Settings{}, nil
	}
	password, secret := in.EnvPassword, in.EnvSecret
	var err error
	if in.PasswordFile != "" {
		if password, err = ReadSecretFile(in.PasswordFile); err != nil {
			return Settings{}, fmt.Errorf("%w: --turn-password-file: %w", ErrSettings, err)
		}
	}
	if in.SecretFile != "" {
		if secret, err = ReadSecretFile(in.SecretFile); err != nil {
			return Settings{}, fmt.Errorf("%w: --turn-secret-file: %w", ErrSettings, err)
		}
	}
	if password == "" && secret == "" {
		return Settings{}, fmt.Errorf("%w: --turn needs credentials: --turn-user with $%s or --turn-password-file, or a shared secret in $%s or --turn-secret-file",
			ErrSettings, EnvPassword, EnvSecret)
	}
	if password != "" && secret != "" {
		// Only one of them came from a flag or both from the environment:
		// say which to drop.
		return Settings{}, fmt.Errorf("%w: both a TURN password and a shared secret are set (unset $%s or $%s, or drop one of the files)",
			ErrSettings, EnvPassword, EnvSecret)
	}
	s.Credentials, err = NewCredentials(in.User, password, secret, 0)
	if err != nil {
		return Settings{}, fmt.Errorf("%w: %w", ErrSettings, err)
	}
	return s, nil
}

// CheckArgs refuses a password or secret on the command line with a
// reason, before flag parsing would call it merely unknown.
func CheckArgs(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name := strings.TrimLeft(a, "-")
		name, _, _ = strings.Cut(name, "=")
		if len(a) > 1 && a[0] == '-' && (name == "turn-password" || name == "turn-secret") {
			return fmt.Errorf("%w: --%s cannot be given on the command line, where every user of this machine can read it; use $%s or --turn-password-file (a shared secret: $%s or --turn-secret-file)",
				ErrSettings, name, EnvPassword, EnvSecret)
		}
	}
	return nil
}
