// Package tstest holds what Parley's tests share: waiting for a condition
// with a deadline, never with a fixed sleep. (The name and the shape of
// WaitFor come from tailscale's tstest.)
package tstest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// Backoff between two calls of a condition: the first retry comes soon,
// later ones no more often than every maxBackoff.
const (
	minBackoff = 5 * time.Millisecond
	maxBackoff = 100 * time.Millisecond
)

// deadlineGrace is how long before the test binary's deadline (go test
// -timeout) WaitFor gives up, so that the failure is reported and the
// test's cleanups run before the binary panics.
const deadlineGrace = time.Second

// WaitFor calls cond until it returns nil, with a short backoff between
// calls. If cond still fails after timeout, or close to t's deadline if
// that comes first, WaitFor fails t with the last error cond returned; so
// cond's error should say what it saw, not only that it was not yet so.
// cond is called at least once, from the test's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			var cancelDL context.CancelFunc
			ctx, cancelDL = context.WithDeadline(ctx, dl.Add(-deadlineGrace))
			defer cancelDL()
		}
	}
	start := time.Now()
	if err := poll(ctx, cond); err != nil {
		t.Fatalf("gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
}

// Poll calls cond until it returns nil or ctx ends, with the same backoff
// as WaitFor. It returns nil once cond succeeds; when ctx ends first it
// returns cond's last error wrapped together with ctx's. cond may use ctx
// itself: if its last call failed only because ctx ended, Poll reports
// the error before. Poll is for code without a testing.TB, or for a test
// that reports the failure itself.
func Poll(ctx context.Context, cond func() error) error {
	if err := poll(ctx, cond); err != nil {
		return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
	}
	return nil
}

// poll returns nil, or cond's last error once ctx has ended. If that
// last call failed only because ctx ended (cond uses the same context),
// the error before it says more and is returned instead.
func poll(ctx context.Context, cond func() error) error {
	var last error
	wait := minBackoff
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if last != nil && errors.Is(err, ctx.Err()) {
				return last
			}
			return err
		}
		last = err
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return last
		case <-timer.C:
		}
		wait = min(2*wait, maxBackoff)
	}
}
