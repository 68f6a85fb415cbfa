//go:build !linux

package signal

import (
	"context"
	"errors"
)

// watchInbox has no kernel notification to offer here; the listener polls.
func watchInbox(ctx context.Context, dir string, wake chan<- struct{}) (read, closer func(), err error) {
	return nil, nil, errors.New("no file-system notification on this platform")
}
