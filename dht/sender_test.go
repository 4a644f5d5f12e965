package dht

import (
	"errors"
	"testing"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/network"
)

// TestSilentPeerNotAskedAgain: a peer that lets a request time out is not
// asked again at once; a lookup does not wait for it either. Not
// parallel: its 300 ms request timeout must not fire for the peers that
// do answer, which other tests' networks on a loaded machine could cause.
func TestSilentPeerNotAskedAgain(t *testing.T) {
	ctx := testContext(t)
	servers := newNetwork(t, 3)
	q := client(t, servers, WithRequestTimeout(300*time.Millisecond))
	silent := servers[1]
	// The silent server reads requests and never answers, as a machine
	// that vanished with its connections still open.
	silent.Host().SetStreamHandler(ProtocolID, func(s network.Stream) {
		<-ctx.Done()
		s.Reset()
	})
	pm, err := kadpb.NewProtocolMessenger(q.Kad().MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := pm.Ping(ctx, silent.Host().ID()); err == nil {
		t.Fatal("a silent peer answered")
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("the first request failed after %s, before its timeout", took)
	}
	err = pm.Ping(ctx, silent.Host().ID())
	if !errors.Is(err, errSilent) {
		t.Fatalf("second request: got %v, want %v", err, errSilent)
	}
	// Others are still asked.
	if err := pm.Ping(ctx, servers[2].Host().ID()); err != nil {
		t.Fatal(err)
	}
	// Content is still provided and found with a silent server around.
	c := testCID(t, "with a silent server around")
	if err := q.Provide(ctx, c); err != nil {
		t.Fatal(err)
	}
	other := client(t, servers[2:], WithRequestTimeout(300*time.Millisecond))
	if provs, err := other.FindProviders(ctx, c, 1); err != nil || provs[0].ID != q.Host().ID() {
		t.Fatalf("got %v, %v", provs, err)
	}
}
