package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
)

// daemonOptions are the flags of parley daemon.
type daemonOptions struct {
	Rendezvous       string
	API              string
	Listen           []string
	Bootstrap        []string
	Private          bool
	NATImitation     bool
	Supernode        string
	SupernodeUptime  time.Duration
	SupernodeMaxLoad float64
	JSON             bool // print the start-up line as JSON
}

func (c *cli) daemonCmd() *cobra.Command {
	var o daemonOptions
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the client (keeps running; the other commands talk to it)",
		Long: `Daemon runs this device's Parley client with its local API until Ctrl-C:
it logs in to the rendezvous server, keeps a relay slot at supernodes, joins
the DHT, and sends and receives messages. The other parley commands talk to
it through the API address it writes to the data directory.

It prints one line when it is up: "parley daemon: device <peer ID>, data in
<dir>, API on <addr>" (with --json, that as a JSON object with the fields
peer, data_dir and api), and logs to standard error (GOLOG_LOG_LEVEL sets
the levels).`,
		Example: `  parley daemon --rendezvous /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…
  parley --data /tmp/alice daemon --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW… --supernode never`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check what the command line says; a missing --rendezvous is
			// runDaemon's to judge.
			if _, err := relay.ParseMode(o.Supernode); err != nil {
				return usagef(cmd, "--supernode: %v", err)
			}
			if o.Rendezvous != "" {
				if _, err := flags.AddrInfo("rendezvous", o.Rendezvous); err != nil {
					return usageError(cmd, err)
				}
			}
			for _, b := range o.Bootstrap {
				if _, err := flags.AddrInfo("bootstrap", b); err != nil {
					return usageError(cmd, err)
				}
			}
			o.JSON = c.json
			return runDaemon(cmd.Context(), c.out, c.dataDir, o)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.Rendezvous, "rendezvous", "", "rendezvous server multiaddr ending in /p2p/<peer ID> (required)")
	fs.StringVar(&o.API, "api", "127.0.0.1:0", "loopback address of the local API")
	fs.StringArrayVar(&o.Listen, "listen", nil, "listen multiaddr (repeatable; default TCP and QUIC on all interfaces, any port)")
	fs.StringArrayVar(&o.Bootstrap, "bootstrap", nil, "DHT peer multiaddr ending in /p2p/<peer ID> to join the DHT through, besides the rendezvous server and its supernodes (repeatable)")
	fs.BoolVar(&o.Private, "private", false, "declare this device behind a NAT instead of waiting for AutoNAT")
	fs.BoolVar(&o.NATImitation, "nat-imitation", false, "refuse unsolicited inbound connections, as if behind a NAT (local testing)")
	fs.StringVar(&o.Supernode, "supernode", "auto", "serve other users as a supernode: auto (when AutoNAT confirms a public address, after --supernode-uptime, with spare CPU), always, or never")
	fs.DurationVar(&o.SupernodeUptime, "supernode-uptime", 10*time.Minute, "with --supernode=auto, how long the device must be up first")
	fs.Float64Var(&o.SupernodeMaxLoad, "supernode-max-load", 1.5, "with --supernode=auto, the machine's load average per core above which the device does not serve")
	c.jsonFlag(cmd).Flags().Lookup("json").Usage = "print the start-up line as JSON: peer, data_dir, api"
	return cmd
}

// daemonStarted is the start-up line of parley daemon --json.
type daemonStarted struct {
	Peer    string `json:"peer"`
	DataDir string `json:"data_dir"`
	API     string `json:"api"`
}

// runDaemon runs the engine and its local API for dataDir until ctx ends.
func runDaemon(ctx context.Context, out io.Writer, dataDir string, o daemonOptions) error {
	server, err := flags.AddrInfo("rendezvous", o.Rendezvous)
	if err != nil {
		return err
	}
	logs.Setup("info")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	mode, err := relay.ParseMode(o.Supernode)
	if err != nil {
		return fmt.Errorf("--supernode: %w", err)
	}
	cfg := app.Config{DataDir: dataDir, Rendezvous: server, NATImitation: o.NATImitation, Supernode: mode, SupernodeMinUptime: o.SupernodeUptime, SupernodeMaxLoad: o.SupernodeMaxLoad}
	if o.SupernodeUptime == 0 {
		cfg.SupernodeMinUptime = -1 // the engine's zero means its default
	}
	if len(o.Listen) > 0 {
		cfg.ListenAddrs = o.Listen
	}
	for _, b := range o.Bootstrap {
		ai, err := flags.AddrInfo("bootstrap", b)
		if err != nil {
			return err
		}
		cfg.DHTBootstrap = append(cfg.DHTBootstrap, ai)
	}
	if o.Private {
		cfg.Reachability = node.ReachabilityPrivate
	}
	e, err := app.Start(cfg)
	if err != nil {
		return err
	}
	srv, err := api.Listen(e, dataDir, o.API)
	if err != nil {
		e.Close()
		return err
	}
	if o.JSON {
		json.NewEncoder(out).Encode(daemonStarted{Peer: e.Node().ID().String(), DataDir: dataDir, API: srv.Addr()})
	} else {
		fmt.Fprintf(out, "parley daemon: device %s, data in %s, API on %s\n", e.Node().ID(), dataDir, srv.Addr())
	}
	<-ctx.Done()
	if !o.JSON {
		fmt.Fprintln(out, "shutting down")
	}
	return errors.Join(srv.Close(), e.Close())
}
