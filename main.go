// Command p2ptui is a full-screen terminal chat in which two people talk
// directly, peer to peer, over UDP. See README.md.
//
// main only parses flags, opens the resources (profile store, identity key,
// UDP socket, signalling backend, log file), hands them to the ui package's
// root model and closes them when the program ends.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/relay"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/store"
	"github.com/p2ptui/p2ptui/signal"
	"github.com/p2ptui/p2ptui/ui"
)

// Exit statuses.
const (
	exitOK    = 0
	exitError = 1 // something failed while running
	exitUsage = 2 // bad flags or configuration
)

// stunResolveTimeout bounds resolving the STUN server names at start, so a
// machine without DNS still starts (offering host addresses only).
const stunResolveTimeout = 3 * time.Second

type options struct {
	profile string
	// profileChosen: --profile was given. Only the implicit default
	// profile falls back to a free one when it is in use.
	profileChosen bool
	nameChosen    bool
	dataDir       string
	name          string
	headless      bool
	project       string
	signalDir     string
	stun          string
	listen        string
	logFile       string
	// turn is the TURN relay configuration (servers, credentials); the
	// zero value is none.
	turn relay.Settings
}

// usageError is a configuration mistake: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	if err := relay.CheckArgs(args); err != nil {
		return o, usageError{err}
	}
	fs := flag.NewFlagSet("p2ptui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: p2ptui [flags]\n\nA peer-to-peer terminal chat. With no flags it runs on the local signalling mailbox.\n\nflags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.profile, "profile", "default", "profile `NAME`: its own identity, contacts and history (run two to chat with yourself)")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory holding the profiles (default $XDG_DATA_HOME/p2ptui or ~/.config/p2ptui)")
	fs.StringVar(&o.name, "name", "", "display name sent with offers (default: $USER, else the profile name)")
	fs.BoolVar(&o.headless, "headless", false, "no screen: read commands on stdin, write JSON events on stdout")
	fs.StringVar(&o.project, "project", os.Getenv("GOOGLE_CLOUD_PROJECT"), "Firestore `PROJECT` for signalling (also $GOOGLE_CLOUD_PROJECT; $FIRESTORE_EMULATOR_HOST is honoured); empty: local mailbox")
	fs.StringVar(&o.signalDir, "signal-dir", signal.DefaultLocalDir(), "local signalling mailbox `DIR`, shared by the profiles of this machine (also $P2PTUI_SIGNAL_DIR)")
	fs.StringVar(&o.stun, "stun", strings.Join(punch.DefaultSTUNServers(), ","), "comma-separated STUN servers `host:port`; \"none\" offers host addresses only")
	fs.StringVar(&o.listen, "listen", "0.0.0.0:0", "UDP `address` to listen on")
	fs.StringVar(&o.logFile, "log", "", "log `FILE` (default: p2ptui-PROFILE.log in $XDG_STATE_HOME/p2ptui or ~/.local/state/p2ptui)")
	var turn relay.Input
	fs.Func("turn", "TURN relay `URI` turn:HOST[:PORT] for peers no direct path reaches (repeatable, or comma-separated)", func(v string) error {
		turn.URIs = append(turn.URIs, v)
		return nil
	})
	fs.StringVar(&turn.User, "turn-user", "", "TURN user `NAME` (the password comes from $"+relay.EnvPassword+" or --turn-password-file, never the command line)")
	fs.StringVar(&turn.PasswordFile, "turn-password-file", "", "`FILE` whose first line is the TURN password")
	fs.StringVar(&turn.SecretFile, "turn-secret-file", "", "`FILE` whose first line is a secret shared with the TURN server (coturn use-auth-secret; also $"+relay.EnvSecret+")")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "profile":
			o.profileChosen = true
		case "name":
			o.nameChosen = true
		}
	})
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if o.stun != "none" {
		for _, hp := range strings.Split(o.stun, ",") {
			if _, port, err := net.SplitHostPort(strings.TrimSpace(hp)); err != nil || port == "" {
				return o, usageError{fmt.Errorf("--stun %q: want host:port[,host:port...] or none", o.stun)}
			}
		}
	}
	if _, err := netip.ParseAddrPort(o.listen); err != nil {
		return o, usageError{fmt.Errorf("--listen %q: want IP:PORT, e.g. 0.0.0.0:0: %v", o.listen, err)}
	}
	turn.EnvPassword, turn.EnvSecret = os.Getenv(relay.EnvPassword), os.Getenv(relay.EnvSecret)
	var err error
	if o.turn, err = relay.ParseSettings(turn); err != nil {
		return o, usageError{err}
	}
	if o.name == "" {
		o.name = os.Getenv("USER")
	}
	if o.name == "" {
		o.name = o.profile
	}
	if n, err := store.CleanContactName(o.name); err != nil {
		return o, usageError{fmt.Errorf("--name %q: %v", o.name, err)}
	} else {
		o.name = n
	}
	return o, nil
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		if _, ok := err.(usageError); ok {
			fmt.Fprintln(stderr, "p2ptui:", err)
		}
		return exitUsage
	}
	if err := start(o, stdin, stdout); err != nil {
		fmt.Fprintln(stderr, "p2ptui:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// maxFallbackProfiles bounds the search for a free profile.
const maxFallbackProfiles = 9

// openProfile opens the profile's store. When the default profile is in use
// by another p2ptui and no profile was named, the next free one (default-2,
// default-3, ...) is opened instead: running the plain command in a second
// terminal gives a second person to chat with, not an error. A named profile
// in use is an error ("already running ... (pid N)").
func openProfile(o *options) (*store.Store, string, error) {
	base, baseName := o.profile, o.name
	for i := 1; ; i++ {
		if i > 1 {
			o.profile = fmt.Sprintf("%s-%d", base, i)
			if !o.nameChosen {
				o.name = fmt.Sprintf("%s-%d", baseName, i)
			}
		}
		dir, err := store.ProfileDir(o.dataDir, o.profile)
		if err != nil {
			return nil, "", usageError{fmt.Errorf("--profile: %w", err)}
		}
		st, err := store.OpenStore(dir)
		if errors.Is(err, store.ErrAlreadyRunning) && !o.profileChosen && i < maxFallbackProfiles {
			continue
		}
		if err != nil {
			return nil, "", err // "already running with profile x (pid n); quit it first or choose another profile"
		}
		return st, dir, nil
	}
}

// start opens everything, runs the program and closes everything.
func start(o options, stdin io.Reader, stdout io.Writer) error {
	st, profileDir, err := openProfile(&o)
	if err != nil {
		return err
	}
	defer st.Close()
	logger, closeLog, err := openLog(o)
	if err != nil {
		return err
	}
	defer closeLog()
	id, err := identity.LoadOrCreateIdentity(profileDir)
	if err != nil {
		return err
	}
	logger.Info("start", "profile", o.profile, "dir", profileDir, "id", id.ID())
	if o.turn.Enabled() {
		// Parsed and checked; the per-peer connection machine allocates
		// on these servers once it takes over from the engine.
		logger.Info("TURN relay configured", "servers", fmt.Sprint(o.turn.Servers), "credentials", o.turn.Credentials.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sig signal.Signaller
	if o.project != "" {
		fs, err := signal.OpenFirestore(ctx, o.project, id.ID(), logger, signal.FirestoreOptions{})
		if err != nil {
			return usageError{err}
		}
		sig = fs
	} else {
		ls, err := signal.OpenLocal(o.signalDir, id.ID(), logger)
		if err != nil {
			return usageError{fmt.Errorf("--signal-dir: %w", err)}
		}
		sig = ls
	}
	defer sig.Close()

	sock, err := punch.ListenUDP(ctx, o.listen)
	if err != nil {
		return usageError{fmt.Errorf("--listen: %w", err)}
	}
	defer sock.Close()

	var servers []netip.AddrPort
	if o.stun != "none" {
		rctx, rcancel := context.WithTimeout(ctx, stunResolveTimeout)
		names := strings.Split(o.stun, ",")
		for i := range names {
			names[i] = strings.TrimSpace(names[i])
		}
		servers, err = punch.ResolveSTUNServers(rctx, names)
		rcancel()
		if err != nil {
			// Not fatal: peers on this network can still be reached.
			logger.Warn("STUN servers", "err", err)
		}
	}

	model := ui.New(ui.Deps{
		Signaller: sig, Store: st, Identity: id, Socket: sock, STUN: servers,
		Name: o.name, Logger: logger,
		Headless: o.headless, Commands: stdin, Events: stdout,
	})
	defer model.Close()
	var popts []tea.ProgramOption
	if o.headless {
		popts = []tea.ProgramOption{tea.WithoutRenderer(), tea.WithInput(nil), tea.WithOutput(io.Discard)}
	} else {
		popts = []tea.ProgramOption{tea.WithAltScreen(), tea.WithMouseCellMotion()}
	}
	_, err = tea.NewProgram(model, popts...).Run()
	if err != nil && !errors.Is(err, tea.ErrInterrupted) {
		return fmt.Errorf("run: %w", err)
	}
	logger.Info("stop")
	return nil
}

// openLog opens the log file: never the terminal, which the TUI owns.
func openLog(o options) (*slog.Logger, func(), error) {
	path := o.logFile
	if path == "" {
		dir := os.Getenv("XDG_STATE_HOME")
		if dir == "" || !filepath.IsAbs(dir) {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, nil, usageError{fmt.Errorf("find a directory for the log (set XDG_STATE_HOME or pass --log): %w", err)}
			}
			dir = filepath.Join(home, ".local", "state")
		}
		path = filepath.Join(dir, "p2ptui", "p2ptui-"+o.profile+".log")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, usageError{fmt.Errorf("log directory: %w", err)}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("open log: %w", err)}
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})), func() { f.Close() }, nil
}
