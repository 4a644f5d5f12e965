package client

import (
	"testing"

	"github.com/parleynet/parley/internal/deptest"
)

// TestDeps: the client links the protocol (package rendezvous), not the
// server, its storage or argon2.
func TestDeps(t *testing.T) {
	deptest.Check(t, ".", "github.com/parleynet/parley/rendezvous", deptest.RendezvousServer...)
}
