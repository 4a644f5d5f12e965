package dht

import (
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/dht/pb"
	"github.com/parleynet/parley/node/nodetest"
)

func TestRoutingTableService(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 4)
	operator := client(t, servers[:1])
	stranger := client(t, servers[:1])
	allowed := operator.Host().ID()
	exposed := server(t, servers[:2], WithRoutingTableService(func(p peer.ID) bool { return p == allowed }))
	<-exposed.Kad().RefreshRoutingTable()

	rt, err := RoutingTableOf(ctx, operator.Host(), info(exposed))
	if err != nil {
		t.Fatal(err)
	}
	local := exposed.RoutingTable()
	if rt.Peer != exposed.Host().ID() || !rt.Server || rt.BucketSize != local.BucketSize || len(rt.Peers) == 0 {
		t.Fatalf("got %+v", rt)
	}
	if len(rt.Peers) != len(local.Peers) {
		t.Fatalf("remote view has %d peers, local %d", len(rt.Peers), len(local.Peers))
	}
	for i, p := range rt.Peers {
		l := local.Peers[i]
		if p.ID != l.ID || p.CPL != l.CPL || p.Added.UnixMilli() != l.Added.UnixMilli() {
			t.Errorf("peer %d: remote %+v, local %+v", i, p, l)
		}
		if len(p.Addrs) == 0 || len(p.Addrs) > MaxRoutingTableAddrs {
			t.Errorf("peer %d: %d addresses", i, len(p.Addrs))
		}
	}
	if _, err := RoutingTableOf(ctx, stranger.Host(), info(exposed)); !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("stranger: got %v, want %v", err, ErrPermissionDenied)
	}
	if _, err := RoutingTableOf(ctx, operator.Host(), info(servers[3])); err == nil {
		t.Fatal("a node without the service answered")
	}
	limited := false
	for range 3 * rtRate.Burst {
		if _, err := RoutingTableOf(ctx, operator.Host(), info(exposed)); errors.Is(err, ErrRateLimited) {
			limited = true
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !limited {
		t.Fatal("never rate limited")
	}
}

func TestDecodeRoutingTableRefuses(t *testing.T) {
	p := nodetest.PeerID(t)
	tests := []struct {
		name string
		resp *pb.RoutingTableResponse
		want error
	}{
		{"denied", &pb.RoutingTableResponse{Status: pb.RoutingTableResponse_STATUS_PERMISSION_DENIED}, ErrPermissionDenied},
		{"limited", &pb.RoutingTableResponse{Status: pb.RoutingTableResponse_STATUS_RATE_LIMITED, RetryAfterMs: 500}, ErrRateLimited},
		{"no status", &pb.RoutingTableResponse{}, ErrMalformed},
		{"bad peer ID", okResp(&pb.RoutingTablePeer{PeerId: []byte("x")}), ErrMalformed},
		{"bad CPL", okResp(&pb.RoutingTablePeer{PeerId: []byte(p), Cpl: 300}), ErrMalformed},
		{"bad address", okResp(&pb.RoutingTablePeer{PeerId: []byte(p), Addrs: [][]byte{{0xff}}}), ErrMalformed},
		{"too many addresses", okResp(&pb.RoutingTablePeer{PeerId: []byte(p), Addrs: make([][]byte, MaxRoutingTableAddrs+1)}), ErrMalformed},
		{"too many peers", okResp(make([]*pb.RoutingTablePeer, MaxRoutingTablePeers+1)...), ErrMalformed},
		{"huge bucket size", &pb.RoutingTableResponse{Status: pb.RoutingTableResponse_STATUS_OK, BucketSize: 1 << 20}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRoutingTable(p, tt.resp); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func okResp(peers ...*pb.RoutingTablePeer) *pb.RoutingTableResponse {
	return &pb.RoutingTableResponse{Status: pb.RoutingTableResponse_STATUS_OK, BucketSize: 20, Peers: peers}
}

// FuzzDecodeRoutingTable: a routing-table response from the network
// never panics the decoder, and what it accepts respects the limits.
func FuzzDecodeRoutingTable(f *testing.F) {
	id := peer.ID("\x00\x24\x08\x01\x12\x20" + string(make([]byte, 32))) // an Ed25519 identity peer ID
	for _, r := range []*pb.RoutingTableResponse{
		okResp(&pb.RoutingTablePeer{PeerId: []byte(id), Cpl: 3, AddedUnixMs: 1, Connected: true}),
		{Status: pb.RoutingTableResponse_STATUS_RATE_LIMITED, RetryAfterMs: 10},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var resp pb.RoutingTableResponse
		if proto.Unmarshal(b, &resp) != nil {
			return
		}
		rt, err := decodeRoutingTable(id, &resp)
		if err != nil {
			return
		}
		if len(rt.Peers) > MaxRoutingTablePeers || rt.BucketSize > 1024 {
			t.Fatalf("accepted %d peers, bucket size %d", len(rt.Peers), rt.BucketSize)
		}
		for _, p := range rt.Peers {
			if p.CPL > 256 || len(p.Addrs) > MaxRoutingTableAddrs || p.ID.Validate() != nil {
				t.Fatalf("accepted %+v", p)
			}
		}
	})
}
