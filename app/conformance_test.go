package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/apitype/apitypetest"
	"github.com/parleynet/parley/testnet"
)

// TestConformance runs the client API's suite against the engine itself,
// on a loopback network.
func TestConformance(t *testing.T) {
	t.Parallel()
	apitypetest.Run(t, func(t *testing.T) (alice, bob apitype.Client) {
		a, b := startPair(t)
		return a.Engine, b.Engine
	})
}

// startPair starts a loopback network with two fresh clients.
func startPair(t *testing.T) (a, b *testnet.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close network: %v", err)
		}
	})
	if a, err = n.AddClient(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if b, err = n.AddClient(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	return a, b
}
