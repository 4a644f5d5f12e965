package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	"github.com/libp2p/go-libp2p/p2p/protocol/identify"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Timings of the hole-punch watchdog.
const (
	// punchCheckEvery is how often relayed-only peers are looked at.
	punchCheckEvery = time.Second
	// punchGraceInbound and punchGraceOutbound are how long after a relayed
	// connection opens the watchdog lets go-libp2p's own attempt run: the
	// side that received the connection starts it, so it steps in first.
	punchGraceInbound  = 3 * time.Second
	punchGraceOutbound = 6 * time.Second
	// punchRounds is how many DirectConnect rounds (of three attempts each)
	// the watchdog makes for one relayed connection; then the pair stays
	// relayed (a symmetric NAT, say).
	punchRounds = 2
	// punchRoundGap separates the watchdog's rounds.
	punchRoundGap = 10 * time.Second
	// punchStale is when an attempt that never reported its end counts as
	// over.
	punchStale = 30 * time.Second
	// observedTTL is how long an address a peer saw us at stays a
	// hole-punch candidate.
	observedTTL = 10 * time.Minute
	// minObservers is how many peers (distinct IP addresses) must have
	// seen us at an address before it is used: one lying peer must not
	// choose what we tell others to dial.
	minObservers = 2
	// maxObserved bounds the addresses kept (a symmetric NAT shows a new
	// port to every peer), so DCUtR messages stay small.
	maxObserved = 16
)

// puncher runs DCUtR hole punching for the node. It builds go-libp2p's
// holepunch service itself (rather than through libp2p.EnableHolePunching)
// so that it can start an attempt when go-libp2p would not: a peer accepts
// DCUtR only once it knows a public address of its own, so a relayed
// connection made during start-up on either side is otherwise never
// punched (the one attempt fails with "protocols not supported" and is
// not retried). The watchdog retries such connections once both sides are
// ready, a bounded number of times.
//
// It also tracks the addresses peers observed us at (identify), which are
// what a NATed node can punch from, and which peers were reached by a
// successful hole punch.
type puncher struct {
	host    host.Host
	svc     *holepunch.Service
	idSub   event.Subscription
	punchEm event.Emitter // EvtHolePunched

	cancel context.CancelFunc
	wg     sync.WaitGroup

	trusted    atomic.Pointer[func(peer.ID) bool]           // see Node.TrustObservers
	advertised atomic.Pointer[func(peer.ID) []ma.Multiaddr] // see Node.AdvertisedAddrs

	mu       sync.Mutex // guards the following
	punched  map[peer.ID]struct{}
	attempts map[peer.ID]*punchState
	observed map[string]observation // by address
}

type punchState struct {
	running   bool
	started   time.Time
	rounds    int       // watchdog rounds for the current relayed connection
	lastRound time.Time // when the watchdog last started one
	since     time.Time // when the current relayed-only period began
}

type observation struct {
	addr      ma.Multiaddr
	observers map[string]time.Time // observer IP → when it last saw us there
	vouched   time.Time            // when a trusted observer last saw us there
}

var _ holepunch.EventTracer = (*puncher)(nil)

// EvtHolePunched is emitted on the host's event bus when DCUtR has upgraded
// a relayed connection to a peer to a direct one: from then on, while the
// direct connection stands, PathTo(Peer) says HolePunched. The direct
// connection's network.Notifiee Connected comes before it (it labels the
// path Direct until then). It is emitted from go-libp2p's hole-punching
// goroutine: a subscriber must keep reading, or that goroutine waits.
type EvtHolePunched struct {
	Peer peer.ID
}

// startPuncher starts hole punching on h. enabled false (NAT imitation)
// gives a puncher that only labels paths.
func startPuncher(h host.Host, enabled bool) (*puncher, error) {
	p := &puncher{
		host:     h,
		punched:  make(map[peer.ID]struct{}),
		attempts: make(map[peer.ID]*punchState),
		observed: make(map[string]observation),
	}
	h.Network().Notify(&network.NotifyBundle{DisconnectedF: p.disconnected})
	if !enabled {
		return p, nil
	}
	var err error
	if p.punchEm, err = h.EventBus().Emitter(new(EvtHolePunched)); err != nil {
		return nil, fmt.Errorf("hole punch emitter: %w", err)
	}
	ids, ok := h.(interface{ IDService() identify.IDService })
	if !ok {
		return p, nil
	}
	if p.idSub, err = h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted)); err != nil {
		p.punchEm.Close()
		return nil, err
	}
	if p.svc, err = holepunch.NewService(h, ids.IDService(), p.holePunchAddrs, holepunch.WithTracer(p)); err != nil {
		p.idSub.Close()
		p.punchEm.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Go(p.observe)
	p.wg.Go(func() { p.watch(ctx) })
	return p, nil
}

func (p *puncher) close() error {
	if p.svc == nil {
		if p.punchEm != nil {
			return p.punchEm.Close()
		}
		return nil
	}
	p.cancel()
	err := p.svc.Close()
	p.idSub.Close()
	p.wg.Wait()
	return errors.Join(err, p.punchEm.Close())
}

// observe records the addresses peers saw us at, and who saw them.
func (p *puncher) observe() {
	for e := range p.idSub.Out() {
		ev := e.(event.EvtPeerIdentificationCompleted)
		a := ev.ObservedAddr
		if a == nil || ev.Conn == nil || IsCircuit(a) || !manet.IsPublicAddr(a) {
			continue
		}
		observer, err := manet.ToIP(ev.Conn.RemoteMultiaddr())
		if err != nil {
			continue
		}
		trusted := p.trusts(ev.Peer)
		now := time.Now()
		p.mu.Lock()
		p.pruneObservedLocked(now)
		k := string(a.Bytes())
		o, ok := p.observed[k]
		if !ok {
			if len(p.observed) >= maxObserved {
				p.evictOldestLocked()
			}
			o = observation{addr: a, observers: make(map[string]time.Time)}
			p.observed[k] = o
		}
		if len(o.observers) < 8 {
			o.observers[observer.String()] = now
		}
		if trusted {
			o.vouched = now
			p.observed[k] = o
		}
		p.mu.Unlock()
	}
}

// pruneObservedLocked forgets sightings older than observedTTL.
func (p *puncher) pruneObservedLocked(now time.Time) {
	for k, o := range p.observed {
		for ip, seen := range o.observers {
			if now.Sub(seen) > observedTTL {
				delete(o.observers, ip)
			}
		}
		if len(o.observers) == 0 {
			delete(p.observed, k)
		} else if !o.vouched.IsZero() && now.Sub(o.vouched) > observedTTL {
			o.vouched = time.Time{}
			p.observed[k] = o
		}
	}
}

// evictOldestLocked forgets the address seen least recently.
func (p *puncher) evictOldestLocked() {
	var oldest string
	var oldestAt time.Time
	for k, o := range p.observed {
		for _, seen := range o.observers {
			if oldest == "" || seen.Before(oldestAt) {
				oldest, oldestAt = k, seen
			}
		}
	}
	delete(p.observed, oldest)
}

// trusts reports whether id is an observer whose word alone is enough.
func (p *puncher) trusts(id peer.ID) bool {
	f := p.trusted.Load()
	return f != nil && (*f)(id)
}

// TrustObservers names peers whose sighting of the node's address is
// enough on its own to use it for hole punching (the rendezvous server and
// the supernodes, say); any other address needs minObservers peers. It
// matters in a small network: a client connected to the rendezvous server
// over TCP and to its one supernode over QUIC has each address seen by one
// peer only, and without trusted observers it would never hole-punch.
func (n *Node) TrustObservers(trusted func(peer.ID) bool) {
	n.puncher.trusted.Store(&trusted)
}

// AdvertisedAddrs tells the node where to find the addresses a peer
// published as its own (a contact's presence): a direct connection dialled
// to one of them needed no hole punch, even when DCUtR made the dial.
func (n *Node) AdvertisedAddrs(of func(peer.ID) []ma.Multiaddr) {
	n.puncher.advertised.Store(&of)
}

// holePunched reports whether direct connection c exists thanks to a hole
// punch: DCUtR made it (or one is under way for the peer), and it could
// not have formed without: it came in while this node has no public
// address, at a port its router does not map, or it was dialled to an address the peer did not
// publish (one DCUtR learnt, where the peer's NAT lets in only the
// packets its own punch asked for). A peer whose router maps a port for
// it, dialled there, is plain direct.
func (n *Node) holePunched(c network.Conn) bool {
	if !n.puncher.has(c.RemotePeer()) {
		return false
	}
	if c.Stat().Direction == network.DirInbound {
		return len(n.PublicAddrs()) == 0 && !n.mappedPort(c.LocalMultiaddr())
	}
	if n.puncher.endpointDependent(c.RemoteMultiaddr()) {
		// Behind a NAT that gives every peer a new port, no punch from
		// here can work: the peer let the connection in by itself.
		return false
	}
	return !n.puncher.advertises(c.RemotePeer(), c.RemoteMultiaddr())
}

// endpointDependent reports whether peers saw this node at one public IP
// address on different ports of the transport remote uses (TCP, or UDP
// for QUIC): its NAT maps each destination to a port of its own (a
// symmetric NAT), so nobody can punch through it.
func (p *puncher) endpointDependent(remote ma.Multiaddr) bool {
	proto := transportProto(remote)
	if proto == 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ports := map[string]string{} // IP → a port it was seen with
	for _, o := range p.observed {
		if transportProto(o.addr) != proto {
			continue
		}
		ip, err := manet.ToIP(o.addr)
		if err != nil {
			continue
		}
		port, err := o.addr.ValueForProtocol(proto)
		if err != nil {
			continue
		}
		if seen, ok := ports[ip.String()]; ok && seen != port {
			return true
		}
		ports[ip.String()] = port
	}
	return false
}

// transportProto is the IP transport of a (ma.P_TCP or ma.P_UDP), or 0.
func transportProto(a ma.Multiaddr) int {
	for _, c := range a {
		if code := c.Protocol().Code; code == ma.P_TCP || code == ma.P_UDP {
			return code
		}
	}
	return 0
}

// mappedPort reports whether local, where a connection came in, is a
// port the router maps to this node (whatever the IP address says).
func (n *Node) mappedPort(local ma.Multiaddr) bool {
	if len(local) < 2 {
		return false
	}
	for _, m := range n.PortMappings() {
		if len(m.Listen) >= 2 && m.Listen[1:].Equal(local[1:]) {
			return true
		}
	}
	return false
}

// advertises reports whether a is one of the addresses peer id published.
func (p *puncher) advertises(id peer.ID, a ma.Multiaddr) bool {
	of := p.advertised.Load()
	if of == nil {
		return false
	}
	a, _ = peer.SplitAddr(a)
	for _, b := range (*of)(id) {
		if b, _ = peer.SplitAddr(b); b != nil && a != nil && a.Equal(b) {
			return true
		}
	}
	return false
}

// holePunchAddrs are the public addresses the node can be punched at: its
// public listen and mapped addresses, those at least minObservers peers
// saw it at recently, and those a trusted observer saw it at.
func (p *puncher) holePunchAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	if all, ok := p.host.(interface{ AllAddrs() []ma.Multiaddr }); ok {
		for _, a := range all.AllAddrs() {
			if !IsCircuit(a) && manet.IsPublicAddr(a) {
				out = append(out, a)
			}
		}
	}
	p.mu.Lock()
	p.pruneObservedLocked(time.Now())
	for _, o := range p.observed {
		if len(o.observers) >= minObservers || !o.vouched.IsZero() {
			out = append(out, o.addr)
		}
	}
	p.mu.Unlock()
	return ma.Unique(out)
}

// watch retries hole punching for relayed-only peers (see puncher).
func (p *puncher) watch(ctx context.Context) {
	t := time.NewTicker(punchCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if len(p.holePunchAddrs()) == 0 {
			continue // we cannot punch yet; nor accept a punch
		}
		for _, id := range p.host.Network().Peers() {
			if p.due(id, time.Now()) {
				p.wg.Go(func() { p.retry(ctx, id) })
			}
		}
	}
}

// due decides whether the watchdog should start a round for peer id.
func (p *puncher) due(id peer.ID, now time.Time) bool {
	var relayed network.Conn
	for _, c := range p.host.Network().ConnsToPeer(id) {
		if !IsCircuit(c.RemoteMultiaddr()) {
			return false // direct already
		}
		relayed = c
	}
	if relayed == nil {
		return false
	}
	if protos, err := p.host.Peerstore().SupportsProtocols(id, holepunch.Protocol); err != nil || len(protos) == 0 {
		return false // not (yet) ready on the other side
	}
	grace := punchGraceOutbound
	if relayed.Stat().Direction == network.DirInbound {
		grace = punchGraceInbound
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.attempts[id]
	if st == nil {
		st = &punchState{since: relayed.Stat().Opened}
		p.attempts[id] = st
	}
	switch {
	case st.running && now.Sub(st.started) < punchStale:
		return false
	case now.Sub(st.since) < grace:
		return false
	case st.rounds >= punchRounds:
		return false
	case !st.lastRound.IsZero() && now.Sub(st.lastRound) < punchRoundGap:
		return false
	}
	st.rounds++
	st.lastRound = now
	st.running, st.started = true, now
	return true
}

func (p *puncher) retry(ctx context.Context, id peer.ID) {
	if ctx.Err() != nil {
		return
	}
	log.Debugw("hole punch watchdog: trying", "peer", id)
	if err := p.svc.DirectConnect(id); err != nil {
		log.Debugw("hole punch watchdog: no direct connection", "peer", id, "err", err)
	}
	p.mu.Lock()
	if st := p.attempts[id]; st != nil {
		st.running = false
	}
	p.mu.Unlock()
}

// stateLocked is id's punch state, made if it has none.
func (p *puncher) stateLocked(id peer.ID) *punchState {
	st := p.attempts[id]
	if st == nil {
		st = &punchState{since: time.Now()}
		p.attempts[id] = st
	}
	return st
}

// Trace implements holepunch.EventTracer: it marks peers whose relayed
// connection DCUtR upgraded to a direct one (by its direct dial or by the
// synchronised punch), and tracks attempts in progress for the watchdog.
func (p *puncher) Trace(evt *holepunch.Event) {
	if p.trace(evt, p.holdsDirect(evt.Remote)) && p.punchEm != nil {
		if err := p.punchEm.Emit(EvtHolePunched{Peer: evt.Remote}); err != nil {
			log.Debugw("emit hole punch event", "peer", evt.Remote, "err", err)
		}
	}
}

// holdsDirect reports whether the host has a connection to id that is
// neither relayed nor spliced. DCUtR takes a spliced connection for a
// direct one (its transport is no proxy): a dial it makes while one
// stands returns it and "succeeds" without any packet crossing the NATs.
func (p *puncher) holdsDirect(id peer.ID) bool {
	return slices.ContainsFunc(p.host.Network().ConnsToPeer(id), func(c network.Conn) bool {
		a := c.RemoteMultiaddr()
		return !IsCircuit(a) && !IsSplice(a)
	})
}

// trace records evt, and reports whether it marked the peer hole-punched
// now; direct says whether the host holds a direct connection to the
// peer, without which no success counts.
func (p *puncher) trace(evt *holepunch.Event, direct bool) (punched bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stateLocked(evt.Remote)
	switch e := evt.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		st.running, st.started = true, time.Now()
	case *holepunch.EndHolePunchEvt:
		st.running = false
		if e.Success && direct {
			punched = p.markLocked(evt.Remote)
			log.Infow("hole punch succeeded", "peer", evt.Remote, "after", e.EllapsedTime)
		}
	case *holepunch.DirectDialEvt:
		// DCUtR's first step: a plain dial to the peer's public addresses.
		// Between two NATs it succeeds only because both sides dial at
		// once (each outbound packet opens its own NAT for the other's):
		// a hole punch all the same, made by the upgrade from the relay.
		if e.Success && direct {
			punched = p.markLocked(evt.Remote)
			log.Infow("direct dial during hole punching succeeded", "peer", evt.Remote, "after", e.EllapsedTime)
		}
	case *holepunch.ProtocolErrorEvt:
		st.running = false
	}
	return punched
}

// markLocked marks id hole-punched, and reports whether it was not yet.
func (p *puncher) markLocked(id peer.ID) bool {
	_, had := p.punched[id]
	p.punched[id] = struct{}{}
	return !had
}

// has reports whether id's direct connection comes from a hole punch:
// DCUtR said so, or one is under way (the punched connection opens before
// DCUtR reports its end; until then it would look like a plain direct
// dial).
func (p *puncher) has(id peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.punched[id]; ok {
		return true
	}
	st := p.attempts[id]
	return st != nil && st.running && time.Since(st.started) < punchStale
}

// disconnected forgets a peer's punch state when its last connection
// closes, and restarts the watchdog's count when its last direct one does.
func (p *puncher) disconnected(nw network.Network, c network.Conn) {
	id := c.RemotePeer()
	conns := nw.ConnsToPeer(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(conns) == 0 {
		delete(p.punched, id)
		delete(p.attempts, id)
		return
	}
	if !slices.ContainsFunc(conns, func(c network.Conn) bool { return !IsCircuit(c.RemoteMultiaddr()) }) {
		delete(p.punched, id)
		if st := p.attempts[id]; st != nil && !st.running {
			*st = punchState{since: time.Now()}
		}
	}
}
