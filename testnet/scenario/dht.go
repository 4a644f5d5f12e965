package scenario

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/testnet/report"
)

// DHTNet is a network whose clients' DHT nodes run in this process.
type DHTNet interface {
	Net
	// DHT is p's DHT node.
	DHT(p *Peer) *dht.DHT
}

// DHTConfig configures the dht scenario.
type DHTConfig struct {
	// Timeout bounds each lookup.
	Timeout time.Duration
	// Progress, if set, gets a line per client.
	Progress func(format string, args ...any)
}

// The lookups the dht scenario makes.
const (
	FindPeer      = "find-peer"
	FindProviders = "find-providers"
)

// DHTLookups has every client publish its address record (at once,
// rather than wait for its publisher) and provide a CID of its own, then
// look up,
// for every other client, its address record and the providers of its
// CID, each under a trace of its own. It reports each lookup's time and
// the hops and requests the trace counted. A lookup that fails, or finds
// a provider list without the client, is a problem.
func DHTLookups(ctx context.Context, n DHTNet, cfg DHTConfig) (*report.DHT, []string, error) {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	peers := n.Peers()
	cids := make(map[*Peer]cid.Cid, len(peers))
	for _, p := range peers {
		c, err := randomCID()
		if err != nil {
			return nil, nil, err
		}
		d := n.DHT(p)
		if _, err := d.PublishAddrs(ctx); err != nil {
			return nil, nil, fmt.Errorf("%s publishes its address record: %w", p.Name, err)
		}
		if err := d.Provide(ctx, c); err != nil {
			return nil, nil, fmt.Errorf("%s provides %s: %w", p.Name, c, err)
		}
		cids[p] = c
	}
	res := &report.DHT{}
	var problems []string
	for _, from := range peers {
		d := n.DHT(from)
		for _, to := range peers {
			if to == from {
				continue
			}
			id := n.DHT(to).Host().ID()
			for _, kind := range []string{FindPeer, FindProviders} {
				l := lookup(ctx, d, cfg.Timeout, func(ctx context.Context) error {
					if kind == FindPeer {
						_, err := d.LookupAddrs(ctx, id)
						return err
					}
					found, err := d.FindProviders(ctx, cids[to], 0)
					if err == nil && !slices.ContainsFunc(found, func(ai peer.AddrInfo) bool { return ai.ID == id }) {
						err = fmt.Errorf("%d providers, not %s", len(found), to.Name)
					}
					return err
				})
				l.Kind, l.From, l.Target = kind, from.Name, to.Name
				if !l.OK {
					problems = append(problems, fmt.Sprintf("%s %s → %s: %s", kind, from.Name, to.Name, l.Error))
				}
				res.Lookups = append(res.Lookups, l)
			}
		}
		progress("%s: looked up %d clients", from.Name, len(peers)-1)
	}
	for _, kind := range []string{FindPeer, FindProviders} {
		res.Kinds = append(res.Kinds, sumLookups(kind, res.Lookups))
	}
	return res, problems, ctx.Err()
}

// lookup runs f under a trace of d and measures it.
func lookup(ctx context.Context, d *dht.DHT, timeout time.Duration, f func(context.Context) error) report.DHTLookup {
	tr := d.NewTrace(nil)
	lctx, cancel := context.WithTimeout(tr.Context(ctx), timeout)
	defer cancel()
	start := time.Now()
	err := f(lctx)
	took := time.Since(start)
	tr.Stop()
	s := tr.Summary()
	l := report.DHTLookup{TookNS: took.Nanoseconds(), Hops: s.Hops, Queried: s.Queried, OK: err == nil}
	if err != nil {
		l.Error = err.Error()
	}
	return l
}

// sumLookups sums up the lookups of kind.
func sumLookups(kind string, all []report.DHTLookup) report.DHTKind {
	k := report.DHTKind{Kind: kind}
	var took []int64
	var hops []int
	for _, l := range all {
		if l.Kind != kind {
			continue
		}
		k.Lookups++
		if l.OK {
			k.Succeeded++
			took = append(took, l.TookNS)
			hops = append(hops, l.Hops)
		}
	}
	if k.Lookups > 0 {
		k.SuccessRate = float64(k.Succeeded) / float64(k.Lookups)
	}
	k.Latency = report.Summarize(took)
	if len(hops) > 0 {
		slices.Sort(hops)
		k.HopsMedian, k.HopsMax = hops[(len(hops)-1)/2], hops[len(hops)-1]
	}
	return k
}

// randomCID is the CID of random text: content only its provider has.
func randomCID() (cid.Cid, error) {
	sum, err := mh.Sum([]byte(rand.Text()), mh.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("make a CID: %w", err)
	}
	return cid.NewCidV1(cid.Raw, sum), nil
}
