//go:build unix

package transfer

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// FreeSpace reports the bytes an unprivileged user may still write on the
// file system holding dir; known is false where the system cannot say.
func FreeSpace(dir string) (free uint64, known bool, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, false, fmt.Errorf("free space of %s: %w", dir, err)
	}
	// The field types differ between systems (Linux, the BSDs, macOS);
	// neither value is ever negative.
	return uint64(st.Bavail) * uint64(st.Bsize), true, nil
}

// isNoSpace reports whether err means the disk or the user's quota is full.
func isNoSpace(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
