package relay

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
)

// SupernodeSource lists candidate supernodes, best first. The rendezvous
// client's Supernodes method is one.
type SupernodeSource func(ctx context.Context) ([]peer.AddrInfo, error)

// ReserverConfig configures a Reserver. The zero value is valid.
type ReserverConfig struct {
	// Want is how many supernodes to hold reservations on. Zero means 2.
	Want int
	// Interval is how often reservations are checked when nothing else
	// happens; a dropped supernode connection triggers a check at once.
	// Reservations are renewed when less than three intervals remain, and a
	// supernode that failed is skipped for three intervals.
	// Zero means 30s.
	Interval time.Duration
	// OnChange is called with the new circuit addresses whenever they
	// change. It is called from the reserver's goroutine, never
	// concurrently, and must not block for long.
	OnChange func(circuitAddrs []ma.Multiaddr)
}

const reserveTimeout = 10 * time.Second

const protectTag = "parley-supernode"

// Reserver keeps relay reservations for a node that is not publicly
// reachable.
type Reserver struct {
	node   *node.Node
	source SupernodeSource
	cfg    ReserverConfig
	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards the following
	active  map[peer.ID]*slot
	backoff map[peer.ID]time.Time // supernodes not to try before then
	addrs   []ma.Multiaddr        // circuit addresses last published
}

type slot struct {
	info    peer.AddrInfo
	expires time.Time
}

// StartReserver starts keeping reservations. Close stops it.
func StartReserver(n *node.Node, source SupernodeSource, cfg ReserverConfig) *Reserver {
	if cfg.Want == 0 {
		cfg.Want = 2
	}
	if cfg.Interval == 0 {
		cfg.Interval = 30 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reserver{
		node:    n,
		source:  source,
		cfg:     cfg,
		kick:    make(chan struct{}, 1),
		cancel:  cancel,
		done:    make(chan struct{}),
		active:  make(map[peer.ID]*slot),
		backoff: make(map[peer.ID]time.Time),
	}
	notifee := &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		r.mu.Lock()
		_, ours := r.active[c.RemotePeer()]
		r.mu.Unlock()
		if ours {
			r.Refresh()
		}
	}}
	n.Network().Notify(notifee)
	go func() {
		defer close(r.done)
		defer n.Network().StopNotify(notifee)
		r.run(ctx)
	}()
	return r
}

// Refresh asks for a check of the reservations now, for example after the
// directory changed.
func (r *Reserver) Refresh() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Supernodes returns the supernodes holding a reservation for this node.
func (r *Reserver) Supernodes() []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]peer.ID, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// CircuitAddrs returns the circuit addresses of the current reservations.
func (r *Reserver) CircuitAddrs() []ma.Multiaddr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.addrs)
}

// Close stops the reserver and waits for it.
func (r *Reserver) Close() error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.active {
		r.node.ConnManager().Unprotect(id, protectTag)
	}
	return nil
}

func (r *Reserver) run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
		case <-t.C:
		}
	}
}

// check drops dead reservations, renews those about to expire, fills up to
// Want from the source, and publishes the circuit addresses if they changed.
func (r *Reserver) check(ctx context.Context) {
	now := time.Now()
	var renew []peer.AddrInfo
	r.mu.Lock()
	for id, s := range r.active {
		switch {
		case r.node.Network().Connectedness(id) != network.Connected || now.After(s.expires):
			log.Infow("lost supernode", "supernode", id)
			r.backoff[id] = now.Add(r.retryAfter())
			delete(r.active, id)
			r.node.ConnManager().Unprotect(id, protectTag)
		case s.expires.Sub(now) < 3*r.cfg.Interval:
			renew = append(renew, s.info)
		}
	}
	missing := r.cfg.Want - len(r.active)
	r.mu.Unlock()
	// Withdraw a lost supernode's addresses now, not after the dials below.
	r.publish()

	for _, info := range renew {
		if err := r.reserve(ctx, info); err != nil {
			log.Warnw("renew reservation failed", "supernode", info.ID, "err", err)
		}
	}
	if missing > 0 {
		r.fill(ctx, missing)
	}
	r.publish()
}

// retryAfter is how long a supernode that failed or was lost is skipped:
// the directory may list a dead supernode until its entry expires.
func (r *Reserver) retryAfter() time.Duration { return 3 * r.cfg.Interval }

// fill reserves on up to missing new supernodes.
func (r *Reserver) fill(ctx context.Context, missing int) {
	candidates, err := r.source(ctx)
	if err != nil {
		log.Warnw("list supernodes failed", "err", err)
		return
	}
	for _, c := range candidates {
		if missing == 0 || ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		_, have := r.active[c.ID]
		backingOff := time.Now().Before(r.backoff[c.ID])
		r.mu.Unlock()
		if have || backingOff || c.ID == r.node.ID() {
			continue
		}
		if err := r.reserve(ctx, c); err != nil {
			log.Warnw("reservation refused", "supernode", c.ID, "err", err)
			r.mu.Lock()
			r.backoff[c.ID] = time.Now().Add(r.retryAfter())
			r.mu.Unlock()
			continue
		}
		missing--
	}
	if missing > 0 {
		log.Debugw("fewer supernodes than wanted", "missing", missing)
	}
}

func (r *Reserver) reserve(ctx context.Context, info peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	rsvp, err := circuit.Reserve(ctx, r.node, info)
	if err != nil {
		return fmt.Errorf("reserve on %s: %w", info.ID, err)
	}
	r.node.ConnManager().Protect(info.ID, protectTag)
	r.mu.Lock()
	_, renewal := r.active[info.ID]
	r.active[info.ID] = &slot{info: info, expires: rsvp.Expiration}
	delete(r.backoff, info.ID)
	r.mu.Unlock()
	if !renewal {
		log.Infow("reserved relay slot", "supernode", info.ID, "expires", rsvp.Expiration)
	}
	return nil
}

func (r *Reserver) publish() {
	r.mu.Lock()
	var addrs []ma.Multiaddr
	for id, s := range r.active {
		addrs = append(addrs, CircuitAddrs(id, s.info.Addrs)...)
	}
	slices.SortFunc(addrs, func(a, b ma.Multiaddr) int { return a.Compare(b) })
	changed := !slices.EqualFunc(addrs, r.addrs, func(a, b ma.Multiaddr) bool { return a.Equal(b) })
	r.addrs = addrs
	r.mu.Unlock()
	if !changed {
		return
	}
	r.node.SetCircuitAddrs(addrs)
	if r.cfg.OnChange != nil {
		r.cfg.OnChange(slices.Clone(addrs))
	}
}

// CircuitAddrs returns the circuit addresses through supernode relay at
// the given addresses: <addr>/p2p/<relay>/p2p-circuit.
func CircuitAddrs(relay peer.ID, relayAddrs []ma.Multiaddr) []ma.Multiaddr {
	suffix, err := ma.NewMultiaddr("/p2p/" + relay.String() + "/p2p-circuit")
	if err != nil {
		return nil
	}
	var out []ma.Multiaddr
	for _, a := range relayAddrs {
		if node.IsCircuit(a) {
			continue // never relay through a relay
		}
		out = append(out, a.Encapsulate(suffix))
	}
	return out
}
