package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/internal/tstest"
)

// connLog remembers every peer a host ever connected to.
type connLog struct {
	mu    sync.Mutex
	peers map[peer.ID]bool
}

func logConns(d *DHT) *connLog {
	l := &connLog{peers: make(map[peer.ID]bool)}
	d.Host().Network().Notify(&network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
		l.mu.Lock()
		l.peers[c.RemotePeer()] = true
		l.mu.Unlock()
	}})
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range d.Host().Network().Peers() {
		l.peers[p] = true
	}
	return l
}

func (l *connLog) met(p peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.peers[p]
}

// TestProvidersFoundIndirectly: a provider behind NAT announces content
// through one server; a client that bootstrapped elsewhere and never
// talks to the provider finds it, with its addresses.
func TestProvidersFoundIndirectly(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 5)
	provider := client(t, servers[:1])
	finder := client(t, servers[4:])
	met := logConns(finder)
	c := testCID(t, "a file manifest")
	if err := provider.Provide(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := provider.Provided(); !slices.Equal(got, []cid.Cid{c}) {
		t.Fatalf("Provided() = %v", got)
	}
	provs, err := finder.FindProviders(ctx, c, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(provs) != 1 || provs[0].ID != provider.Host().ID() {
		t.Fatalf("got providers %v, want %s", provs, provider.Host().ID())
	}
	if len(provs[0].Addrs) == 0 {
		t.Fatal("the provider record carries no addresses")
	}
	if met.met(provider.Host().ID()) {
		t.Fatal("the finder connected to the provider")
	}
	if _, err := finder.FindProviders(ctx, testCID(t, "nobody has this"), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown content: got %v, want %v", err, ErrNotFound)
	}
	if err := finder.Provide(ctx, cid.Cid{}); err == nil {
		t.Fatal("Provide accepted an undefined CID")
	}
}

// TestWithdrawAgesOut: withdrawn content vanishes once its provider
// records expire, while content still provided is reprovided and stays.
func TestWithdrawAgesOut(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	short := []Option{WithProviderRecordTTL(3 * time.Second), WithReprovideInterval(300 * time.Millisecond)}
	servers := newNetwork(t, 3, short...)
	provider := client(t, servers[:1], short...)
	finder := client(t, servers[2:], short...)
	kept, dropped := testCID(t, "kept"), testCID(t, "dropped")
	for _, c := range []cid.Cid{kept, dropped} {
		if err := provider.Provide(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if !provider.Withdraw(dropped) || provider.Withdraw(dropped) {
		t.Fatal("Withdraw should report true once, then false")
	}
	if got := provider.Provided(); !slices.Equal(got, []cid.Cid{kept}) {
		t.Fatalf("Provided() = %v", got)
	}
	tstest.WaitFor(t, waitTimeout, func() error {
		provs, err := finder.FindProviders(ctx, dropped, 0)
		if !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("the withdrawn content has not aged out: providers %v, %v; want %v", provs, err, ErrNotFound)
		}
		return nil
	})
	// Past the TTL of the first announcement: only reproviding keeps it.
	if _, err := finder.FindProviders(ctx, kept, 0); err != nil {
		t.Fatalf("content still provided: %v", err)
	}
}

// TestReprovider checks the schedule in a bubble with a fake clock.
func TestReprovider(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		calls := map[string]int{}
		fail := map[string]bool{}
		r := newReprovider(time.Hour, func(_ context.Context, c cid.Cid) error {
			mu.Lock()
			defer mu.Unlock()
			calls[c.String()]++
			if fail[c.String()] {
				return errors.New("no peers")
			}
			return nil
		})
		count := func(c cid.Cid) int {
			mu.Lock()
			defer mu.Unlock()
			return calls[c.String()]
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.run(ctx); close(done) }()

		a, b := testCID(t, "a"), testCID(t, "b")
		r.add(a, true)
		mu.Lock()
		fail[b.String()] = true
		mu.Unlock()
		r.add(b, false)
		synctest.Wait()
		if count(a) != 0 || count(b) != 0 {
			t.Fatalf("announced before due: %d, %d", count(a), count(b))
		}
		time.Sleep(reprovideRetry)
		synctest.Wait()
		if count(a) != 0 || count(b) != 1 {
			t.Fatalf("after the retry delay: %d, %d; want 0, 1", count(a), count(b))
		}
		time.Sleep(time.Hour - reprovideRetry)
		synctest.Wait()
		if count(a) != 1 {
			t.Fatalf("after an interval: a announced %d times, want 1", count(a))
		}
		if !r.remove(a) {
			t.Fatal("remove(a) = false")
		}
		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if count(a) != 1 {
			t.Fatalf("a announced %d times after its withdrawal, want 1", count(a))
		}
		if count(b) < 60 {
			t.Fatalf("failing b retried %d times in 4h, want every minute", count(b))
		}
		cancel()
		<-done
	})
}
