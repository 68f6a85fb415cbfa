package signal

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watchInbox asks the kernel (inotify) to wake the listener as soon as a
// signal file is renamed into dir, so local delivery does not wait for the
// next poll. The returned functions are run by the caller's owned
// goroutines: read until the watch closes, and close it when ctx ends.
func watchInbox(ctx context.Context, dir string, wake chan<- struct{}) (read, closer func(), err error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	// A non-blocking descriptor joins the runtime poller, so Close
	// interrupts a pending Read.
	f := os.NewFile(uintptr(fd), "inotify")
	read = func() {
		buf := make([]byte, 4096)
		for {
			if _, err := f.Read(buf); err != nil {
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
	closer = func() {
		<-ctx.Done()
		f.Close()
	}
	return read, closer, nil
}
