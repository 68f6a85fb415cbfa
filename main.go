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
	ossignal "os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/term"

	"github.com/p2ptui/p2ptui/punch"
	"github.com/p2ptui/p2ptui/punch/relay"
	"github.com/p2ptui/p2ptui/session/identity"
	"github.com/p2ptui/p2ptui/session/private"
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
	projectChosen bool   // --project was given (not only $GOOGLE_CLOUD_PROJECT)
	join          string // --join: a code, already checked for typos
	invite        bool
	apiKey        string
	signalDir     string
	stun          string
	listen        string
	logFile       string
	version       bool
	downloads     string // --downloads, absolute; empty: the system's Downloads folder
	// turn is the TURN relay configuration (servers, credentials); the
	// zero value is none.
	turn relay.Settings
}

// usageError is a configuration mistake: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, haveTerminal))
}

// errNoTerminal: the screen has nowhere to draw or read keys from.
var errNoTerminal = errors.New("no terminal to draw on: standard input is not a terminal and /dev/tty cannot be opened")

// haveTerminal reports whether the screen can run: Bubble Tea reads keys
// from standard input when it is a terminal, else from /dev/tty.
func haveTerminal(stdin io.Reader) error {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(f.Fd()) {
		return nil
	}
	if runtime.GOOS == "windows" {
		return nil // the console is opened its own way there
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w (%v)", errNoTerminal, err)
	}
	tty.Close()
	return nil
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
	fs.StringVar(&o.dataDir, "data-dir", "", "directory holding the profiles (default on this system: "+defaultDataDir()+")")
	fs.StringVar(&o.name, "name", "", "display name sent with offers (default: $USER, else the profile name)")
	fs.BoolVar(&o.headless, "headless", false, "no screen: read commands on stdin, write JSON events on stdout")
	fs.StringVar(&o.project, "project", os.Getenv("GOOGLE_CLOUD_PROJECT"), "Firestore `PROJECT` for signalling with your IAM credentials, for the group's admin (also $GOOGLE_CLOUD_PROJECT; $FIRESTORE_EMULATOR_HOST is honoured); empty: the joined group, else the local mailbox")
	fs.StringVar(&o.join, "join", "", "join a group: sign in to its project with the join `CODE` an admin shared, and keep it in the profile for later starts")
	fs.BoolVar(&o.invite, "invite", false, "print the join code of this profile's group (or, with --project and --api-key, make one) and exit")
	fs.StringVar(&o.apiKey, "api-key", "", "with --invite and --project: the project's Web API `KEY` (Firebase console, Project settings)")
	fs.StringVar(&o.signalDir, "signal-dir", signal.DefaultLocalDir(), "local signalling mailbox `DIR`, shared by the profiles of this machine (also $P2PTUI_SIGNAL_DIR)")
	fs.StringVar(&o.stun, "stun", strings.Join(punch.DefaultSTUNServers(), ","), "comma-separated STUN servers `host:port`; \"none\" offers host addresses only")
	fs.StringVar(&o.listen, "listen", "[::]:0", "UDP `address` to listen on (the default is one socket for IPv4 and IPv6 where the system has both; 0.0.0.0:0 for IPv4 only)")
	fs.StringVar(&o.downloads, "downloads", "", "`DIR` accepted files are saved in unless you pick another folder (default on this system: "+ui.DownloadsDir()+")")
	fs.StringVar(&o.logFile, "log", "", "log `FILE` (default on this system: p2ptui-PROFILE.log in "+defaultLogDir()+")")
	fs.BoolVar(&o.version, "version", false, "print the version of this build and exit")
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
		case "project":
			o.projectChosen = true
		}
	})
	if fs.NArg() > 0 {
		return o, usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if o.join != "" {
		// Checked before anything is opened: a mistyped code changes
		// nothing.
		c, err := signal.ParseJoinCode(o.join)
		if err != nil {
			return o, usageError{fmt.Errorf("--join: %w", err)}
		}
		o.join = c.String()
		if o.invite {
			return o, usageError{errors.New("--join and --invite: use one at a time")}
		}
		if o.projectChosen {
			return o, usageError{errors.New("--join and --project choose signalling in two ways: --join for a group member (signed in, bound by the rules), --project for its admin (IAM credentials)")}
		}
		o.project = "" // $GOOGLE_CLOUD_PROJECT gives way to an explicit --join
	}
	if (o.apiKey != "" || o.projectChosen) && o.invite && (o.apiKey == "" || o.project == "") {
		return o, usageError{errors.New("to make a join code, give both: --invite --project PROJECT --api-key KEY")}
	}
	if o.apiKey != "" && !o.invite {
		return o, usageError{errors.New("--api-key goes with --invite --project PROJECT, to make a join code")}
	}
	if o.profile == "" {
		return o, usageError{errors.New("--profile \"\": a profile needs a name: 1-32 letters, digits, '.', '_' or '-' (or leave the flag out for \"default\")")}
	}
	if _, err := store.ProfileDir(o.dataDir, o.profile); err != nil {
		return o, usageError{fmt.Errorf("--profile: %w", err)}
	}
	if err := checkSTUNList(o.stun); err != nil {
		return o, usageError{err}
	}
	if _, err := netip.ParseAddrPort(o.listen); err != nil {
		return o, usageError{fmt.Errorf("--listen %q: want IP:PORT, e.g. [::]:0 or 0.0.0.0:0: %v", o.listen, err)}
	}
	turn.EnvPassword, turn.EnvSecret = os.Getenv(relay.EnvPassword), os.Getenv(relay.EnvSecret)
	var err error
	if o.turn, err = relay.ParseSettings(turn); err != nil {
		return o, usageError{err}
	}
	if o.downloads != "" {
		abs, err := filepath.Abs(o.downloads)
		if err != nil {
			return o, usageError{fmt.Errorf("--downloads %q: %v", o.downloads, err)}
		}
		o.downloads = abs
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

// checkSTUNList checks --stun: "none", or host:port entries whose port is
// a number from 1 to 65535.
func checkSTUNList(list string) error {
	if list == "none" {
		return nil
	}
	for _, hp := range strings.Split(list, ",") {
		hp = strings.TrimSpace(hp)
		host, port, err := net.SplitHostPort(hp)
		if err != nil || host == "" {
			return fmt.Errorf("--stun %q: %q is not host:port; want host:port[,host:port...] or none", list, hp)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("--stun %q: the port of %q must be a number from 1 to 65535", list, hp)
		}
	}
	return nil
}

// listenError says in one sentence why the UDP socket could not be opened
// (the socket's error repeats the address at each layer).
func listenError(addr string, err error) error {
	var reason string
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		reason = "that IP is not an address of this machine (use one of its addresses, or 0.0.0.0)"
	case errors.Is(err, syscall.EADDRINUSE):
		reason = "that port is already in use (choose another, or port 0 for any free one)"
	case errors.Is(err, syscall.EACCES):
		reason = "permission denied (ports below 1024 need privileges; port 0 picks a free one)"
	default:
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			reason = op.Err.Error()
		} else {
			reason = err.Error()
		}
	}
	return fmt.Errorf("--listen %s: %s", addr, reason)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer, terminal func(io.Reader) error) int {
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
	if o.version {
		fmt.Fprintf(stdout, "p2ptui %s\n%s %s/%s\n", readVersion(debug.ReadBuildInfo()), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	if o.invite {
		if err := invite(o, stdout, stderr); err != nil {
			fmt.Fprintln(stderr, "p2ptui:", err)
			return exitUsage
		}
		return exitOK
	}
	if !o.headless {
		if err := terminal(stdin); err != nil {
			fmt.Fprintf(stderr, "p2ptui: %v.\nRun it in a terminal, or add --headless to read commands on standard input and write JSON events on standard output.\n", err)
			return exitUsage
		}
	}
	if err := start(o, stdin, stdout, stderr); err != nil {
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

// invite prints a join code: made of --project and --api-key, or the one
// the profile joined with.
func invite(o options, stdout, stderr io.Writer) error {
	var c signal.JoinCode
	switch {
	case o.apiKey != "":
		var err error
		if c, err = signal.NewJoinCode(o.project, o.apiKey); err != nil {
			return err
		}
	default:
		dir, err := store.ProfileDir(o.dataDir, o.profile)
		if err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
		var ok bool
		if c, ok, err = signal.LoadJoin(dir); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("profile %s has joined no group; its admin makes a join code with: p2ptui --invite --project PROJECT --api-key KEY", o.profile)
		}
	}
	fmt.Fprintln(stdout, c.String())
	fmt.Fprintf(stderr, "Share it; the others join with: p2ptui --join %s\n", c)
	return nil
}

// joinTimeout bounds trying a join code (a sign-in and a claim).
const joinTimeout = time.Minute

// openSignaller opens the signalling backend: Firestore with IAM
// credentials for --project, Firestore signed in for a joined group
// (--join now or earlier), else the local mailbox.
func openSignaller(ctx context.Context, o options, profileDir, me string, logger *slog.Logger, stderr io.Writer) (signal.Signaller, error) {
	code, joined, err := signal.LoadJoin(profileDir)
	if err != nil {
		return nil, usageError{err}
	}
	// An explicit --project wins over the joined group, which wins over
	// a $GOOGLE_CLOUD_PROJECT set for other tools.
	if o.project != "" && (o.projectChosen || !joined) && o.join == "" {
		fs, err := signal.OpenFirestore(ctx, o.project, me, logger, signal.FirestoreOptions{})
		if err != nil {
			return nil, usageError{err}
		}
		return fs, nil
	}
	jo := signal.JoinOptions{
		AuthEmulator: os.Getenv("FIREBASE_AUTH_EMULATOR_HOST"), FirestoreEmulator: os.Getenv("FIRESTORE_EMULATOR_HOST"),
		Logger: logger,
	}
	if o.join != "" || joined {
		// With the variable set, the Firestore library would reach the
		// emulator as its owner, past the rules; its value is in jo.
		os.Unsetenv("FIRESTORE_EMULATOR_HOST")
	}
	if o.join != "" {
		code, _ = signal.ParseJoinCode(o.join) // checked in parseFlags
		jctx, cancel := context.WithTimeout(ctx, joinTimeout)
		err := signal.Join(jctx, profileDir, me, code, jo)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w (nothing changed)", err)
		}
		logger.Info("joined a group", "project", code.ProjectID)
		fmt.Fprintf(stderr, "p2ptui: joined the group of project %s; later starts need no flags\n", code.ProjectID)
		joined = true
	}
	if joined {
		fs, err := signal.OpenJoined(ctx, profileDir, me, code, jo)
		if err != nil {
			return nil, err
		}
		return fs, nil
	}
	ls, err := signal.OpenLocal(o.signalDir, me, logger)
	if err != nil {
		return nil, usageError{fmt.Errorf("--signal-dir: %w", err)}
	}
	return ls, nil
}

// start opens everything, runs the program and closes everything.
func start(o options, stdin io.Reader, stdout, stderr io.Writer) error {
	version := readVersion(debug.ReadBuildInfo()).String()
	var legacy *store.DataLocation
	if o.dataDir == "" {
		loc, err := store.DataDir(store.HostEnv())
		if err != nil {
			return usageError{fmt.Errorf("find a directory for the profiles (pass --data-dir): %w", err)}
		}
		o.dataDir = loc.Dir
		if loc.Legacy() {
			// Profiles are never moved behind the user's back; say where
			// they are used from and where they would usually be.
			legacy = &loc
			fmt.Fprintf(stderr, "p2ptui: using the profiles in %s, where they already are; the usual place on this system is %s (quit p2ptui and move the folder there to switch)\n", loc.Dir, loc.Native)
		}
	}
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
	// The first line of every run says which build wrote the rest.
	logger.Info("p2ptui", "version", version, "go", runtime.Version(), "os", runtime.GOOS+"/"+runtime.GOARCH)
	if legacy != nil {
		logger.Warn("profiles in an older location are used where they are", "dir", legacy.Dir, "usual", legacy.Native)
	}
	id, err := identity.LoadOrCreateIdentity(profileDir)
	if err != nil {
		return err
	}
	logger.Info("start", "profile", o.profile, "dir", profileDir, "id", id.ID())
	if o.turn.Enabled() {
		logger.Info("TURN relay configured", "servers", fmt.Sprint(o.turn.Servers), "credentials", o.turn.Credentials.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Read before openSignaller may unset FIRESTORE_EMULATOR_HOST.
	joinOpts := signal.JoinOptions{
		AuthEmulator: os.Getenv("FIREBASE_AUTH_EMULATOR_HOST"), FirestoreEmulator: os.Getenv("FIRESTORE_EMULATOR_HOST"),
		Logger: logger,
	}
	sig, err := openSignaller(ctx, o, profileDir, id.ID(), logger, stderr)
	if err != nil {
		return err
	}
	defer sig.Close()

	// The main socket is the set's first; the TURN relay and the extra
	// sockets of birthday probing join it while the program runs.
	sockets := punch.NewSocketSet(ctx)
	defer sockets.CloseAll()
	sock, err := sockets.Listen(o.listen, 0)
	if err != nil {
		return usageError{listenError(o.listen, err)}
	}
	logger.Info("listening", "addr", sock.LocalAddr(), "family", sock.Family())

	servers, stunNames := resolveSTUN(ctx, o.stun, sock.Family() != punch.FamilyIPv4, logger)
	model := ui.New(ui.Deps{
		Signaller: sig, Store: st, Identity: id, Socket: sock, Sockets: sockets, TURN: o.turn, STUN: servers, STUNNames: stunNames,
		Name: o.name, Logger: logger, Version: version, Downloads: o.downloads,
		Headless: o.headless, Commands: stdin, Events: stdout,
		Join: func(ctx context.Context, code string) (string, error) {
			c, err := signal.ParseJoinCode(code)
			if err != nil {
				return "", err
			}
			ctx, cancel := context.WithTimeout(ctx, joinTimeout)
			defer cancel()
			return c.ProjectID, signal.Join(ctx, profileDir, id.ID(), c, joinOpts)
		},
	})
	defer model.Close()
	// Signals are ours, not Bubble Tea's: its handler ends the program
	// at once, skipping the model's quit (store flushed, offline
	// presence written).
	popts := []tea.ProgramOption{tea.WithoutSignalHandler()}
	if o.headless {
		popts = append(popts, tea.WithoutRenderer(), tea.WithInput(nil), tea.WithOutput(io.Discard))
	} else {
		popts = append(popts, tea.WithAltScreen(), tea.WithMouseCellMotion())
	}
	program := tea.NewProgram(model, popts...)
	stopRelay := relayQuitSignals(program, logger)
	_, err = program.Run()
	stopRelay()
	switch {
	case errors.Is(err, tea.ErrProgramKilled):
		logger.Warn("stop: ended by a second quit signal before the clean quit finished")
		return errors.New("stopped by a second quit signal before the clean quit finished")
	case err != nil:
		return fmt.Errorf("run: %w", err)
	}
	logger.Info("stop")
	return nil
}

// quitSignals end the program through its clean quit: Ctrl+C where it
// arrives as a signal (headless mode; Ctrl+Break in a Windows console),
// TERM from kill or a service manager, HUP when the terminal goes away.
// On Windows, closing the console window, logging off and shutting down
// arrive as SIGTERM, and Go holds the process open while the handler runs.
func quitSignals() []os.Signal {
	return []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}
}

// relayQuitSignals turns quitSignals into ui.QuitIntent messages for the
// program until the returned stop is called; stop waits for the relay's
// goroutine to end.
func relayQuitSignals(p *tea.Program, logger *slog.Logger) (stop func()) {
	sigs := make(chan os.Signal, 2)
	ossignal.Notify(sigs, quitSignals()...)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		relayQuit(sigs, done, p.Send, p.Kill, logger)
	}()
	return func() {
		ossignal.Stop(sigs)
		close(done)
		<-finished
	}
}

// relayQuit asks the program to quit on the first signal, the same way
// the quit key does. A second signal while that quit is under way (a stuck
// network call, an impatient user) ends the program without waiting.
func relayQuit(sigs <-chan os.Signal, done <-chan struct{}, send func(tea.Msg), kill func(), logger *slog.Logger) {
	asked := false
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			if !asked {
				asked = true
				logger.Info("quit requested", "signal", s.String())
				send(ui.QuitIntent{})
				continue
			}
			logger.Warn("second quit request: stopping now", "signal", s.String())
			kill()
			return
		}
	}
}

// openLog opens the log file: never the terminal, which the TUI owns.
func openLog(o options) (*slog.Logger, func(), error) {
	path := o.logFile
	if path == "" {
		dir, err := store.LogDir(store.HostEnv())
		if err != nil {
			return nil, nil, usageError{fmt.Errorf("find a directory for the log (pass --log): %w", err)}
		}
		path = filepath.Join(dir, "p2ptui-"+o.profile+".log")
	}
	// Logs name contacts and addresses: only this user may read them.
	if err := private.MkdirAll(filepath.Dir(path)); err != nil {
		return nil, nil, usageError{fmt.Errorf("log directory: %w", err)}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("open log: %w", err)}
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelInfo})), func() { f.Close() }, nil
}

// resolveSTUN resolves the --stun names, each within stunResolveTimeout
// (all at once), keeping which resolved for the details view: a name to
// an IPv4 address, and, for a socket that can send IPv6 (ipv6), to an IPv6
// one too where it has one (listed as "NAME (IPv6)"); an address literal
// stands for its own family. A name that does not resolve is not fatal:
// peers on this network can still be reached.
func resolveSTUN(ctx context.Context, list string, ipv6 bool, logger *slog.Logger) ([]netip.AddrPort, []ui.STUNName) {
	if list == "none" {
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, stunResolveTimeout)
	defer cancel()
	type entry struct {
		ui.STUNName
		query    string // the name as configured
		v6, soft bool   // soft: an extra IPv6 look-up, dropped when it finds nothing
	}
	var entries []entry
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		host, _, _ := net.SplitHostPort(n)
		if a, err := netip.ParseAddr(host); err == nil {
			entries = append(entries, entry{STUNName: ui.STUNName{Name: n}, query: n, v6: a.Unmap().Is6()})
			continue
		}
		entries = append(entries, entry{STUNName: ui.STUNName{Name: n}, query: n})
		if ipv6 {
			entries = append(entries, entry{STUNName: ui.STUNName{Name: n + " (IPv6)"}, query: n, v6: true, soft: true})
		}
	}
	var wg sync.WaitGroup
	for i := range entries {
		en := &entries[i]
		if en.v6 && !ipv6 {
			continue // this socket cannot reach it
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resolve := punch.ResolveSTUNServers
			if en.v6 {
				resolve = punch.ResolveSTUNServers6
			}
			addrs, err := resolve(rctx, []string{en.query})
			if err != nil || len(addrs) == 0 {
				if !en.soft {
					logger.Warn("STUN server did not resolve", "server", en.Name, "err", err)
				}
				return
			}
			en.Addr = addrs[0]
		}()
	}
	wg.Wait()
	var servers []netip.AddrPort
	var names []ui.STUNName
	for _, en := range entries {
		if en.soft && !en.Addr.IsValid() {
			continue // most names have no IPv6 address: not worth a line
		}
		names = append(names, en.STUNName)
		if en.Addr.IsValid() {
			servers = append(servers, en.Addr)
		}
	}
	return servers, names
}

// defaultDataDir describes the default --data-dir for the usage text.
func defaultDataDir() string {
	loc, err := store.DataDir(store.HostEnv())
	if err != nil {
		return "none found; pass --data-dir"
	}
	return loc.Native
}

// defaultLogDir describes where logs go by default, for the usage text.
func defaultLogDir() string {
	d, err := store.LogDir(store.HostEnv())
	if err != nil {
		return "none found; pass --log"
	}
	return d
}
