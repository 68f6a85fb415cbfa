package signal

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// replaceFile renames src over dst. On Windows a rename onto a file that
// another process has open (a peer reading our presence that instant)
// fails with a sharing violation or access denied until it closes it;
// such reads take microseconds, so a few short retries ride them out.
func replaceFile(src, dst string) error {
	var err error
	for range 10 {
		err = os.Rename(src, dst)
		if err == nil || !(errors.Is(err, windows.ERROR_SHARING_VIOLATION) || errors.Is(err, windows.ERROR_ACCESS_DENIED)) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
	return err
}
