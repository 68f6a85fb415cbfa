//go:build unix

package signal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/p2ptui/p2ptui/session/private"
)

func TestLocalRefusesMailboxOthersCanWrite(t *testing.T) {
	dir := t.TempDir()
	first, err := OpenLocal(dir, "alice001", nil)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	box := filepath.Join(dir, "inbox", "alice001")
	if err := os.Chmod(box, 0o733); err != nil {
		t.Fatal(err)
	}
	_, err = OpenLocal(dir, "alice001", nil)
	if !errors.Is(err, private.ErrExposed) || !strings.Contains(err.Error(), "chmod 700 "+box) {
		t.Fatalf("err %v; want a refusal naming the fix", err)
	}
	// Sending into it is refused too: an offer must not sit where others
	// could replace it.
	bob, err := OpenLocal(dir, "bob00001", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	if _, err := bob.Send(t.Context(), Signal{To: "alice001", Kind: KindOffer, SessionID: "s"}); !errors.Is(err, private.ErrExposed) {
		t.Fatalf("send into an exposed inbox: err %v", err)
	}
}

func TestLocalRefusesSymlinkedMailbox(t *testing.T) {
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "mbox")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLocal(link, "alice001", nil); !errors.Is(err, private.ErrNotPlain) {
		t.Fatalf("err %v; want the symbolic link refused", err)
	}
}

func TestLocalRefusesMailboxOfAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test needs root to give a directory away")
		}
		t.Skip("needs root to give a directory to another user")
	}
	dir := filepath.Join(t.TempDir(), "theirs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	_, err := OpenLocal(dir, "alice001", nil)
	if !errors.Is(err, private.ErrNotOwner) || !strings.Contains(err.Error(), "--signal-dir") {
		t.Fatalf("err %v; want ErrNotOwner suggesting --signal-dir", err)
	}
}
