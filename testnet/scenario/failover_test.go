package scenario

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestFailover: each stop hits the supernode the pair's path names, the
// recovery is measured from the path and the arrivals, and a message the
// network drops is lost.
func TestFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, drop := range []bool{false, true} {
		n := newFakeNet("alice", "bob")
		if drop {
			n.drop = func(k int) bool { return k == 3 }
		}
		res, problems, err := Failover(ctx, n, FailoverConfig{Interval: 20 * time.Millisecond, Settle: 100 * time.Millisecond,
			RecoverTimeout: 2 * time.Second, Grace: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(n.stopped, []string{"fake-supernode-0", "fake-supernode-1"}) {
			t.Errorf("stopped %q, want the pair's supernode each time", n.stopped)
		}
		if len(res.Outages) != 2 || res.Outages[0].How != "SIGKILL" || res.Outages[1].How != "SIGTERM" {
			t.Fatalf("outages %+v", res.Outages)
		}
		for _, o := range res.Outages {
			if o.RecoveredNS < 0 || o.PathRecoveredNS < 0 {
				t.Errorf("%s did not recover: %+v", o.How, o)
			}
		}
		want := 0
		if drop {
			want = 1
		}
		if res.Lost != want || len(problems) != want || res.Sent < 5 || res.Arrived != res.Sent-want {
			t.Errorf("drop %v: sent %d, arrived %d, lost %d, problems %q", drop, res.Sent, res.Arrived, res.Lost, problems)
		}
	}
}
