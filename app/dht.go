package app

import (
	"context"
	"errors"
	"github.com/parleynet/parley/app/apitype"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/dht/records"
	"github.com/parleynet/parley/node"
)

const (
	// dhtSeqFile keeps the sequence number of the device's address
	// records, so that a record signed after a restart replaces the last
	// one even if the clock went back.
	dhtSeqFile = datadir.DHTSeqFile
	// dhtLookupTimeout bounds a lookup the engine makes on its own
	// behalf (a contact's addresses, supernodes).
	dhtLookupTimeout = 10 * time.Second
	// contactLookupInterval is how often a contact's address record is
	// looked up at most, while the rendezvous server cannot say where the
	// contact is.
	contactLookupInterval = 15 * time.Second
)

// dhtMode is the DHT mode for the device's reachability: a device declared
// public serves the DHT, one declared private (or imitating a NAT) only
// asks, and otherwise the mode follows AutoNAT.
func dhtMode(cfg Config) dht.Mode {
	switch {
	case cfg.NATImitation || cfg.Reachability == node.ReachabilityPrivate:
		return dht.ModeClient
	case cfg.Reachability == node.ReachabilityPublic:
		return dht.ModeServer
	default:
		return dht.ModeAuto
	}
}

// startDHT joins the DHT. It bootstraps from the rendezvous server (a DHT
// seed), the configured peers, and the supernodes the directory lists (or
// listed last, while it is unreachable). The device publishes its signed
// address record, with the addresses contacts are told in presence, so
// that contacts find it while the rendezvous server is down.
func (e *Engine) startDHT() error {
	seq, err := dht.FileSeq(filepath.Join(e.cfg.DataDir, dhtSeqFile))
	if err != nil {
		return err
	}
	e.dht, err = dht.New(e.node,
		dht.WithMode(dhtMode(e.cfg)),
		dht.WithSeq(seq),
		dht.WithAddressRecords(),
		dht.WithRecordAddrs(e.advertisedAddrs),
		dht.WithBootstrapPeers(append([]peer.AddrInfo{e.cfg.Rendezvous}, e.cfg.DHTBootstrap...)...),
		dht.WithBootstrapFunc(e.directorySupernodes),
	)
	return err
}

// DHT is the device's DHT node: Provide and FindProviders publish and
// find content.
func (e *Engine) DHT() *dht.DHT { return e.dht }

// dhtSupernodes finds supernodes in the DHT, for when the directory
// cannot be reached.
func (e *Engine) dhtSupernodes(ctx context.Context) ([]peer.AddrInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, dhtLookupTimeout)
	defer cancel()
	return e.dht.FindSupernodes(ctx, 0)
}

// contactLocator teaches the peerstore where a contact's device is, from
// the device's signed address record in the DHT, when the rendezvous
// server cannot tell (this device has no session). The device ID came
// from the server earlier, and the record is signed by that device's
// key, so it cannot be forged by anyone else.
type contactLocator struct {
	dht      *dht.DHT
	node     *node.Node
	loggedIn func() bool // whether the server tells where contacts are

	mu      sync.Mutex            // guards located
	located map[peer.ID]time.Time // last lookup of a device
}

func newContactLocator(d *dht.DHT, n *node.Node, loggedIn func() bool) *contactLocator {
	return &contactLocator{dht: d, node: n, loggedIn: loggedIn, located: make(map[peer.ID]time.Time)}
}

// due reports whether p is to be looked up now: the device has no
// session, and p was not looked up in the last contactLookupInterval.
func (l *contactLocator) due(p peer.ID) bool {
	if l.loggedIn() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.located[p]; ok && time.Since(last) < contactLookupInterval {
		return false
	}
	l.located[p] = time.Now()
	return true
}

// locate looks p's address record up, when due, and puts its addresses
// in the peerstore.
func (l *contactLocator) locate(ctx context.Context, p peer.ID) {
	if !l.due(p) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, dhtLookupTimeout)
	defer cancel()
	r, err := l.dht.LookupAddrs(ctx, p)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			log.Infow("contact's address record not found in the DHT", "peer", p, "err", err)
		}
		return
	}
	ps := l.node.Peerstore()
	// The record replaces what presence said before the server went away:
	// those addresses may be stale (a supernode that left).
	ps.ClearAddrs(p)
	ps.AddAddrs(p, r.Addrs, max(time.Until(r.Expires), peerstore.TempAddrTTL))
	log.Infow("found a contact's addresses in the DHT", "peer", p, "seq", r.Seq, "addrs", r.Addrs)
}

// mergeInfos appends to a the peers of b it does not hold.
func mergeInfos(a, b []peer.AddrInfo) []peer.AddrInfo {
	for _, info := range b {
		if !slices.ContainsFunc(a, func(x peer.AddrInfo) bool { return x.ID == info.ID }) {
			a = append(a, info)
		}
	}
	return a
}

func (e *Engine) dhtStatus() apitype.DHTStatus {
	s := apitype.DHTStatus{Mode: "client", Peers: e.dht.Kad().RoutingTable().Size()}
	if e.dht.Server() {
		s.Mode = "server"
	}
	if r, ok := e.dht.Published(records.KindAddr); ok {
		s.RecordSeq, s.RecordExpires = r.Seq, r.Expires
	}
	return s
}
