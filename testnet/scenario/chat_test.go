package scenario

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestChatCountsLoss: loss comes from what arrived, so a network that
// drops every third message is reported with those messages lost, and
// one that delivers all (some without an event) with none.
func TestChatCountsLoss(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tests := []struct {
		name        string
		drop, quiet func(int) bool
		lost        int
	}{
		{"all arrive", nil, nil, 0},
		{"every third dropped", func(n int) bool { return n%3 == 0 }, nil, 6},
		{"stored without an event", nil, func(n int) bool { return n%2 == 0 }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newFakeNet("alice", "bob", "carol")
			if tt.drop != nil {
				n.drop = tt.drop
			}
			if tt.quiet != nil {
				n.quiet = tt.quiet
			}
			res, problems, err := Chat(ctx, n, ChatConfig{Messages: 3, Grace: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Sent != 18 || res.Lost != tt.lost || res.Arrived != 18-tt.lost {
				t.Errorf("sent %d, arrived %d, lost %d; want 18, %d, %d", res.Sent, res.Arrived, res.Lost, 18-tt.lost, tt.lost)
			}
			if len(problems) != tt.lost {
				t.Errorf("problems %q, want one per lost message", problems)
			}
			for _, p := range problems {
				if !strings.Contains(p, "never arrived") {
					t.Errorf("problem %q does not say the message never arrived", p)
				}
			}
			if res.Latency.N != len(res.LatenciesNS) || res.Latency.N == 0 {
				t.Errorf("latency stats %+v over %d latencies", res.Latency, len(res.LatenciesNS))
			}
		})
	}
}
