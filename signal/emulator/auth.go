package emulator

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// AuthProject is the project the Auth emulators started here serve. A
// "demo-" project never reaches for Google's servers. The Auth emulator
// serves one project whatever API key is used, while the Firestore
// emulator accepts its tokens in any project: tests keep their Firestore
// data apart by project and share the Auth emulator.
const AuthProject = "demo-p2ptui"

// authStartLimit bounds the Auth emulator's start: the firebase CLI is a
// large Node program; on a loaded two-core machine it has taken a minute.
const authStartLimit = 3 * time.Minute

// AuthEmulator is one running Firebase Auth emulator (firebase-tools).
type AuthEmulator struct {
	// Host is host:port, the value for FIREBASE_AUTH_EMULATOR_HOST.
	Host string
	dir  string
	cmd  *exec.Cmd
	log  *lockedBuffer
}

// FirebaseCLI returns the firebase-tools command: $FIREBASE_CLI, else
// firebase on PATH.
func FirebaseCLI() (string, error) {
	if p := os.Getenv("FIREBASE_CLI"); p != "" {
		return p, nil
	}
	p, err := exec.LookPath("firebase")
	if err != nil {
		return "", errors.New("the firebase CLI (npm package firebase-tools, for the Auth emulator) is not installed")
	}
	return p, nil
}

// AuthAvailable reports why an Auth emulator cannot be started here, or nil.
func AuthAvailable() error {
	_, err := FirebaseCLI()
	return err
}

// StartAuth launches an Auth emulator on a free loopback port, offline
// (demo project, emulator UI off) and waits until it answers.
func StartAuth(ctx context.Context) (*AuthEmulator, error) {
	cli, err := FirebaseCLI()
	if err != nil {
		return nil, err
	}
	var ports [3]int
	for i := range ports {
		if ports[i], err = FreePort(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "p2ptui-auth-emulator-")
	if err != nil {
		return nil, err
	}
	// The hub and logging ports are the CLI's own; fixed defaults would
	// collide between emulators started side by side.
	conf := map[string]any{"emulators": map[string]any{
		"auth":              map[string]any{"host": "127.0.0.1", "port": ports[0]},
		"hub":               map[string]any{"host": "127.0.0.1", "port": ports[1]},
		"logging":           map[string]any{"host": "127.0.0.1", "port": ports[2]},
		"ui":                map[string]any{"enabled": false},
		"singleProjectMode": true,
	}}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(dir, "firebase.json"), b, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	e := &AuthEmulator{Host: fmt.Sprintf("127.0.0.1:%d", ports[0]), dir: dir, log: &lockedBuffer{}}
	cmd := exec.Command(cli, "emulators:start", "--only", "auth", "--project", AuthProject, "--non-interactive")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_UPDATE_NOTIFIER=1", "FIREBASE_CLI_DISABLE_TELEMETRY=1",
		// Its config store and hub locator file stay in our directory.
		"HOME="+dir, "TMPDIR="+dir)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the Auth emulator: %w", err)
	}
	e.cmd = cmd
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(authStartLimit)
	for time.Now().Before(deadline) {
		if authAnswers(e.Host) {
			return e, nil
		}
		select {
		case <-exited:
			e.Stop()
			return nil, fmt.Errorf("the Auth emulator exited during start-up:\n%s", e.log.String())
		case <-ctx.Done():
			e.Stop()
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	e.Stop()
	return nil, fmt.Errorf("the Auth emulator did not answer on %s within %v:\n%s", e.Host, authStartLimit, e.log.String())
}

func authAnswers(host string) bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get("http://" + host + "/")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop ends the emulator's process group and removes its directory.
func (e *AuthEmulator) Stop() {
	if e.cmd != nil && e.cmd.Process != nil {
		stopGroup(e.cmd)
		e.cmd = nil
	}
	if e.dir != "" {
		os.RemoveAll(e.dir)
		e.dir = ""
	}
}

// Log returns what the emulator printed so far.
func (e *AuthEmulator) Log() string { return e.log.String() }

// authAdmin calls one of the emulator's admin endpoints as the owner (the
// emulator accepts "Bearer owner" where the real service wants an OAuth
// token of an IAM principal).
func authAdmin(host, project, op string, body map[string]any) error {
	b, _ := json.Marshal(body)
	u := fmt.Sprintf("http://%s/identitytoolkit.googleapis.com/v1/projects/%s/accounts:%s", host, project, op)
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer owner")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		return fmt.Errorf("auth emulator %s: %s: %s", op, resp.Status, strings.TrimSpace(msg.String()))
	}
	return nil
}

// DisableUser disables an account in the Auth emulator at host, as a
// group's admin would in the Firebase console.
func DisableUser(host, project, uid string) error {
	return authAdmin(host, project, "update", map[string]any{"localId": uid, "disableUser": true})
}

// DeleteUser deletes an account in the Auth emulator at host.
func DeleteUser(host, project, uid string) error {
	return authAdmin(host, project, "delete", map[string]any{"localId": uid})
}

// LoadRules makes the Firestore emulator at host judge requests to project
// by the rules in source, the way `firebase deploy --only firestore:rules`
// does for a real project. Only clients presenting ID tokens are judged;
// the emulator's "owner" (the Go client's default) bypasses them.
func LoadRules(host, project, source string) error {
	body, _ := json.Marshal(map[string]any{"rules": map[string]any{"files": []map[string]string{{"name": "firestore.rules", "content": source}}}})
	u := fmt.Sprintf("http://%s/emulator/v1/projects/%s:securityRules", host, project)
	req, err := http.NewRequest(http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("load rules: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var msg bytes.Buffer
		msg.ReadFrom(resp.Body)
		return fmt.Errorf("load rules: %s: %s", resp.Status, strings.TrimSpace(msg.String()))
	}
	return nil
}

// TokenProject returns the project an ID token was issued for (its aud
// claim), which the Auth emulator's admin endpoints need: the emulator
// makes every account in its one project, whatever the API key.
func TokenProject(idToken string) (string, error) {
	parts := strings.Split(idToken, ".")
	if len(parts) != 3 {
		return "", errors.New("not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	var c struct {
		Aud string `json:"aud"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Aud == "" {
		return "", errors.New("token without an audience")
	}
	return c.Aud, nil
}
