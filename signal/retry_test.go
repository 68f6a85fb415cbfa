package signal

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestCreateRetrying drives the write retry with scripted outcomes: failures
// in passing are retried, a create that landed although it seemed to fail is
// success, and lasting errors or the caller's own cancellation are not
// retried.
func TestCreateRetrying(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cases := []struct {
		name      string
		ctx       context.Context
		outcomes  []codes.Code // one per attempt; OK ends the script
		wantCalls int
		wantCode  codes.Code
	}{
		{"first try", context.Background(), []codes.Code{codes.OK}, 1, codes.OK},
		{"server cancelled, then stored", context.Background(), []codes.Code{codes.Canceled, codes.OK}, 2, codes.OK},
		{"seemed to fail but was stored", context.Background(), []codes.Code{codes.Unavailable, codes.AlreadyExists}, 2, codes.OK},
		{"already exists at once is a real conflict", context.Background(), []codes.Code{codes.AlreadyExists}, 1, codes.AlreadyExists},
		{"lasting error", context.Background(), []codes.Code{codes.InvalidArgument}, 1, codes.InvalidArgument},
		{"gives up after the bound", context.Background(), []codes.Code{codes.Unavailable, codes.Unavailable, codes.Unavailable, codes.OK}, writeRetries, codes.Unavailable},
		{"the caller gave up", cancelled, []codes.Code{codes.Canceled, codes.OK}, 1, codes.Canceled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := createRetrying(c.ctx, func(context.Context) error {
				code := c.outcomes[calls]
				calls++
				if code == codes.OK {
					return nil
				}
				return status.Error(code, "scripted")
			})
			if calls != c.wantCalls {
				t.Errorf("%d attempts, want %d", calls, c.wantCalls)
			}
			if got := status.Code(err); got != c.wantCode {
				t.Errorf("result %v, want %v", err, c.wantCode)
			}
		})
	}
	if err := retryTransient(context.Background(), func(context.Context) error { return errors.New("plain") }); err == nil {
		t.Error("a plain error vanished")
	}
}
