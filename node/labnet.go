//go:build natlab

package node

import (
	"net"
	"slices"

	manet "github.com/multiformats/go-multiaddr/net"
)

// LabRanges are the documentation ranges the NAT lab (package
// testnet/natlab) plays the public internet on. go-multiaddr lists them as
// unroutable, so a lab on them would look all-private to go-libp2p: no
// AutoNAT, no hole punching. Binaries built with the natlab build tag,
// and only those, treat them as public. Production builds never do.
var LabRanges = []string{"198.51.100.0/24", "203.0.113.0/24"}

func init() {
	for _, r := range LabRanges {
		_, lab, err := net.ParseCIDR(r)
		if err != nil {
			panic(err)
		}
		manet.Unroutable4 = slices.DeleteFunc(manet.Unroutable4, func(n *net.IPNet) bool { return n.String() == lab.String() })
	}
	log.Warnw("NAT-lab build: documentation ranges count as public", "ranges", LabRanges)
}
