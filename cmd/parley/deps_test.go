package main

import (
	"testing"

	"github.com/parleynet/parley/internal/deptest"
)

// TestDeps keeps the desktop client a client: it speaks the rendezvous
// protocol but must not link the rendezvous server, its storage or its
// password hashing.
func TestDeps(t *testing.T) {
	deptest.Check(t, ".", "github.com/parleynet/parley/rendezvous/client", deptest.RendezvousServer...)
}
