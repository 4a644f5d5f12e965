package dht

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
)

const (
	// lowPeers is the routing table size under which the node bootstraps
	// again.
	lowPeers = 4
	// bootstrapMinBackoff is the first retry delay after a failed
	// bootstrap; it doubles up to the bootstrap interval.
	bootstrapMinBackoff = 2 * time.Second
	// bootstrapSourceTimeout bounds one call of a BootstrapFunc.
	bootstrapSourceTimeout = 30 * time.Second
	// bootstrapDialTimeout bounds the connection to one bootstrap peer.
	bootstrapDialTimeout = 15 * time.Second
	// bootstrapDials is how many bootstrap peers are dialled at once.
	bootstrapDials = 8
)

// bootstrapLoop bootstraps at start, and again whenever the routing table
// runs low.
func (d *DHT) bootstrapLoop() {
	backoff := bootstrapMinBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-timer.C:
		}
		wait := d.cfg.bootstrapInterval
		if d.kad.RoutingTable().Size() < lowPeers {
			n, err := d.bootstrapOnce(d.ctx)
			switch {
			case d.ctx.Err() != nil:
				return
			case err != nil:
				log.Warnw("bootstrap failed", "error", err, "retry_in", backoff)
				wait, backoff = backoff, min(2*backoff, d.cfg.bootstrapInterval)
			default:
				log.Debugw("bootstrapped", "connected", n, "routing_table", d.kad.RoutingTable().Size())
				backoff = bootstrapMinBackoff
			}
		}
		timer.Reset(wait)
	}
}

// Bootstrap connects to the bootstrap peers now and waits until the
// routing table holds at least one DHT server, or ctx ends. It returns an
// error when no bootstrap peer could be reached.
func (d *DHT) Bootstrap(ctx context.Context) error {
	if d.isClosed() {
		return ErrClosed
	}
	if _, err := d.bootstrapOnce(ctx); err != nil && d.kad.RoutingTable().Size() == 0 {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := d.waitRoutingTable(ctx); err != nil {
		return fmt.Errorf("bootstrap: connected, but no bootstrap peer is a DHT server: %w", err)
	}
	return nil
}

// waitRoutingTable waits until the routing table holds a peer.
func (d *DHT) waitRoutingTable(ctx context.Context) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for d.kad.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.ctx.Done():
			return ErrClosed
		case <-tick.C:
		}
	}
	return nil
}

// bootstrapOnce gathers bootstrap peers, connects to them and starts a
// routing table refresh. It returns how many it connected to.
func (d *DHT) bootstrapOnce(ctx context.Context) (int, error) {
	peers, srcErr := d.gatherBootstrapPeers(ctx)
	if len(peers) == 0 {
		return 0, errors.Join(errors.New("no bootstrap peers"), srcErr)
	}
	var (
		mu        sync.Mutex
		connected int
		errs      []error
		wg        sync.WaitGroup
		sem       = make(chan struct{}, bootstrapDials)
	)
	for _, ai := range peers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			cctx, cancel := context.WithTimeout(ctx, bootstrapDialTimeout)
			defer cancel()
			err := d.host.Connect(cctx, ai)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("connect to %s: %w", ai.ID, err))
				return
			}
			connected++
		}()
	}
	wg.Wait()
	if connected == 0 {
		return 0, errors.Join(append(errs, srcErr)...)
	}
	for _, err := range errs {
		log.Debugw("bootstrap peer unreachable", "error", err)
	}
	d.kad.RefreshRoutingTable() // answers on a buffered channel nobody needs to read
	return connected, nil
}

// gatherBootstrapPeers merges the static peers and those of every source,
// without this node. Errors of the sources are returned alongside
// whatever the others gave.
func (d *DHT) gatherBootstrapPeers(ctx context.Context) ([]peer.AddrInfo, error) {
	all := slices.Clone(d.cfg.bootstrapPeers)
	var errs []error
	for _, f := range d.cfg.bootstrapFuncs {
		fctx, cancel := context.WithTimeout(ctx, bootstrapSourceTimeout)
		ps, err := f(fctx)
		cancel()
		if err != nil {
			log.Infow("bootstrap source failed", "error", err)
			errs = append(errs, fmt.Errorf("bootstrap source: %w", err))
		}
		all = append(all, ps...)
	}
	merged := make([]peer.AddrInfo, 0, len(all))
	index := make(map[peer.ID]int)
	for _, ai := range all {
		if ai.ID == "" || ai.ID == d.host.ID() {
			continue
		}
		if i, ok := index[ai.ID]; ok {
			merged[i].Addrs = append(merged[i].Addrs, ai.Addrs...)
			continue
		}
		index[ai.ID] = len(merged)
		merged = append(merged, peer.AddrInfo{ID: ai.ID, Addrs: slices.Clone(ai.Addrs)})
	}
	for _, ai := range merged {
		d.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
	}
	if len(merged) > 0 {
		d.mu.Lock()
		d.bootstrapCache = merged
		d.mu.Unlock()
	}
	return merged, errors.Join(errs...)
}

// cachedBootstrapPeers is kad-dht's fallback when its routing table is
// empty: the peers of the last bootstrap, or the static ones.
func (d *DHT) cachedBootstrapPeers() []peer.AddrInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.bootstrapCache) > 0 {
		return slices.Clone(d.bootstrapCache)
	}
	return slices.Clone(d.cfg.bootstrapPeers)
}
