package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"

	"github.com/parleynet/parley/dht"
)

// Config configures a simulated network. The zero value is valid.
type Config struct {
	// N is the number of DHT server nodes; 0 means 50.
	N int
	// Latency is the one-way latency of every link during measurements;
	// 0 means none.
	Latency time.Duration
	// Crash makes Kill close the killed nodes' connections at once, as a
	// crashed process's kernel does; by default killed nodes fall silent.
	Crash bool
	// DeadDialDelay is how long dialling a killed node takes to fail in
	// the silent mode (an unanswered connection attempt); 0 means 5 s.
	DeadDialDelay time.Duration
	// Parallel is how many nodes join at once; 0 means 16.
	Parallel int
	// RefreshParallel is how many nodes refresh their routing tables at
	// once; 0 means 64. Refreshing after churn is mostly waiting for dead
	// peers, not work.
	RefreshParallel int
	// MeasureParallel is how many lookups Measure runs at once; 0 means
	// 8. The whole simulation shares the machine's cores, so more
	// lookups at once inflate their times.
	MeasureParallel int
	// Seed makes the choices of nodes repeatable; 0 means 1.
	Seed uint64
	// Logf, if not nil, reports progress.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.N == 0 {
		c.N = 50
	}
	if c.DeadDialDelay == 0 {
		c.DeadDialDelay = 5 * time.Second
	}
	if c.Parallel == 0 {
		c.Parallel = 16
	}
	if c.RefreshParallel == 0 {
		c.RefreshParallel = 64
	}
	if c.MeasureParallel == 0 {
		c.MeasureParallel = 8
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Node is one simulated DHT server.
type Node struct {
	DHT  *dht.DHT
	Host host.Host
	dead bool
}

type content struct {
	cid      cid.Cid
	provider *Node
}

// Network is a simulated DHT.
type Network struct {
	cfg    Config
	mn     mocknet.Mocknet
	ctx    context.Context // cancelled by Close: releases silent nodes' streams
	cancel context.CancelFunc

	latency atomic.Int64 // one-way, in nanoseconds

	mu       sync.Mutex // guards the following
	rng      *rand.Rand
	nodes    []*Node
	byID     map[peer.ID]*Node
	links    map[[2]peer.ID]mocknet.Link
	backoff  map[[2]peer.ID]dialBackoff
	contents []content
}

// New builds a network of cfg.N server nodes and refreshes every routing
// table once. Close it when done.
func New(ctx context.Context, cfg Config) (_ *Network, err error) {
	cfg = cfg.withDefaults()
	n := &Network{
		cfg:     cfg,
		mn:      mocknet.New(),
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		byID:    make(map[peer.ID]*Node),
		links:   make(map[[2]peer.ID]mocknet.Link),
		backoff: make(map[[2]peer.ID]dialBackoff),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	start := time.Now()
	for i := range cfg.N {
		if _, err := n.addNode(i); err != nil {
			return nil, err
		}
	}
	// Join in waves: each node bootstraps from nodes that joined before.
	for lo := 0; lo < cfg.N; lo += cfg.Parallel {
		hi := min(lo+cfg.Parallel, cfg.N)
		err := n.each(ctx, n.nodes[lo:hi], cfg.Parallel, func(ctx context.Context, nd *Node) error {
			if nd == n.nodes[0] {
				return nil
			}
			return nd.DHT.Bootstrap(ctx)
		})
		if err != nil {
			return nil, fmt.Errorf("join: %w", err)
		}
	}
	cfg.Logf("N=%d: %d nodes joined in %s", cfg.N, cfg.N, time.Since(start).Round(time.Millisecond))
	if err := n.Refresh(ctx); err != nil {
		return nil, err
	}
	cfg.Logf("N=%d: routing tables refreshed after %s: %s", cfg.N, time.Since(start).Round(time.Millisecond), n.RoutingTables())
	return n, nil
}

func (n *Network) addNode(i int) (*Node, error) {
	key, _, err := crypto.GenerateEd25519Key(n.randReader())
	if err != nil {
		return nil, err
	}
	addr := ma.StringCast(fmt.Sprintf("/ip4/10.%d.%d.%d/tcp/4001", i>>16&0xff, i>>8&0xff, i&0xff))
	h, err := n.mn.AddPeer(key, addr)
	if err != nil {
		return nil, fmt.Errorf("add mock peer: %w", err)
	}
	lh := &linkingHost{Host: h, net: n}
	opts := []dht.Option{dht.WithMode(dht.ModeServer)}
	n.mu.Lock()
	if len(n.nodes) > 0 {
		for _, j := range n.pickLocked(3, len(n.nodes)) {
			b := n.nodes[j].Host
			opts = append(opts, dht.WithBootstrapPeers(peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}))
		}
	}
	n.mu.Unlock()
	d, err := dht.New(lh, opts...)
	if err != nil {
		return nil, err
	}
	nd := &Node{DHT: d, Host: lh}
	n.mu.Lock()
	n.nodes = append(n.nodes, nd)
	n.byID[h.ID()] = nd
	n.mu.Unlock()
	return nd, nil
}

// randReader is a reader of the network's random stream, for keys.
func (n *Network) randReader() *randReader { return &randReader{n: n} }

type randReader struct{ n *Network }

func (r *randReader) Read(p []byte) (int, error) {
	r.n.mu.Lock()
	defer r.n.mu.Unlock()
	for i := range p {
		p[i] = byte(r.n.rng.Uint32())
	}
	return len(p), nil
}

// pickLocked returns k distinct indexes below n.
func (n *Network) pickLocked(k, below int) []int {
	if k >= below {
		return n.rng.Perm(below)
	}
	seen := map[int]bool{}
	var out []int
	for len(out) < k {
		i := n.rng.IntN(below)
		if !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}

// Close stops every node and the mock network.
func (n *Network) Close() {
	n.cancel()
	n.mu.Lock()
	nodes := slices.Clone(n.nodes)
	n.mu.Unlock()
	for _, nd := range nodes {
		nd.DHT.Close()
	}
	n.mn.Close()
}

// Nodes returns every node, dead or alive.
func (n *Network) Nodes() []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.nodes)
}

func (n *Network) live() []*Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []*Node
	for _, nd := range n.nodes {
		if !nd.dead {
			out = append(out, nd)
		}
	}
	return out
}

// each runs f for every node, parallel at a time, and returns the first
// error.
func (n *Network) each(ctx context.Context, nodes []*Node, parallel int, f func(context.Context, *Node) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, parallel)
	)
	for _, nd := range nodes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(ctx, nd); err != nil {
				mu.Lock()
				first = cmp(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

func cmp(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// SetLatency sets the one-way latency of every DHT message from now on;
// a new connection costs one round trip more.
func (n *Network) SetLatency(d time.Duration) {
	n.latency.Store(int64(d))
}

func (n *Network) oneWay() time.Duration { return time.Duration(n.latency.Load()) }

// dialBackoff imitates the swarm's dial backoff, which mocknet lacks: after
// a failed dial, dialling the same peer again fails at once for a while
// (5 s, growing with the failures, at most 5 min).
type dialBackoff struct {
	until time.Time
	tries int
}

// errDead is what dialling a killed node ends with.
var errDead = errors.New("no answer: the node is dead")

// link makes sure a and b are linked, as the physical network would have
// it; dialling a dead node fails (after the dead-dial delay when silent).
func (n *Network) link(ctx context.Context, a, b peer.ID) error {
	if a == b {
		return nil
	}
	key := [2]peer.ID{min(a, b), max(a, b)}
	n.mu.Lock()
	target := n.byID[b]
	_, linked := n.links[key]
	n.mu.Unlock()
	if target != nil && target.dead {
		if !n.cfg.Crash && linked && target.Host.Network().Connectedness(a) == network.Connected {
			return nil // a half-open connection: requests will hang
		}
		n.mu.Lock()
		bo := n.backoff[[2]peer.ID{a, b}]
		n.mu.Unlock()
		if time.Now().Before(bo.until) {
			return fmt.Errorf("dial backoff: %w", errDead)
		}
		if !n.cfg.Crash { // a connection attempt nobody answers
			if err := sleep(ctx, n.cfg.DeadDialDelay); err != nil {
				return err
			}
		}
		bo.tries++
		bo.until = time.Now().Add(min(5*time.Second+time.Duration(bo.tries*bo.tries)*time.Second, 5*time.Minute))
		n.mu.Lock()
		n.backoff[[2]peer.ID{a, b}] = bo
		n.mu.Unlock()
		return errDead
	}
	if linked || target == nil {
		return nil
	}
	l, err := n.mn.LinkPeers(a, b)
	if err != nil {
		return fmt.Errorf("link: %w", err)
	}
	n.mu.Lock()
	if _, raced := n.links[key]; !raced {
		n.links[key] = l
	} else {
		n.mu.Unlock()
		return n.mn.Unlink(l)
	}
	n.mu.Unlock()
	return nil
}

// linkingHost links its node to a peer before dialling it.
type linkingHost struct {
	host.Host
	net *Network
}

// dial prepares a connection to p: the link, and a round trip of delay
// for a new connection.
func (h *linkingHost) dial(ctx context.Context, p peer.ID) error {
	if err := h.net.link(ctx, h.ID(), p); err != nil {
		return err
	}
	if h.Network().Connectedness(p) != network.Connected {
		return sleep(ctx, 2*h.net.oneWay())
	}
	return nil
}

func (h *linkingHost) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := h.dial(ctx, ai.ID); err != nil {
		return err
	}
	return h.Host.Connect(ctx, ai)
}

func (h *linkingHost) NewStream(ctx context.Context, p peer.ID, protos ...protocol.ID) (network.Stream, error) {
	if err := h.dial(ctx, p); err != nil {
		return nil, err
	}
	s, err := h.Host.NewStream(ctx, p, protos...)
	if err != nil {
		return nil, err
	}
	if slices.Contains(protos, dht.ProtocolID) {
		return newSlowStream(s, h.net.oneWay), nil
	}
	return s, nil
}

// SetStreamHandler delays the answers of the DHT protocol's handler.
func (h *linkingHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	if pid == dht.ProtocolID {
		inner := handler
		handler = func(s network.Stream) { inner(newSlowStream(s, h.net.oneWay)) }
	}
	h.Host.SetStreamHandler(pid, handler)
}

// Refresh runs one routing-table refresh on every live node: a lookup of
// itself and of a random key in every bucket, as kad-dht runs every
// refresh interval (forced, since the simulation does not wait for the
// interval to pass).
func (n *Network) Refresh(ctx context.Context) error {
	return n.each(ctx, n.live(), n.cfg.RefreshParallel, func(ctx context.Context, nd *Node) error {
		select {
		case err := <-nd.DHT.Kad().ForceRefresh():
			if err != nil {
				n.cfg.Logf("refresh %s: %v", nd.Host.ID(), err)
			}
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// ProvideContent makes count random live nodes each provide a new CID.
func (n *Network) ProvideContent(ctx context.Context, count int) error {
	live := n.live()
	var provs []content
	n.mu.Lock()
	for i := range count {
		sum, _ := mh.Sum(fmt.Appendf(nil, "content %d of seed %d", len(n.contents)+i, n.cfg.Seed), mh.SHA2_256, -1)
		provs = append(provs, content{cid: cid.NewCidV1(cid.Raw, sum), provider: live[n.rng.IntN(len(live))]})
	}
	n.mu.Unlock()
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		sem  = make(chan struct{}, n.cfg.Parallel)
	)
	for _, c := range provs {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := c.provider.DHT.Provide(ctx, c.cid); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	n.mu.Lock()
	n.contents = append(n.contents, provs...)
	n.mu.Unlock()
	return errors.Join(errs...)
}

// Kill removes a share of the live nodes (at random) without warning and
// returns how many.
func (n *Network) Kill(share float64) int {
	live := n.live()
	k := int(share * float64(len(live)))
	n.mu.Lock()
	idx := n.pickLocked(k, len(live))
	var victims []*Node
	for _, i := range idx {
		live[i].dead = true
		victims = append(victims, live[i])
	}
	n.mu.Unlock()
	for _, v := range victims {
		v.DHT.Close() // its own activity stops
		if n.cfg.Crash {
			v.Host.Network().Close()
			continue
		}
		// Silent: open connections stay, requests are never answered.
		v.Host.SetStreamHandler(dht.ProtocolID, func(s network.Stream) {
			<-n.ctx.Done()
			s.Reset()
		})
	}
	return len(victims)
}

// DropDeadConnections closes the live nodes' connections to dead ones, as
// connection keepalives do some tens of seconds after a machine vanished
// (yamux pings every 30 s). From then on, requests to dead nodes fail
// only after the dead-dial delay instead of the request timeout.
func (n *Network) DropDeadConnections() {
	n.mu.Lock()
	var dead []*Node
	for _, nd := range n.nodes {
		if nd.dead {
			dead = append(dead, nd)
		}
	}
	n.mu.Unlock()
	for _, nd := range dead {
		for _, c := range nd.Host.Network().Conns() {
			c.Close()
		}
	}
}

// RTStats describes the live nodes' routing tables.
type RTStats struct {
	MeanSize  float64 // entries per routing table
	DeadShare float64 // share of entries that are dead nodes
}

func (s RTStats) String() string {
	return fmt.Sprintf("%.1f entries per routing table, %.1f%% dead", s.MeanSize, 100*s.DeadShare)
}

// RoutingTables sums up the live nodes' routing tables.
func (n *Network) RoutingTables() RTStats {
	live := n.live()
	var total, dead int
	for _, nd := range live {
		for _, p := range nd.DHT.Kad().RoutingTable().ListPeers() {
			total++
			n.mu.Lock()
			if o := n.byID[p]; o != nil && o.dead {
				dead++
			}
			n.mu.Unlock()
		}
	}
	if total == 0 || len(live) == 0 {
		return RTStats{}
	}
	return RTStats{MeanSize: float64(total) / float64(len(live)), DeadShare: float64(dead) / float64(total)}
}

// Stats sums up the lookups of one kind.
type Stats struct {
	Lookups   int
	Succeeded int
	// Of the successful lookups:
	HopsMedian, HopsP95 int
	HopsMean            float64
	TimeMedian, TimeP95 time.Duration
	QueriedMean         float64 // peers queried per lookup
}

// SuccessRate is the share of lookups that succeeded.
func (s Stats) SuccessRate() float64 {
	if s.Lookups == 0 {
		return 0
	}
	return float64(s.Succeeded) / float64(s.Lookups)
}

// Result is one round of measurements.
type Result struct {
	N             int // live nodes
	FindPeer      Stats
	FindProviders Stats
	RoutingTables RTStats
}

type sample struct {
	ok      bool
	hops    int
	queried int
	time    time.Duration
}

func summarize(ss []sample) Stats {
	st := Stats{Lookups: len(ss)}
	var hops []int
	var times []time.Duration
	var queried int
	for _, s := range ss {
		if !s.ok {
			continue
		}
		st.Succeeded++
		hops = append(hops, s.hops)
		times = append(times, s.time)
		queried += s.queried
	}
	if st.Succeeded == 0 {
		return st
	}
	sort.Ints(hops)
	slices.Sort(times)
	st.HopsMedian, st.HopsP95 = percentile(hops, 0.5), percentile(hops, 0.95)
	st.TimeMedian, st.TimeP95 = percentile(times, 0.5), percentile(times, 0.95)
	sum := 0
	for _, h := range hops {
		sum += h
	}
	st.HopsMean = float64(sum) / float64(len(hops))
	st.QueriedMean = float64(queried) / float64(st.Succeeded)
	return st
}

// percentile is the nearest-rank percentile of sorted xs.
func percentile[T any](xs []T, p float64) T {
	i := int(float64(len(xs))*p+0.999999) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// lookupTimeout bounds one measured lookup.
const lookupTimeout = 2 * time.Minute

// Measure runs lookups FindPeer and lookups FindProviders lookups between
// random live nodes (at the configured latency) and sums them up. Content
// must have been provided with ProvideContent; only content whose provider
// is alive is looked up.
func (n *Network) Measure(ctx context.Context, lookups int) (Result, error) {
	live := n.live()
	if len(live) < 2 {
		return Result{}, errors.New("measure: fewer than two live nodes")
	}
	n.mu.Lock()
	var contents []content
	for _, c := range n.contents {
		if !c.provider.dead {
			contents = append(contents, c)
		}
	}
	type job struct {
		q, target *Node
		c         content
	}
	var peerJobs, provJobs []job
	for range lookups {
		ij := n.pickLocked(2, len(live))
		peerJobs = append(peerJobs, job{q: live[ij[0]], target: live[ij[1]]})
	}
	for range lookups {
		if len(contents) == 0 {
			break
		}
		c := contents[n.rng.IntN(len(contents))]
		provJobs = append(provJobs, job{c: c, q: live[n.rng.IntN(len(live))]})
	}
	n.mu.Unlock()

	run := func(jobs []job, one func(context.Context, job, *dht.Trace) bool) []sample {
		out := make([]sample, len(jobs))
		var wg sync.WaitGroup
		sem := make(chan struct{}, n.cfg.MeasureParallel)
		for i, j := range jobs {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
				defer cancel()
				tr := j.q.DHT.NewTrace(nil)
				start := time.Now()
				ok := one(tr.Context(lctx), j, tr)
				el := time.Since(start)
				tr.Stop()
				s := tr.Summary()
				out[i] = sample{ok: ok, hops: s.Hops, queried: s.Queried, time: el}
			}()
		}
		wg.Wait()
		return out
	}
	res := Result{N: len(live)}
	peerSamples := run(peerJobs, func(ctx context.Context, j job, _ *dht.Trace) bool {
		j.q.Host.Network().ClosePeer(j.target.Host.ID()) // a lookup, not a connection check
		ai, err := j.q.DHT.FindPeer(ctx, j.target.Host.ID())
		return err == nil && ai.ID == j.target.Host.ID()
	})
	res.FindPeer = summarize(peerSamples)
	// A querier that holds the provider record answers itself; pick
	// another one then.
	for i := range provJobs {
		for tries := 0; tries < 50 && n.holds(provJobs[i].q, provJobs[i].c.cid); tries++ {
			n.mu.Lock()
			provJobs[i].q = live[n.rng.IntN(len(live))]
			n.mu.Unlock()
		}
	}
	provSamples := run(provJobs, func(ctx context.Context, j job, _ *dht.Trace) bool {
		provs, err := j.q.DHT.FindProviders(ctx, j.c.cid, 1)
		return err == nil && len(provs) > 0 && provs[0].ID == j.c.provider.Host.ID()
	})
	res.FindProviders = summarize(provSamples)
	res.RoutingTables = n.RoutingTables()
	return res, nil
}

// holds reports whether nd has a provider record for c in its own store.
func (n *Network) holds(nd *Node, c cid.Cid) bool {
	ps, err := nd.DHT.Kad().ProviderStore().GetProviders(context.Background(), c.Hash())
	return err == nil && len(ps) > 0
}
