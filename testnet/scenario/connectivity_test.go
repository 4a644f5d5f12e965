package scenario

import (
	"context"
	"testing"
	"time"

	"github.com/parleynet/parley/testnet/report"
)

// TestConnectivityOutcomes: a pair whose message arrives but whose path
// stays relayed is relayed; one whose message is dropped failed, and is
// a problem.
func TestConnectivityOutcomes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := newFakeNet("alice", "bob", "carol")
	n.drop = func(k int) bool { return k == 1 } // the first send of the first attempt
	res, problems, err := Connectivity(ctx, n, ConnectivityConfig{Attempts: 2, MessageTimeout: 300 * time.Millisecond, DirectTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Matrix) != 1 || res.Matrix[0].Attempts != 6 {
		t.Fatalf("matrix %+v, want one NAT pair with 6 attempts", res.Matrix)
	}
	if got := res.Matrix[0].Outcomes; got[report.Failed] != 1 || got[report.Relayed] != 5 {
		t.Errorf("outcomes %v, want 1 failed and 5 relayed", got)
	}
	if len(problems) != 1 {
		t.Errorf("problems %q, want the failed attempt", problems)
	}
	if res.DirectShare != 0 || res.FirstMessage.N != 5 || res.ToDirect.N != 0 {
		t.Errorf("direct share %v, first message %+v, to direct %+v", res.DirectShare, res.FirstMessage, res.ToDirect)
	}
}
