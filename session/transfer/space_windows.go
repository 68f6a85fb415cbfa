//go:build windows

package transfer

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows"
)

// FreeSpace reports the bytes the user may still write on the volume
// holding dir (quotas included); known is false where the system cannot say.
func FreeSpace(dir string) (free uint64, known bool, err error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, false, fmt.Errorf("free space of %s: %w", dir, err)
	}
	var avail, total, totalFree uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &totalFree); err != nil {
		return 0, false, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return avail, true, nil
}

// isNoSpace reports whether err means the disk or the user's quota is full.
func isNoSpace(err error) bool {
	return errors.Is(err, windows.ERROR_DISK_FULL) || errors.Is(err, windows.ERROR_HANDLE_DISK_FULL)
}
