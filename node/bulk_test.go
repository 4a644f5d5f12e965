package node

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

func TestBulkBetter(t *testing.T) {
	tcp := Path{Kind: Direct, Transport: TransportTCP}
	quic := Path{Kind: Direct, Transport: TransportQUIC}
	punched := Path{Kind: HolePunched, Transport: TransportQUIC}
	relayedTCP := Path{Kind: Relayed, Transport: TransportTCP}
	cases := []struct {
		name               string
		a, b               Path
		aLimited, bLimited bool
		aStreams, bStreams int
		want               bool
	}{
		{"tcp before quic", tcp, quic, false, false, 0, 5, true},
		{"quic after tcp", quic, tcp, false, false, 5, 0, false},
		{"hole-punched quic before relayed tcp", punched, relayedTCP, false, false, 0, 0, true},
		{"unlimited before limited", relayedTCP, tcp, false, true, 0, 0, true},
		{"same transport: busier", quic, punched, false, false, 2, 1, true},
		{"same transport: not busier", quic, punched, false, false, 1, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := bulkBetter(c.a, c.b, c.aLimited, c.bLimited, c.aStreams, c.bStreams); got != c.want {
				t.Errorf("bulkBetter(%v/%s, %v/%s) = %v, want %v", c.a, c.a.Transport, c.b, c.b.Transport, got, c.want)
			}
		})
	}
}

const sinkProto = "/parley-test/bulk-sink/1.0.0"

// TestNewBulkStreamPrefersTCP: of a QUIC and a TCP connection between
// two nodes, bulk streams take the TCP one, as both ends see it; with
// the QUIC connection alone they take that.
func TestNewBulkStreamPrefersTCP(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, b := testNode(t, WithReachability(ReachabilityPublic)), testNode(t, WithReachability(ReachabilityPublic))
	seen := make(chan string, 10) // the transport of each sink stream, as b sees it
	b.SetStreamHandler(sinkProto, func(s network.Stream) {
		seen <- b.ConnPath(s.Conn()).Transport
		_, _ = io.Copy(io.Discard, s)
		s.Close()
	})
	only := func(addrs []ma.Multiaddr, code int) []ma.Multiaddr {
		return slices.DeleteFunc(slices.Clone(addrs), func(x ma.Multiaddr) bool {
			_, err := x.ValueForProtocol(code)
			return err != nil
		})
	}
	push := func(want string) {
		t.Helper()
		s, err := a.NewBulkStream(ctx, b.ID(), sinkProto)
		if err != nil {
			t.Fatal(err)
		}
		if got := a.ConnPath(s.Conn()).Transport; got != want {
			t.Errorf("a's bulk stream runs on %q, want %q", got, want)
		}
		if _, err := s.Write(make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		select {
		case got := <-seen:
			if got != want {
				t.Errorf("b sees the bulk stream on %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}

	// QUIC alone.
	a.Peerstore().AddAddrs(b.ID(), only(b.Addrs(), ma.P_QUIC_V1), peerstore.TempAddrTTL)
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID()}); err != nil {
		t.Fatal(err)
	}
	push(TransportQUIC)

	// Both: the swarm opens no second connection to a connected peer, but
	// two dials crossing each other do. a dials over QUIC, b over TCP.
	b.Peerstore().AddAddrs(a.ID(), only(a.Addrs(), ma.P_TCP), peerstore.TempAddrTTL)
	for try := 0; ; try++ {
		if try == 200 {
			t.Skip("could not make the two dials cross in 200 tries")
		}
		a.Network().ClosePeer(b.ID())
		waitFor(t, func() error {
			if n := len(a.Network().ConnsToPeer(b.ID())) + len(b.Network().ConnsToPeer(a.ID())); n > 0 {
				return fmt.Errorf("%d connections left", n)
			}
			return nil
		})
		var wg sync.WaitGroup
		wg.Go(func() { _ = a.Connect(ctx, peer.AddrInfo{ID: b.ID()}) })
		wg.Go(func() { _ = b.Connect(ctx, peer.AddrInfo{ID: a.ID()}) })
		wg.Wait()
		transports := map[string]bool{}
		for _, c := range a.Network().ConnsToPeer(b.ID()) {
			transports[a.ConnPath(c).Transport] = true
		}
		if transports[TransportTCP] && transports[TransportQUIC] {
			break
		}
	}
	push(TransportTCP)
}

// waitFor polls f until it returns nil, failing t after 10 seconds.
func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
