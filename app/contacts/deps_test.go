package contacts

import (
	"testing"

	"github.com/parleynet/parley/internal/deptest"
)

// TestDeps keeps the book pure state: it must not link a libp2p host, the
// node or anything of the engine's.
func TestDeps(t *testing.T) {
	deptest.Check(t, ".", "github.com/parleynet/parley/rendezvous/client",
		"github.com/libp2p/go-libp2p",
		"github.com/libp2p/go-libp2p/p2p/...",
		"github.com/parleynet/parley/node",
		"github.com/parleynet/parley/app")
}
