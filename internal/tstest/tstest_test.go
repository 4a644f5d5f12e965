package tstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTB records what WaitFor reports; its deadline is deadline if set.
type fakeTB struct {
	testing.TB // nil: WaitFor must call only what is overridden
	deadline   time.Time
	failed     bool
	msg        string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
}

func (f *fakeTB) Deadline() (time.Time, bool) { return f.deadline, !f.deadline.IsZero() }

// failUntil returns a condition that fails with "attempt n" until its
// nth call; with n = 0, for ever.
func failUntil(n int, calls *int) func() error {
	return func() error {
		*calls++
		if *calls == n {
			return nil
		}
		return fmt.Errorf("attempt %d", *calls)
	}
}

func TestWaitForSucceeds(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var f fakeTB
		calls := 0
		WaitFor(&f, time.Second, failUntil(4, &calls))
		if f.failed {
			t.Errorf("WaitFor failed the test: %s", f.msg)
		}
		if calls != 4 {
			t.Errorf("got %d calls, want 4", calls)
		}
	})
}

func TestWaitForFailsWithLastError(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var f fakeTB
		calls := 0
		start := time.Now()
		WaitFor(&f, 2*time.Second, failUntil(0, &calls))
		took := time.Since(start)
		if !f.failed {
			t.Fatal("WaitFor did not fail the test")
		}
		if want := fmt.Sprintf("attempt %d", calls); !strings.HasSuffix(f.msg, want) {
			t.Errorf("got message %q, want it to end with the last error %q", f.msg, want)
		}
		if took != 2*time.Second {
			t.Errorf("gave up after %v, want 2s", took)
		}
		// 5+10+20+40+80 ms, then every 100 ms.
		if calls < 20 || calls > 30 {
			t.Errorf("cond called %d times in 2s, want about 25", calls)
		}
	})
}

func TestWaitForStopsBeforeTestDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := fakeTB{deadline: time.Now().Add(deadlineGrace + 500*time.Millisecond)}
		calls := 0
		start := time.Now()
		WaitFor(&f, time.Hour, failUntil(0, &calls))
		if !f.failed {
			t.Fatal("WaitFor did not fail the test")
		}
		if took := time.Since(start); took != 500*time.Millisecond {
			t.Errorf("gave up after %v, want 500ms: %s", took, f.msg)
		}
	})
}

func TestWaitForCallsOnceWhenOutOfTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := fakeTB{deadline: time.Now()}
		calls := 0
		WaitFor(&f, time.Second, failUntil(1, &calls))
		if f.failed || calls != 1 {
			t.Errorf("a condition that holds at once: failed %v (%s) after %d calls", f.failed, f.msg, calls)
		}
	})
}

func TestPoll(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		calls := 0
		if err := Poll(ctx, failUntil(3, &calls)); err != nil || calls != 3 {
			t.Errorf("got %v after %d calls, want nil after 3", err, calls)
		}

		errStuck := errors.New("stuck")
		err := Poll(ctx, func() error { return fmt.Errorf("still: %w", errStuck) })
		if !errors.Is(err, errStuck) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got %v, want the last error and the deadline", err)
		}
		if want := "still: stuck (gave up: context deadline exceeded)"; err == nil || err.Error() != want {
			t.Errorf("got message %q, want %q", err, want)
		}
	})
}

// TestPollSharedContext: a condition that uses Poll's context fails with
// the context's error once it ends; Poll reports what it said before.
func TestPollSharedContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		calls := 0
		err := Poll(ctx, func() error {
			calls++
			// A slow call that the deadline cuts short.
			select {
			case <-ctx.Done():
				return fmt.Errorf("ask: %w", ctx.Err())
			case <-time.After(300 * time.Millisecond):
				return fmt.Errorf("missing message %d", calls)
			}
		})
		if want := fmt.Sprintf("missing message %d (gave up: context deadline exceeded)", calls-1); err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
}
