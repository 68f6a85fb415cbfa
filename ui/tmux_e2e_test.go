package ui_test

// The product as a person uses it: two real p2ptui processes, each in its
// own tmux session at 100x30, on the embedded local signalling mailbox and
// loopback UDP only. Everything is done with `tmux send-keys` and checked by
// reading the screen with `tmux capture-pane`: Alice adds Bob by pasting the
// ID shown in Bob's header, opens the chat while Bob is typing in a dialog;
// Bob types on through the incoming request (words like "a", "d" and
// "ctrl+c" included) and nothing is answered; then he opens the request
// with ctrl+r and accepts it; they chat; Bob quits, Alice writes while he
// is away (queued), Bob comes back, accepts again, and the queued message
// arrives and is marked delivered.
// The binary is built with -race and both processes must end cleanly with
// no race report. Skipped without tmux except under CI=true, where it fails.
//
//	go test -race -count=1 -run TestTmux -v ./ui/

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// tmuxStepWait bounds each expectation on a screen; it guards against a
// hang, it is not a speed requirement.
const tmuxStepWait = 20 * time.Second

// tmuxCheckWait bounds a side check made after the step it depends on has
// been seen: the screen should already agree, give it a few redraws.
const tmuxCheckWait = 5 * time.Second

// tmuxWidth and tmuxHeight are the terminal size of both sessions.
const (
	tmuxWidth  = 100
	tmuxHeight = 30
)

// tmuxIDPattern finds the full ID in the header: " bob · ID <56 base32>".
var tmuxIDPattern = regexp.MustCompile(`· ID ([a-z2-7]{56})\b`)

// tmuxLab is one tmux server with a session per profile.
type tmuxLab struct {
	t        *testing.T
	tmuxPath string
	socket   string // -L name: a server of our own, killed at the end
	dir      string
	bin      string
	confPath string // our own tmux config

	runs map[string]int // programs started per profile, naming status files

	// last is each profile's last screen read while its program ran, for
	// the failure report (a quit program leaves an empty pane).
	last map[string]string
}

// tmuxNeed returns tmux's path, or skips (fails under CI=true). -short
// skips too: the test builds the program and runs it for ~10 s.
func tmuxNeed(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping the tmux end-to-end test")
	}
	p, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tmux is required under CI=true: %v", err)
		}
		t.Skipf("tmux not installed (%v): the end-to-end screen test needs it", err)
	}
	return p
}

func tmuxNewLab(t *testing.T) *tmuxLab {
	t.Helper()
	tmuxPath := tmuxNeed(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "p2ptui")
	// -race: a data race in the real program's wiring is reported into
	// GORACE's log_path (checked at the end) and fails its exit status.
	build := exec.Command("go", "build", "-race", "-o", bin, "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	l := &tmuxLab{t: t, tmuxPath: tmuxPath, socket: "p2ptui-e2e-" + hex.EncodeToString(r[:]), dir: dir, bin: bin, runs: map[string]int{}, last: map[string]string{}}
	// remain-on-exit keeps a quit program's pane (and so its session),
	// for respawn-pane to start it again; a config of our own ignores the
	// user's.
	conf := filepath.Join(dir, "tmux.conf")
	if err := os.WriteFile(conf, []byte("set -g remain-on-exit on\nset -g status off\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.confPath = conf
	t.Cleanup(func() {
		// Also on failure: no server, no programs, no socket file left
		// behind (kill-server leaves the file).
		path, _ := l.tmux("display-message", "-p", "#{socket_path}")
		_, _ = l.tmux("kill-server")
		if path = strings.TrimSpace(path); path != "" {
			_ = os.Remove(path)
		}
	})
	return l
}

// tmux runs one tmux command against our server.
func (l *tmuxLab) tmux(args ...string) (string, error) {
	cmd := exec.Command(l.tmuxPath, append([]string{"-L", l.socket, "-f", l.confPath}, args...)...)
	// Not nested in whatever tmux runs the test.
	cmd.Env = tmuxEnvWithout(os.Environ(), "TMUX", "TMUX_PANE")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("tmux %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (l *tmuxLab) must(args ...string) string {
	l.t.Helper()
	out, err := l.tmux(args...)
	if err != nil {
		l.t.Fatal(err)
	}
	return out
}

func tmuxEnvWithout(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		drop := false
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// argv is the pane's command: the profile's program under a shell that
// writes its exit status to statusPath when it ends. (tmux's own
// #{pane_dead_status} is not used: tmux 3.3a often misses the exit of a
// Go program in a pane — the pane is dead, the process a zombie, no status
// — until the server happens to get another SIGCHLD.)
func (l *tmuxLab) argv(profile string) []string {
	l.runs[profile]++
	status := l.statusPath(profile)
	return []string{"sh", "-c", `"$@"; echo "$?" >"$0.tmp" && mv "$0.tmp" "$0"`, status,
		l.bin,
		"--data-dir", filepath.Join(l.dir, "data"),
		"--profile", profile,
		"--name", profile,
		"--signal-dir", filepath.Join(l.dir, "signal"),
		"--stun", "none",
		"--listen", "127.0.0.1:0",
		"--log", l.logPath(profile),
	}
}

// statusPath is where the profile's current run writes its exit status.
func (l *tmuxLab) statusPath(profile string) string {
	return filepath.Join(l.dir, fmt.Sprintf("%s-%d.status", profile, l.runs[profile]))
}

func (l *tmuxLab) logPath(profile string) string {
	return filepath.Join(l.dir, profile+".log")
}

func (l *tmuxLab) raceEnv() string {
	return "GORACE=log_path=" + filepath.Join(l.dir, "race") + " halt_on_error=0"
}

// start opens a session named after the profile running its program.
func (l *tmuxLab) start(profile string) {
	l.t.Helper()
	args := []string{"new-session", "-d", "-s", profile,
		"-x", fmt.Sprint(tmuxWidth), "-y", fmt.Sprint(tmuxHeight), "-e", l.raceEnv()}
	l.must(append(args, l.argv(profile)...)...)
}

// restart runs the profile's program again in its (dead) pane.
func (l *tmuxLab) restart(profile string) {
	l.t.Helper()
	args := []string{"respawn-pane", "-t", profile + ":", "-e", l.raceEnv()}
	l.must(append(args, l.argv(profile)...)...)
}

// screen is what the profile's terminal shows now.
func (l *tmuxLab) screen(profile string) string {
	l.t.Helper()
	s := l.must("capture-pane", "-p", "-t", profile+":")
	if !strings.Contains(s, "Pane is dead") {
		l.last[profile] = s
	}
	return s
}

// keys presses named keys (Enter, Tab, Escape, C-c, C-u, a ...).
func (l *tmuxLab) keys(profile string, keys ...string) {
	l.t.Helper()
	l.must(append([]string{"send-keys", "-t", profile + ":"}, keys...)...)
}

// typeText types text literally, as pasting it would.
func (l *tmuxLab) typeText(profile, text string) {
	l.t.Helper()
	l.must("send-keys", "-t", profile+":", "-l", text)
}

// waitFor polls the profile's screen until ok holds and returns that
// screen; after tmuxStepWait it fails the test (what describes the
// expectation).
func (l *tmuxLab) waitFor(profile, what string, ok func(screen string) bool) string {
	l.t.Helper()
	s, held := l.poll(profile, tmuxStepWait, ok)
	if !held {
		l.t.Fatalf("%s: after %v still no %s; screen:\n%s", profile, tmuxStepWait, what, s)
	}
	return s
}

// expect is waitFor for a check the scenario does not depend on: a miss is
// reported and the scenario goes on, so one run shows every problem.
func (l *tmuxLab) expect(profile, what string, ok func(screen string) bool) {
	l.t.Helper()
	if s, held := l.poll(profile, tmuxCheckWait, ok); !held {
		l.t.Errorf("%s: after %v still no %s; screen:\n%s", profile, tmuxCheckWait, what, s)
	}
}

func (l *tmuxLab) poll(profile string, d time.Duration, ok func(screen string) bool) (string, bool) {
	l.t.Helper()
	deadline := time.Now().Add(d)
	for {
		s := l.screen(profile)
		if ok(s) {
			return s, true
		}
		if time.Now().After(deadline) {
			return s, false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitText waits until the screen shows every one of texts.
func (l *tmuxLab) waitText(profile string, texts ...string) string {
	l.t.Helper()
	return l.waitFor(profile, fmt.Sprintf("%q", texts), func(s string) bool {
		for _, x := range texts {
			if !strings.Contains(s, x) {
				return false
			}
		}
		return true
	})
}

// tmuxLine is the first screen line containing text, "" if none.
func tmuxLine(screen, text string) string {
	for _, line := range strings.Split(screen, "\n") {
		if strings.Contains(line, text) {
			return line
		}
	}
	return ""
}

// waitExit waits for the profile's program to end and checks it ended
// well (status 0: no error, no race report).
func (l *tmuxLab) waitExit(profile string) {
	l.t.Helper()
	deadline := time.Now().Add(tmuxStepWait)
	for {
		b, err := os.ReadFile(l.statusPath(profile))
		if err == nil {
			if st := strings.TrimSpace(string(b)); st != "0" {
				l.t.Fatalf("%s: exit status %s; last screen:\n%s", profile, st, l.last[profile])
			}
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: still running %v after quitting (%s); screen:\n%s", profile, tmuxStepWait, l.paneProcess(profile), l.screen(profile))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// paneProcess describes the pane's process as ps sees it, for a report.
func (l *tmuxLab) paneProcess(profile string) string {
	pid, err := l.tmux("display-message", "-p", "-t", profile+":", "#{pane_pid}")
	if err != nil {
		return err.Error()
	}
	pid = strings.TrimSpace(pid)
	out, err := exec.Command("ps", "-o", "pid=,stat=,wchan=,args=", "-p", pid).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("process %s: not found (%v)", pid, err)
	}
	return "process " + strings.TrimSpace(string(out))
}

// dumpOnFailure prints both screens and the tail of both logs if the test
// failed. Registered after the kill-server cleanup, so it runs before it.
func (l *tmuxLab) dumpOnFailure(profiles ...string) {
	l.t.Cleanup(func() {
		if !l.t.Failed() {
			return
		}
		for _, p := range profiles {
			l.t.Logf("---- %s screen when last read while running ----\n%s", p, l.last[p])
			if s, err := l.tmux("capture-pane", "-p", "-t", p+":"); err == nil {
				l.t.Logf("---- %s screen now ----\n%s", p, s)
			} else {
				l.t.Logf("---- %s screen: %v", p, err)
			}
			b, err := os.ReadFile(l.logPath(p))
			if err != nil {
				l.t.Logf("---- %s log: %v", p, err)
				continue
			}
			l.t.Logf("---- %s log (tail) ----\n%s", p, tmuxTail(string(b), 40))
		}
	})
}

func tmuxTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// checkNoRace fails on any race report the programs wrote.
func (l *tmuxLab) checkNoRace() {
	l.t.Helper()
	files, _ := filepath.Glob(filepath.Join(l.dir, "race*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		l.t.Errorf("race report %s:\n%s", f, b)
	}
}

// tmuxChatHeader is the chat pane's title line (the second screen line,
// right of the contacts pane), e.g. "Bob ◆ connected".
func tmuxChatHeader(screen string) string {
	lines := strings.Split(screen, "\n")
	if len(lines) < 2 {
		return ""
	}
	_, right, ok := strings.Cut(lines[1], "│")
	if !ok {
		return ""
	}
	return strings.TrimSpace(right)
}

// tmuxContactRow is the contacts pane's text on the row naming name (the
// highlighted row starts with "› "), e.g. "› Alice                 1"
// with an unread count, and on the line under it, e.g.
// "◆ connected         now"; "" if not shown.
func tmuxContactRow(screen, name string) (row, detail string) {
	lines := strings.Split(screen, "\n")
	left := func(line string) string {
		l, _, _ := strings.Cut(line, "│")
		return strings.TrimSpace(l)
	}
	for i, line := range lines {
		if !strings.Contains(line, "│") {
			continue
		}
		f := strings.Fields(left(line))
		if len(f) >= 2 && f[0] == "›" && f[1] == name || len(f) >= 1 && f[0] == name {
			if i+1 < len(lines) {
				detail = left(lines[i+1])
			}
			return left(line), detail
		}
	}
	return "", ""
}

// tmuxEndsWith reports whether the line showing text ends with suffix
// (a message and its mark: "hello ✓✓").
func tmuxEndsWith(text, suffix string) func(string) bool {
	return func(s string) bool {
		line := tmuxLine(s, text)
		return line != "" && strings.HasSuffix(strings.TrimSpace(line), suffix)
	}
}

func TestTmuxChatEndToEnd(t *testing.T) {
	l := tmuxNewLab(t)
	l.dumpOnFailure("alice", "bob")
	begin := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(begin).Seconds(), what) }
	header := func(want string) func(string) bool {
		return func(s string) bool { return tmuxChatHeader(s) == want }
	}

	l.start("alice")
	l.start("bob")

	// Bob's ID, read off his header as a person would copy it.
	bobScreen := l.waitFor("bob", "ID in the header", tmuxIDPattern.MatchString)
	bobID := tmuxIDPattern.FindStringSubmatch(bobScreen)[1]
	l.waitText("alice", "No contacts yet.")
	step("both running; Bob's ID " + bobID)

	// Alice adds Bob: a, name, tab, paste the ID, enter.
	l.keys("alice", "a")
	l.waitText("alice", "Add a contact", "Name:", "ID:")
	l.typeText("alice", "Bob")
	l.keys("alice", "Tab")
	l.typeText("alice", bobID)
	l.keys("alice", "Enter")
	l.waitFor("alice", "contact row for Bob", func(s string) bool {
		row, _ := tmuxContactRow(s, "Bob")
		return strings.Contains(s, "Contacts (1)") && strings.HasPrefix(row, "› Bob")
	})
	step("Alice added Bob")

	// Bob starts typing (a name in the add dialog) before Alice asks.
	l.keys("bob", "a")
	l.waitText("bob", "Add a contact", "Name:")
	const before = "we had a good day and"
	l.typeText("bob", before)
	l.waitText("bob", "Name: "+before)

	// Alice opens the chat; Bob's request waits as a notice while he
	// types on, words that name keys included, one chunk at a time.
	l.keys("alice", "Enter")
	l.waitFor("alice", "chat with Bob open", func(s string) bool {
		return strings.HasPrefix(tmuxChatHeader(s), "Bob ")
	})
	typed := before
	for _, chunk := range []string{" a", " d", " ctrl+c", " esc", " A", " up"} {
		typed += chunk
		l.typeText("bob", chunk)
		l.waitText("bob", "Name: "+typed)
	}
	l.waitText("bob", "wants to chat", "ctrl+r answer")
	for _, chunk := range []string{" a", " d", " y"} {
		typed += chunk
		l.typeText("bob", chunk)
	}
	bobTyping := l.waitText("bob", "Name: "+typed)
	if !strings.Contains(bobTyping, "Add a contact") || !strings.Contains(bobTyping, "wants to chat") {
		t.Fatalf("typing through the request changed Bob's screen:\n%s", bobTyping)
	}
	l.expect("alice", "Bob still not connected (nothing was answered)", func(s string) bool {
		return strings.HasPrefix(tmuxChatHeader(s), "Bob ") && !strings.Contains(tmuxChatHeader(s), "◆ connected")
	})
	step("Bob typed through the request; nothing answered")

	// Bob leaves the dialog and opens the request on purpose. An ESC
	// followed at once by ctrl+r reaches the program as alt+ctrl+r (ESC
	// is also the alt prefix), so the second key waits for the first.
	l.keys("bob", "Escape")
	l.waitFor("bob", "the add dialog closed", func(s string) bool { return !strings.Contains(s, "Add a contact") })
	l.keys("bob", "C-r")
	l.waitText("bob", "Chat request", `Calls itself "alice"`, "a accept", "A add", "d decline")
	step("Bob opened the request")

	// Bob accepts and adds her as "Alice" (replacing the offered name).
	l.keys("bob", "A")
	l.waitText("bob", "Name: alice", "enter accept")
	l.keys("bob", "C-u")
	l.typeText("bob", "Alice")
	l.keys("bob", "Enter")

	l.waitFor("alice", "header \"Bob ◆ connected\"", header("Bob ◆ connected"))
	l.waitFor("bob", "header \"Alice ◆ connected\"", header("Alice ◆ connected"))
	l.expect("alice", "status bar path", func(s string) bool { return strings.Contains(s, "direct, encrypted 127.0.0.1:") })
	l.expect("bob", "status bar path (the chat opened by accepting is the open one)", func(s string) bool {
		return strings.Contains(s, "direct, encrypted 127.0.0.1:")
	})
	step("connected")

	// They chat.
	const hello = "hello bob, it is alice"
	l.typeText("alice", hello)
	l.keys("alice", "Enter")
	l.waitText("bob", "Alice: "+hello)
	l.waitFor("alice", "\"alice: "+hello+"\" marked delivered ✓✓", tmuxEndsWith("alice: "+hello, hello+" ✓✓"))
	l.expect("bob", "Alice's row without an unread count (her chat is open and focused)", func(s string) bool {
		row, _ := tmuxContactRow(s, "Alice")
		return row == "› Alice"
	})
	const reply = "hi alice, bob here"
	l.typeText("bob", reply)
	l.keys("bob", "Enter")
	l.waitText("alice", "Bob: "+reply)
	l.waitFor("bob", "\"bob: "+reply+"\" marked delivered ✓✓", tmuxEndsWith("bob: "+reply, reply+" ✓✓"))
	l.expect("alice", "Bob's row without an unread count (his chat is open and focused)", func(s string) bool {
		row, _ := tmuxContactRow(s, "Bob")
		return row == "› Bob"
	})
	step("messages both ways delivered")

	// Bob quits (in the chat 'q' is text: ctrl+c).
	l.keys("bob", "C-c")
	l.waitExit("bob")
	l.waitFor("alice", "header saying Bob is no longer connected", func(s string) bool {
		h := tmuxChatHeader(s)
		return strings.HasPrefix(h, "Bob ") && !strings.Contains(h, "◆ connected")
	})
	step("Bob quit; Alice's screen says so")

	// Alice writes while he is away: stored and shown queued.
	const away = "ping while you were away"
	l.typeText("alice", away)
	l.keys("alice", "Enter")
	l.waitFor("alice", "\"alice: "+away+"\" marked queued ⏳", tmuxEndsWith("alice: "+away, away+" ⏳"))
	step("queued")

	// Bob comes back. They are contacts now: the chat comes back by itself,
	// with no prompt and no keystroke, and the queued message arrives.
	l.restart("bob")
	l.waitFor("alice", "\"alice: "+away+"\" marked delivered ✓✓", tmuxEndsWith("alice: "+away, away+" ✓✓"))
	step("queued message delivered after the restart, without a keystroke")
	l.expect("bob", "no chat request after the restart", func(s string) bool { return !strings.Contains(s, "wants to chat") })
	l.keys("bob", "Enter") // open Alice's chat (the only contact)
	l.waitText("bob", "Alice: "+away)
	l.expect("bob", "the earlier messages above the new one", func(s string) bool {
		return strings.Contains(s, "Alice: "+hello) && tmuxEndsWith("bob: "+reply, reply+" ✓✓")(s)
	})
	l.expect("bob", "header \"Alice ◆ connected\"", header("Alice ◆ connected"))
	l.expect("alice", "header \"Bob ◆ connected\" (nothing waits: the message is delivered)", header("Bob ◆ connected"))
	l.expect("alice", "Bob's contact entry saying just connected (nothing waits)", func(s string) bool {
		_, detail := tmuxContactRow(s, "Bob")
		return strings.HasPrefix(detail, "◆ connected ")
	})

	// Both quit cleanly: Alice the way the contacts pane offers (esc, then
	// q once the help line says so), Bob with ctrl+c.
	l.keys("alice", "Escape")
	l.waitText("alice", "q quit")
	l.keys("alice", "q")
	l.keys("bob", "C-c")
	l.waitExit("alice")
	l.waitExit("bob")
	l.checkNoRace()
	step("both quit")
}
