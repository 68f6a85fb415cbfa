package main

// Two real p2ptui processes join a group with the code its admin made and
// chat through it, the way strangers would: the Firebase Auth emulator
// signs them in, the Firestore emulator judges every request by the
// shipped rules. Headless mode: commands on stdin, JSON events on stdout.
// Without the emulators the test skips, except under CI=true.
//
//	go test -race -count=1 -run TestJoinEndToEnd -v .

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/firestore"

	"github.com/p2ptui/p2ptui/signal/emulator"
)

// e2eStep bounds each expectation; it guards against a hang, it is not a
// speed requirement.
const e2eStep = 60 * time.Second

// joinEvent is the part of a headless event line the test reads.
type joinEvent struct {
	Ev      string `json:"ev"`
	ID      string `json:"id"`
	Backend string `json:"backend"`
	From    string `json:"from"`
	Peer    string `json:"peer"`
	Session string `json:"session"`
	Body    string `json:"body"`
	Words   string `json:"words"`
	OK      *bool  `json:"ok"`
}

// proc is one headless p2ptui.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr lockedBuffer // written by the process's pipe copier
	done   chan struct{}

	mu     sync.Mutex
	events []joinEvent
	used   []bool
	wake   chan struct{}
}

type joinLab struct {
	t        *testing.T
	bin      string
	data     string
	fsHost   string
	authHost string
}

func (l *joinLab) env() []string {
	return append(os.Environ(), "FIRESTORE_EMULATOR_HOST="+l.fsHost, "FIREBASE_AUTH_EMULATOR_HOST="+l.authHost, "GOOGLE_CLOUD_PROJECT=")
}

// run runs p2ptui to its end (for --invite and refused joins).
func (l *joinLab) run(args ...string) (stdout, stderr string, code int) {
	l.t.Helper()
	cmd := exec.Command(l.bin, append([]string{"--data-dir", l.data, "--log", filepath.Join(l.data, "run.log")}, args...)...)
	cmd.Env = l.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code < 0 {
		l.t.Fatalf("p2ptui %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// start starts a headless p2ptui on profile name and waits for ready.
func (l *joinLab) start(name string, args ...string) *proc {
	l.t.Helper()
	all := append([]string{"--headless", "--data-dir", l.data, "--profile", name, "--name", name,
		"--stun", "none", "--listen", "127.0.0.1:0", "--log", filepath.Join(l.data, name+".log")}, args...)
	p := &proc{t: l.t, name: name, cmd: exec.Command(l.bin, all...), done: make(chan struct{}), wake: make(chan struct{}, 1)}
	p.cmd.Env = l.env()
	p.cmd.Stderr = &p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		l.t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var e joinEvent
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				l.t.Errorf("%s: not an event: %q", name, sc.Text())
				continue
			}
			p.mu.Lock()
			p.events, p.used = append(p.events, e), append(p.used, false)
			p.mu.Unlock()
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
		p.cmd.Wait()
	}()
	l.t.Cleanup(p.kill)
	return p
}

func (p *proc) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("%s: %q: %v", p.name, line, err)
	}
}

// expect waits for the earliest unconsumed event that ok accepts.
func (p *proc) expect(what string, ok func(joinEvent) bool) joinEvent {
	p.t.Helper()
	deadline := time.After(e2eStep)
	for {
		if e, found := p.take(ok); found {
			return e
		}
		select {
		case <-p.wake:
		case <-p.done:
			// Everything it printed is in: one last look.
			if e, found := p.take(ok); found {
				return e
			}
			p.fail(what, "p2ptui ended")
		case <-deadline:
			p.fail(what, fmt.Sprintf("nothing within %v", e2eStep))
		}
	}
}

// take consumes the earliest unconsumed event that ok accepts.
func (p *proc) take(ok func(joinEvent) bool) (joinEvent, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.events {
		if !p.used[i] && ok(e) {
			p.used[i] = true
			return e, true
		}
	}
	return joinEvent{}, false
}

func (p *proc) fail(what, why string) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, e := range p.events {
		j, _ := json.Marshal(e)
		fmt.Fprintf(&b, "  %s\n", j)
	}
	p.t.Fatalf("%s: waiting for %s: %s; events:\n%s\nstderr:\n%s", p.name, what, why, b.String(), p.stderr.String())
}

func is(ev string) func(joinEvent) bool { return func(e joinEvent) bool { return e.Ev == ev } }

// quit ends the program the way a user does and waits for it.
func (p *proc) quit() {
	p.t.Helper()
	p.send("quit")
	select {
	case <-p.done:
	case <-time.After(e2eStep):
		p.t.Fatalf("%s did not quit", p.name)
	}
	if c := p.cmd.ProcessState.ExitCode(); c != 0 {
		p.t.Errorf("%s exited with %d: %s", p.name, c, p.stderr.String())
	}
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

func TestJoinEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the end-to-end join test")
	}
	l := &joinLab{t: t, data: t.TempDir()}
	l.fsHost, l.authHost = emulator.Need(t)
	l.bin = filepath.Join(t.TempDir(), "p2ptui")
	// -race: a data race in the real program's wiring fails its exit
	// status.
	if out, err := exec.Command("go", "build", "-race", "-o", l.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	project := fmt.Sprintf("p2ptui-join-%d", time.Now().UnixNano()%1e9)
	rules, err := os.ReadFile(filepath.Join("signal", "deploy", "firestore.rules"))
	if err != nil {
		t.Fatal(err)
	}
	if err := emulator.LoadRules(l.fsHost, project, string(rules)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emulator.Reset(l.fsHost, project) })

	// The admin makes the code.
	code, hint, status := l.run("--invite", "--project", project, "--api-key", "test-api-key-0001")
	code = strings.TrimSpace(code)
	if status != 0 || !strings.HasPrefix(code, "p2ptui1."+project+".") || !strings.Contains(hint, "p2ptui --join "+code) {
		t.Fatalf("--invite: %d %q %q", status, code, hint)
	}

	// A mistyped code stops at once and changes nothing.
	typo := code[:len(code)-1] + map[bool]string{true: "a", false: "b"}[code[len(code)-1] != 'a']
	_, msg, status := l.run("--profile", "carol", "--join", typo)
	if status != 2 || !strings.Contains(msg, "this join code has a typo") {
		t.Errorf("mistyped code: exit %d, %q", status, msg)
	}
	// A good code for a project whose rules are not p2ptui's: refused in
	// words, the profile stays on the local mailbox.
	denied := project + "-x"
	if err := emulator.LoadRules(l.fsHost, denied, "rules_version = '2';\nservice cloud.firestore { match /databases/{d}/documents { match /{x=**} { allow read, write: if false; } } }"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emulator.Reset(l.fsHost, denied) })
	deniedCode, _, _ := l.run("--invite", "--project", denied, "--api-key", "test-api-key-0001")
	_, msg, status = l.run("--profile", "carol", "--headless", "--join", strings.TrimSpace(deniedCode))
	if status != 1 || !strings.Contains(msg, "refused by the signalling project's security rules") || !strings.Contains(msg, "nothing changed") || strings.Contains(msg, "rpc error") {
		t.Errorf("code of a project without p2ptui's rules: exit %d, %q", status, msg)
	}
	if _, err := os.Stat(filepath.Join(l.data, "profiles", "carol", "signalling.json")); !os.IsNotExist(err) {
		t.Errorf("a refused code was stored: %v", err)
	}

	// Two strangers join and chat.
	alice := l.start("alice", "--join", code)
	bob := l.start("bob", "--join", code)
	ar, br := alice.expect("ready", is("ready")), bob.expect("ready", is("ready"))
	for _, r := range []joinEvent{ar, br} {
		if r.Backend != "firestore "+project {
			t.Fatalf("backend %q, want firestore %s", r.Backend, project)
		}
	}
	alice.send("add bob " + br.ID)
	alice.expect("contact", is("contact"))
	alice.send("connect bob")
	offer := bob.expect("offer", is("offer"))
	if offer.From != ar.ID {
		t.Fatalf("offer from %q, want alice %q", offer.From, ar.ID)
	}
	bob.send("accept " + offer.Session + " alice")
	alice.expect("connected", is("connected"))
	bob.expect("connected", is("connected"))
	alice.send("send bob hello through the rules")
	if m := bob.expect("message", is("message")); m.Body != "hello through the rules" || m.From != ar.ID {
		t.Fatalf("bob got %+v", m)
	}
	bob.send("send alice hello back")
	if m := alice.expect("message", is("message")); m.Body != "hello back" {
		t.Fatalf("alice got %+v", m)
	}

	// What the admin sees: each ID claimed by its own account, presence
	// bound to it, and nothing else of theirs.
	raw := ownerClient(t, l.fsHost, project)
	uids := map[string]bool{}
	for _, id := range []string{ar.ID, br.ID} {
		claim, err := raw.Collection("claims").Doc(id).Get(context.Background())
		if err != nil {
			t.Fatalf("claim of %s: %v", id, err)
		}
		uid, _ := claim.Data()["uid"].(string)
		uids[uid] = true
		presence, err := raw.Collection("peers").Doc(id).Get(context.Background())
		if err != nil || presence.Data()["uid"] != uid {
			t.Errorf("presence of %s: %v %v, want bound to %q", id, presence.Data(), err, uid)
		}
	}
	if len(uids) != 2 || uids[""] {
		t.Errorf("claims by accounts %v, want two", uids)
	}

	// Bob quits and comes back without flags: the group is in his profile.
	bob.quit()
	alice.expect("bob gone (a clean quit: closed, not a failure)", is("closed"))
	bob = l.start("bob")
	if r := bob.expect("ready", is("ready")); r.Backend != "firestore "+project || r.ID != br.ID {
		t.Fatalf("bob restarted on %q as %q", r.Backend, r.ID)
	}
	alice.send("send bob are you back?")
	for {
		e := bob.expect("offer or connected", func(e joinEvent) bool { return e.Ev == "offer" || e.Ev == "connected" })
		if e.Ev == "connected" {
			break
		}
		bob.send("accept " + e.Session)
	}
	if m := bob.expect("queued message", is("message")); m.Body != "are you back?" {
		t.Fatalf("bob got %+v", m)
	}
	// And his profile tells the code to a friend.
	if out, _, status := l.run("--profile", "bob", "--invite"); status != 0 || strings.TrimSpace(out) != code {
		t.Errorf("bob's --invite: %d %q, want %q", status, out, code)
	}
	alice.quit()
	bob.quit()
	for _, p := range []*proc{alice, bob} {
		if strings.Contains(p.stderr.String(), "DATA RACE") {
			t.Errorf("%s: %s", p.name, p.stderr.String())
		}
	}
}

// ownerClient reads the emulator past the rules, as the project's admin
// does in the console.
func ownerClient(t *testing.T, host, project string) *firestore.Client {
	t.Helper()
	t.Setenv("FIRESTORE_EMULATOR_HOST", host)
	c, err := firestore.NewClient(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
