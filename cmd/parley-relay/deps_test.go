package main

import (
	"testing"

	"github.com/parleynet/parley/internal/deptest"
)

// TestDeps keeps the headless supernode small: it must not pull in the
// desktop client or the rendezvous server.
func TestDeps(t *testing.T) {
	banned := append([]string{"github.com/parleynet/parley/app/..."}, deptest.RendezvousServer...)
	deptest.Check(t, ".", "github.com/parleynet/parley/relay", banned...)
}
