// Package relaytest starts throwaway supernodes and certified clients for
// tests.
package relaytest

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous/cert"
)

// Issuer issues membership certificates as a rendezvous server would.
type Issuer struct {
	*cert.Issuer
	Verifier *cert.Verifier
}

// NewIssuer returns an issuer with a fresh key.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	iss, err := cert.NewIssuer(nodetest.Key(t))
	if err != nil {
		t.Fatal(err)
	}
	v, err := cert.NewVerifier(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{Issuer: iss, Verifier: v}
}

// Cert issues a certificate for p valid from now for lifetime.
func (i *Issuer) Cert(t testing.TB, p peer.ID, lifetime time.Duration) []byte {
	t.Helper()
	c, err := i.Issue(p, "user-"+p.String()[len(p.String())-6:], time.Now(), lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return c.Raw
}

// Passport returns a passport for n holding a fresh hour-long
// certificate; it is closed when the test ends.
func (i *Issuer) Passport(t testing.TB, n *node.Node) *relay.Passport {
	t.Helper()
	c := i.Cert(t, n.ID(), time.Hour)
	p := relay.NewPassport(n, func() []byte { return c })
	t.Cleanup(func() { p.Close() })
	return p
}

// Supernode is a running supernode on its own node.
type Supernode struct {
	Node    *node.Node
	Service *relay.Supernode
}

// Info is how clients reach the supernode.
func (s Supernode) Info() peer.AddrInfo {
	return peer.AddrInfo{ID: s.Node.ID(), Addrs: s.Node.Addrs()}
}

// StartSupernode starts a public node on loopback running a supernode
// that admits the issuer's certificates. cfg.Verifier is set; the rest is
// the caller's, and opts are added to the node's options. The supernode is
// closed when the test ends.
func (i *Issuer) StartSupernode(t testing.TB, cfg relay.Config, opts ...node.Option) Supernode {
	t.Helper()
	n := nodetest.New(t, append([]node.Option{node.WithReachability(node.ReachabilityPublic)}, opts...)...)
	cfg.Verifier = i.Verifier
	sn, err := relay.Start(n, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() }) // runs before the node's Close
	return Supernode{Node: n, Service: sn}
}
