package dht

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/dht/records"
)

const (
	// publishTimeout bounds one publication of a record.
	publishTimeout = time.Minute
	// publishMinBackoff is the first retry delay after a failed
	// publication; it doubles up to the refresh interval.
	publishMinBackoff = 2 * time.Second
	// addrChangeDelay is how long the publisher waits after the host's
	// addresses change, for them to settle, before it republishes.
	addrChangeDelay = 2 * time.Second
	// getQuorum is how many answers a record lookup waits for before it
	// settles on the best (highest sequence) value.
	getQuorum = 3
	// DefaultSupernodes is how many supernodes FindSupernodes returns
	// when asked for 0.
	DefaultSupernodes = 8
	// supernodeLookups is how many supernode records FindSupernodes
	// fetches at once.
	supernodeLookups = 4
)

// recordAddrs are the addresses that go into this node's records.
func (d *DHT) recordAddrs() []ma.Multiaddr {
	var all []ma.Multiaddr
	if d.cfg.recordAddrs != nil {
		all = d.cfg.recordAddrs()
	} else {
		all = d.host.Addrs()
	}
	out := make([]ma.Multiaddr, 0, min(len(all), records.MaxAddrs))
	for _, a := range all {
		if n := len(a.Bytes()); n == 0 || n > records.MaxAddrLen {
			continue
		}
		if out = append(out, a); len(out) == records.MaxAddrs {
			break
		}
	}
	return out
}

// PublishAddrs signs this node's address record with its current
// addresses and the next sequence number, and stores it on the peers
// closest to its key. With WithAddressRecords the node does this by
// itself; call it to publish at once.
func (d *DHT) PublishAddrs(ctx context.Context) (records.Record, error) {
	return d.publish(ctx, records.KindAddr)
}

func (d *DHT) publish(ctx context.Context, kind records.Kind) (records.Record, error) {
	if d.key == nil {
		return records.Record{}, fmt.Errorf("publish %s record: the host's peerstore has no private key", kind)
	}
	addrs := d.recordAddrs()
	if len(addrs) == 0 {
		return records.Record{}, fmt.Errorf("publish %s record: the node has no addresses to publish", kind)
	}
	seq, err := d.cfg.seq.NextSeq()
	if err != nil {
		return records.Record{}, fmt.Errorf("publish %s record: %w", kind, err)
	}
	r, err := records.Sign(d.key, kind, seq, addrs, time.Now(), d.cfg.recordLifetime)
	if err != nil {
		return records.Record{}, fmt.Errorf("publish %s record: %w", kind, err)
	}
	if _, err := d.PutRecord(ctx, r); err != nil {
		return r, err
	}
	d.mu.Lock()
	d.published[kind] = r
	d.mu.Unlock()
	return r, nil
}

// Published returns the last record of kind this node published, if any.
func (d *DHT) Published(kind records.Kind) (records.Record, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	r, ok := d.published[kind]
	return r, ok
}

// PutRecord stores a signed record (this node's or another's: it carries
// its own signature) on the DHT servers closest to its key and returns how
// many accepted it. It fails with ErrRefused when every one refused it, for
// example because they hold a record with a higher sequence number, and
// with ErrNoPeers when there was nobody to ask.
func (d *DHT) PutRecord(ctx context.Context, r records.Record) (int, error) {
	if d.isClosed() {
		return 0, ErrClosed
	}
	ks := records.KeyString(r.Kind, r.Peer)
	c := &storeCounter{typ: kadpb.Message_PUT_VALUE}
	if err := d.kad.PutValue(withObserver(ctx, c), r.Key(), r.Raw); err != nil {
		if errors.Is(err, kb.ErrLookupFailure) {
			err = ErrNoPeers
		}
		return 0, fmt.Errorf("put %s: %w", ks, err)
	}
	accepted, err := c.verdict()
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", ks, err)
	}
	return accepted, nil
}

// GetRecord looks up p's record of kind and returns the best valid one
// (the highest sequence number among the answers).
func (d *DHT) GetRecord(ctx context.Context, kind records.Kind, p peer.ID) (records.Record, error) {
	if d.isClosed() {
		return records.Record{}, ErrClosed
	}
	key, ks := records.Key(kind, p), records.KeyString(kind, p)
	val, err := d.kad.GetValue(ctx, key, kaddht.Quorum(getQuorum))
	if val == nil {
		if err == nil {
			err = ErrNotFound
		}
		return records.Record{}, fmt.Errorf("get %s: %w", ks, d.lookupErr(err))
	}
	r, err := records.Verify(key, val, time.Now())
	if err != nil {
		return records.Record{}, fmt.Errorf("get %s: %w", ks, err)
	}
	return r, nil
}

// LookupAddrs finds p's signed address record: where the device p can be
// reached, even while the rendezvous server is down.
func (d *DHT) LookupAddrs(ctx context.Context, p peer.ID) (records.Record, error) {
	return d.GetRecord(ctx, records.KindAddr, p)
}

// LookupSupernode finds p's signed supernode announcement.
func (d *DHT) LookupSupernode(ctx context.Context, p peer.ID) (records.Record, error) {
	return d.GetRecord(ctx, records.KindSupernode, p)
}

// SetSupernode starts (true) or stops (false) announcing this node as a
// supernode: a signed supernode record and a provider record for
// SupernodeCID, both refreshed every quarter of the record lifetime.
// Stopping withdraws nothing: the signed record expires after the record
// lifetime, from when on clients ignore the node, and the provider record
// after the provider record TTL. SetSupernode(false) returns once the
// announcer has stopped.
func (d *DHT) SetSupernode(on bool) {
	d.mu.Lock()
	if d.closed || on == (d.supernodeStop != nil) {
		d.mu.Unlock()
		return
	}
	if on {
		ctx, cancel := context.WithCancel(d.ctx)
		done := make(chan struct{})
		d.supernodeStop, d.supernodeDone = cancel, done
		d.goRun(func() {
			defer close(done)
			d.runPublisher(ctx, records.KindSupernode)
		})
		d.mu.Unlock()
		log.Infow("announcing this node as a supernode")
		return
	}
	stop, done := d.supernodeStop, d.supernodeDone
	d.supernodeStop, d.supernodeDone = nil, nil
	d.mu.Unlock()
	stop()
	<-done
	log.Infow("stopped announcing this node as a supernode")
}

// runPublisher keeps this node's record of kind published until ctx ends:
// once the routing table has a peer, then every quarter of the record
// lifetime, after failures with backoff, and for address records soon
// after the host's addresses change. A supernode also provides
// SupernodeCID each round.
func (d *DHT) runPublisher(ctx context.Context, kind records.Kind) {
	if err := d.waitRoutingTable(ctx); err != nil {
		return
	}
	var changed <-chan struct{}
	if kind == records.KindAddr {
		changed = d.addrsChanged
	}
	refresh := d.cfg.recordLifetime / 4
	backoff := publishMinBackoff
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			timer.Reset(addrChangeDelay)
			continue
		case <-timer.C:
		}
		pctx, cancel := context.WithTimeout(ctx, publishTimeout)
		r, err := d.publish(pctx, kind)
		if err == nil && kind == records.KindSupernode {
			err = d.announce(pctx, SupernodeCID)
		}
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warnw("publishing record failed", "kind", kind, "error", err, "retry_in", backoff)
			timer.Reset(backoff)
			backoff = min(2*backoff, refresh)
		default:
			log.Debugw("published record", "kind", kind, "seq", r.Seq, "addrs", r.Addrs)
			timer.Reset(refresh)
			backoff = publishMinBackoff
		}
	}
}

// AddrsChanged tells the address publisher that the record addresses
// changed (for example new relay circuits, which the host does not
// announce as its own addresses): it republishes soon. It does nothing
// without WithAddressRecords.
func (d *DHT) AddrsChanged() {
	select {
	case d.addrsChanged <- struct{}{}:
	default:
	}
}

// watchAddrs passes address changes of the host to the address publisher.
func (d *DHT) watchAddrs() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case _, ok := <-d.addrSub.Out():
			if !ok {
				return
			}
			d.AddrsChanged()
		}
	}
}

// FindSupernodes finds up to max current supernodes (0 means
// DefaultSupernodes) without the rendezvous server: the providers of
// SupernodeCID are candidates, and each is returned only with the
// addresses of its valid signed supernode record. A client can call it
// knowing no supernode. It fails with ErrNotFound when no candidate has a
// valid record.
func (d *DHT) FindSupernodes(ctx context.Context, max int) ([]peer.AddrInfo, error) {
	if d.isClosed() {
		return nil, ErrClosed
	}
	if max <= 0 {
		max = DefaultSupernodes
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		out  []peer.AddrInfo
		wg   sync.WaitGroup
		sem  = make(chan struct{}, supernodeLookups)
		seen = map[peer.ID]bool{d.host.ID(): true}
	)
	for cand := range d.kad.FindProvidersAsync(lctx, SupernodeCID, min(4*max, 100)) {
		if seen[cand.ID] {
			continue
		}
		seen[cand.ID] = true
		select {
		case sem <- struct{}{}:
		case <-lctx.Done():
			continue // drain: kad-dht closes the channel soon
		}
		wg.Add(1)
		go func(id peer.ID) {
			defer func() { <-sem; wg.Done() }()
			r, err := d.LookupSupernode(lctx, id)
			if err != nil {
				log.Debugw("supernode candidate without a valid record", "peer", id, "error", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(out) < max {
				out = append(out, r.AddrInfo())
				if len(out) == max {
					cancel()
				}
			}
		}(cand.ID)
	}
	wg.Wait()
	if len(out) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("find supernodes: %w", err)
		}
		return nil, fmt.Errorf("find supernodes: %w", d.notFound())
	}
	return out, nil
}
