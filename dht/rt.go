package dht

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/dht/pb"
	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/internal/wire"
)

// Limits of /parley/dht/rt/1.0.0.
const (
	// MaxRoutingTableRequest bounds the request frame.
	MaxRoutingTableRequest = 64
	// MaxRoutingTableResponse bounds the response frame.
	MaxRoutingTableResponse = 1 << 20
	// MaxRoutingTablePeers bounds the peers in one response; a routing
	// table of k=20 buckets holds a few hundred at most.
	MaxRoutingTablePeers = 2048
	// MaxRoutingTableAddrs bounds the addresses sent per peer.
	MaxRoutingTableAddrs = 4
	// rtTimeout bounds one exchange.
	rtTimeout = 10 * time.Second
)

// rtRate is how often one peer may read a node's routing table.
var rtRate = ratelimit.Rate{Burst: 5, Every: 2 * time.Second}

// RoutingTable is a snapshot of a node's routing table.
type RoutingTable struct {
	Peer       peer.ID // the node
	Server     bool    // whether it answers DHT queries
	BucketSize int
	Peers      []RoutingTablePeer // by bucket (CPL), then peer ID
}

// RoutingTablePeer is one entry of a routing table.
type RoutingTablePeer struct {
	ID                  peer.ID
	CPL                 int       // common prefix length with the node: the bucket
	Added               time.Time // when it entered the table
	LastUseful          time.Time // zero: never
	LastSuccessfulQuery time.Time // zero: never
	Connected           bool
	Addrs               []ma.Multiaddr
}

// RoutingTable returns a snapshot of this node's routing table.
func (d *DHT) RoutingTable() RoutingTable {
	rt := d.kad.RoutingTable()
	self := kb.ConvertPeerID(d.host.ID())
	out := RoutingTable{Peer: d.host.ID(), Server: d.Server(), BucketSize: d.kad.BucketSize()}
	for _, pi := range rt.GetPeerInfos() {
		addrs := d.host.Peerstore().Addrs(pi.Id)
		out.Peers = append(out.Peers, RoutingTablePeer{
			ID:                  pi.Id,
			CPL:                 kb.CommonPrefixLen(self, kb.ConvertPeerID(pi.Id)),
			Added:               pi.AddedAt,
			LastUseful:          pi.LastUsefulAt,
			LastSuccessfulQuery: pi.LastSuccessfulOutboundQueryAt,
			Connected:           d.host.Network().Connectedness(pi.Id) == network.Connected,
			Addrs:               addrs[:min(len(addrs), MaxRoutingTableAddrs)],
		})
	}
	slices.SortFunc(out.Peers, func(a, b RoutingTablePeer) int {
		return cmp.Or(cmp.Compare(a.CPL, b.CPL), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// rtService serves RoutingTableProtocolID.
type rtService struct {
	d       *DHT
	allow   func(peer.ID) bool
	limiter *ratelimit.Limiter
}

func newRTService(d *DHT, allow func(peer.ID) bool) *rtService {
	return &rtService{d: d, allow: allow, limiter: ratelimit.New(rtRate)}
}

func (s *rtService) handle(st network.Stream) {
	remote := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(rtTimeout))
	var req pb.RoutingTableRequest
	if err := wire.NewReader(st, MaxRoutingTableRequest).Read(&req); err != nil {
		log.Debugw("routing table request unreadable", "peer", remote, "error", err)
		st.Reset()
		return
	}
	resp := &pb.RoutingTableResponse{}
	if s.allow != nil && !s.allow(remote) {
		log.Infow("routing table request refused", "peer", remote, "reason", "not allowed")
		resp.Status = pb.RoutingTableResponse_STATUS_PERMISSION_DENIED
	} else if ok, retry := s.limiter.Allow(string(remote), time.Now()); !ok {
		log.Infow("routing table request refused", "peer", remote, "reason", "rate limited")
		resp.Status = pb.RoutingTableResponse_STATUS_RATE_LIMITED
		resp.RetryAfterMs = uint32(max(retry.Milliseconds(), 1))
	} else {
		resp = encodeRoutingTable(s.d.RoutingTable())
	}
	if err := wire.Write(st, resp, MaxRoutingTableResponse); err != nil {
		log.Infow("routing table response not sent", "peer", remote, "error", err)
		st.Reset()
		return
	}
	st.Close()
}

// encodeRoutingTable encodes rt within the response limits.
func encodeRoutingTable(rt RoutingTable) *pb.RoutingTableResponse {
	resp := &pb.RoutingTableResponse{
		Status:     pb.RoutingTableResponse_STATUS_OK,
		ServerMode: rt.Server,
		BucketSize: uint32(rt.BucketSize),
	}
	for _, p := range rt.Peers[:min(len(rt.Peers), MaxRoutingTablePeers)] {
		e := &pb.RoutingTablePeer{
			PeerId:                    []byte(p.ID),
			Cpl:                       uint32(p.CPL),
			AddedUnixMs:               unixMs(p.Added),
			LastUsefulUnixMs:          unixMs(p.LastUseful),
			LastSuccessfulQueryUnixMs: unixMs(p.LastSuccessfulQuery),
			Connected:                 p.Connected,
		}
		for _, a := range p.Addrs[:min(len(p.Addrs), MaxRoutingTableAddrs)] {
			e.Addrs = append(e.Addrs, a.Bytes())
		}
		resp.Peers = append(resp.Peers, e)
	}
	for proto.Size(resp) > MaxRoutingTableResponse {
		resp.Peers = resp.Peers[:len(resp.Peers)/2]
	}
	return resp
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromUnixMs(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// decodeRoutingTable checks a response from p and decodes it.
func decodeRoutingTable(p peer.ID, resp *pb.RoutingTableResponse) (RoutingTable, error) {
	switch resp.GetStatus() {
	case pb.RoutingTableResponse_STATUS_OK:
	case pb.RoutingTableResponse_STATUS_PERMISSION_DENIED:
		return RoutingTable{}, fmt.Errorf("%s: %w to read its routing table", p, ErrPermissionDenied)
	case pb.RoutingTableResponse_STATUS_RATE_LIMITED:
		return RoutingTable{}, fmt.Errorf("%s: %w: retry in %s", p, ErrRateLimited, time.Duration(resp.GetRetryAfterMs())*time.Millisecond)
	default:
		return RoutingTable{}, fmt.Errorf("%s: %w: status %d", p, ErrMalformed, resp.GetStatus())
	}
	if n := len(resp.GetPeers()); n > MaxRoutingTablePeers {
		return RoutingTable{}, fmt.Errorf("%s: %w: %d peers, limit %d", p, ErrMalformed, n, MaxRoutingTablePeers)
	}
	if bs := resp.GetBucketSize(); bs > 1024 {
		return RoutingTable{}, fmt.Errorf("%s: %w: bucket size %d", p, ErrMalformed, bs)
	}
	rt := RoutingTable{Peer: p, Server: resp.GetServerMode(), BucketSize: int(resp.GetBucketSize())}
	for _, e := range resp.GetPeers() {
		id, err := peer.IDFromBytes(e.GetPeerId())
		if err != nil {
			return RoutingTable{}, fmt.Errorf("%s: %w: peer ID: %v", p, ErrMalformed, err)
		}
		if e.GetCpl() > 256 {
			return RoutingTable{}, fmt.Errorf("%s: %w: common prefix length %d", p, ErrMalformed, e.GetCpl())
		}
		if len(e.GetAddrs()) > MaxRoutingTableAddrs {
			return RoutingTable{}, fmt.Errorf("%s: %w: %d addresses for one peer", p, ErrMalformed, len(e.GetAddrs()))
		}
		rp := RoutingTablePeer{
			ID:                  id,
			CPL:                 int(e.GetCpl()),
			Added:               fromUnixMs(e.GetAddedUnixMs()),
			LastUseful:          fromUnixMs(e.GetLastUsefulUnixMs()),
			LastSuccessfulQuery: fromUnixMs(e.GetLastSuccessfulQueryUnixMs()),
			Connected:           e.GetConnected(),
		}
		for _, b := range e.GetAddrs() {
			a, err := ma.NewMultiaddrBytes(b)
			if err != nil {
				return RoutingTable{}, fmt.Errorf("%s: %w: address: %v", p, ErrMalformed, err)
			}
			rp.Addrs = append(rp.Addrs, a)
		}
		rt.Peers = append(rt.Peers, rp)
	}
	return rt, nil
}

// RoutingTableOf asks the node ai for its routing table over
// RoutingTableProtocolID, from h (which need not run a DHT). It fails with
// ErrPermissionDenied if the node does not allow h's peer, and with
// ErrRateLimited if h asked too often.
func RoutingTableOf(ctx context.Context, h host.Host, ai peer.AddrInfo) (_ RoutingTable, err error) {
	p := ai.ID
	ctx, cancel := context.WithTimeout(ctx, rtTimeout)
	defer cancel()
	h.Peerstore().AddAddrs(p, ai.Addrs, peerstore.TempAddrTTL)
	st, err := h.NewStream(ctx, p, RoutingTableProtocolID)
	if err != nil {
		return RoutingTable{}, fmt.Errorf("routing table of %s: open stream: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer func() {
		stop()
		if err != nil {
			st.Reset()
		} else {
			st.Close()
		}
	}()
	if err := wire.Write(st, &pb.RoutingTableRequest{}, MaxRoutingTableRequest); err != nil {
		return RoutingTable{}, fmt.Errorf("routing table of %s: send request: %w", p, err)
	}
	// The node answers as soon as the request is complete and closes its
	// side; closing ours may then fail, and the answer is still there to
	// read (a failed read says what went wrong).
	_ = st.CloseWrite()
	var resp pb.RoutingTableResponse
	if err := wire.NewReader(st, MaxRoutingTableResponse).Read(&resp); err != nil {
		if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrTooLarge) {
			err = fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return RoutingTable{}, fmt.Errorf("routing table of %s: read response: %w", p, err)
	}
	return decodeRoutingTable(p, &resp)
}
