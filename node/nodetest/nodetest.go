// Package nodetest starts throwaway Parley nodes for tests.
package nodetest

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/node"
)

// Key returns a fresh Ed25519 private key.
func Key(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PeerID returns the peer ID of a fresh key.
func PeerID(t testing.TB) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(Key(t))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// New starts a node with a fresh key, listening on 127.0.0.1 only; it is
// closed when the test ends. opts come after the key and listen addresses,
// so they must not set either (node.New refuses a second identity or
// listen address list); pass only other options, such as reachability or
// NAT imitation.
func New(t testing.TB, opts ...node.Option) *node.Node {
	t.Helper()
	opts = append([]node.Option{node.WithKey(Key(t)), node.WithListenAddrs(node.LoopbackListenAddrs...)}, opts...)
	n, err := node.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}
