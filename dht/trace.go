package dht

import (
	"context"
	"sync"
	"time"

	kaddht "github.com/libp2p/go-libp2p-kad-dht"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	kb "github.com/libp2p/go-libp2p-kbucket"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TraceKind is what a trace event reports.
type TraceKind int

const (
	// TraceQuery: a request was sent to Peer.
	TraceQuery TraceKind = iota
	// TraceResponse: Peer answered.
	TraceResponse
	// TraceError: the request to Peer failed (Err says why).
	TraceError
)

func (k TraceKind) String() string {
	switch k {
	case TraceQuery:
		return "query"
	case TraceResponse:
		return "response"
	case TraceError:
		return "error"
	default:
		return "unknown"
	}
}

// TracePeer is a peer named in an answer, with its distance to the target.
type TracePeer struct {
	ID  peer.ID
	CPL int // common prefix length of its Kademlia ID with the target's
}

// TraceEvent is one step of a lookup.
type TraceEvent struct {
	Kind    TraceKind
	At      time.Duration // since the trace started
	Peer    peer.ID
	Message string // the request: FIND_NODE, GET_PROVIDERS, GET_VALUE, PUT_VALUE, ADD_PROVIDER, PING
	Key     []byte // the request's key (the target)
	// Hop is how far the lookup had to go to learn of Peer: 1 for the
	// peers it started from (the local routing table's closest to the
	// target), h+1 for a peer first named by a hop-h peer.
	Hop int
	// CPL is the common prefix length of Peer's Kademlia ID and the
	// target's (SHA-256 of the peer ID and of the key); Distance is their
	// XOR, 32 bytes. Closer peers have a larger CPL and a smaller
	// Distance.
	CPL      int
	Distance []byte
	// For TraceResponse and TraceError:
	RTT time.Duration
	// For TraceResponse: what the peer returned.
	Closer    []TracePeer     // closer peers it named
	Providers []peer.AddrInfo // GET_PROVIDERS: providers it holds
	Record    bool            // GET_VALUE: it holds a valid record
	BadRecord error           // GET_VALUE: it sent a record that is not valid
	// For TraceError.
	Err error
}

// TraceSummary sums a trace up.
type TraceSummary struct {
	Duration  time.Duration // from the start to the last event
	Queried   int           // requests sent
	Responded int
	Failed    int
	MaxHop    int // the deepest hop queried
	// Hops is the hop of the first peer whose answer held the result:
	// the target peer among the closer peers (FIND_NODE), a provider
	// (GET_PROVIDERS) or a record (GET_VALUE). It is 0 when no answer
	// held it: found locally (a FIND_NODE target in this node's own
	// routing table), or not found.
	Hops       int
	AnsweredBy peer.ID
}

// Trace records the DHT requests of the calls made with its context, as
// they happen: for the CLI's --trace and for the simulation's hop counts.
// Use one trace per lookup, and Stop it when the lookup returns.
type Trace struct {
	kad     *kaddht.IpfsDHT
	onEvent func(TraceEvent)
	start   time.Time

	mu       sync.Mutex // guards the following; held while onEvent runs
	stopped  bool
	answered bool // Hops is final
	events   []TraceEvent
	targets  map[string]*traceTarget
	summary  TraceSummary
}

type traceTarget struct {
	id   kb.ID
	hops map[peer.ID]int
}

// NewTrace starts a trace. onEvent, if not nil, is called for every event
// as it happens, from the lookup's goroutines but never concurrently; the
// lookup waits for it, so it should be quick.
func (d *DHT) NewTrace(onEvent func(TraceEvent)) *Trace {
	return &Trace{kad: d.kad, onEvent: onEvent, start: time.Now(), targets: make(map[string]*traceTarget)}
}

// Context returns ctx with the trace attached: the DHT calls made with it
// (FindPeer, FindProviders, GetRecord, PutRecord, Provide, Ping, ...) are
// traced.
func (t *Trace) Context(ctx context.Context) context.Context {
	return withObserver(ctx, t)
}

// Stop ends the trace: later events are dropped and onEvent is not called
// again. A lookup returns before the requests it no longer needs have
// finished; stop the trace when the call returns so that their late
// answers do not count.
func (t *Trace) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
}

// Events returns the events so far.
func (t *Trace) Events() []TraceEvent {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TraceEvent(nil), t.events...)
}

// Summary sums up the events so far.
func (t *Trace) Summary() TraceSummary {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.summary
}

// targetLocked returns the state of the lookup for key; the peers it
// starts from are the routing table's closest to key, at hop 1.
func (t *Trace) targetLocked(key []byte) *traceTarget {
	if tt, ok := t.targets[string(key)]; ok {
		return tt
	}
	tt := &traceTarget{id: kb.ConvertKey(string(key)), hops: make(map[peer.ID]int)}
	for _, p := range t.kad.RoutingTable().NearestPeers(tt.id, t.kad.BucketSize()) {
		tt.hops[p] = 1
		if string(p) == string(key) && !t.answered {
			t.answered = true // a peer in our own routing table: no hop needed
		}
	}
	t.targets[string(key)] = tt
	return tt
}

func (tt *traceTarget) hop(p peer.ID) int {
	if h, ok := tt.hops[p]; ok {
		return h
	}
	tt.hops[p] = 1 // not learned in this lookup: from the routing table
	return 1
}

func (t *Trace) emitLocked(ev TraceEvent) {
	ev.At = time.Since(t.start)
	t.events = append(t.events, ev)
	t.summary.Duration = ev.At
	if t.onEvent != nil {
		t.onEvent(ev)
	}
}

// eventLocked starts the event of kind about the request req to p: where
// p stands in the lookup of req's key.
func (t *Trace) eventLocked(kind TraceKind, p peer.ID, req *kadpb.Message) (*traceTarget, TraceEvent) {
	tt := t.targetLocked(req.GetKey())
	pid := kb.ConvertPeerID(p)
	return tt, TraceEvent{
		Kind:     kind,
		Peer:     p,
		Message:  req.GetType().String(),
		Key:      req.GetKey(),
		Hop:      tt.hop(p),
		CPL:      kb.CommonPrefixLen(pid, tt.id),
		Distance: kb.Xor(pid, tt.id),
	}
}

func (t *Trace) sent(p peer.ID, req *kadpb.Message, _ time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	_, ev := t.eventLocked(TraceQuery, p, req)
	t.summary.Queried++
	t.summary.MaxHop = max(t.summary.MaxHop, ev.Hop)
	t.emitLocked(ev)
}

func (t *Trace) done(p peer.ID, req, resp *kadpb.Message, rtt time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	tt, ev := t.eventLocked(TraceResponse, p, req)
	ev.RTT, ev.Err = rtt, err
	if err != nil {
		ev.Kind = TraceError
		t.summary.Failed++
		t.emitLocked(ev)
		return
	}
	t.summary.Responded++
	answered := false
	for _, ai := range kadpb.PBPeersToPeerInfos(resp.GetCloserPeers()) {
		ev.Closer = append(ev.Closer, TracePeer{ID: ai.ID, CPL: kb.CommonPrefixLen(kb.ConvertPeerID(ai.ID), tt.id)})
		if _, known := tt.hops[ai.ID]; !known {
			tt.hops[ai.ID] = ev.Hop + 1
		}
		if req.GetType() == kadpb.Message_FIND_NODE && string(ai.ID) == string(req.GetKey()) {
			answered = true
		}
	}
	for _, ai := range kadpb.PBPeersToPeerInfos(resp.GetProviderPeers()) {
		ev.Providers = append(ev.Providers, *ai)
		answered = true
	}
	if rec := resp.GetRecord(); req.GetType() == kadpb.Message_GET_VALUE && rec != nil {
		if err := t.kad.Validator.Validate(string(req.GetKey()), rec.GetValue()); err != nil {
			ev.BadRecord = err
		} else {
			ev.Record = true
			answered = true
		}
	}
	if answered && !t.answered {
		t.answered = true
		t.summary.Hops, t.summary.AnsweredBy = ev.Hop, p
	}
	t.emitLocked(ev)
}
