package node

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestAvoidDirectDialsThroughRelaysOnly(t *testing.T) {
	g := newGater(false)
	p, _ := peer.Decode("12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf")
	other, _ := peer.Decode("12D3KooWHHzSeKaY8xuZVzkLbKFfvNgPPeKhFBGrMbNzbm5akpqu")
	direct := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	circuit := ma.StringCast("/ip4/127.0.0.1/tcp/4002/p2p/" + other.String() + "/p2p-circuit")

	g.avoidDirect(p, time.Now().Add(time.Hour))
	if g.InterceptAddrDial(p, direct) {
		t.Error("direct dial allowed while avoided")
	}
	if !g.InterceptAddrDial(p, circuit) {
		t.Error("circuit dial refused while the direct path is avoided")
	}
	if !g.InterceptAddrDial(other, direct) {
		t.Error("another peer's direct dial refused")
	}
	g.avoidDirect(p, time.Now().Add(-time.Second))
	if !g.InterceptAddrDial(p, direct) {
		t.Error("direct dial still refused after the time given")
	}
}
