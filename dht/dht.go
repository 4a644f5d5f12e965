// Package dht is Parley's Kademlia layer: go-libp2p-kad-dht run as a
// private network under the protocol prefix /parley (so the DHT protocol
// is /parley/kad/1.0.0 and a Parley node never joins or answers the public
// IPFS DHT).
//
// Nodes that are publicly reachable (supernodes, relay nodes, the
// rendezvous server) run in server mode; clients behind NAT run in client
// mode; ModeAuto follows the node's reachability events.
package dht

import (
	"context"
	"fmt"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ProtocolPrefix namespaces every Parley DHT protocol.
const ProtocolPrefix protocol.ID = "/parley"

// ProtocolID is the Kademlia protocol Parley nodes speak.
const ProtocolID = ProtocolPrefix + "/kad/1.0.0"

// Mode is whether a node answers DHT queries.
type Mode = kaddht.ModeOpt

const (
	ModeAuto   = kaddht.ModeAuto   // follow reachability
	ModeServer = kaddht.ModeServer // answer queries (public nodes)
	ModeClient = kaddht.ModeClient // only ask (nodes behind NAT)
)

// New starts a DHT node on h in the private Parley network, bootstrapping
// from the given peers (never from the public IPFS bootstrap list).
func New(ctx context.Context, h host.Host, mode Mode, bootstrap []peer.AddrInfo) (*kaddht.IpfsDHT, error) {
	d, err := kaddht.New(ctx, h,
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.Mode(mode),
		kaddht.BootstrapPeers(bootstrap...),
	)
	if err != nil {
		return nil, fmt.Errorf("start DHT: %w", err)
	}
	return d, nil
}
