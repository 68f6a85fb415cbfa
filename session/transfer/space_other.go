//go:build !unix && !windows

package transfer

// FreeSpace cannot tell on this system; the write fails when the disk is
// full instead.
func FreeSpace(dir string) (free uint64, known bool, err error) { return 0, false, nil }

func isNoSpace(err error) bool { return false }
