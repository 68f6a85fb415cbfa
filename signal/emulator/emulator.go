// Package emulator starts and stops the official Cloud Firestore emulator
// for tests. It picks a Java >= 21 explicitly: under Java 17 the emulator's
// Listen stream breaks and snapshot listeners never deliver.
package emulator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Emulator is one running emulator process group.
type Emulator struct {
	// Host is host:port, the value for FIRESTORE_EMULATOR_HOST.
	Host  string
	java  string
	rules string
	cmd   *exec.Cmd
	log   *lockedBuffer
}

// lockedBuffer collects the emulator's output, written by exec's copying
// goroutines while a failing test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// FindJava returns a java binary of version 21 or newer: $JAVA if it
// qualifies, else the newest under /usr/lib/jvm.
func FindJava() (string, error) {
	cands := []string{}
	if j := os.Getenv("JAVA"); j != "" {
		cands = append(cands, j)
	}
	matches, _ := filepath.Glob("/usr/lib/jvm/*/bin/java")
	cands = append(cands, matches...)
	re := regexp.MustCompile(`java\.specification\.version = (\d+)`)
	for _, c := range cands {
		out, err := exec.Command(c, "-XshowSettings:properties", "-version").CombinedOutput()
		if err != nil {
			continue
		}
		m := re.FindSubmatch(out)
		if m == nil {
			continue
		}
		if v, _ := strconv.Atoi(string(m[1])); v >= 21 {
			return c, nil
		}
	}
	return "", errors.New("no Java >= 21 found in $JAVA or /usr/lib/jvm (the Firestore emulator's Listen stream needs it)")
}

// Available reports why an emulator cannot be started here, or nil.
func Available() error {
	if _, err := exec.LookPath("gcloud"); err != nil {
		return errors.New("gcloud (with the Firestore emulator) is not installed")
	}
	_, err := FindJava()
	return err
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start launches an emulator on 127.0.0.1:port (a free port when port is 0)
// and waits until it answers.
func Start(ctx context.Context, port int) (*Emulator, error) {
	return StartWithRules(ctx, port, "")
}

// StartWithRules is Start with a security rules file enforced for clients
// that present Firebase ID tokens (the Go server client bypasses rules).
func StartWithRules(ctx context.Context, port int, rules string) (*Emulator, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	java, _ := FindJava()
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	e := &Emulator{Host: fmt.Sprintf("127.0.0.1:%d", port), java: java, rules: rules}
	if err := e.launch(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Emulator) launch(ctx context.Context) error {
	e.log = &lockedBuffer{}
	args := []string{"emulators", "firestore", "start", "--host-port=" + e.Host, "--quiet"}
	if e.rules != "" {
		args = append(args, "--rules="+e.rules)
	}
	cmd := exec.Command("gcloud", args...)
	cmd.Env = append(os.Environ(), "JAVA="+e.java, "CLOUDSDK_CORE_DISABLE_PROMPTS=1")
	cmd.Stdout = e.log
	cmd.Stderr = e.log
	// The launcher forks java: own a process group so Stop ends both.
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start firestore emulator: %w", err)
	}
	e.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if e.answers() {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("firestore emulator exited during start-up:\n%s", e.log.String())
		case <-ctx.Done():
			e.Stop()
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	e.Stop()
	return fmt.Errorf("firestore emulator did not answer on %s within 90 s", e.Host)
}

func (e *Emulator) answers() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + e.Host + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop kills the emulator's process group and waits until its port is closed.
func (e *Emulator) Stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	stopGroup(e.cmd)
	for i := 0; i < 50 && e.answers(); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	e.cmd = nil
}

// Restart stops the emulator and starts it again on the same port; all data
// is lost, as with a real outage of an in-memory emulator.
func (e *Emulator) Restart(ctx context.Context) error {
	e.Stop()
	return e.launch(ctx)
}

// Log returns what the emulator printed so far.
func (e *Emulator) Log() string { return e.log.String() }

// Reset deletes every document of project in the emulator.
func Reset(host, project string) error {
	req, _ := http.NewRequest(http.MethodDelete, "http://"+host+"/emulator/v1/projects/"+project+"/databases/(default)/documents", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reset emulator: %s", resp.Status)
	}
	return nil
}
