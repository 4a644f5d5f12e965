package node

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// Bulk data (probes, file chunks) goes over the fastest connection a pair
// holds. A pair can hold several: a QUIC one and a TCP one when both sides
// dialled at once, or a hole-punched one beside a relayed one. go-libp2p
// opens new streams on the direct connection with the most streams, whatever
// its transport; but on every machine measured, TCP moves a stream at about
// twice QUIC's speed for half the CPU (quic-go pays per packet of at most
// 1452 bytes: a system call per packet received, an AEAD and header
// protection per packet, acknowledgements; TCP hands the kernel 64 KiB
// segments), so a bulk stream prefers a TCP connection when there is one.

// transportRank orders transports for bulk data: lower is faster.
func transportRank(transport string) int {
	switch transport {
	case TransportTCP:
		return 0
	case TransportQUIC:
		return 1
	default:
		return 2
	}
}

// bulkBetter reports whether connection a (with path pa, limited or not,
// holding streams streams) carries bulk data better than b: an unlimited
// connection before a limited one, a direct one before a relayed one, then
// the faster transport, then the busier connection (as go-libp2p).
func bulkBetter(pa, pb Path, aLimited, bLimited bool, aStreams, bStreams int) bool {
	if aLimited != bLimited {
		return !aLimited
	}
	if aRelayed, bRelayed := pa.Kind == Relayed, pb.Kind == Relayed; aRelayed != bRelayed {
		return !aRelayed
	}
	if pa.spliced != pb.spliced { // the supernode only copies a spliced one's bytes
		return pa.spliced
	}
	if ra, rb := transportRank(pa.Transport), transportRank(pb.Transport); ra != rb {
		return ra < rb
	}
	return aStreams > bStreams
}

// BulkConn is the open connection to p that bulk data should take, or nil
// if there is none. A limited (relayed, capped) connection is a candidate
// only when ctx allows limited connections.
func (n *Node) BulkConn(ctx context.Context, p peer.ID) network.Conn {
	allowLimited, _ := network.GetAllowLimitedConn(ctx)
	var best network.Conn
	var bestPath Path
	for _, c := range n.Network().ConnsToPeer(p) {
		if c.IsClosed() || (c.Stat().Limited && !allowLimited) {
			continue
		}
		path := n.ConnPath(c)
		if best == nil || bulkBetter(path, bestPath, c.Stat().Limited, best.Stat().Limited, len(c.GetStreams()), len(best.GetStreams())) {
			best, bestPath = c, path
		}
	}
	return best
}

// NewBulkStream opens a stream to p for bulk data speaking pid: on the
// connection BulkConn picks when there is one, else as Host.NewStream does
// (dialling p).
func (n *Node) NewBulkStream(ctx context.Context, p peer.ID, pid protocol.ID) (network.Stream, error) {
	c := n.BulkConn(ctx, p)
	if c == nil {
		return n.NewStream(ctx, p, pid)
	}
	s, err := c.NewStream(ctx)
	if err != nil {
		// The connection closed meanwhile: let the host find another.
		log.Debugw("bulk stream on the chosen connection failed; opening one as usual", "peer", p, "err", err)
		return n.NewStream(ctx, p, pid)
	}
	if err := s.SetProtocol(pid); err != nil {
		s.Reset()
		return nil, fmt.Errorf("open %s stream: %w", pid, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
		defer s.SetDeadline(time.Time{})
	}
	if err := msmux.SelectProtoOrFail(pid, s); err != nil {
		s.Reset()
		return nil, fmt.Errorf("negotiate %s: %w", pid, err)
	}
	return s, nil
}

// BetterBulkConn returns an open connection to p that carries bulk data
// strictly better than than (unlimited, direct, spliced, faster transport:
// the order of BulkConn without its tie-break on streams), or nil. A bulk
// stream opened before a better connection appeared (a splice or a hole
// punch comes a moment after the circuit) moves to it.
func (n *Node) BetterBulkConn(ctx context.Context, p peer.ID, than network.Conn) network.Conn {
	allowLimited, _ := network.GetAllowLimitedConn(ctx)
	thanPath := n.ConnPath(than)
	for _, c := range n.Network().ConnsToPeer(p) {
		if c == than || c.IsClosed() || (c.Stat().Limited && !allowLimited) {
			continue
		}
		// With equal stream counts a tie is not better: only the
		// connection's own merits count.
		if bulkBetter(n.ConnPath(c), thanPath, c.Stat().Limited, than.Stat().Limited, 0, 0) {
			return c
		}
	}
	return nil
}
