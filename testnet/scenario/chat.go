package scenario

import (
	"context"
	"fmt"
	"time"

	"github.com/parleynet/parley/testnet/report"
)

// ChatConfig configures the chat scenario.
type ChatConfig struct {
	// Messages is how many messages go each way between every pair.
	Messages int
	// Grace is how long to wait for the last messages to arrive.
	Grace time.Duration
}

// Chat sends cfg.Messages messages each way between every pair of
// peers, one at a time, and measures each one's latency from the send to
// its arrival at the receiver. Every message must arrive: the problems
// name the lost ones and the sends that failed.
func Chat(ctx context.Context, n Net, cfg ChatConfig) (*report.Chat, []string, error) {
	ws, stop, err := watchAll(ctx, n.Peers())
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	res := &report.Chat{PerDirection: cfg.Messages, Paths: map[string]int{}}
	var problems []string
	var msgs []sentMessage
	for _, pair := range pairs(n.Peers()) {
		for _, dir := range [][2]*Peer{{pair[0], pair[1]}, {pair[1], pair[0]}} {
			from, to := dir[0], dir[1]
			for i := range cfg.Messages {
				at := time.Now()
				m, err := from.API().Send(ctx, to.Name, fmt.Sprintf("chat %d from %s to %s", i+1, from.Name, to.Name))
				res.Sent++
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s could not send message %d to %s: %v", from.Name, i+1, to.Name, err))
					continue
				}
				res.Paths[pathOrState(m.Path, string(m.State))]++
				msgs = append(msgs, sentMessage{id: m.ID, from: from, to: to, at: at, path: m.Path})
			}
		}
	}
	s, err := settle(ctx, ws, msgs, cfg.Grace)
	if err != nil {
		return nil, nil, err
	}
	res.Arrived, res.Lost = s.arrived, res.Sent-s.arrived
	res.LatenciesNS, res.Latency = s.latencies, report.Summarize(s.latencies)
	problems = append(problems, lostProblems(s.lost)...)
	return res, problems, nil
}

// pathOrState is a message's path, or its state while it has none.
func pathOrState(path, state string) string {
	if path == "" {
		return state
	}
	if via, ok := isRelayed(path); ok {
		return "relayed via …" + via[max(len(via)-6, 0):]
	}
	return path
}
