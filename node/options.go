package node

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Reachability says whether a node decides its reachability itself (AutoNAT)
// or is told.
type Reachability int

const (
	// ReachabilityAuto lets AutoNAT discover whether the node is reachable.
	ReachabilityAuto Reachability = iota
	// ReachabilityPublic declares the node publicly reachable. Supernodes and
	// the rendezvous server use it: in a small network AutoNAT may find too
	// few peers to confirm it, and the relay service would never start.
	ReachabilityPublic
	// ReachabilityPrivate declares the node behind a NAT, so it reserves
	// relay slots at once instead of waiting for AutoNAT.
	ReachabilityPrivate
)

// Option configures a node.
type Option func(*config) error

type config struct {
	key          crypto.PrivKey
	identityPath string
	listen       []ma.Multiaddr
	reachability Reachability
	natImitation bool
	serverLimits bool
	announce     []ma.Multiaddr
	security     Security
	portMapping  bool
	preferTCP    func(peer.ID) bool // WithPreferTCP
}

// Security is the order in which a node offers secure channels; both are
// always supported, and the dialer's first choice that the listener
// supports wins.
type Security int

const (
	// SecurityDefault is the node's default order: TLSFirst.
	SecurityDefault Security = iota
	// NoiseFirst offers Noise (ChaCha20-Poly1305) before TLS 1.3.
	NoiseFirst
	// TLSFirst offers TLS 1.3 (AES-GCM where the CPU has AES
	// instructions) before Noise.
	TLSFirst
)

// WithSecurity sets the order in which secure channels are offered.
func WithSecurity(s Security) Option {
	return func(c *config) error {
		c.security = s
		return nil
	}
}

// WithAnnounceAddrs makes the node advertise these addresses instead of
// its listen addresses, for a host whose public address is not on its
// interfaces (a cloud machine behind 1:1 NAT, say).
func WithAnnounceAddrs(addrs ...string) Option {
	return func(c *config) error {
		if c.announce != nil {
			return errors.New("cannot specify announce addresses twice")
		}
		c.announce = []ma.Multiaddr{}
		for _, s := range addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("announce address %q: %w", s, err)
			}
			c.announce = append(c.announce, a)
		}
		return nil
	}
}

// WithServerLimits raises the resource manager's system-wide connection and
// stream limits for a server that holds a session per client (the
// rendezvous server, supernodes). Per-peer limits stay at their defaults,
// so one peer still cannot take more than its share.
func WithServerLimits() Option {
	return func(c *config) error {
		c.serverLimits = true
		return nil
	}
}

// DefaultListenAddrs are used when no WithListenAddrs option is given: TCP
// and QUIC on every IPv4 interface, ports picked by the system.
var DefaultListenAddrs = []string{
	"/ip4/0.0.0.0/tcp/0",
	"/ip4/0.0.0.0/udp/0/quic-v1",
}

// LoopbackListenAddrs listen on 127.0.0.1 only; tests and the loopback
// testnet use them.
var LoopbackListenAddrs = []string{
	"/ip4/127.0.0.1/tcp/0",
	"/ip4/127.0.0.1/udp/0/quic-v1",
}

// WithIdentity uses the key in the file at path, creating it on first run.
func WithIdentity(path string) Option {
	return func(c *config) error {
		if c.key != nil || c.identityPath != "" {
			return errors.New("cannot specify multiple identities")
		}
		c.identityPath = path
		return nil
	}
}

// WithKey uses the given private key (for tests and throwaway identities).
func WithKey(key crypto.PrivKey) Option {
	return func(c *config) error {
		if c.key != nil || c.identityPath != "" {
			return errors.New("cannot specify multiple identities")
		}
		c.key = key
		return nil
	}
}

// WithListenAddrs sets the listen multiaddrs, for example
// "/ip4/0.0.0.0/tcp/4001". Port 0 picks a free port.
func WithListenAddrs(addrs ...string) Option {
	return func(c *config) error {
		if c.listen != nil {
			return errors.New("cannot specify listen addresses twice")
		}
		c.listen = []ma.Multiaddr{}
		for _, s := range addrs {
			a, err := ma.NewMultiaddr(s)
			if err != nil {
				return fmt.Errorf("listen address %q: %w", s, err)
			}
			c.listen = append(c.listen, a)
		}
		return nil
	}
}

// WithReachability overrides AutoNAT's verdict.
func WithReachability(r Reachability) Option {
	return func(c *config) error {
		c.reachability = r
		return nil
	}
}

// WithNATImitation makes the node behave as if behind a NAT that allows no
// hole punching: it is forced private and refuses every inbound connection
// except relayed ones. The loopback testnet uses it.
func WithNATImitation() Option {
	return func(c *config) error {
		c.natImitation = true
		c.reachability = ReachabilityPrivate
		return nil
	}
}

func (c *config) validate() error {
	if c.natImitation && c.reachability != ReachabilityPrivate {
		return errors.New("NAT imitation requires private reachability")
	}
	if c.natImitation && c.portMapping {
		return errors.New("NAT imitation advertises no direct address: port mapping makes no sense with it")
	}
	if len(c.listen) == 0 {
		return errors.New("no listen addresses")
	}
	return nil
}
