//go:build natlab

package node

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

func TestLabRangesArePublicInLabBuilds(t *testing.T) {
	for _, s := range []string{"/ip4/203.0.113.7/tcp/4001", "/ip4/198.51.100.9/udp/4001/quic-v1"} {
		if !manet.IsPublicAddr(ma.StringCast(s)) {
			t.Errorf("IsPublicAddr(%s) = false in a natlab build", s)
		}
	}
	if manet.IsPublicAddr(ma.StringCast("/ip4/10.1.0.2/tcp/4001")) {
		t.Error("a private LAN address counts as public")
	}
}
