package scenario

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/parleynet/parley/app/apitype"

	"github.com/parleynet/parley/testnet/report"
)

// ConnectivityConfig configures the connectivity scenario.
type ConnectivityConfig struct {
	// Attempts is how many times every pair connects afresh.
	Attempts int
	// MessageTimeout bounds the wait for an attempt's message to arrive.
	MessageTimeout time.Duration
	// DirectTimeout bounds the wait for a direct path after the send
	// (go-libp2p tries three hole punches of up to 5 s each).
	DirectTimeout time.Duration
	// Progress, if set, gets a line per attempt and pair.
	Progress func(format string, args ...any)
}

// Connectivity measures how every pair of peers ends up connected. Each
// attempt restarts every peer (fresh nodes, no connection between them),
// makes their NATs forget each other, then in every pair at once the
// first sends the second a message: the outcome is failed when it does
// not arrive, else direct or holepunched when the sender's path label
// becomes so within DirectTimeout, else relayed. Problems: a pair that
// could not talk in some attempt, a cone↔cone attempt that did not end
// direct.
func Connectivity(ctx context.Context, n Net, cfg ConnectivityConfig) (*report.Connectivity, []string, error) {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	peers := n.Peers()
	all := pairs(peers)
	res := &report.Connectivity{Attempts: cfg.Attempts, DirectTimeoutNS: cfg.DirectTimeout.Nanoseconds()}
	for _, p := range all {
		res.Pairs = append(res.Pairs, report.Pair{Names: p[0].Name + " ↔ " + p[1].Name,
			NATs: natPair(p[0], p[1]), Outcomes: map[report.Outcome]int{}})
	}
	var problems []string
	for attempt := 1; attempt <= cfg.Attempts; attempt++ {
		if err := freshStart(ctx, n, all); err != nil {
			return nil, nil, fmt.Errorf("attempt %d: %w", attempt, err)
		}
		ws, stop, err := watchAll(ctx, peers)
		if err != nil {
			return nil, nil, fmt.Errorf("attempt %d: %w", attempt, err)
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, p := range all {
			wg.Go(func() {
				r := tryPair(ctx, ws, p[0], p[1], attempt, cfg)
				mu.Lock()
				defer mu.Unlock()
				row := &res.Pairs[i]
				row.Outcomes[r.outcome]++
				if r.outcome != report.Failed {
					row.FirstMessageNS = append(row.FirstMessageNS, r.first.Nanoseconds())
				}
				if r.outcome == report.Direct || r.outcome == report.HolePunched {
					row.ToDirectNS = append(row.ToDirectNS, r.toDirect.Nanoseconds())
				}
				if r.problem != "" {
					problems = append(problems, fmt.Sprintf("attempt %d, %s: %s", attempt, row.Names, r.problem))
				}
				toDirect := "-"
				if r.outcome == report.Direct || r.outcome == report.HolePunched {
					toDirect = report.Dur(r.toDirect.Nanoseconds())
				}
				progress("attempt %d/%d %-22s %-24s %-12s first message %-9s to direct %s", attempt, cfg.Attempts,
					row.Names, row.NATs, r.outcome, report.Dur(r.first.Nanoseconds()), toDirect)
			})
		}
		wg.Wait()
		stop()
	}
	summarize(res)
	return res, problems, nil
}

// freshStart restarts every peer at once, makes the NATs forget each
// other, and waits until every peer sees every other online with
// circuit addresses.
func freshStart(ctx context.Context, n Net, all [][2]*Peer) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range n.Peers() {
		g.Go(func() error { return n.Restart(gctx, p) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, p := range all {
		if err := n.Forget(ctx, p[0], p[1]); err != nil {
			return err
		}
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, p := range all {
		for _, dir := range [][2]*Peer{{p[0], p[1]}, {p[1], p[0]}} {
			if err := awaitReachable(wctx, dir[0], dir[1].Name); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitReachable waits until p sees contact online with addresses.
func awaitReachable(ctx context.Context, p *Peer, contact string) error {
	var last string
	ok := poll(ctx, func() bool {
		st, err := p.API().Status(ctx)
		if err != nil {
			last = err.Error()
			return false
		}
		i := slices.IndexFunc(st.Contacts, func(c apitype.ContactStatus) bool { return c.Username == contact })
		if i < 0 {
			last = "not a contact"
			return false
		}
		c := st.Contacts[i]
		last = fmt.Sprintf("online %v, addresses %v", c.Online, c.Addrs)
		return c.Online && len(c.Addrs) > 0
	})
	if !ok {
		return fmt.Errorf("%s never saw %s online with addresses (last: %s)", p.Name, contact, last)
	}
	return nil
}

// pairResult is one attempt of one pair.
type pairResult struct {
	outcome  report.Outcome
	first    time.Duration // send to arrival
	toDirect time.Duration // send to the direct path label
	problem  string
}

func tryPair(ctx context.Context, ws watchers, a, b *Peer, attempt int, cfg ConnectivityConfig) pairResult {
	start := time.Now()
	mctx, cancel := context.WithDeadline(ctx, start.Add(cfg.MessageTimeout))
	defer cancel()
	m, err := a.API().Send(mctx, b.Name, fmt.Sprintf("connectivity attempt %d from %s", attempt, a.Name))
	if err != nil {
		return pairResult{outcome: report.Failed, problem: fmt.Sprintf("send: %v", err)}
	}
	var arrived time.Time
	if !poll(mctx, func() bool {
		var ok bool
		arrived, ok = ws[b.Name].arrival(m.ID)
		return ok
	}) {
		return pairResult{outcome: report.Failed, problem: fmt.Sprintf("the message (%s, %s) did not arrive within %v", m.State, m.Path, cfg.MessageTimeout)}
	}
	r := pairResult{outcome: report.Relayed, first: max(arrived.Sub(start), 0)}
	dctx, dcancel := context.WithDeadline(ctx, start.Add(cfg.DirectTimeout))
	defer dcancel()
	var d directPath
	if poll(dctx, func() bool {
		var ok bool
		d, ok = ws[a.Name].directSince(b.Name)
		return ok
	}) {
		r.outcome, r.toDirect = report.Outcome(d.label), max(d.at.Sub(start), 0)
	}
	if isCone(a) && isCone(b) && r.outcome == report.Relayed {
		r.problem = fmt.Sprintf("cone ↔ cone stayed %s for %v", ws[a.Name].path(b.Name), cfg.DirectTimeout)
	}
	return r
}

func isCone(p *Peer) bool { return p.NAT == "cone" }

// natPair names the NAT types of a pair, in a fixed order.
func natPair(a, b *Peer) string {
	ts := []string{a.NAT, b.NAT}
	slices.Sort(ts)
	return strings.Join(ts, " ↔ ")
}

// summarize fills the matrix and the totals from the pairs.
func summarize(res *report.Connectivity) {
	cells := map[string]*report.Cell{}
	var first, direct []int64
	total, directs := 0, 0
	for _, p := range res.Pairs {
		c := cells[p.NATs]
		if c == nil {
			c = &report.Cell{NATs: p.NATs, Outcomes: map[report.Outcome]int{}}
			cells[p.NATs] = c
		}
		for o, k := range p.Outcomes {
			c.Outcomes[o] += k
			c.Attempts += k
			total += k
			if o == report.Direct || o == report.HolePunched {
				directs += k
			}
		}
		first = append(first, p.FirstMessageNS...)
		direct = append(direct, p.ToDirectNS...)
	}
	for _, name := range slices.Sorted(maps.Keys(cells)) {
		res.Matrix = append(res.Matrix, *cells[name])
	}
	if total > 0 {
		res.DirectShare = float64(directs) / float64(total)
	}
	res.FirstMessage, res.ToDirect = report.Summarize(first), report.Summarize(direct)
}
