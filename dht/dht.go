package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadrecords "github.com/libp2p/go-libp2p-kad-dht/records"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/dht/records"
)

var log = logging.Logger("parley/dht")

// DHT is a node of Parley's private Kademlia network, running on a host it
// does not own. Its methods are safe for concurrent use.
type DHT struct {
	// Set once, never mutated.
	host    host.Host
	kad     *kaddht.IpfsDHT
	cfg     config
	key     crypto.PrivKey // signs this node's records; nil if the peerstore has none
	reprov  *reprovider
	ctx     context.Context // cancelled by Close
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	addrSub event.Subscription // nil unless address records are on

	addrsChanged chan struct{} // a token when the host's addresses changed

	closeOnce sync.Once
	closeErr  error

	mu             sync.Mutex // guards the following
	closed         bool
	bootstrapCache []peer.AddrInfo
	supernodeStop  context.CancelFunc // non-nil while announcing as a supernode
	supernodeDone  chan struct{}
	published      map[records.Kind]records.Record
}

// New starts a DHT node on h. It returns at once; bootstrap runs in the
// background (Bootstrap waits for it). Close stops everything New started
// but not the host.
func New(h host.Host, opts ...Option) (_ *DHT, err error) {
	cfg := defaults()
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("dht option: %w", err)
		}
	}
	cfg.fallbacks()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("dht config: %w", err)
	}
	d := &DHT{
		host:         h,
		cfg:          cfg,
		key:          h.Peerstore().PrivKey(h.ID()),
		addrsChanged: make(chan struct{}, 1),
		published:    make(map[records.Kind]records.Record),
	}
	if cfg.addrRecords && d.key == nil {
		return nil, errors.New("address records: the host's peerstore has no private key to sign them")
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	kopts := []kaddht.Option{
		kaddht.ProtocolPrefix(ProtocolPrefix),
		kaddht.Mode(cfg.mode.kad()),
		kaddht.Validator(records.NamespacedValidator(nil)),
		kaddht.BootstrapPeersFunc(d.cachedBootstrapPeers),
		kaddht.RoutingTableRefreshPeriod(cfg.refreshInterval),
		// Longer than a request: a refresh query that ends with the
		// request to a dead peer does not evict it (kad-dht evicts only
		// when the query itself is still running).
		kaddht.RoutingTableRefreshQueryTimeout(3 * cfg.requestTimeout),
		kaddht.ProviderManagerOpts(kadrecords.ProvideValidity(cfg.providerTTL)),
		kaddht.MaxRecordAge(records.MaxLifetime),
		kaddht.WithCustomMessageSender(newSender(cfg.requestTimeout)),
	}
	if d.kad, err = kaddht.New(d.ctx, h, append(kopts, cfg.kadOpts...)...); err != nil {
		return nil, fmt.Errorf("start kad-dht: %w", err)
	}
	d.reprov = newReprovider(cfg.reprovideInterval, d.announce)
	if cfg.rtService {
		h.SetStreamHandler(RoutingTableProtocolID, newRTService(d, cfg.rtAllow).handle)
	}
	if cfg.addrRecords {
		if d.addrSub, err = h.EventBus().Subscribe(new(event.EvtLocalAddressesUpdated)); err != nil {
			return nil, fmt.Errorf("subscribe to address changes: %w", err)
		}
		d.goRun(d.watchAddrs)
		d.goRun(func() { d.runPublisher(d.ctx, records.KindAddr) })
	}
	if len(cfg.bootstrapPeers)+len(cfg.bootstrapFuncs) > 0 {
		// A seed (the rendezvous server) has nowhere to bootstrap from:
		// the others connect to it, and kad-dht adds them.
		d.goRun(d.bootstrapLoop)
	}
	d.goRun(func() { d.reprov.run(d.ctx) })
	log.Debugw("DHT started", "peer", h.ID(), "mode", cfg.mode)
	return d, nil
}

// goRun runs f in a goroutine that Close waits for.
func (d *DHT) goRun(f func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f()
	}()
}

// Close stops the DHT: its goroutines, kad-dht, the routing-table service
// and supernode announcements. It does not close the host. Records and
// provider announcements already stored elsewhere stay until they expire.
// Close is idempotent.
func (d *DHT) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.mu.Unlock()
		if d.cfg.rtService {
			d.host.RemoveStreamHandler(RoutingTableProtocolID)
		}
		d.cancel()
		var errs []error
		if d.addrSub != nil {
			errs = append(errs, d.addrSub.Close())
		}
		d.wg.Wait()
		if d.kad != nil {
			errs = append(errs, d.kad.Close())
			// kad-dht leaves its handler behind; a closed DHT answers nothing.
			d.host.RemoveStreamHandler(ProtocolID)
		}
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

func (d *DHT) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// Host is the host the DHT runs on.
func (d *DHT) Host() host.Host { return d.host }

// Kad is the underlying kad-dht node, for what this package does not wrap.
func (d *DHT) Kad() *kaddht.IpfsDHT { return d.kad }

// Server reports whether the node is in server mode now: it answers DHT
// queries and others keep it in their routing tables.
func (d *DHT) Server() bool {
	return slices.Contains(d.host.Mux().Protocols(), ProtocolID)
}

// notFound is the error for a lookup that found nothing: ErrNoPeers if
// there was nobody to ask.
func (d *DHT) notFound() error {
	if d.kad.RoutingTable().Size() == 0 {
		return ErrNoPeers
	}
	return ErrNotFound
}

// lookupErr maps kad-dht's errors to this package's.
func (d *DHT) lookupErr(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return d.notFound()
	case errors.Is(err, kb.ErrLookupFailure):
		return ErrNoPeers
	default:
		return err
	}
}

// FindPeer finds the addresses of a DHT server, or of a peer this node or
// a server on the lookup's path is connected to. Devices behind NAT are in
// no routing table, so FindPeer finds them only by that chance: look them
// up with LookupAddrs.
//
// Like kad-dht's, the lookup ends once this node is connected to p (it
// dials p when an answer names it); unlike kad-dht's, it then returns at
// once instead of waiting for its other requests, one of which may be
// waiting out the request timeout on a dead peer.
func (d *DHT) FindPeer(ctx context.Context, p peer.ID) (peer.AddrInfo, error) {
	if d.isClosed() {
		return peer.AddrInfo{}, ErrClosed
	}
	sub, err := d.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("find peer %s: subscribe to connections: %w", p, err)
	}
	defer sub.Close()
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		ai  peer.AddrInfo
		err error
	}
	done := make(chan result, 1)
	go func() {
		ai, err := d.kad.FindPeer(lctx, p)
		done <- result{ai, err}
	}()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return peer.AddrInfo{}, fmt.Errorf("find peer %s: %w", p, d.lookupErr(r.err))
			}
			return r.ai, nil
		case e := <-sub.Out():
			ev := e.(event.EvtPeerConnectednessChanged)
			if ev.Peer != p || ev.Connectedness != network.Connected {
				continue
			}
			cancel()
			<-done
			return d.host.Peerstore().PeerInfo(p), nil
		}
	}
}

// Ping sends a DHT ping to p (connecting if needed) and returns the round
// trip time. It fails if p does not answer DHT requests.
func (d *DHT) Ping(ctx context.Context, p peer.ID) (time.Duration, error) {
	if d.isClosed() {
		return 0, ErrClosed
	}
	if err := d.host.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
		return 0, fmt.Errorf("ping %s: connect: %w", p, err)
	}
	start := time.Now()
	if err := d.kad.Ping(ctx, p); err != nil {
		return 0, fmt.Errorf("ping %s: %w", p, err)
	}
	return time.Since(start), nil
}
