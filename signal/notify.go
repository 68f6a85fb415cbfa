package signal

import (
	"fmt"

	"github.com/fsnotify/fsnotify"
)

// watchInbox asks the OS to report changes to dir (inotify on Linux, kqueue
// on macOS and the BSDs, ReadDirectoryChangesW on Windows), so a signal
// renamed into the inbox is read at once instead of at the next poll. The
// caller owns the watcher: it reads Events and Errors and closes it.
func watchInbox(dir string) (*fsnotify.Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch inbox: %w", err)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch inbox %s: %w", dir, err)
	}
	return w, nil
}

// arrival reports whether ev can mean a new signal file: a rename into the
// inbox is a Create on every backend, a file written in place a Write.
// Removals (our own acks) and attribute changes need no rescan.
func arrival(ev fsnotify.Event) bool {
	return ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write)
}
