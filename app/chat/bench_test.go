package chat

import (
	"context"
	"errors"
	"github.com/parleynet/parley/internal/tstest"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	multiaddr "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/relaytest"
)

// BenchmarkSend measures one acknowledged, stored message from alice to
// bob over a direct connection and through a supernode's relay, in the
// same run so the two can be compared as a ratio.
func BenchmarkSend(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	b.Run("direct", func(b *testing.B) {
		alice, bob := newUser(b, "alice"), newUser(b, "bob")
		befriend(alice, bob)
		benchSend(b, ctx, alice, "direct")
	})

	b.Run("relayed", func(b *testing.B) {
		iss := relaytest.NewIssuer(b)
		sn := iss.StartSupernode(b, relay.Config{})
		alice := newUser(b, "alice", node.WithNATImitation())
		bob := newUser(b, "bob", node.WithNATImitation())
		source := func(context.Context, map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
			return []peer.AddrInfo{sn.Info()}, nil
		}
		r := relay.StartReserver(bob.node, source, iss.Passport(b, bob.node), relay.ReserverConfig{Interval: time.Second})
		b.Cleanup(func() { r.Close() })
		tstest.WaitFor(b, time.Minute, func() error {
			if len(r.CircuitAddrs()) == 0 {
				return errors.New("bob has no reservation on the supernode")
			}
			return nil
		})
		if _, err := iss.Passport(b, alice.node).Present(ctx, sn.Info()); err != nil {
			b.Fatal(err)
		}
		befriend(alice, bob)
		// befriend taught alice bob's advertised addresses: circuits only.
		if got := alice.node.Peerstore().Addrs(bob.node.ID()); !slices.ContainsFunc(got, func(a multiaddr.Multiaddr) bool { _, ok := node.RelayOf(a); return ok }) {
			b.Fatalf("alice knows no circuit address of bob: %v", got)
		}
		benchSend(b, ctx, alice, "relayed via "+sn.Node.ID().String())
	})
}

func benchSend(b *testing.B, ctx context.Context, alice *user, wantPath string) {
	if m, err := alice.svc.Send(ctx, "bob", "warm-up"); err != nil || m.Path != wantPath {
		b.Fatalf("warm-up: %+v, %v; want path %q", m, err, wantPath)
	}
	for b.Loop() {
		m, err := alice.svc.Send(ctx, "bob", "ping")
		if err != nil || m.State != Delivered {
			b.Fatalf("send: %+v, %v", m, err)
		}
	}
}
