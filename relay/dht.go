package relay

import (
	"context"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/client"
)

// JoinDHT starts a dedicated supernode's DHT node: a server, joined
// through peers and the supernodes the directories list, that serves its
// routing table to whoever asks (parley-dht routing-table). Give it to
// Config.Announcer so that the supernode is announced there while it
// serves.
func JoinDHT(n *node.Node, peers []peer.AddrInfo, dirs []*client.Client) (*dht.DHT, error) {
	opts := []dht.Option{
		dht.WithMode(dht.ModeServer),
		dht.WithRecordAddrs(func() []ma.Multiaddr { return node.Shareable(n.Addrs()) }),
		dht.WithRoutingTableService(nil),
	}
	if len(peers) > 0 {
		opts = append(opts, dht.WithBootstrapPeers(peers...))
	}
	for _, d := range dirs {
		opts = append(opts, dht.WithBootstrapFunc(func(ctx context.Context) ([]peer.AddrInfo, error) {
			return d.Supernodes(ctx, 0, nil)
		}))
	}
	kad, err := dht.New(n, opts...)
	if err != nil {
		return nil, fmt.Errorf("join the DHT: %w", err)
	}
	return kad, nil
}
