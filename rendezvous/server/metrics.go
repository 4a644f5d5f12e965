package server

import (
	"time"

	"github.com/parleynet/parley/rendezvous/pb"
)

// MetricsTracer receives the server's measurements. A nil tracer in
// Config means no metrics; package rendezvous/metrics implements one for
// Prometheus.
type MetricsTracer interface {
	// SessionsChanged reports the number of live sessions on this replica.
	SessionsChanged(n int)
	// Request reports one answered request: its kind ("login",
	// "register", "request_contact", ...) and the status it got.
	Request(kind string, status pb.Status)
	// FanOut reports how long one presence change took from the event
	// being published to its last push being queued on this replica, and
	// to how many sessions it was pushed.
	FanOut(d time.Duration, sessions int)
	// Supernodes reports the directory's active and standby candidates
	// after an announcement changed them.
	Supernodes(active, standby int)
	// SupernodeChecked reports the outcome of one check of a supernode
	// candidate at its announced addresses: "ok" or "failed".
	SupernodeChecked(result string)
}
