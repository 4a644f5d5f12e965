// Package testnet runs a Parley network on one machine.
//
// Loopback mode (this package's Start) runs every role as its own libp2p
// node on 127.0.0.1 over real TCP and QUIC: a rendezvous server on an
// embedded SQLite file, supernodes, and clients that imitate a NAT (forced
// private reachability, unsolicited inbound connections refused), so that
// clients can reach each other only through a supernode's relay.
package testnet

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

// Config configures a loopback network. The zero value is valid.
type Config struct {
	// Dir holds every node's data. Empty means a new temporary directory,
	// removed by Close. An existing Dir is reused: accounts, keys,
	// history and the ports every node listens on survive across runs.
	Dir string
	// Supernodes is how many supernodes to start. Zero means 1.
	Supernodes int
	// Clients is how many demo users Up signs in and befriends (see
	// DemoUsers). Zero means 2, alice and bob.
	Clients int
}

// Network is a running loopback network.
type Network struct {
	Dir        string
	Rendezvous *Rendezvous
	Supernodes []*Supernode

	ownDir bool
	unlock func() error // releases Dir for another network

	mu      sync.Mutex // guards the following
	clients []*Client
	ports   ports // as saved in Dir
}

// Rendezvous is the network's rendezvous server.
type Rendezvous struct {
	Node    *node.Node
	Server  *server.Server
	DHT     *dht.DHT // the DHT seed
	store   *sqlite.Store
	certKey crypto.PrivKey
	dir     string
	listen  []string
}

// Info is how clients reach the server.
func (r *Rendezvous) Info() peer.AddrInfo {
	return peer.AddrInfo{ID: r.Node.ID(), Addrs: r.Node.Addrs()}
}

// Supernode is one of the network's supernodes.
type Supernode struct {
	Node    *node.Node
	Service *relay.Supernode
	DHT     *dht.DHT
}

// Client is a NAT-imitating client with its local API.
type Client struct {
	Name   string
	Dir    string
	Engine *app.Engine
	API    *api.Server

	relays int // how many supernodes it reserves on
}

// Status is the client's status (the engine's Status never fails).
func (c *Client) Status() apitype.Status {
	s, _ := c.Engine.Status(context.Background())
	return s
}

// Start starts the rendezvous server and the supernodes, and waits until
// the directory lists every supernode.
func Start(ctx context.Context, cfg Config) (_ *Network, err error) {
	n := &Network{Dir: cfg.Dir}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "parley-testnet-"); err != nil {
			return nil, fmt.Errorf("create testnet directory: %w", err)
		}
		n.ownDir = true
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(n.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create testnet directory: %w", err)
	}
	if n.unlock, err = lockDir(n.Dir); err != nil {
		return nil, err
	}
	if n.ports, err = loadPorts(n.Dir); err != nil {
		return nil, err
	}
	n.Rendezvous = &Rendezvous{dir: filepath.Join(n.Dir, "rendezvous"), listen: listenAddrs(n.ports.Rendezvous)}
	if err := n.Rendezvous.start(); err != nil {
		if len(n.ports.Rendezvous) > 0 {
			return nil, fmt.Errorf("%w (on the ports of an earlier run, kept in %s: is that network still running?)", err, portsFile)
		}
		return nil, err
	}
	if err := n.keepPorts(func(p *ports) { p.Rendezvous = boundAddrs(n.Rendezvous.Node) }); err != nil {
		return nil, err
	}
	count := max(cfg.Supernodes, 1)
	for i := range count {
		sn, err := n.startSupernode(i)
		if err != nil {
			return nil, err
		}
		n.Supernodes = append(n.Supernodes, sn)
	}
	if err := n.awaitDirectory(ctx, count); err != nil {
		return nil, err
	}
	return n, nil
}

func (r *Rendezvous) start() (err error) {
	var opened []func() error // closed again if a later step fails
	defer func() {
		if err != nil {
			for _, c := range opened {
				c()
			}
		}
	}()
	if r.Node, err = node.New(
		node.WithIdentity(filepath.Join(r.dir, "identity.key")),
		node.WithListenAddrs(r.listen...),
		node.WithReachability(node.ReachabilityPublic),
	); err != nil {
		return fmt.Errorf("start rendezvous node: %w", err)
	}
	opened = append(opened, r.Node.Close)
	if r.DHT, err = dht.New(r.Node, dht.WithMode(dht.ModeServer), dht.WithRoutingTableService(nil)); err != nil {
		return fmt.Errorf("start rendezvous DHT: %w", err)
	}
	opened = append(opened, r.DHT.Close)
	if r.certKey, err = node.LoadOrCreateIdentity(filepath.Join(r.dir, "cert.key")); err != nil {
		return fmt.Errorf("rendezvous certificate key: %w", err)
	}
	if r.store, err = sqlite.Open(filepath.Join(r.dir, "rendezvous.db")); err != nil {
		return fmt.Errorf("open rendezvous store: %w", err)
	}
	opened = append(opened, r.store.Close)
	if r.Server, err = server.New(context.Background(), r.Node, r.store, server.LocalConfig(r.certKey)); err != nil {
		return err
	}
	// Listen on the same ports after a restart, so clients find it again.
	r.listen = nil
	for _, a := range r.Node.Addrs() {
		r.listen = append(r.listen, a.String())
	}
	return nil
}

func (r *Rendezvous) stop() error {
	return errors.Join(r.Server.Close(), r.DHT.Close(), r.Node.Close(), r.store.Close())
}

// RestartRendezvous stops the rendezvous server and starts it again on the
// same data directory and ports, as an operator's restart would.
func (n *Network) RestartRendezvous() error {
	if err := n.StopRendezvous(); err != nil {
		return err
	}
	return n.StartRendezvous()
}

// StopRendezvous stops the rendezvous server (an outage); StartRendezvous
// brings it back.
func (n *Network) StopRendezvous() error {
	if err := n.Rendezvous.stop(); err != nil {
		return fmt.Errorf("stop rendezvous: %w", err)
	}
	n.Rendezvous.Server = nil
	return nil
}

// StartRendezvous starts the rendezvous server again after StopRendezvous,
// on the same data directory and ports.
func (n *Network) StartRendezvous() error {
	if n.Rendezvous.Server != nil {
		return errors.New("the rendezvous server is running")
	}
	return n.Rendezvous.start()
}

// KillSupernode stops a supernode at once, without telling its clients,
// as a crash would, and removes it from the network.
func (n *Network) KillSupernode(s *Supernode) error {
	i := slices.Index(n.Supernodes, s)
	if i < 0 {
		return errors.New("not a supernode of this network")
	}
	n.Supernodes = slices.Delete(n.Supernodes, i, i+1)
	return errors.Join(s.Service.Close(), s.DHT.Close(), s.Node.Close())
}

// AddSupernode starts one more supernode. It joins the DHT through the
// rendezvous server and the supernodes already running, so it can join
// while the server is down, as an operator's --bootstrap would let it.
func (n *Network) AddSupernode() (*Supernode, error) {
	sn, err := n.startSupernode(len(n.Supernodes))
	if err != nil {
		return nil, err
	}
	n.Supernodes = append(n.Supernodes, sn)
	return sn, nil
}

func (n *Network) startSupernode(i int) (*Supernode, error) {
	n.mu.Lock()
	var saved []string
	if i < len(n.ports.Supernodes) {
		saved = n.ports.Supernodes[i]
	}
	n.mu.Unlock()
	nd, err := node.New(
		node.WithIdentity(filepath.Join(n.Dir, fmt.Sprintf("supernode-%d", i+1), "identity.key")),
		node.WithListenAddrs(listenAddrs(saved)...),
		node.WithReachability(node.ReachabilityPublic),
	)
	if err != nil {
		return nil, fmt.Errorf("start supernode node: %w", err)
	}
	if err := n.keepPorts(func(p *ports) {
		for len(p.Supernodes) <= i {
			p.Supernodes = append(p.Supernodes, nil)
		}
		p.Supernodes[i] = boundAddrs(nd)
	}); err != nil {
		nd.Close()
		return nil, err
	}
	verifier, err := cert.NewVerifier(n.Rendezvous.certKey.GetPublic())
	if err != nil {
		nd.Close()
		return nil, err
	}
	dir := client.New(nd, n.Rendezvous.Info())
	peers := []peer.AddrInfo{n.Rendezvous.Info()}
	for _, s := range n.Supernodes {
		peers = append(peers, peer.AddrInfo{ID: s.Node.ID(), Addrs: s.Node.Addrs()})
	}
	kad, err := relay.JoinDHT(nd, peers, []*client.Client{dir})
	if err != nil {
		nd.Close()
		return nil, err
	}
	svc, err := relay.Start(nd, relay.Config{
		Verifier:         verifier,
		Directories:      []*client.Client{dir},
		Dedicated:        true,
		Announcer:        kad,
		AnnounceInterval: 2 * time.Second,
		RetryInterval:    500 * time.Millisecond,
	})
	if err != nil {
		kad.Close()
		nd.Close()
		return nil, err
	}
	return &Supernode{Node: nd, Service: svc, DHT: kad}, nil
}

func (n *Network) awaitDirectory(ctx context.Context, want int) error {
	dir := client.New(n.Supernodes[0].Node, n.Rendezvous.Info())
	return waitFor(ctx, "supernodes listed in the directory", func() bool {
		list, err := dir.Supernodes(ctx, 0, nil)
		return err == nil && len(list) >= want
	})
}

// AddClient starts a client named name (its data lives in Dir/name) that
// imitates a NAT, with its local API on 127.0.0.1. It reserves relay slots
// once it is logged in (see SignIn).
func (n *Network) AddClient(ctx context.Context, name string) (_ *Client, err error) {
	c := &Client{Name: name, Dir: filepath.Join(n.Dir, name), relays: min(2, len(n.Supernodes))}
	n.mu.Lock()
	listen := listenAddrs(n.ports.Clients[name])
	n.mu.Unlock()
	c.Engine, err = app.Start(app.Config{
		DataDir:         c.Dir,
		Rendezvous:      n.Rendezvous.Info(),
		ListenAddrs:     listen,
		NATImitation:    true,
		ReserveInterval: 2 * time.Second,
		RetryInterval:   500 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("start client %s: %w", name, err)
	}
	if c.API, err = api.Listen(c.Engine, c.Dir, "127.0.0.1:0"); err != nil {
		c.Engine.Close()
		return nil, fmt.Errorf("start API of %s: %w", name, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clients = append(n.clients, c)
	if n.ports.Clients == nil {
		n.ports.Clients = map[string][]string{}
	}
	n.ports.Clients[name] = boundAddrs(c.Engine.Node())
	return c, n.savePortsLocked()
}

// AwaitRelay waits until c holds relay reservations on two supernodes (or
// on every supernode, when there are fewer) and advertises them.
func (c *Client) AwaitRelay(ctx context.Context) error {
	return waitFor(ctx, c.Name+" holds relay reservations", func() bool {
		return len(c.Engine.Supernodes()) >= c.relays && len(c.Engine.Node().CircuitAddrs()) > 0
	})
}

// StopClient stops a client as if its user quit the app; its data stays,
// and AddClient with the same name starts it again.
func (n *Network) StopClient(c *Client) error {
	n.mu.Lock()
	n.clients = slices.DeleteFunc(n.clients, func(x *Client) bool { return x == c })
	n.mu.Unlock()
	return errors.Join(c.API.Close(), c.Engine.Close())
}

// Close stops every node and removes a temporary directory.
func (n *Network) Close() error {
	var errs []error
	n.mu.Lock()
	clients := slices.Clone(n.clients)
	n.mu.Unlock()
	for _, c := range clients {
		errs = append(errs, c.API.Close(), c.Engine.Close())
	}
	for _, s := range n.Supernodes {
		errs = append(errs, s.Service.Close(), s.DHT.Close(), s.Node.Close())
	}
	if n.Rendezvous != nil && n.Rendezvous.Server != nil {
		errs = append(errs, n.Rendezvous.stop())
	}
	if n.unlock != nil {
		errs = append(errs, n.unlock())
	}
	if n.ownDir {
		errs = append(errs, os.RemoveAll(n.Dir))
	}
	return errors.Join(errs...)
}

// waitFor checks cond every 50 ms until it holds or ctx ends.
func waitFor(ctx context.Context, what string, cond func() bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting until %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}
