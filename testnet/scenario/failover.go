package scenario

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/testnet/report"
)

// FailoverConfig configures the failover scenario.
type FailoverConfig struct {
	// Interval is the time between two messages of the chat.
	Interval time.Duration
	// Settle is how long the chat runs before each stop.
	Settle time.Duration
	// RecoverTimeout bounds the wait for recovery after each stop.
	RecoverTimeout time.Duration
	// Grace is how long to wait at the end for the last messages.
	Grace time.Duration
	// Progress, if set, gets a line per step.
	Progress func(format string, args ...any)
}

// Failover has the first pair of peers whose path is relayed chat, one
// message every Interval, while the supernode that relays them is killed
// (as SIGKILL) and then, once they recovered, the next one is stopped
// gracefully (as SIGTERM). For each stop it measures the time until a
// message sent after the stop arrives, and until the sender's path label
// no longer names the stopped supernode. Every message must arrive.
func Failover(ctx context.Context, n Net, cfg FailoverConfig) (*report.Failover, []string, error) {
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	a, b, err := relayedPair(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	ws, stopWatching, err := watchAll(ctx, []*Peer{a, b})
	if err != nil {
		return nil, nil, err
	}
	defer stopWatching()
	res := &report.Failover{Pair: a.Name + " → " + b.Name}
	var problems []string

	chatCtx, stopChat := context.WithCancel(ctx)
	var mu sync.Mutex // guards msgs and problems while the chat runs
	var msgs []sentMessage
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(cfg.Interval)
		defer t.Stop()
		for i := 1; ; i++ {
			at := time.Now()
			m, err := a.API().Send(chatCtx, b.Name, fmt.Sprintf("failover %d", i))
			mu.Lock()
			switch {
			case err == nil:
				res.Sent++
				msgs = append(msgs, sentMessage{id: m.ID, from: a, to: b, at: at, path: m.Path})
			case chatCtx.Err() == nil:
				res.Sent++
				problems = append(problems, fmt.Sprintf("message %d could not be sent: %v", i, err))
			}
			mu.Unlock()
			select {
			case <-chatCtx.Done():
				return
			case <-t.C:
			}
		}
	})
	outageErr := func() error {
		for _, kill := range []bool{true, false} {
			o, err := outage(ctx, n, ws, a, b, kill, cfg, func() []sentMessage {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(msgs)
			})
			if err != nil {
				return err
			}
			progress("%s of supernode %s: a message sent after it arrived after %s; the path changed after %s, to %s",
				o.How, o.Supernode, report.Dur(o.RecoveredNS), report.Dur(o.PathRecoveredNS), o.PathAfter)
			res.Outages = append(res.Outages, o)
			if o.RecoveredNS < 0 {
				problems = append(problems, fmt.Sprintf("after the %s of supernode %s no message arrived within %v", o.How, o.Supernode, cfg.RecoverTimeout))
			}
		}
		return nil
	}()
	stopChat()
	wg.Wait()
	if outageErr != nil {
		return nil, nil, outageErr
	}
	s, err := settle(ctx, ws, msgs, cfg.Grace)
	if err != nil {
		return nil, nil, err
	}
	res.Arrived, res.Lost = s.arrived, res.Sent-s.arrived
	res.Latency = report.Summarize(s.latencies)
	problems = append(problems, lostProblems(s.lost)...)
	return res, problems, nil
}

// relayedPair is a pair of peers whose path, once a message went from
// the first to the second, is relayed: one with a side that cannot be
// hole-punched (symmetric or imitated NAT) if there is one, so that the
// pair stays relayed.
func relayedPair(ctx context.Context, n Net) (*Peer, *Peer, error) {
	all := pairs(n.Peers())
	unpunchable := func(p [2]*Peer) bool {
		return slices.ContainsFunc(p[:], func(x *Peer) bool { return x.NAT == "symmetric" || x.NAT == "imitated NAT" })
	}
	slices.SortStableFunc(all, func(x, y [2]*Peer) int {
		switch ux, uy := unpunchable(x), unpunchable(y); {
		case ux == uy:
			return 0
		case ux:
			return -1
		}
		return 1
	})
	for _, p := range all {
		m, err := p[0].API().Send(ctx, p[1].Name, "which way?")
		if err != nil {
			return nil, nil, fmt.Errorf("%s sends to %s: %w", p[0].Name, p[1].Name, err)
		}
		if _, ok := isRelayed(m.Path); ok {
			return p[0], p[1], nil
		}
	}
	return nil, nil, errors.New("failover needs a pair of clients that talk through a supernode (behind symmetric NATs, or imitated NATs on loopback), and no pair does")
}

// outage stops the supernode that relays a's messages to b and measures
// the recovery.
func outage(ctx context.Context, n Net, ws watchers, a, b *Peer, kill bool, cfg FailoverConfig, sent func() []sentMessage) (report.Outage, error) {
	o := report.Outage{How: "SIGTERM", RecoveredNS: -1, PathRecoveredNS: -1}
	if kill {
		o.How = "SIGKILL"
	}
	var via string
	wctx, cancel := context.WithTimeout(ctx, cfg.Settle+cfg.RecoverTimeout)
	defer cancel()
	select {
	case <-ctx.Done():
		return o, ctx.Err()
	case <-time.After(cfg.Settle):
	}
	if !poll(wctx, func() bool {
		var ok bool
		via, ok = isRelayed(currentPath(wctx, a, b.Name))
		return ok
	}) {
		return o, fmt.Errorf("%s's path to %s is %q, not through a supernode", a.Name, b.Name, currentPath(ctx, a, b.Name))
	}
	o.Supernode = via
	stopped := time.Now()
	if err := n.StopSupernode(ctx, via, kill); err != nil {
		return o, err
	}
	rctx, rcancel := context.WithTimeout(ctx, cfg.RecoverTimeout)
	defer rcancel()
	var pathDone, msgDone bool
	poll(rctx, func() bool {
		if !pathDone {
			if p := currentPath(rctx, a, b.Name); p != "" && p != "not connected" && p != "relayed via "+via {
				pathDone, o.PathAfter, o.PathRecoveredNS = true, p, time.Since(stopped).Nanoseconds()
			}
		}
		if !msgDone {
			for _, m := range sent() {
				if at, ok := ws[b.Name].arrival(m.id); ok && m.at.After(stopped) {
					msgDone, o.RecoveredNS = true, max(at.Sub(stopped), 0).Nanoseconds()
					break
				}
			}
		}
		return pathDone && msgDone
	})
	return o, nil
}

// currentPath is p's path to contact ("direct", "relayed via X"…), ""
// when unknown.
func currentPath(ctx context.Context, p *Peer, contact string) string {
	return contactStatus(ctx, p, contact).Path
}

// currentLabel is p's path label to contact as users see it, with the
// transport ("relayed/tcp via X"…), "" when unknown.
func currentLabel(ctx context.Context, p *Peer, contact string) string {
	cs := contactStatus(ctx, p, contact)
	return apitype.PathLabel(cs.Path, cs.Transport)
}

// contactStatus is what p's status says of contact; zero when unknown.
func contactStatus(ctx context.Context, p *Peer, contact string) apitype.ContactStatus {
	st, err := p.API().Status(ctx)
	if err != nil {
		return apitype.ContactStatus{}
	}
	for _, c := range st.Contacts {
		if c.Username == contact {
			return c
		}
	}
	return apitype.ContactStatus{}
}
