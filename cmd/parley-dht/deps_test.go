package main

import (
	"testing"

	"github.com/parleynet/parley/internal/deptest"
)

// TestDeps keeps the lookup CLI small: it must not pull in the desktop
// client, the relay service or the rendezvous server.
func TestDeps(t *testing.T) {
	banned := append([]string{"github.com/parleynet/parley/app/...", "github.com/parleynet/parley/relay/..."}, deptest.RendezvousServer...)
	deptest.Check(t, ".", "github.com/parleynet/parley/dht", banned...)
}
