package natlab

import (
	"context"
	"os"
	"testing"
	"time"
)

// NewForTest builds a lab for a test. It skips the test, with Available's
// explanation, where a lab cannot run (fails it instead when the
// environment sets PARLEY_REQUIRE_NATLAB=1, as CI does). An empty cfg.Dir means a directory
// of the test's own. The lab is closed when the test ends; if the test
// failed, the end of every process's log is written to the test log first.
func NewForTest(t testing.TB, cfg Config) *Lab {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("PARLEY_REQUIRE_NATLAB") == "1" {
			t.Fatalf("PARLEY_REQUIRE_NATLAB=1 but the NAT lab cannot run: %v", err)
		}
		t.Skip(err)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("new lab: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			l.logTails(t, 40)
		}
		if err := l.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	return l
}

// logTails writes the last n lines of every process's log to t.
func (l *Lab) logTails(t testing.TB, n int) {
	t.Helper()
	l.mu.Lock()
	procs := append([]*Process(nil), l.procs...)
	l.mu.Unlock()
	for _, p := range procs {
		status := "running"
		select {
		case <-p.exited:
			status = exitStatus(p.err)
		default:
		}
		t.Logf("natlab: %s (%s), %s ends:\n%s", p, status, p.logPath, p.Tail(n))
	}
}
