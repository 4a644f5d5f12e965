package scenario

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/parleynet/parley/app/apitype"
)

// sentMessage is a message a scenario sent.
type sentMessage struct {
	id       string
	from, to *Peer
	at       time.Time // just before Send was called
	path     string    // the path the sender reported; "" while queued
}

// watchers are the watchers of a scenario's peers, by name.
type watchers map[string]*watcher

// watchAll watches every peer until ctx ends; stop ends the watching and
// waits for it.
func watchAll(ctx context.Context, peers []*Peer) (_ watchers, stop func(), err error) {
	ctx, cancel := context.WithCancel(ctx)
	ws := watchers{}
	stop = func() {
		cancel()
		for _, w := range ws {
			<-w.done
		}
	}
	for _, p := range peers {
		w, err := watch(ctx, p)
		if err != nil {
			stop()
			return nil, nil, err
		}
		ws[p.Name] = w
	}
	return ws, stop, nil
}

// settlement is what became of the messages sent.
type settlement struct {
	latencies []int64 // of the messages whose arrival time is known
	arrived   int
	lost      []sentMessage
}

// settle waits up to grace for every message to arrive at its receiver:
// its arrival event was seen, or (an event stream may skip events when it
// falls behind, and a restarted receiver's stream starts anew) the
// receiver has stored it. A message is lost when its receiver has not
// stored it by then.
func settle(ctx context.Context, ws watchers, msgs []sentMessage, grace time.Duration) (settlement, error) {
	wctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	stored := map[string]bool{} // IDs of messages found in their receivers' histories
	var missing []sentMessage
	var err error
	// Histories are read only after the events had a while to come, so
	// that arrivals keep their times where the events have them.
	historyAfter := time.Now().Add(min(grace/2, 2*time.Second))
	check := func(ctx context.Context) bool {
		missing = missing[:0]
		for _, m := range msgs {
			if _, ok := ws[m.to.Name].arrival(m.id); !ok && !stored[m.id] {
				missing = append(missing, m)
			}
		}
		if len(missing) > 0 && time.Now().After(historyAfter) {
			err = lookUpStored(ctx, missing, stored)
		}
		return err != nil || !slices.ContainsFunc(missing, func(m sentMessage) bool { return !stored[m.id] })
	}
	for !check(wctx) && wctx.Err() == nil {
		select {
		case <-wctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil && ctx.Err() == nil && wctx.Err() == nil {
		return settlement{}, err
	}
	if err != nil { // the grace ended during a look-up: look once more
		if err := lookUpStored(ctx, missing, stored); err != nil {
			return settlement{}, err
		}
	}
	var s settlement
	for _, m := range msgs {
		switch at, ok := ws[m.to.Name].arrival(m.id); {
		case ok:
			s.arrived++
			s.latencies = append(s.latencies, max(at.Sub(m.at), 0).Nanoseconds())
		case stored[m.id]:
			s.arrived++
		default:
			s.lost = append(s.lost, m)
		}
	}
	return s, nil
}

// lookUpStored marks in stored the messages of missing that their
// receivers stored, reading each receiver's history with each sender
// once.
func lookUpStored(ctx context.Context, missing []sentMessage, stored map[string]bool) error {
	read := map[[2]string]bool{}
	for _, m := range missing {
		key := [2]string{m.to.Name, m.from.Name}
		if read[key] {
			continue
		}
		read[key] = true
		hist, err := m.to.API().History(ctx, apitype.HistoryQuery{Contact: m.from.Name, Limit: apitype.MaxHistoryLimit})
		if err != nil {
			return fmt.Errorf("%s's history with %s: %w", m.to.Name, m.from.Name, err)
		}
		for _, h := range hist {
			if h.Incoming {
				stored[h.ID] = true
			}
		}
	}
	return nil
}

// pairs are every unordered pair of peers, in order.
func pairs(peers []*Peer) [][2]*Peer {
	var out [][2]*Peer
	for i, a := range peers {
		for _, b := range peers[i+1:] {
			out = append(out, [2]*Peer{a, b})
		}
	}
	return out
}

func lostProblems(lost []sentMessage) []string {
	var out []string
	for _, m := range lost {
		out = append(out, fmt.Sprintf("message %s from %s to %s, sent at %s, never arrived", shortMsg(m.id), m.from.Name, m.to.Name, m.at.UTC().Format("15:04:05.000")))
	}
	return out
}

func shortMsg(id string) string { return id[:min(len(id), 8)] }
