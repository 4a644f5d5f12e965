package node

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/transport"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	tls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Node is a libp2p host configured for Parley. Close it when done.
type Node struct {
	host.Host

	natImitation bool

	reachSub  event.Subscription
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	started  time.Time
	declared Reachability
	announce []ma.Multiaddr // replaces the listen addresses in what is advertised
	puncher  *puncher
	gater    *gater
	tcpFirst *tcpFirst   // WithPreferTCP's dials
	nat      *natTracker // NAT types (nat.go)
	// quicAdvice is UDPBufferAdvice at start when listening on QUIC: the
	// sockets keep the buffers they got then.
	quicAdvice string

	reachability atomic.Int32                    // network.Reachability
	extraAddrs   atomic.Pointer[[]ma.Multiaddr]  // circuit addresses to advertise
	portMapper   portMapper                      // the NAT manager, with WithPortMapping
	splice       atomic.Pointer[spliceTransport] // the one listening (see UpgradeSpliced)
}

// New starts a node. Options are applied in order after the defaults.
func New(opts ...Option) (_ *Node, err error) {
	cfg := &config{}
	for _, o := range opts {
		if err := o(cfg); err != nil {
			return nil, fmt.Errorf("node option: %w", err)
		}
	}
	if cfg.listen == nil {
		if err := WithListenAddrs(DefaultListenAddrs...)(cfg); err != nil {
			return nil, err
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("node config: %w", err)
	}
	key := cfg.key
	if key == nil {
		if cfg.identityPath == "" {
			return nil, errors.New("node config: no identity (use WithIdentity or WithKey)")
		}
		if key, err = LoadOrCreateIdentity(cfg.identityPath); err != nil {
			return nil, err
		}
	}

	rm, err := newResourceManager(cfg.serverLimits)
	if err != nil {
		return nil, err
	}
	n := &Node{
		done:         make(chan struct{}),
		natImitation: cfg.natImitation,
		started:      time.Now(),
		declared:     cfg.reachability,
		announce:     cfg.announce,
	}
	lopts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrs(append(cfg.listen, spliceListenAddr)...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(func(u transport.Upgrader, rcmgr network.ResourceManager) *spliceTransport {
			return newSpliceTransport(n, u, rcmgr)
		}),
		libp2p.Transport(quic.NewTransport),
		libp2p.DefaultMuxers,
		libp2p.ResourceManager(rm),
		libp2p.EnableRelay(),
		libp2p.EnableAutoNATv2(),
		libp2p.AddrsFactory(n.advertised),
	}
	lopts = append(lopts, securityOptions(cfg.security)...)
	switch cfg.reachability {
	case ReachabilityPublic:
		lopts = append(lopts, libp2p.ForceReachabilityPublic())
	case ReachabilityPrivate:
		lopts = append(lopts, libp2p.ForceReachabilityPrivate())
	}
	if cfg.portMapping {
		lopts = append(lopts, libp2p.NATManager(n.portMapper.constructor))
	}
	n.tcpFirst = newTCPFirst(cfg.preferTCP)
	n.gater = newGater(cfg.natImitation)
	n.gater.tcpFirst = n.tcpFirst
	lopts = append(lopts, libp2p.ConnectionGater(n.gater))
	h, err := libp2p.New(lopts...)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	n.Host = h
	defer func() {
		if err != nil {
			h.Close()
		}
	}()

	switch cfg.reachability {
	case ReachabilityPublic:
		n.reachability.Store(int32(network.ReachabilityPublic))
	case ReachabilityPrivate:
		n.reachability.Store(int32(network.ReachabilityPrivate))
	}
	n.reachSub, err = h.EventBus().Subscribe(new(event.EvtLocalReachabilityChanged))
	if err != nil {
		return nil, fmt.Errorf("subscribe to reachability: %w", err)
	}
	if n.puncher, err = startPuncher(h, !cfg.natImitation); err != nil {
		n.reachSub.Close()
		return nil, fmt.Errorf("start hole punching: %w", err)
	}
	if n.nat, err = startNATTracker(h); err != nil {
		n.reachSub.Close()
		n.puncher.close()
		return nil, err
	}
	go n.trackReachability()
	log.Infow("node started", "peer", h.ID(), "addrs", h.Addrs())
	if listensQUIC(cfg.listen) {
		if n.quicAdvice = UDPBufferAdvice(); n.quicAdvice != "" {
			log.Warnw("QUIC may be slow: " + n.quicAdvice)
		}
	}
	return n, nil
}

// securityOptions offers both secure channels in the order s asks for.
// The default is TLS 1.3 first: with AES instructions its AES-GCM costs
// less CPU per byte than Noise's ChaCha20-Poly1305 (BenchmarkStreamThroughput
// in package relay: 1.8 against 2.1 ns/B direct, 4.1 against 5.7 relayed,
// where every byte is encrypted twice and re-encrypted at the supernode),
// and its handshake takes one round trip where Noise takes one and a half.
func securityOptions(s Security) []libp2p.Option {
	noiseOpt, tlsOpt := libp2p.Security(noise.ID, noise.New), libp2p.Security(tls.ID, newBatchedTLS)
	if s == NoiseFirst {
		return []libp2p.Option{noiseOpt, tlsOpt}
	}
	return []libp2p.Option{tlsOpt, noiseOpt}
}

// serverConns is the system-wide connection limit under WithServerLimits;
// each connection also needs a file descriptor.
const serverConns = 100_000

func newResourceManager(server bool) (network.ResourceManager, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	scaled := limits.AutoScale()
	if server {
		many := rcmgr.ResourceLimits{
			Conns:           serverConns,
			ConnsInbound:    serverConns,
			ConnsOutbound:   serverConns,
			Streams:         4 * serverConns,
			StreamsInbound:  4 * serverConns,
			StreamsOutbound: 4 * serverConns,
			FD:              serverConns,
		}
		// Every session is a long-lived stream of one protocol, so the
		// protocol and service scopes must hold as many as the system.
		scaled = rcmgr.PartialLimitConfig{
			System: many, Transient: many, ProtocolDefault: many, ServiceDefault: many,
		}.Build(scaled)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(scaled))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}

func (n *Node) trackReachability() {
	defer close(n.done)
	for e := range n.reachSub.Out() {
		r := e.(event.EvtLocalReachabilityChanged).Reachability
		n.reachability.Store(int32(r))
		log.Infow("reachability changed", "reachability", r)
	}
}

// Reachability is the node's latest known reachability.
func (n *Node) Reachability() network.Reachability {
	return network.Reachability(n.reachability.Load())
}

// SetCircuitAddrs replaces the relay circuit addresses the node advertises
// (through identify) besides its own listen addresses. Package relay calls
// it when reservations change.
func (n *Node) SetCircuitAddrs(addrs []ma.Multiaddr) {
	c := slices.Clone(addrs)
	n.extraAddrs.Store(&c)
}

// CircuitAddrs returns the addresses last given to SetCircuitAddrs.
func (n *Node) CircuitAddrs() []ma.Multiaddr {
	if p := n.extraAddrs.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// MarkDown tells the node that peer p is unreachable (a supernode that
// stopped answering): until the time given it is not dialled, nor dialled
// through as a relay, so dials to its clients go through their other
// supernodes at once.
func (n *Node) MarkDown(p peer.ID, until time.Time) { n.gater.markDown(p, until) }

// AvoidDirect tells the node that its direct (or hole-punched) path to
// peer p stopped answering: until the time given, p is dialled through
// relays only (its circuit addresses), so a new connection does not land
// on the dead path again. Connections already open are left alone; close
// the dead one. Inbound connections from p, a new hole punch among them,
// are still accepted.
func (n *Node) AvoidDirect(p peer.ID, until time.Time) { n.gater.avoidDirect(p, until) }

// ClearBackoff forgets the failed dials to p (the swarm waits before
// dialling a peer again after a failure): call it when p is known to be
// back, so that what waits for it is not held back.
func (n *Node) ClearBackoff(p peer.ID) {
	if sw, ok := n.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(p)
	}
}

// Started is when the node started.
func (n *Node) Started() time.Time { return n.started }

// PublicAddrs returns the node's addresses that AutoNAT v2 confirmed
// reachable from the internet, or all of them when the node was declared
// public. Empty means others can reach it only through a relay (or a hole
// punch).
func (n *Node) PublicAddrs() []ma.Multiaddr {
	if n.natImitation {
		return nil
	}
	if n.declared == ReachabilityPublic {
		return n.directAddrs()
	}
	c, ok := n.Host.(interface {
		ConfirmedAddrs() (reachable, unreachable, unknown []ma.Multiaddr)
	})
	if !ok {
		return nil
	}
	reachable, _, _ := c.ConfirmedAddrs()
	return slices.DeleteFunc(reachable, func(a ma.Multiaddr) bool { return !manet.IsPublicAddr(a) })
}

// directAddrs are the advertised addresses that are not circuits.
func (n *Node) directAddrs() []ma.Multiaddr {
	return slices.DeleteFunc(n.Addrs(), IsCircuit)
}

// AnnouncedAddrs are the addresses WithAnnounceAddrs gave, advertised
// instead of the listen addresses; nil without.
func (n *Node) AnnouncedAddrs() []ma.Multiaddr { return slices.Clone(n.announce) }

// advertised is the host's AddrsFactory. Behind an imitated NAT the
// listen addresses are useless to others, as a real NAT's private addresses
// are, so only circuit addresses are advertised. (Refusing the connection is
// not enough: QUIC consults the gater only after its handshake, so the
// dialer would briefly see a working connection and abandon the relay.)
func (n *Node) advertised(addrs []ma.Multiaddr) []ma.Multiaddr {
	if n.natImitation {
		return n.CircuitAddrs()
	}
	if n.announce != nil {
		addrs = slices.Clone(n.announce)
	} else {
		addrs = slices.DeleteFunc(slices.Clone(addrs), IsSplice) // a splice listener is no address
	}
	return append(addrs, n.CircuitAddrs()...)
}

// Close stops the host and waits for the node's goroutines.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.puncher != nil {
			errs = append(errs, n.puncher.close())
		}
		if n.nat != nil {
			errs = append(errs, n.nat.close())
		}
		if n.reachSub != nil {
			errs = append(errs, n.reachSub.Close())
			<-n.done
		}
		errs = append(errs, n.portMapper.close(), n.Host.Close())
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}
