package app_test

import (
	"testing"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/apitype/apitypetest"
)

// TestConformance runs the client API's suite against the engine itself,
// on a loopback network.
func TestConformance(t *testing.T) {
	t.Parallel()
	apitypetest.Run(t, func(t *testing.T) (alice, bob apitype.Client) {
		a, b := apitypetest.NewPair(t)
		return a.Engine, b.Engine
	})
}
