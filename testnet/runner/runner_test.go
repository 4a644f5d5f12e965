package runner

import (
	"context"
	"testing"
	"time"

	"github.com/parleynet/parley/testnet/scenario"
)

// TestRunChatLoopback runs a small chat on the loopback network: every
// message arrives, each with a latency measured from its arrival.
func TestRunChatLoopback(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	r, err := Run(ctx, Options{Scenario: "chat", Clients: 3, Supernodes: 1,
		Chat: scenario.ChatConfig{Messages: 3, Grace: 30 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Chat
	if c == nil || c.Sent != 18 || c.Arrived != 18 || c.Lost != 0 || len(c.LatenciesNS) != 18 {
		t.Fatalf("chat %+v, want 18 sent and arrived with latencies", c)
	}
	if len(r.Problems) != 0 || len(r.Clients) != 3 {
		t.Errorf("problems %q, clients %+v", r.Problems, r.Clients)
	}
	for _, ns := range c.LatenciesNS {
		if ns <= 0 || ns > int64(10*time.Second) {
			t.Errorf("latency %v", time.Duration(ns))
		}
	}
}

func TestRunUnknownScenario(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := Run(ctx, Options{Scenario: "dance", Clients: 2, Supernodes: 1}); err == nil {
		t.Fatal("an unknown scenario ran")
	}
}
