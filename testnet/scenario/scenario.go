// Package scenario runs parley-testnet's scripted scenarios
// (connectivity, chat, failover) against a network of clients, whatever
// runs it (in-process engines on loopback, or daemons in the NAT lab), and
// measures what happened: the path labels the clients report and the
// times at which messages arrive at the receiver (the receiver's event
// stream), never what the configuration says should happen.
package scenario

import (
	"context"
	"sync"

	"github.com/parleynet/parley/app/apitype"
)

// API is what a scenario uses of a client: the engine in process and the
// daemon's API client both are one.
type API interface {
	Status(ctx context.Context) (apitype.Status, error)
	Send(ctx context.Context, to, body string) (apitype.Message, error)
	History(ctx context.Context, q apitype.HistoryQuery) ([]apitype.Message, error)
	Watch(ctx context.Context, since uint64) (<-chan apitype.Event, error)
	Publish(ctx context.Context, path string) (apitype.Published, error)
	Get(ctx context.Context, req apitype.GetRequest) (apitype.Transfer, error)
	Transfers(ctx context.Context) ([]apitype.Transfer, error)
}

// Peer is a client of the network, logged in and a contact of every
// other peer.
type Peer struct {
	Name string
	// NAT is the kind of network the client is on: "cone",
	// "symmetric", "public", "imitated NAT"…
	NAT string

	mu  sync.Mutex // guards api
	api API
}

// NewPeer is a peer driven through api.
func NewPeer(name, nat string, api API) *Peer { return &Peer{Name: name, NAT: nat, api: api} }

// API drives the peer; it changes when the peer restarts.
func (p *Peer) API() API {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.api
}

// SetAPI is for Net.Restart: api drives the restarted peer.
func (p *Peer) SetAPI(api API) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.api = api
}

// Net is a running network of peers and supernodes.
type Net interface {
	// Peers are the clients, in a fixed order.
	Peers() []*Peer
	// Restart stops a client and starts it again on its data: a fresh
	// node without connections. It returns once the client is logged in
	// and holds its relay reservations. It may be called for several
	// peers at once.
	Restart(ctx context.Context, p *Peer) error
	// Forget drops what the NATs of a and b remember of each other
	// (mappings left by an earlier attempt); nothing where no NAT is.
	Forget(ctx context.Context, a, b *Peer) error
	// StopSupernode stops the supernode with the given peer ID: at once
	// (kill, as SIGKILL) or gracefully (as SIGTERM: it tells its clients
	// and drains). It returns when the stop has begun; the stop goes on
	// in the background.
	StopSupernode(ctx context.Context, id string, kill bool) error
}
