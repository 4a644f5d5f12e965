package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay/pb"
)

// SupernodeSource lists candidate supernodes, best first. rtts are the
// round trips the reserver measured to supernodes it knows, for the
// source to rank by. The rendezvous directory is one source.
type SupernodeSource func(ctx context.Context, rtts map[peer.ID]time.Duration) ([]peer.AddrInfo, error)

// ReserverConfig configures a Reserver. The zero value is valid: each
// field left zero takes its default.
type ReserverConfig struct {
	// Want is how many supernodes to hold reservations on. Zero means 2.
	Want int
	// Interval is how often reservations are checked when nothing else
	// happens; a dropped supernode connection, a failed liveness ping or a
	// leaving notice triggers a check at once. Reservations are renewed
	// when less than three intervals remain, and a supernode that failed
	// is skipped for three intervals. Zero means 30s.
	Interval time.Duration
	// PingInterval is how often the supernodes in use are pinged; one that
	// misses a ping is pinged again at once, and replaced when it misses
	// that one too (a ping can queue behind a bulk upload). A supernode
	// that vanishes without closing its connections (a crashed host, a
	// cut link) is thus replaced within PingInterval + 2 × PingTimeout.
	// Zero means 5s and 3s.
	PingInterval, PingTimeout time.Duration
	// Needed reports whether the node needs relay reservations at all; a
	// node that turned out publicly reachable does not. Nil means always.
	Needed func() bool
	// OnChange is called with the new circuit addresses whenever they
	// change. It is called from the reserver's goroutine, never
	// concurrently, and must not block for long.
	OnChange func(circuitAddrs []ma.Multiaddr)
}

const (
	reserveTimeout = 10 * time.Second
	protectTag     = "parley-supernode"
	// probeCandidates is how many listed supernodes without a measured
	// round trip are pinged before choosing.
	probeCandidates = 6
	probeTimeout    = 1500 * time.Millisecond
	// leavingBackoff is how long a supernode that said it leaves is not
	// used again.
	leavingBackoff = 10 * time.Minute
)

// Reserver keeps relay reservations for a node that is not publicly
// reachable. It presents the device's certificate (a Passport) to each
// supernode before reserving, and moves away from a supernode that sends a
// leaving notice before that supernode goes.
type Reserver struct {
	node     *node.Node
	source   SupernodeSource
	passport *Passport
	cfg      ReserverConfig
	kick     chan struct{}
	cancel   context.CancelFunc
	done     chan struct{}
	notifee  *network.NotifyBundle

	mu      sync.Mutex // guards the following
	active  map[peer.ID]*slot
	backoff map[peer.ID]time.Time // supernodes not to try before then
	addrs   []ma.Multiaddr        // circuit addresses last published
	begun   uint64                // checks started
	checks  uint64                // checks completed
	checked chan struct{}         // closed and replaced after each check
}

type slot struct {
	info    peer.AddrInfo
	expires time.Time
}

func (c ReserverConfig) withDefaults() ReserverConfig {
	c.Want = orDefault(c.Want, 2)
	c.Interval = orDefault(c.Interval, 30*time.Second)
	c.PingInterval = orDefault(c.PingInterval, 5*time.Second)
	c.PingTimeout = orDefault(c.PingTimeout, 3*time.Second)
	if c.Needed == nil {
		c.Needed = func() bool { return true }
	}
	return c
}

// StartReserver starts keeping reservations. Close stops it.
func StartReserver(n *node.Node, source SupernodeSource, passport *Passport, cfg ReserverConfig) *Reserver {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Reserver{
		node:     n,
		source:   source,
		passport: passport,
		cfg:      cfg,
		kick:     make(chan struct{}, 1),
		cancel:   cancel,
		done:     make(chan struct{}),
		active:   make(map[peer.ID]*slot),
		backoff:  make(map[peer.ID]time.Time),
		checked:  make(chan struct{}),
	}
	r.notifee = &network.NotifyBundle{DisconnectedF: func(_ network.Network, c network.Conn) {
		r.mu.Lock()
		_, ours := r.active[c.RemotePeer()]
		r.mu.Unlock()
		if ours {
			r.Refresh()
		}
	}}
	n.Network().Notify(r.notifee)
	n.SetStreamHandler(NoticeProtocol, r.handleNotice)
	go func() {
		defer close(r.done)
		r.run(ctx)
	}()
	return r
}

// Refresh asks for a check of the reservations now, for example after the
// directory changed or the device logged in.
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
	r.node.RemoveStreamHandler(NoticeProtocol)
	r.node.Network().StopNotify(r.notifee)
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
	live := time.NewTicker(r.cfg.PingInterval)
	defer live.Stop()
	for {
		r.check(ctx)
		if !r.idle(ctx, t.C, live.C) {
			return
		}
	}
}

// idle pings the supernodes in use while it waits for the next check: a
// kick, the check interval, a supernode that stopped answering, or slots
// no longer needed (the node turned out publicly reachable). It returns
// false when ctx ends.
func (r *Reserver) idle(ctx context.Context, tick, live <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-r.kick:
			return true
		case <-tick:
			return true
		case <-live:
			if r.pingAll(ctx) || (!r.cfg.Needed() && len(r.Supernodes()) > 0) {
				return true
			}
		}
	}
}

// pingAll pings the supernodes in use at once, drops those that do not
// answer, and reports whether it dropped any.
func (r *Reserver) pingAll(ctx context.Context) bool {
	r.mu.Lock()
	ids := make([]peer.ID, 0, len(r.active))
	for id := range r.active {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			if errs[i] = r.alive(ctx, id); errs[i] != nil && ctx.Err() == nil {
				log.Debugw("supernode missed a ping; pinging again", "supernode", id, "err", errs[i])
				errs[i] = r.alive(ctx, id)
			}
		})
	}
	wg.Wait()
	var lost []peer.ID
	r.mu.Lock()
	for i, err := range errs {
		if err != nil && ctx.Err() == nil {
			r.dropLocked(ids[i], time.Now().Add(r.retryAfter()), "no answer to ping: "+err.Error())
			lost = append(lost, ids[i])
		}
	}
	r.mu.Unlock()
	// Close what is left of the connection (a QUIC connection to a crashed
	// host lingers until its idle timeout), and with it the relayed
	// connections to contacts that went through it: they are dead too,
	// and new streams must not wait on them.
	for _, id := range lost {
		r.node.MarkDown(id, time.Now().Add(r.retryAfter()))
		_ = r.node.Network().ClosePeer(id)
	}
	if len(lost) > 0 {
		r.publish()
	}
	return len(lost) > 0
}

// check drops dead reservations, renews those about to expire, fills up to
// Want from the source, and publishes the circuit addresses if they changed.
func (r *Reserver) check(ctx context.Context) {
	r.mu.Lock()
	r.begun++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.checks++
		close(r.checked)
		r.checked = make(chan struct{})
		r.mu.Unlock()
	}()
	if !r.cfg.Needed() {
		r.releaseAll()
		r.publish()
		return
	}
	now := time.Now()
	var keep []peer.AddrInfo
	r.mu.Lock()
	for id, until := range r.backoff {
		if now.After(until) {
			delete(r.backoff, id)
		}
	}
	for id, s := range r.active {
		if r.node.Network().Connectedness(id) != network.Connected || now.After(s.expires) {
			r.dropLocked(id, now.Add(r.retryAfter()), "connection lost or reservation expired")
			continue
		}
		keep = append(keep, s.info)
	}
	r.mu.Unlock()
	// Withdraw a lost supernode's addresses now, not after the dials below.
	r.publish()

	for _, info := range keep {
		r.mu.Lock()
		s, ok := r.active[info.ID]
		renew := ok && time.Until(s.expires) < 3*r.cfg.Interval
		r.mu.Unlock()
		// Present a renewed certificate before the old one runs out; the
		// passport does nothing while the supernode holds the current one.
		err := r.passport.Ensure(ctx, info, 3*r.cfg.Interval)
		if err == nil && renew {
			err = r.reserve(ctx, info)
		}
		if err != nil {
			log.Warnw("keeping reservation failed", "supernode", info.ID, "err", err)
		}
	}
	r.mu.Lock()
	missing := r.cfg.Want - len(r.active)
	r.mu.Unlock()
	if missing > 0 {
		r.fill(ctx, missing)
	}
	r.publish()
}

// dropLocked forgets a reservation and skips the supernode until retry.
func (r *Reserver) dropLocked(id peer.ID, retry time.Time, why string) {
	if _, ok := r.active[id]; !ok {
		return
	}
	log.Infow("lost supernode", "supernode", id, "reason", why)
	r.backoff[id] = retry
	delete(r.active, id)
	r.node.ConnManager().Unprotect(id, protectTag)
}

func (r *Reserver) releaseAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.active {
		log.Infow("publicly reachable: releasing relay slot", "supernode", id)
		delete(r.active, id)
		r.node.ConnManager().Unprotect(id, protectTag)
	}
}

// alive pings a supernode in use; a ping records its round trip too.
func (r *Reserver) alive(ctx context.Context, id peer.ID) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.PingTimeout)
	defer cancel()
	return pingOnce(network.WithNoDial(ctx, "supernode liveness"), r.node, id)
}

// pingOnce pings p once. (ping.Ping closes its channel without a result
// when ctx ends first: that is a timeout, not a success.)
func pingOnce(ctx context.Context, h host.Host, p peer.ID) error {
	res, ok := <-ping.Ping(ctx, h, p)
	switch {
	case !ok:
		return fmt.Errorf("ping %s: %w", p, context.Cause(ctx))
	case res.Error != nil:
		return fmt.Errorf("ping %s: %w", p, res.Error)
	}
	return nil
}

// retryAfter is how long a supernode that failed or was lost is skipped:
// the directory may list a dead supernode until its entry expires.
func (r *Reserver) retryAfter() time.Duration { return 3 * r.cfg.Interval }

// rtts are the measured round trips to supernodes the peerstore knows.
func (r *Reserver) rtts(ids []peer.ID) map[peer.ID]time.Duration {
	m := make(map[peer.ID]time.Duration)
	for _, id := range ids {
		if rtt := r.node.Peerstore().LatencyEWMA(id); rtt > 0 {
			m[id] = rtt
		}
	}
	return m
}

// fill reserves on up to missing new supernodes. The first time it meets
// supernodes it has no round trip for, it pings a few and asks the source
// again, so that the ranking can take distance into account.
func (r *Reserver) fill(ctx context.Context, missing int) {
	candidates, err := r.source(ctx, r.rtts(r.node.Peerstore().Peers()))
	if err != nil {
		log.Warnw("list supernodes failed", "err", err)
		return
	}
	if r.probe(ctx, candidates) {
		if again, err := r.source(ctx, r.rtts(r.node.Peerstore().Peers())); err == nil {
			candidates = again
		}
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
		err := r.passport.Ensure(ctx, c, 3*r.cfg.Interval)
		if err == nil {
			err = r.reserve(ctx, c)
		}
		if errors.Is(err, ErrNoCertificate) {
			log.Debugw("no certificate yet; reserving after login")
			return // no supernode admits us before login; not the supernode's fault
		}
		if err != nil {
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

// probe pings the first few candidates whose round trip is unknown, in
// parallel, and reports whether it learned any.
func (r *Reserver) probe(ctx context.Context, candidates []peer.AddrInfo) bool {
	var wg sync.WaitGroup
	var mu sync.Mutex
	learned := false
	n := 0
	for _, c := range candidates {
		if n == probeCandidates {
			break
		}
		if c.ID == r.node.ID() || r.node.Peerstore().LatencyEWMA(c.ID) > 0 {
			continue
		}
		n++
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			r.node.Peerstore().AddAddrs(c.ID, c.Addrs, 2*time.Minute)
			if pingOnce(pctx, r.node, c.ID) == nil {
				mu.Lock()
				learned = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return learned
}

func (r *Reserver) reserve(ctx context.Context, info peer.AddrInfo) error {
	ctx, cancel := context.WithTimeout(ctx, reserveTimeout)
	defer cancel()
	rsvp, err := circuit.Reserve(ctx, r.node, info)
	if err != nil {
		var re circuit.ReservationError
		if errors.As(err, &re) {
			// The supernode may have restarted and forgotten us.
			r.passport.Forget(info.ID)
		}
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

// handleNotice serves a supernode's leaving notice: drop it, reserve
// elsewhere, publish the new addresses, and acknowledge once they no
// longer include the leaving supernode.
func (r *Reserver) handleNotice(s network.Stream) {
	defer s.Close()
	from := s.Conn().RemotePeer()
	_ = s.SetDeadline(time.Now().Add(exchangeTimeout))
	n := new(pb.Notice)
	if err := wire.NewReader(s, maxNoticeFrame).Read(n); err != nil {
		log.Debugw("bad supernode notice", "peer", from, "err", err)
		s.Reset()
		return
	}
	if n.GetKind() != pb.Notice_KIND_LEAVING {
		s.Reset()
		return
	}
	grace := time.Duration(n.GetGraceMs()) * time.Millisecond
	if grace <= 0 || grace > exchangeTimeout {
		grace = exchangeTimeout
	}
	_ = s.SetDeadline(time.Now().Add(grace))
	r.mu.Lock()
	_, ours := r.active[from]
	if ours {
		r.dropLocked(from, time.Now().Add(leavingBackoff), "supernode is leaving")
	}
	since := r.begun
	r.mu.Unlock()
	if !ours {
		_ = wire.Write(s, &pb.NoticeAck{Moved: true}, maxNoticeFrame)
		return
	}
	log.Infow("supernode is leaving; moving", "supernode", from)
	r.Refresh()
	moved := r.awaitMoved(from, since, grace)
	if err := wire.Write(s, &pb.NoticeAck{Moved: moved}, maxNoticeFrame); err != nil {
		log.Debugw("write notice ack", "peer", from, "err", err)
	}
}

// awaitMoved waits up to grace until a check that began after the notice
// (when since checks had begun) has run: it withdrew gone's addresses,
// reserved elsewhere and published the result. It reports whether the
// device then holds a reservation on some other supernode.
func (r *Reserver) awaitMoved(gone peer.ID, since uint64, grace time.Duration) bool {
	t := time.NewTimer(grace)
	defer t.Stop()
	for {
		r.mu.Lock()
		done := r.checks > since
		ok := len(r.active) > 0 && !slices.ContainsFunc(r.addrs, func(a ma.Multiaddr) bool {
			id, _ := node.RelayOf(a)
			return id == gone
		})
		wait := r.checked
		r.mu.Unlock()
		if done {
			return ok
		}
		select {
		case <-wait:
		case <-t.C:
			return false
		case <-r.done:
			return false
		}
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
