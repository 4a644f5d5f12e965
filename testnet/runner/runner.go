// Package runner runs a parley-testnet scenario from start to report: it
// brings up the network (in-process engines on loopback, or the real
// binaries in the NAT lab), runs the scenario, writes the report and
// takes everything down again, also when ctx ends early.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parleynet/parley/testnet/report"
	"github.com/parleynet/parley/testnet/scenario"
	"github.com/parleynet/parley/testnet/topology"
)

// Scenarios are the scenarios Run knows, in the order to run them.
var Scenarios = []string{"connectivity", "chat", "failover", "files", "churn", "dht"}

// Options configure a run.
type Options struct {
	Scenario string
	// NATLab runs the network in the NAT lab (root) with Topology;
	// otherwise on loopback with Clients in-process clients.
	NATLab   bool
	Topology topology.Topology
	// Clients and Supernodes size the loopback network.
	Clients    int
	Supernodes int

	Connectivity scenario.ConnectivityConfig
	Chat         scenario.ChatConfig
	Failover     scenario.FailoverConfig
	Files        scenario.FilesConfig
	Churn        scenario.ChurnConfig
	DHT          scenario.DHTConfig

	// Command is the command line, for the report.
	Command string
	// Progress gets a line per step.
	Progress io.Writer
}

// network is a running network the scenarios drive.
type network interface {
	scenario.Net
	// Mode says what runs the network, for the report.
	Mode() string
	Close() error
}

// Run brings the network up, runs the scenario and returns its report;
// the report's Problems list the checks that failed. The network is gone
// when Run returns.
func Run(ctx context.Context, o Options) (r report.Report, err error) {
	r = report.Report{Scenario: o.Scenario, Command: o.Command, Started: time.Now(), Problems: []string{}}
	progress := func(format string, args ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "%s %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
		}
	}
	o.Connectivity.Progress, o.Failover.Progress, o.Files.Progress, o.Churn.Progress, o.DHT.Progress = progress, progress, progress, progress, progress
	var n network
	if o.NATLab {
		progress("building the NAT lab: %d supernodes, %d clients, %v per public link", o.Topology.Supernodes, len(o.Topology.Clients), o.Topology.Delay)
		n, err = StartLab(ctx, o.Topology, "")
	} else {
		progress("starting a loopback network: %d supernodes, %d clients", o.Supernodes, o.Clients)
		n, err = startLoopback(ctx, o.Clients, o.Supernodes)
	}
	if err != nil {
		return r, err
	}
	defer func() {
		progress("taking the network down")
		err = errors.Join(err, n.Close())
	}()
	r.Mode = n.Mode()
	for _, p := range n.Peers() {
		r.Clients = append(r.Clients, report.Client{Name: p.Name, NAT: p.NAT})
	}
	progress("network up; running %s", o.Scenario)
	var problems []string
	switch o.Scenario {
	case "connectivity":
		r.Connectivity, problems, err = scenario.Connectivity(ctx, n, o.Connectivity)
	case "chat":
		r.Chat, problems, err = scenario.Chat(ctx, n, o.Chat)
	case "failover":
		r.Failover, problems, err = scenario.Failover(ctx, n, o.Failover)
	case "files":
		r.Files, problems, err = scenario.Files(ctx, n, o.Files)
	case "churn":
		r.Churn, problems, err = scenario.Churn(ctx, n, o.Churn)
	case "dht":
		dn, ok := n.(scenario.DHTNet)
		if !ok {
			err = errors.New("dht runs on loopback only: the daemons' API has no DHT call")
			break
		}
		r.DHT, problems, err = scenario.DHTLookups(ctx, dn, o.DHT)
	default:
		err = fmt.Errorf("unknown scenario %q", o.Scenario)
	}
	r.TookNS = time.Since(r.Started).Nanoseconds()
	r.Problems = append(r.Problems, problems...)
	return r, err
}
