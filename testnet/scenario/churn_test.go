package scenario

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestChurnCountsLoss: clients restart while the pairs chat; a message
// the network drops is lost, the others arrived.
func TestChurnCountsLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := newFakeNet("alice", "bob", "carol")
	n.drop = func(k int) bool { return k == 4 }
	res, problems, err := Churn(ctx, n, ChurnConfig{Duration: 300 * time.Millisecond, Period: 50 * time.Millisecond,
		Interval: 20 * time.Millisecond, Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent < 30 || res.Lost != 1 || res.Arrived != res.Sent-1 || len(problems) != 1 {
		t.Errorf("sent %d, arrived %d, lost %d, problems %q; want one lost", res.Sent, res.Arrived, res.Lost, problems)
	}
	restarts := 0
	for _, e := range res.Events {
		if strings.HasSuffix(e.What, " restarts") {
			restarts++
		}
	}
	if restarts < 3 || len(n.stopped) != 1 {
		t.Errorf("%d restarts, supernodes stopped %q; want every client restarted and one supernode stopped: %+v", restarts, n.stopped, res.Events)
	}
}
