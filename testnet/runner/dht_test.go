package runner

import (
	"context"
	"testing"
	"time"

	"github.com/parleynet/parley/testnet/scenario"
)

// TestRunDHTLoopback: on a small loopback network every find-peer and
// find-providers lookup succeeds, with hops and requests from the
// lookup's trace; lookups that cannot finish (a timeout too short for
// any answer) are failures and problems.
func TestRunDHTLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, broken := range []bool{false, true} {
		timeout := 30 * time.Second
		if broken {
			timeout = time.Nanosecond
		}
		r, err := Run(ctx, Options{Scenario: "dht", Clients: 3, Supernodes: 1, DHT: scenario.DHTConfig{Timeout: timeout}})
		if err != nil {
			t.Fatal(err)
		}
		d := r.DHT
		if d == nil || len(d.Lookups) != 12 || len(d.Kinds) != 2 {
			t.Fatalf("broken %v: dht %+v, want 12 lookups of 2 kinds", broken, d)
		}
		for _, l := range d.Lookups {
			if broken && l.OK {
				t.Errorf("broken: lookup %+v succeeded", l)
			}
			if !broken && (!l.OK || l.Hops < 1 || l.Queried < 1 || l.TookNS <= 0) {
				t.Errorf("lookup %+v, want found with hops and requests from the trace", l)
			}
		}
		for _, k := range d.Kinds {
			want := 1.0
			if broken {
				want = 0
			}
			if k.Lookups != 6 || k.SuccessRate != want {
				t.Errorf("broken %v: %+v, want 6 lookups, success rate %v", broken, k, want)
			}
			if !broken && (k.HopsMedian < 1 || k.Latency.N != 6 || k.Latency.Median <= 0) {
				t.Errorf("%+v: want hops and latencies", k)
			}
		}
		if got := len(r.Problems); broken && got != 12 || !broken && got != 0 {
			t.Errorf("broken %v: problems %q", broken, r.Problems)
		}
	}
}
