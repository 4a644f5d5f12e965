package scenario

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/parleynet/parley/testnet/report"
)

// ChurnConfig configures the churn scenario.
type ChurnConfig struct {
	// Duration is how long clients come and go.
	Duration time.Duration
	// Period is the time between two client restarts.
	Period time.Duration
	// Interval is the time between two messages of each direction of
	// each pair.
	Interval time.Duration
	// Grace is how long to wait at the end for the last messages.
	Grace time.Duration
	// Progress, if set, gets a line per event.
	Progress func(format string, args ...any)
}

// Churn has every pair chat both ways while the clients restart one
// after another (each leaves and comes back on its data), and halfway a
// supernode leaves gracefully. Every message the API accepted must
// arrive, whether directly, through another supernode, or from the
// mailbox after the receiver came back.
func Churn(ctx context.Context, n Net, cfg ChurnConfig) (*report.Churn, []string, error) {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	peers := n.Peers()
	gens := &generations{byName: map[string][]*watcher{}}
	wctx, stopWatching := context.WithCancel(ctx)
	defer func() { stopWatching(); gens.wait() }()
	for _, p := range peers {
		if err := gens.watch(wctx, p); err != nil {
			return nil, nil, err
		}
	}
	res := &report.Churn{DurationNS: cfg.Duration.Nanoseconds()}
	start := time.Now()

	chatCtx, stopChat := context.WithCancel(ctx)
	var mu sync.Mutex // guards msgs, res.Sent and res.SendErrors while the chat runs
	var msgs []sentMessage
	var wg sync.WaitGroup
	for _, pair := range pairs(peers) {
		for _, dir := range [][2]*Peer{{pair[0], pair[1]}, {pair[1], pair[0]}} {
			wg.Go(func() {
				t := time.NewTicker(cfg.Interval)
				defer t.Stop()
				for i := 1; ; i++ {
					at := time.Now()
					m, err := dir[0].API().Send(chatCtx, dir[1].Name, fmt.Sprintf("churn %d from %s", i, dir[0].Name))
					mu.Lock()
					switch {
					case err == nil:
						res.Sent++
						msgs = append(msgs, sentMessage{id: m.ID, from: dir[0], to: dir[1], at: at, path: m.Path})
					case chatCtx.Err() == nil:
						res.SendErrors++
					}
					mu.Unlock()
					select {
					case <-chatCtx.Done():
						return
					case <-t.C:
					}
				}
			})
		}
	}
	churnErr := churn(ctx, n, start, cfg, res, progress, func(p *Peer) error { return gens.watch(wctx, p) })
	stopChat()
	wg.Wait()
	if churnErr != nil {
		return nil, nil, churnErr
	}
	stopWatching()
	gens.wait()
	s, err := settle(ctx, gens.merged(), msgs, cfg.Grace)
	if err != nil {
		return nil, nil, err
	}
	res.Arrived, res.Lost = s.arrived, res.Sent-s.arrived
	res.Latency = report.Summarize(s.latencies)
	return res, lostProblems(s.lost), nil
}

// churn restarts the peers in turn for cfg.Duration, watching each
// again once it is back, and stops a supernode halfway.
func churn(ctx context.Context, n Net, start time.Time, cfg ChurnConfig, res *report.Churn, progress func(string, ...any), rewatch func(*Peer) error) error {
	peers := n.Peers()
	t := time.NewTicker(cfg.Period)
	defer t.Stop()
	stopped := false
	for i := 0; time.Since(start) < cfg.Duration; i++ {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if !stopped && time.Since(start) >= cfg.Duration/2 {
			st, err := peers[0].API().Status(ctx)
			if err == nil && len(st.Supernodes) > 0 {
				at := time.Since(start)
				if err := n.StopSupernode(ctx, st.Supernodes[0], false); err != nil {
					return err
				}
				res.Events = append(res.Events, report.ChurnEvent{AtNS: at.Nanoseconds(), What: "supernode " + st.Supernodes[0] + " leaves (SIGTERM)"})
				progress("supernode %s leaves", st.Supernodes[0])
				stopped = true
			}
		}
		p := peers[i%len(peers)]
		at := time.Now()
		if err := n.Restart(ctx, p); err != nil {
			return err
		}
		took := time.Since(at)
		if err := rewatch(p); err != nil {
			return err
		}
		res.Events = append(res.Events, report.ChurnEvent{AtNS: at.Sub(start).Nanoseconds(), What: p.Name + " restarts", TookNS: took.Nanoseconds()})
		progress("%s restarted, back after %s", p.Name, report.Dur(took.Nanoseconds()))
	}
	return nil
}

// generations are the watchers of every run of each peer.
type generations struct {
	mu     sync.Mutex // guards byName
	byName map[string][]*watcher
}

func (g *generations) watch(ctx context.Context, p *Peer) error {
	w, err := watch(ctx, p)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.byName[p.Name] = append(g.byName[p.Name], w)
	return nil
}

// wait waits until every watcher stopped (their context ended).
func (g *generations) wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, ws := range g.byName {
		for _, w := range ws {
			<-w.done
		}
	}
}

// merged is a watcher per peer with the arrivals of all its runs; call
// it once the watchers stopped.
func (g *generations) merged() watchers {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := watchers{}
	for name, ws := range g.byName {
		m := &watcher{done: make(chan struct{}), arrivals: map[string]time.Time{}}
		close(m.done)
		for _, w := range ws {
			w.mu.Lock()
			maps.Copy(m.arrivals, w.arrivals)
			w.mu.Unlock()
		}
		out[name] = m
	}
	return out
}
