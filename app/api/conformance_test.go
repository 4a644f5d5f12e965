package api_test

import (
	"testing"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/apitype/apitypetest"
)

// TestConformance runs the client API's suite over HTTP: Go clients
// dialled to each daemon's local API, on a loopback network.
func TestConformance(t *testing.T) {
	t.Parallel()
	apitypetest.Run(t, func(t *testing.T) (alice, bob apitype.Client) {
		a, b := apitypetest.NewPair(t)
		return dial(t, a.Dir), dial(t, b.Dir)
	})
}

func dial(t *testing.T, dir string) *api.Client {
	t.Helper()
	c, err := api.Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
