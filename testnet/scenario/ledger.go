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

// settle waits up to grace for every message to arrive at its receiver,
// then looks the missing ones up in the receivers' histories (an event
// stream may skip events when it falls behind): a message is lost when
// its receiver has not stored it.
func settle(ctx context.Context, ws watchers, msgs []sentMessage, grace time.Duration) (settlement, error) {
	wctx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	arrivedAll := func() bool {
		return !slices.ContainsFunc(msgs, func(m sentMessage) bool {
			_, ok := ws[m.to.Name].arrival(m.id)
			return !ok
		})
	}
	poll(wctx, arrivedAll)
	var s settlement
	stored := map[string]map[string]bool{} // by receiver and sender: message IDs
	for _, m := range msgs {
		if at, ok := ws[m.to.Name].arrival(m.id); ok {
			s.arrived++
			s.latencies = append(s.latencies, max(at.Sub(m.at), 0).Nanoseconds())
			continue
		}
		key := m.to.Name + "\x00" + m.from.Name
		if stored[key] == nil {
			hist, err := m.to.API.History(ctx, apitype.HistoryQuery{Contact: m.from.Name, Limit: apitype.MaxHistoryLimit})
			if err != nil {
				return s, fmt.Errorf("%s's history with %s: %w", m.to.Name, m.from.Name, err)
			}
			stored[key] = map[string]bool{}
			for _, h := range hist {
				if h.Incoming {
					stored[key][h.ID] = true
				}
			}
		}
		if stored[key][m.id] {
			s.arrived++
		} else {
			s.lost = append(s.lost, m)
		}
	}
	return s, nil
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
