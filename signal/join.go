package signal

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/p2ptui/p2ptui/signal/firebaseauth"
)

// A join code is the one string a group's admin shares so that others can
// signal through the group's Firebase project:
//
//	p2ptui1.PROJECT.APIKEY.CHECK
//
// "p2ptui1" names the format (version 1); PROJECT is the project ID and
// APIKEY its Web API key, both public by Firebase's design (every web app
// of a project ships them); CHECK is six letters of a hash of the rest, so
// a mistyped or cut code is caught before anything is stored. '.' occurs
// in neither a project ID nor an API key.
const joinVersion = 1

// joinCheckLen is the number of check letters: 30 bits, so a random typo
// slips through about once in a billion.
const joinCheckLen = 6

// joinDomain separates the check from every other hash in p2ptui.
const joinDomain = "p2ptui join code v1"

// Errors of ParseJoinCode, for callers to branch on; each message is the
// words for the user.
var (
	ErrJoinMalformed = errors.New("not a p2ptui join code (it looks like p2ptui1.PROJECT.KEY.CHECK)")
	ErrJoinTypo      = errors.New("this join code has a typo: its last letters do not match the rest (copy it again)")
	ErrJoinVersion   = errors.New("this join code is for a newer p2ptui: update p2ptui to use it")
)

var (
	// projectIDPattern is Google Cloud's rule for project IDs.
	projectIDPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	// apiKeyPattern accepts Google API keys ("AIza" and 35 more) and the
	// arbitrary keys an emulator takes.
	apiKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{8,128}$`)
	// versionPattern reads the version of a code of any version.
	versionPattern = regexp.MustCompile(`^p2ptui([0-9]{1,4})\.`)
)

var joinCheckEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// JoinCode names a group's Firebase project and its Web API key.
type JoinCode struct {
	ProjectID string
	APIKey    string
}

// NewJoinCode checks a project ID and API key (as an admin types them for
// --invite) and makes a code of them.
func NewJoinCode(projectID, apiKey string) (JoinCode, error) {
	c := JoinCode{ProjectID: strings.TrimSpace(projectID), APIKey: strings.TrimSpace(apiKey)}
	if !projectIDPattern.MatchString(c.ProjectID) {
		return JoinCode{}, fmt.Errorf("%q is not a Firebase project ID (6 to 30 characters: a-z, 0-9 and -, starting with a letter)", truncate(c.ProjectID, 40))
	}
	if !apiKeyPattern.MatchString(c.APIKey) {
		return JoinCode{}, errors.New("that is not a Web API key (it looks like AIza followed by 35 letters, digits, - and _; Firebase console, Project settings, General)")
	}
	return c, nil
}

// String is the code to share.
func (c JoinCode) String() string {
	body := fmt.Sprintf("p2ptui%d.%s.%s", joinVersion, c.ProjectID, c.APIKey)
	return body + "." + joinCheck(body)
}

func joinCheck(body string) string {
	sum := sha256.Sum256([]byte(joinDomain + "\x00" + body))
	return joinCheckEncoding.EncodeToString(sum[:])[:joinCheckLen]
}

// ParseJoinCode reads a code as pasted: surrounding space and quotes are
// ignored; anything else wrong is an error that says what.
func ParseJoinCode(s string) (JoinCode, error) {
	s = strings.Trim(strings.TrimSpace(s), "\"'`<>")
	if m := versionPattern.FindStringSubmatch(s); m != nil {
		if v, _ := strconv.Atoi(m[1]); v > joinVersion {
			return JoinCode{}, ErrJoinVersion
		}
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 || parts[0] != fmt.Sprintf("p2ptui%d", joinVersion) {
		return JoinCode{}, ErrJoinMalformed
	}
	body := strings.Join(parts[:3], ".")
	if len(parts[3]) != joinCheckLen || parts[3] != joinCheck(body) {
		return JoinCode{}, ErrJoinTypo
	}
	c, err := NewJoinCode(parts[1], parts[2])
	if err != nil {
		// A code with a valid check but an impossible field was made
		// by hand or by a broken program.
		return JoinCode{}, fmt.Errorf("%w: %v", ErrJoinMalformed, err)
	}
	return c, nil
}

// JoinFile is the file in the profile directory that remembers the joined
// group, so later starts need no flags.
const JoinFile = "signalling.json"

// maxJoinFile bounds what is read of JoinFile.
const maxJoinFile = 4 << 10

type joinFile struct {
	Version int    `json:"v"`
	Join    string `json:"join"`
}

// LoadJoin returns the group this profile joined; ok is false when it
// joined none.
func LoadJoin(dir string) (c JoinCode, ok bool, err error) {
	path := filepath.Join(dir, JoinFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return JoinCode{}, false, nil
	}
	if err != nil {
		return JoinCode{}, false, fmt.Errorf("read the joined group: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxJoinFile))
	if err != nil {
		return JoinCode{}, false, fmt.Errorf("read the joined group: %w", err)
	}
	var jf joinFile
	if err := json.Unmarshal(b, &jf); err != nil || jf.Version != 1 {
		return JoinCode{}, false, fmt.Errorf("%s is damaged: join the group again with --join CODE", path)
	}
	if c, err = ParseJoinCode(jf.Join); err != nil {
		return JoinCode{}, false, fmt.Errorf("%s: %w", path, err)
	}
	return c, true, nil
}

// SaveJoin remembers c as the profile's group, replacing any other whole.
func SaveJoin(dir string, c JoinCode) error {
	b, _ := json.Marshal(joinFile{Version: 1, Join: c.String()})
	tmp, err := os.CreateTemp(dir, ".signalling-*.tmp")
	if err != nil {
		return fmt.Errorf("save the joined group: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("save the joined group: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("save the joined group: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("save the joined group: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save the joined group: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, JoinFile)); err != nil {
		return fmt.Errorf("save the joined group: %w", err)
	}
	return nil
}

// JoinOptions says where a joined group's services are; zero values mean
// Google's.
type JoinOptions struct {
	// AuthEmulator and FirestoreEmulator are emulator addresses
	// (FIREBASE_AUTH_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST).
	AuthEmulator, FirestoreEmulator string
	Logger                          *slog.Logger
	// HTTP is the client for the sign-in calls; nil means a default one.
	HTTP *http.Client
	// Firestore tunes the signaller OpenJoined returns.
	Firestore FirestoreOptions
}

// OpenJoined opens the Firestore signaller of the profile in dir (identity
// me) for the group of code, signed in as the profile's account for it.
// Like OpenFirestore it does not contact the services.
func OpenJoined(ctx context.Context, dir, me string, code JoinCode, o JoinOptions) (*FirestoreSignaller, error) {
	auth, err := firebaseauth.New(firebaseauth.Config{
		ProjectID: code.ProjectID, APIKey: code.APIKey, Emulator: o.AuthEmulator, Dir: dir, HTTP: o.HTTP,
	})
	if err != nil {
		return nil, err
	}
	fo := o.Firestore
	fo.Auth, fo.Emulator = auth, o.FirestoreEmulator
	return OpenFirestore(ctx, code.ProjectID, me, o.Logger, fo)
}

// Join tries code for the profile in dir: it signs in to the group's
// project and claims the profile's ID there, and only when both worked
// stores the code as the profile's group. A wrong code, a project that is
// not set up, or an ID someone else claimed is an error in words, and the
// profile's group stays what it was.
func Join(ctx context.Context, dir, me string, code JoinCode, o JoinOptions) error {
	sig, err := OpenJoined(ctx, dir, me, code, o)
	if err != nil {
		return err
	}
	defer sig.Close()
	if err := sig.Check(ctx); err != nil {
		return fmt.Errorf("join project %s: %w", code.ProjectID, err)
	}
	return SaveJoin(dir, code)
}
