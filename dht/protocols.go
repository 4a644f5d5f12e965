package dht

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
	mh "github.com/multiformats/go-multihash"
)

// ProtocolPrefix namespaces every Parley DHT protocol.
const ProtocolPrefix protocol.ID = "/parley"

// ProtocolID is the Kademlia protocol Parley nodes speak (kad-dht under
// ProtocolPrefix).
const ProtocolID = ProtocolPrefix + "/kad/1.0.0"

// RoutingTableProtocolID is the protocol a node serves, when enabled with
// WithRoutingTableService, to show its routing table.
const RoutingTableProtocolID protocol.ID = "/parley/dht/rt/1.0.0"

// SupernodeCID is the well-known content ID every supernode provides, so
// that a client that knows no supernode can find current ones: the
// providers of SupernodeCID are candidates, and each is accepted only with
// a valid signed supernode record. It is CIDv1, raw codec, of the SHA-256
// of "parley/supernodes/v1".
var SupernodeCID = func() cid.Cid {
	sum, err := mh.Sum([]byte("parley/supernodes/v1"), mh.SHA2_256, -1)
	if err != nil {
		panic(err) // SHA-256 is always available
	}
	return cid.NewCidV1(cid.Raw, sum)
}()
