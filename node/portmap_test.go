package node_test

import (
	"testing"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// TestPortMappingOffByDefault: a node asks no router for anything unless
// told, and lists no mapping.
func TestPortMappingOffByDefault(t *testing.T) {
	n := nodetest.New(t)
	if got := n.PortMappings(); len(got) != 0 {
		t.Errorf("got mappings %v without WithPortMapping", got)
	}
}

// TestPortMappingRefusedWithNATImitation: an imitated NAT advertises no
// direct address, so a mapping would be a lie.
func TestPortMappingRefusedWithNATImitation(t *testing.T) {
	_, err := node.New(node.WithKey(nodetest.Key(t)), node.WithNATImitation(), node.WithPortMapping())
	if err == nil {
		t.Fatal("got a node, want an error")
	}
}
