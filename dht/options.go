package dht

import (
	"context"
	"errors"
	"fmt"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/dht/records"
)

// Mode is whether a node answers DHT queries.
type Mode int

const (
	// ModeAuto follows the host's reachability events: server while
	// publicly reachable, client otherwise (also while unknown).
	ModeAuto Mode = iota
	// ModeServer answers queries and is listed in others' routing tables:
	// supernodes, relay nodes, the rendezvous server.
	ModeServer
	// ModeClient only asks: nodes behind NAT, the parley-dht CLI.
	ModeClient
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeServer:
		return "server"
	case ModeClient:
		return "client"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

func (m Mode) kad() kaddht.ModeOpt {
	switch m {
	case ModeServer:
		return kaddht.ModeServer
	case ModeClient:
		return kaddht.ModeClient
	default:
		return kaddht.ModeAuto
	}
}

// BootstrapFunc returns peers to bootstrap from, for example the supernodes
// of the rendezvous directory:
//
//	dht.WithBootstrapFunc(func(ctx context.Context) ([]peer.AddrInfo, error) {
//		return rendezvousClient.Supernodes(ctx, 0)
//	})
type BootstrapFunc func(ctx context.Context) ([]peer.AddrInfo, error)

// Defaults of the options.
const (
	DefaultBootstrapInterval = time.Minute
	DefaultRefreshInterval   = 10 * time.Minute
	DefaultRecordLifetime    = 2 * time.Hour
	DefaultProviderRecordTTL = 12 * time.Hour
)

// Option configures a DHT.
type Option func(*config) error

type config struct {
	mode              Mode
	modeSet           bool
	bootstrapPeers    []peer.AddrInfo
	bootstrapFuncs    []BootstrapFunc
	bootstrapInterval time.Duration
	refreshInterval   time.Duration
	seq               SeqSource
	addrRecords       bool
	recordAddrs       func() []ma.Multiaddr
	recordLifetime    time.Duration
	providerTTL       time.Duration
	reprovideInterval time.Duration
	requestTimeout    time.Duration
	rtService         bool
	rtAllow           func(peer.ID) bool
	kadOpts           []kaddht.Option
}

func defaults() config {
	return config{
		mode:              ModeAuto,
		bootstrapInterval: DefaultBootstrapInterval,
		refreshInterval:   DefaultRefreshInterval,
		recordLifetime:    DefaultRecordLifetime,
		providerTTL:       DefaultProviderRecordTTL,
		requestTimeout:    DefaultRequestTimeout,
	}
}

// fallbacks fills what depends on other options.
func (c *config) fallbacks() {
	if c.seq == nil {
		c.seq = ClockSeq()
	}
	if c.reprovideInterval == 0 {
		c.reprovideInterval = c.providerTTL / 3
	}
}

func (c *config) validate() error {
	if c.mode < ModeAuto || c.mode > ModeClient {
		return fmt.Errorf("unknown mode %d", c.mode)
	}
	if c.bootstrapInterval <= 0 || c.refreshInterval <= 0 {
		return errors.New("bootstrap and refresh intervals must be positive")
	}
	if c.recordLifetime < time.Second || c.recordLifetime > records.MaxLifetime {
		return fmt.Errorf("record lifetime %s: want 1s to %s", c.recordLifetime, records.MaxLifetime)
	}
	if c.requestTimeout <= 0 {
		return errors.New("request timeout must be positive")
	}
	if c.providerTTL <= 0 {
		return errors.New("provider record TTL must be positive")
	}
	if c.reprovideInterval <= 0 || c.reprovideInterval >= c.providerTTL {
		return fmt.Errorf("reprovide interval %s must be positive and below the provider record TTL %s", c.reprovideInterval, c.providerTTL)
	}
	return nil
}

// WithMode sets the mode; the default is ModeAuto.
func WithMode(m Mode) Option {
	return func(c *config) error {
		if c.modeSet {
			return errors.New("cannot specify the mode twice")
		}
		c.mode, c.modeSet = m, true
		return nil
	}
}

// WithBootstrapPeers adds static bootstrap peers (configured peers, or the
// addresses given to the CLI). The option may be repeated.
func WithBootstrapPeers(peers ...peer.AddrInfo) Option {
	return func(c *config) error {
		for _, p := range peers {
			if p.ID == "" {
				return errors.New("bootstrap peer without a peer ID")
			}
		}
		c.bootstrapPeers = append(c.bootstrapPeers, peers...)
		return nil
	}
}

// WithBootstrapFunc adds a source of bootstrap peers consulted at every
// bootstrap, such as the rendezvous directory. The option may be repeated;
// a source that fails is logged and the others are still used.
func WithBootstrapFunc(f BootstrapFunc) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("nil bootstrap func")
		}
		c.bootstrapFuncs = append(c.bootstrapFuncs, f)
		return nil
	}
}

// WithBootstrapInterval sets how often the node checks its routing table
// and bootstraps again when it holds fewer than a few peers (default
// DefaultBootstrapInterval). After a failed bootstrap it retries sooner,
// backing off from 2 s up to this interval.
func WithBootstrapInterval(d time.Duration) Option {
	return func(c *config) error {
		c.bootstrapInterval = d
		return nil
	}
}

// WithRefreshInterval sets how often kad-dht refreshes the routing table's
// buckets, which is how it refills after churn (default
// DefaultRefreshInterval).
func WithRefreshInterval(d time.Duration) Option {
	return func(c *config) error {
		c.refreshInterval = d
		return nil
	}
}

// WithSeq sets where the sequence numbers of this node's records come
// from. The default is ClockSeq; devices should use FileSeq in their data
// directory.
func WithSeq(s SeqSource) Option {
	return func(c *config) error {
		if c.seq != nil {
			return errors.New("cannot specify multiple sequence sources")
		}
		if s == nil {
			return errors.New("nil sequence source")
		}
		c.seq = s
		return nil
	}
}

// WithAddressRecords makes the node publish its signed address record
// (/addr/<its peer ID>) once bootstrapped, republish it every quarter of
// the record lifetime, and soon after its addresses change. Devices use it
// so that contacts can find them while the rendezvous server is down.
func WithAddressRecords() Option {
	return func(c *config) error {
		c.addrRecords = true
		return nil
	}
}

// WithRecordAddrs chooses the addresses that go into this node's records;
// the default is the host's addresses (for a node.Node: listen addresses
// and relay circuit addresses). At most records.MaxAddrs are used.
func WithRecordAddrs(f func() []ma.Multiaddr) Option {
	return func(c *config) error {
		if c.recordAddrs != nil {
			return errors.New("cannot specify record addresses twice")
		}
		c.recordAddrs = f
		return nil
	}
}

// WithRecordLifetime sets the lifetime of the address and supernode
// records this node signs (default DefaultRecordLifetime, at most
// records.MaxLifetime). They are refreshed every quarter of it.
func WithRecordLifetime(d time.Duration) Option {
	return func(c *config) error {
		c.recordLifetime = d
		return nil
	}
}

// WithProviderRecordTTL sets how long this node keeps the provider records
// others store on it (default DefaultProviderRecordTTL). Every Parley node
// should use the same value: it is also how long content stays findable
// after its provider withdraws it or vanishes.
func WithProviderRecordTTL(d time.Duration) Option {
	return func(c *config) error {
		c.providerTTL = d
		return nil
	}
}

// WithReprovideInterval sets how often provided content is announced
// again (default a third of the provider record TTL, so that two missed
// rounds do not make it vanish).
func WithReprovideInterval(d time.Duration) Option {
	return func(c *config) error {
		c.reprovideInterval = d
		return nil
	}
}

// WithRequestTimeout bounds one DHT request to one peer (default
// DefaultRequestTimeout). A peer that lets a request time out is not asked
// again for 30 s.
func WithRequestTimeout(d time.Duration) Option {
	return func(c *config) error {
		c.requestTimeout = d
		return nil
	}
}

// WithRoutingTableService serves RoutingTableProtocolID to the peers allow
// accepts (nil: every peer). See the package doc for what it reveals and
// why that is safe to open.
func WithRoutingTableService(allow func(peer.ID) bool) Option {
	return func(c *config) error {
		if c.rtService {
			return errors.New("cannot enable the routing table service twice")
		}
		c.rtService, c.rtAllow = true, allow
		return nil
	}
}

// WithKadOptions passes options to kad-dht after Parley's own (bucket
// size, concurrency, ...), for tests and the simulation. Options that
// change the protocol prefix or the validator break the network.
func WithKadOptions(opts ...kaddht.Option) Option {
	return func(c *config) error {
		c.kadOpts = append(c.kadOpts, opts...)
		return nil
	}
}
