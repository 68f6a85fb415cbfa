//go:build !windows

package signal

import "os"

// replaceFile renames src over dst; POSIX rename replaces atomically even
// while readers hold dst open.
func replaceFile(src, dst string) error { return os.Rename(src, dst) }
