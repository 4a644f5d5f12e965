package dht

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// DefaultMaxProviders is how many providers FindProviders returns when
// asked for 0.
const DefaultMaxProviders = 20

// Provide announces that this node provides c: it stores a provider
// record on the DHT servers closest to c now, and again every reprovide
// interval until Withdraw(c). If the first announcement fails, the error
// is returned and c is still kept: it is announced again a minute later,
// then on schedule.
func (d *DHT) Provide(ctx context.Context, c cid.Cid) error {
	if !c.Defined() {
		return errors.New("provide: undefined CID")
	}
	if d.isClosed() {
		return ErrClosed
	}
	err := d.announce(ctx, c)
	d.reprov.add(c, err == nil)
	if err != nil {
		return fmt.Errorf("provide %s (kept, to retry): %w", c, err)
	}
	return nil
}

// Withdraw stops reproviding c and reports whether c was provided.
// Nothing is deleted from the network: the provider records already
// stored expire after the provider record TTL (DefaultProviderRecordTTL),
// and until then FindProviders may still return this node.
func (d *DHT) Withdraw(c cid.Cid) bool {
	return d.reprov.remove(c)
}

// Provided lists the CIDs this node reprovides.
func (d *DHT) Provided() []cid.Cid {
	return d.reprov.list()
}

// announce stores a provider record for c on the closest DHT servers once.
func (d *DHT) announce(ctx context.Context, c cid.Cid) error {
	sc := &storeCounter{typ: kadpb.Message_ADD_PROVIDER}
	err := d.kad.Provide(withObserver(ctx, sc), c, true)
	accepted, verdict := sc.verdict()
	switch {
	case accepted > 0:
		return nil // some stored it, even if the deadline cut the rest
	case errors.Is(err, kb.ErrLookupFailure):
		return ErrNoPeers
	case err != nil:
		return err
	default:
		return verdict
	}
}

// FindProviders finds up to max providers of c (0 means
// DefaultMaxProviders), including this node if it holds a provider record
// for c. It returns as soon as it has max; it fails with ErrNotFound when
// the lookup ends with none.
func (d *DHT) FindProviders(ctx context.Context, c cid.Cid, max int) ([]peer.AddrInfo, error) {
	if !c.Defined() {
		return nil, errors.New("find providers: undefined CID")
	}
	if d.isClosed() {
		return nil, ErrClosed
	}
	if max <= 0 {
		max = DefaultMaxProviders
	}
	// Stop at max rather than let kad-dht wait for its other requests.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var out []peer.AddrInfo
	for ai := range d.kad.FindProvidersAsync(lctx, c, max) {
		if len(out) < max {
			out = append(out, ai)
		}
		if len(out) == max {
			cancel() // the channel closes soon
		}
	}
	if len(out) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("find providers of %s: %w", c, err)
		}
		return nil, fmt.Errorf("find providers of %s: %w", c, d.notFound())
	}
	return out, nil
}
