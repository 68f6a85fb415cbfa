package ui_test

// The product across real NATs: two headless p2ptui processes, each in its
// own host namespace behind its own Linux NAT (testdata/natlab/lab.sh), find
// each other through a Firestore emulator running on the lab's "internet"
// and coturn for STUN, punch, handshake and chat. Needs root, the emulator
// (gcloud + Java >= 21), coturn, iptables and curl; skipped without them
// except under CI=true, where it fails.
//
//	go test -race -run TestLabEndToEnd -v ./ui/
//	go test -run TestLabConnectFigures -v ./ui/ -args -lab.figures   # the figures

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/p2ptui/p2ptui/signal/emulator"
	"github.com/p2ptui/p2ptui/ui"
)

var (
	labFigures = flag.Bool("lab.figures", false, "run TestLabConnectFigures: time connecting across the NAT lab")
	labRuns    = flag.Int("lab.runs", 20, "TestLabConnectFigures and TestLabPathFigures: connections to time (per setup)")
	labLoss    = flag.Int("lab.loss", 0, "TestLabConnectFigures: UDP loss in percent on the -lab.lossy nodes")
	labLossy   = flag.String("lab.lossy", "ra", "TestLabConnectFigures: where the loss is: ra,rb (a NAT's WAN side), a,b (a host's link)")
	labLAN     = flag.Bool("lab.lan", false, "TestLabConnectFigures: both hosts behind one NAT, talking over their LAN")
)

// labEmulatorAddr is where the lab's Firestore emulator listens: on the
// "internet" bridge, reachable from both hosts through their NATs.
const labEmulatorAddr = "203.0.113.1:8085"

type e2eLab struct {
	t    *testing.T
	sh   string
	bin  string
	name string
	info map[string]string
	// sigDir is the local mailbox both hosts signal through when the lab
	// runs no emulator (lab_paths_e2e_test.go).
	sigDir string
}

func missingPrereq(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// needLab checks the prerequisites and builds the p2ptui binary.
func needLab(t *testing.T) (sh, bin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("the NAT-lab end-to-end test takes a minute: skipped in -short mode")
	}
	if err := emulator.Available(); err != nil {
		missingPrereq(t, "no Firestore emulator: "+err.Error())
	}
	return needLabTools(t)
}

// needLabTools checks what every lab needs (root and its tools) and builds
// the p2ptui binary.
func needLabTools(t *testing.T) (sh, bin string) {
	t.Helper()
	if testing.Short() {
		t.Skip("the NAT-lab end-to-end tests take minutes: skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		missingPrereq(t, "the NAT lab needs root (network namespaces, iptables)")
	}
	for _, tool := range []string{"ip", "iptables", "ip6tables", "conntrack", "turnserver", "curl", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			missingPrereq(t, tool+" not found (apt-get install iproute2 iptables conntrack coturn curl procps)")
		}
	}
	sh, err := filepath.Abs("../testdata/natlab/lab.sh")
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(t.TempDir(), "p2ptui")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build p2ptui: %v\n%s", err, out)
	}
	return sh, bin
}

// upLab builds a lab with an emulator on its internet; everything is
// removed when the test ends, failed or not.
func upLab(t *testing.T, sh, bin string, kinds ...string) *e2eLab {
	t.Helper()
	l := upLabOnly(t, sh, bin, kinds...)
	l.startEmulator()
	return l
}

// upLabOnly builds a lab (lab.sh up with args), removed when the test
// ends, failed or not.
func upLabOnly(t *testing.T, sh, bin string, args ...string) *e2eLab {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	l := &e2eLab{t: t, sh: sh, bin: bin, name: "e" + hex.EncodeToString(b[:]), info: map[string]string{}}
	t.Cleanup(func() {
		// Also stops the emulator and the peers: they live in the lab's
		// namespaces.
		if out, err := exec.Command("bash", sh, "down", l.name).CombinedOutput(); err != nil {
			t.Errorf("lab.sh down %s: %v\n%s", l.name, err, out)
		}
	})
	out := l.run(append([]string{"up", l.name}, args...)...)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			l.info[k] = v
		}
	}
	return l
}

func (l *e2eLab) run(args ...string) string {
	l.t.Helper()
	cmd := exec.Command("bash", append([]string{l.sh}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		l.t.Fatalf("lab.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func (l *e2eLab) startEmulator() {
	l.t.Helper()
	java, err := emulator.FindJava()
	if err != nil {
		l.t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(l.t.TempDir(), "emulator.log"))
	if err != nil {
		l.t.Fatal(err)
	}
	cmd := exec.Command("bash", l.sh, "exec", l.name, "inet", "gcloud", "emulators", "firestore", "start", "--host-port="+labEmulatorAddr, "--quiet")
	cmd.Env = append(os.Environ(), "JAVA="+java, "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go cmd.Wait() // reaped here; stopped by lab.sh down, which kills the namespace's processes
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		// Asked from host a: through its NAT, as the app will.
		if exec.Command("bash", l.sh, "exec", l.name, "a", "curl", "-fsS", "-m", "1", "http://"+labEmulatorAddr+"/").Run() == nil {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	logf.Close()
	b, _ := os.ReadFile(logf.Name())
	l.t.Fatalf("the lab's emulator did not answer within 90 s:\n%s", b)
}

// peer is one headless p2ptui process in a lab host.
type peer struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan ui.Event
	dir    string
	id     string
	exited chan struct{}
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (l *e2eLab) start(node, name, project string) *peer {
	l.t.Helper()
	return l.startIn(filepath.Join(l.t.TempDir(), name), node, name, project)
}

// startIn starts a peer on the profile in dir (a restart keeps its
// identity and contacts).
func (l *e2eLab) startIn(dir, node, name, project string) *peer {
	l.t.Helper()
	return l.startCmd(dir, node, name, []string{"FIRESTORE_EMULATOR_HOST=" + labEmulatorAddr},
		"--project", project, "--stun", l.info["STUN1"]+","+l.info["STUN2"])
}

// startCmd starts p2ptui headless in a lab host with the profile in dir,
// env added to its environment and args after the common flags.
func (l *e2eLab) startCmd(dir, node, name string, env []string, args ...string) *peer {
	l.t.Helper()
	args = append(append([]string{l.sh, "exec", l.name, node, "env"}, env...),
		append([]string{l.bin, "--headless", "--data-dir", dir, "--log", filepath.Join(dir, "p2ptui.log"), "--name", name}, args...)...)
	p := &peer{t: l.t, name: name, dir: dir, events: make(chan ui.Event, 4096)}
	p.cmd = exec.Command("bash", args...)
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		l.t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		l.t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	done := make(chan struct{})
	p.exited = done
	go func() {
		defer close(done)
		defer close(p.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var ev ui.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				l.t.Errorf("%s printed a line that is not an event: %q", name, sc.Text())
				continue
			}
			p.events <- ev
		}
	}()
	l.t.Cleanup(func() {
		p.stdin.Close()
		waited := make(chan error, 1)
		go func() { <-done; waited <- p.cmd.Wait() }()
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-waited
		}
		if l.t.Failed() {
			p.mu.Lock()
			l.t.Logf("%s stderr:\n%s", name, p.stderr.String())
			p.mu.Unlock()
			if b, err := os.ReadFile(filepath.Join(dir, "p2ptui.log")); err == nil {
				l.t.Logf("%s log (tail):\n%s", name, tail(string(b), 60))
			}
		}
	})
	ready := p.await("ready", 30*time.Second, nil)
	p.id = ready.ID
	l.t.Logf("%s is %s (%s)", name, p.id, ready.NAT)
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

func (p *peer) send(line string) {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("%s: write command %q: %v", p.name, line, err)
	}
}

// await returns the next event of kind ev that match accepts (nil: any),
// failing on a failure or error event or a timeout. Other events pass by.
func (p *peer) await(ev string, d time.Duration, match func(ui.Event) bool) ui.Event {
	p.t.Helper()
	timeout := time.After(d)
	for {
		select {
		case e, ok := <-p.events:
			if !ok {
				p.t.Fatalf("%s exited while waiting for %q", p.name, ev)
			}
			if e.Ev == ev && (match == nil || match(e)) {
				return e
			}
			if (e.Ev == "failure" || e.Ev == "error") && ev != "failure" {
				p.t.Fatalf("%s: %s while waiting for %q: %s %s", p.name, e.Ev, ev, e.Reason, e.Words)
			}
		case <-timeout:
			p.t.Fatalf("%s: no %q event within %v", p.name, ev, d)
		}
	}
}

// connect makes a call b accepts and returns when both say connected.
func connect(t *testing.T, a, b *peer) (ui.Event, ui.Event) {
	t.Helper()
	// b has a as a contact, so it answers by itself: no prompt.
	a.send("connect " + b.name)
	// Generous: the first request to a freshly started emulator on a busy
	// machine can take seconds (the JVM is still warming up).
	ca := a.await("connected", time.Minute, func(e ui.Event) bool { return e.Peer == b.id })
	cb := b.await("connected", time.Minute, func(e ui.Event) bool { return e.Peer == a.id })
	return ca, cb
}

func TestLabEndToEnd(t *testing.T) {
	sh, bin := needLab(t)
	// One after the other: each lab runs its own emulator JVM, and two at
	// once on a small machine make both slow.
	t.Run("port-restricted both sides, 10% loss, 500 messages each way", func(t *testing.T) {
		l := upLab(t, sh, bin, "port-restricted", "port-restricted")
		a, b := l.start("a", "alice", "lab"), l.start("b", "bob", "lab")
		a.send("add bob " + b.id)
		b.send("add alice " + a.id)
		a.await("contact", 10*time.Second, nil)
		b.await("contact", 10*time.Second, nil)
		ca, _ := connect(t, a, b)
		if ca.Path != "direct" || ca.Encrypted == nil || !*ca.Encrypted {
			t.Errorf("connected event says path %q encrypted %v, want direct and encrypted", ca.Path, ca.Encrypted)
		}
		t.Logf("path %s <-> %s", ca.Local, ca.Remote)
		l.run("loss", l.name, "10")

		const n = 500
		var wg sync.WaitGroup
		check := func(from, to *peer) {
			defer wg.Done()
			for i := range n {
				from.send(fmt.Sprintf("send %s %s-%03d", to.name, from.name, i))
			}
			var got []string
			receipts := map[string]int{}
			var sentIDs []string
			deadline := time.After(3 * time.Minute)
			// to's messages and from's receipts arrive on two streams.
			for len(got) < n || len(receipts) < n {
				select {
				case e, ok := <-to.events:
					if !ok {
						t.Errorf("%s exited", to.name)
						return
					}
					if e.Ev == "message" && e.From == from.id {
						got = append(got, e.Body)
					}
				case e, ok := <-from.events:
					if !ok {
						t.Errorf("%s exited", from.name)
						return
					}
					switch e.Ev {
					case "queued", "sent":
						if !slices.Contains(sentIDs, e.ID) {
							sentIDs = append(sentIDs, e.ID)
						}
					case "receipt":
						if e.To == to.id {
							receipts[e.ID]++
						}
					case "failure", "error":
						t.Errorf("%s: %s: %s %s", from.name, e.Ev, e.Reason, e.Words)
						return
					}
				case <-deadline:
					t.Errorf("%s -> %s: after 3 minutes %d of %d messages arrived and %d receipts came back", from.name, to.name, len(got), n, len(receipts))
					return
				}
			}
			for i, body := range got {
				if want := fmt.Sprintf("%s-%03d", from.name, i); body != want {
					t.Errorf("%s -> %s: message %d is %q, want %q (every message once, in order)", from.name, to.name, i, body, want)
					return
				}
			}
			for id, c := range receipts {
				if c != 1 {
					t.Errorf("%s: %d receipts for message %s", from.name, c, id)
				}
			}
		}
		// The two directions run at once but read different streams: a's
		// messages arrive on b.events, whose other events (b's receipts)
		// the reverse direction also wants. Run them one after another.
		wg.Add(1)
		check(a, b)
		wg.Add(1)
		check(b, a)
		wg.Wait()
	})
	t.Run("symmetric against symmetric without a relay fails with the symmetric-NAT reason", func(t *testing.T) {
		l := upLab(t, sh, bin, "symmetric", "symmetric")
		a, b := l.start("a", "alice", "lab"), l.start("b", "bob", "lab")
		a.send("add bob " + b.id)
		b.send("add alice " + a.id)
		a.await("contact", 10*time.Second, nil)
		b.await("contact", 10*time.Second, nil)
		a.send("connect bob")
		start := time.Now()
		f := a.await("failure", time.Minute, func(e ui.Event) bool { return e.Peer == b.id })
		t.Logf("failure after %v: %s: %s", time.Since(start).Round(time.Millisecond), f.Reason, f.Words)
		if !strings.Contains(f.Reason, "symmetric") || !strings.Contains(strings.ToLower(f.Words), "symmetric") || !strings.Contains(f.Words, "--turn") {
			t.Errorf("failure reason %q / %q does not name the symmetric NAT and the relay that would help", f.Reason, f.Words)
		}
	})
}

// quit asks the peer to leave and waits until it has.
func (p *peer) quit() {
	p.t.Helper()
	p.send("quit")
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("%s did not quit within 20 s", p.name)
	}
}

// TestLabConnectFigures times connecting across two port-restricted NATs
// with the Firestore emulator as signalling, the way a person does it: two
// programs that have each other as contacts, one says connect. Each run
// uses fresh profiles, so every run is a first contact (no automatic
// reconnection races the measurement). The connected event splits the time
// into signalling (offer out, answer back), punching and the Noise
// handshake. -lab.loss drops that share of UDP datagrams on the nodes
// -lab.lossy names (ra: one NAT's WAN side; a: host a's link, which with
// -lab.lan, both hosts behind one NAT, is a lossy LAN).
func TestLabConnectFigures(t *testing.T) {
	if !*labFigures {
		t.Skip("figures only with -args -lab.figures")
	}
	sh, bin := needLab(t)
	kinds := []string{"port-restricted", "port-restricted"}
	where := "across two port-restricted NATs"
	if *labLAN {
		kinds = []string{"port-restricted", "-", "--same-nat"}
		where = "between two hosts on one LAN (behind one NAT)"
	}
	l := upLab(t, sh, bin, kinds...)
	pair := func(run int) (*peer, *peer) {
		dir := t.TempDir()
		a := l.startIn(filepath.Join(dir, "alice"), "a", "alice", "lab")
		b := l.startIn(filepath.Join(dir, "bob"), "b", "bob", "lab")
		a.send("add bob " + b.id)
		b.send("add alice " + a.id)
		a.await("contact", 10*time.Second, nil)
		b.await("contact", 10*time.Second, nil)
		return a, b
	}
	// A first call warms the emulator's JVM; it is not counted.
	a, b := pair(-1)
	connect(t, a, b)
	a.quit()
	b.quit()
	if *labLoss > 0 {
		l.run(append([]string{"loss", l.name, strconv.Itoa(*labLoss)}, strings.Split(*labLossy, ",")...)...)
		where += fmt.Sprintf(", %d%% UDP loss on %s", *labLoss, *labLossy)
	}
	var total, sig, pun, hs []time.Duration
	ms := func(f *float64) time.Duration {
		if f == nil {
			t.Fatal("connected event without its timing split")
		}
		return time.Duration(*f * float64(time.Millisecond))
	}
	for i := range *labRuns {
		a, b := pair(i)
		start := time.Now()
		ca, _ := connect(t, a, b)
		total = append(total, time.Since(start))
		sig, pun, hs = append(sig, ms(ca.SignalMs)), append(pun, ms(ca.PunchMs)), append(hs, ms(ca.HandshakeMs))
		t.Logf("run %d: %v = signalling %v + punching %v + handshake %v", i, total[i].Round(time.Millisecond), sig[i], pun[i], hs[i])
		a.quit()
		b.quit()
	}
	pct := func(d []time.Duration, q int) time.Duration {
		s := slices.Clone(d)
		slices.Sort(s)
		return s[(len(s)*q+99)/100-1].Round(100 * time.Microsecond)
	}
	fmt.Printf("connect -> connected, encrypted, %s, Firestore emulator, %d runs\n", where, len(total))
	fmt.Printf("%-28s %10s %10s %10s\n", "", "p50", "p95", "max")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{{"total (seen by the test)", total}, {"signalling", sig}, {"punching", pun}, {"handshake", hs}} {
		fmt.Printf("%-28s %10v %10v %10v\n", row.name, pct(row.d, 50), pct(row.d, 95), pct(row.d, 100))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
