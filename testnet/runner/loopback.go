package runner

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/testnet"
	"github.com/parleynet/parley/testnet/scenario"
)

// loopback is an in-process loopback network (package testnet): every
// client is an engine of this process imitating a NAT, so every pair
// talks through a supernode. It needs no build and no root.
type loopback struct {
	n       *testnet.Network
	peers   []*scenario.Peer
	stopped sync.WaitGroup // graceful supernode stops under way

	mu      sync.Mutex // guards clients
	clients map[string]*testnet.Client
}

func startLoopback(ctx context.Context, clients, supernodes int) (_ *loopback, err error) {
	n, err := testnet.Start(ctx, testnet.Config{Supernodes: supernodes})
	if err != nil {
		return nil, err
	}
	l := &loopback{n: n, clients: map[string]*testnet.Client{}}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	var all []*testnet.Client
	for _, u := range testnet.DemoUsers(clients) {
		c, err := n.AddClient(ctx, u.Name)
		if err != nil {
			return nil, err
		}
		if err := testnet.SignIn(ctx, c, u.Password); err != nil {
			return nil, err
		}
		for _, other := range all {
			if err := testnet.MakeContacts(ctx, other, c); err != nil {
				return nil, err
			}
		}
		all = append(all, c)
		l.clients[u.Name] = c
		l.peers = append(l.peers, scenario.NewPeer(u.Name, "imitated NAT", c.Engine))
	}
	return l, nil
}

func (l *loopback) Mode() string {
	return fmt.Sprintf("loopback: in-process engines on 127.0.0.1 imitating NATs (every pair relayed), %d supernodes", len(l.n.Supernodes))
}

func (l *loopback) Peers() []*scenario.Peer { return l.peers }

func (l *loopback) Restart(ctx context.Context, p *scenario.Peer) error {
	l.mu.Lock()
	c := l.clients[p.Name]
	l.mu.Unlock()
	if err := l.n.StopClient(c); err != nil {
		return fmt.Errorf("stop %s: %w", p.Name, err)
	}
	c, err := l.n.AddClient(ctx, p.Name)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.clients[p.Name] = c
	l.mu.Unlock()
	p.SetAPI(c.Engine)
	return c.AwaitRelay(ctx)
}

// DHT is p's engine's DHT node.
func (l *loopback) DHT(p *scenario.Peer) *dht.DHT {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.clients[p.Name].Engine.DHT()
}

func (l *loopback) Forget(context.Context, *scenario.Peer, *scenario.Peer) error { return nil }

func (l *loopback) StopSupernode(_ context.Context, id string, kill bool) error {
	i := slices.IndexFunc(l.n.Supernodes, func(s *testnet.Supernode) bool { return s.Node.ID().String() == id })
	if i < 0 {
		return fmt.Errorf("no supernode %s", id)
	}
	s := l.n.Supernodes[i]
	if kill {
		return l.n.KillSupernode(s)
	}
	l.stopped.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Service.Shutdown(ctx) // the kill below ends what it left
		l.n.KillSupernode(s)
	})
	return nil
}

func (l *loopback) Close() error {
	l.stopped.Wait()
	return l.n.Close()
}
