package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/testnet/topology"
)

// labFlags are the NAT-lab topology flags of run and natlab up.
type labFlags struct {
	file  string
	nat   string
	delay time.Duration
	loss  string
}

func (f *labFlags) register(cmd *cobra.Command, natlabOnly bool) {
	fs := cmd.Flags()
	prefix := "natlab: "
	if natlabOnly {
		prefix = ""
	}
	fs.StringVar(&f.file, "topology", "", prefix+"topology `file` (supernodes, delay, loss, a client per line); overrides --nat, --delay, --loss and --supernodes")
	fs.StringVar(&f.nat, "nat", "cone=2,symmetric=1", prefix+"clients by kind, KIND=COUNT,… with kinds cone, symmetric, udp-blocked, upnp, public")
	fs.DurationVar(&f.delay, "delay", 20*time.Millisecond, prefix+"one-way delay of every public link")
	fs.StringVar(&f.loss, "loss", "0%", prefix+"share of packets each client's public link drops, in either direction, e.g. 1%")
}

// topology is the topology of the flags: the file's, or the clients of
// --nat with --delay and the given supernodes.
func (f labFlags) topology(supernodes int) (topology.Topology, error) {
	if f.file != "" {
		fh, err := os.Open(f.file)
		if err != nil {
			return topology.Topology{}, command.Usage(err)
		}
		defer fh.Close()
		t, err := topology.Parse(fh)
		if err != nil {
			return t, command.Usage(err)
		}
		return t, nil
	}
	clients, err := topology.FromCounts(f.nat, demoName)
	if err != nil {
		return topology.Topology{}, command.Usage(err)
	}
	loss, err := topology.ParseLoss(f.loss)
	if err != nil {
		return topology.Topology{}, command.Usage(fmt.Errorf("--loss: %w", err))
	}
	t := topology.Topology{Supernodes: supernodes, Delay: f.delay, Loss: loss, Clients: clients}
	if err := t.Validate(); err != nil {
		return t, command.Usage(err)
	}
	return t, nil
}
