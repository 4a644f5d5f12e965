package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/parleynet/parley/internal/command"
	"io"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
)

func (c *cli) daemonCmd() *cobra.Command {
	// The flags fill cmdline. The data directory remembers the ones given;
	// the ones not given take the values it remembers.
	var cmdline datadir.Settings
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the client (keeps running; the other commands talk to it)",
		Long: `Daemon runs this device's Parley client with its local API until Ctrl-C:
it logs in to the rendezvous server, keeps a relay slot at supernodes, joins
the DHT, and sends and receives messages. The other parley commands talk to
it through the API address it writes to the data directory.

The data directory remembers the flags given (settings.json), so after the
first start "parley daemon" alone starts the same client again; a flag
given later replaces the remembered value.

Started without a rendezvous server (none given and none remembered, as
on a fresh data directory, or an empty --rendezvous=), the daemon runs its
API and web UI without a network: open the UI (parley ui), whose first
screen asks for the rendezvous
server's address and suggests one (PARLEY_RENDEZVOUS if set, else the
rendezvous server of a local parley-testnet up, found through
PARLEY_TESTNET_DIR or in TMPDIR/parley-testnet-*). The daemon checks the
address (a multiaddr ending in /p2p/<peer ID> whose server answers),
remembers it as --rendezvous would be, and joins; later starts go
straight to it.

One daemon at a time uses a data directory; the daemon keeps it private
(0700, its files 0600).

It prints one line when it is up: "parley daemon: device <peer ID>, data in
<dir>, API on <addr>" (with --json, that as a JSON object with the fields
peer, data_dir and api, and setup: true while it waits for the network),
and logs to standard error (GOLOG_LOG_LEVEL sets the levels).`,
		Example: `  parley daemon --rendezvous /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…
  parley daemon
  parley --data /tmp/carol daemon          # a fresh directory: choose the network in parley ui
  parley --data /tmp/alice daemon --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW… --supernode never`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Check what the command line says; a missing --rendezvous is
			// runDaemon's to judge, with the saved settings.
			if _, err := relay.ParseMode(cmdline.Supernode); err != nil {
				return command.Usagef("--supernode: %v", err)
			}
			if cmdline.Rendezvous != "" {
				if _, err := flags.AddrInfo("rendezvous", cmdline.Rendezvous); err != nil {
					return command.Usage(err)
				}
			}
			for _, b := range cmdline.Bootstrap {
				if _, err := flags.AddrInfo("bootstrap", b); err != nil {
					return command.Usage(err)
				}
			}
			return runDaemon(cmd.Context(), c.out, c.dataDir, cmdline, cmd.Flags().Changed, c.json)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&cmdline.Rendezvous, "rendezvous", "", "rendezvous server multiaddr ending in /p2p/<peer ID> (the data directory remembers it, as every flag given; without it the first time, choose the network in the web UI)")
	fs.StringVar(&cmdline.API, "api", "127.0.0.1:0", "loopback address of the local API")
	fs.StringArrayVar(&cmdline.Listen, "listen", nil, "listen multiaddr (repeatable; default TCP and QUIC on all interfaces, any port)")
	fs.StringArrayVar(&cmdline.Bootstrap, "bootstrap", nil, "DHT peer multiaddr ending in /p2p/<peer ID> to join the DHT through, besides the rendezvous server and its supernodes (repeatable)")
	fs.BoolVar(&cmdline.Private, "private", false, "declare this device behind a NAT instead of waiting for AutoNAT (remembered; --private=false to undo)")
	fs.BoolVar(&cmdline.NATImitation, "nat-imitation", false, "refuse unsolicited inbound connections, as if behind a NAT (local testing; remembered; --nat-imitation=false to undo)")
	fs.Var(uploadLimitFlag{&cmdline.UploadLimit}, "upload-limit", "most bytes a second to send to those fetching your files, all together, such as 512KiB or 20MiB (remembered; 0 for no limit)")
	fs.StringVar(&cmdline.Supernode, "supernode", "auto", "serve other users as a supernode: auto (when AutoNAT confirms a public address, after --supernode-uptime, with spare CPU), always, or never")
	fs.DurationVar((*time.Duration)(&cmdline.SupernodeUptime), "supernode-uptime", 10*time.Minute, "with --supernode=auto, how long the device must be up first")
	fs.Float64Var(&cmdline.SupernodeMaxLoad, "supernode-max-load", 1.5, "with --supernode=auto, the machine's load average per core above which the device does not serve")
	c.jsonFlag(cmd).Flags().Lookup("json").Usage = "print the start-up line as JSON: peer, data_dir, api"
	return cmd
}

// daemonStarted is the start-up line of parley daemon --json.
type daemonStarted struct {
	Peer    string `json:"peer"`
	DataDir string `json:"data_dir"`
	API     string `json:"api"`
	// Setup is true when the daemon waits for the network to be chosen
	// in the web UI (no --rendezvous given or remembered).
	Setup bool `json:"setup,omitempty"`
}

// runDaemon runs the engine and its local API for dataDir until ctx ends.
// cmdline holds the flags' values; given says which flags were given.
func runDaemon(ctx context.Context, out io.Writer, dataDir string, cmdline datadir.Settings, given func(flag string) bool, jsonOut bool) (err error) {
	// The data directory comes first: its lock keeps a second daemon
	// out before it opens anything there.
	dir, err := datadir.Open(dataDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dir.Close()) }()
	saved := cmdline // a setting the file lacks keeps the flag's default
	if _, err := dir.LoadSettings(&saved); err != nil {
		return err
	}
	s := datadir.Merge(saved, cmdline, given)
	logs.Setup("info")
	if s.Rendezvous == "" {
		return runSetup(ctx, out, dir, dataDir, s, jsonOut)
	}
	cfg, err := engineConfig(dataDir, s)
	if err != nil {
		return err
	}

	e, err := app.Start(cfg)
	if err != nil {
		return err
	}
	srv, err := api.Listen(e, dataDir, s.API)
	if err != nil {
		return errors.Join(err, e.Close())
	}
	// Saved once they worked: a mistyped flag is not remembered.
	if err := dir.SaveSettings(s); err != nil {
		return errors.Join(err, srv.Close(), e.Close())
	}
	announce(out, jsonOut, daemonStarted{Peer: e.Node().ID().String(), DataDir: dataDir, API: srv.Addr()})
	waitShutdown(ctx, out, jsonOut)
	return errors.Join(srv.Close(), e.Close())
}

// announce prints the daemon's start-up line: JSON with --json, else a
// line for people.
func announce(out io.Writer, jsonOut bool, d daemonStarted) {
	if jsonOut {
		_ = json.NewEncoder(out).Encode(d)
		return
	}
	fmt.Fprintf(out, "parley daemon: device %s, data in %s, API on %s\n", d.Peer, d.DataDir, d.API)
}

// waitShutdown waits until ctx ends (SIGINT, SIGTERM), and says so.
func waitShutdown(ctx context.Context, out io.Writer, jsonOut bool) {
	<-ctx.Done()
	if !jsonOut {
		fmt.Fprintln(out, "shutting down")
	}
}

// runSetup runs the API and the web UI without an engine until the
// network is chosen there (POST /api/network, the UI's first-run screen),
// then the engine on it, until ctx ends.
func runSetup(ctx context.Context, out io.Writer, dir *datadir.Dir, dataDir string, s datadir.Settings, jsonOut bool) error {
	cfg, err := settingsConfig(dataDir, s)
	if err != nil {
		return err // the other settings are checked before anything starts
	}
	key, err := node.LoadOrCreateIdentity(filepath.Join(dataDir, app.IdentityFile))
	if err != nil {
		return err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("device identity: %w", err)
	}
	setup := &daemonSetup{cfg: cfg, dir: dir, settings: s, peer: id}
	srv, err := api.ListenSetup(setup, dataDir, s.API)
	if err != nil {
		return err
	}
	announce(out, jsonOut, daemonStarted{Peer: id.String(), DataDir: dataDir, API: srv.Addr(), Setup: true})
	if !jsonOut {
		fmt.Fprintln(out, "no network chosen yet: choose the rendezvous server in the web UI (parley ui), or start again with --rendezvous")
	}
	waitShutdown(ctx, out, jsonOut)
	return errors.Join(srv.Close(), setup.close())
}

// engineConfig checks the daemon's settings and turns them into the
// engine's configuration.
func engineConfig(dataDir string, s datadir.Settings) (app.Config, error) {
	cfg, err := settingsConfig(dataDir, s)
	if err != nil {
		return app.Config{}, err
	}
	cfg.Rendezvous, err = flags.AddrInfo("rendezvous", s.Rendezvous)
	return cfg, err
}

// settingsConfig is the engine's configuration from every setting but
// the rendezvous server's.
func settingsConfig(dataDir string, s datadir.Settings) (app.Config, error) {
	mode, err := relay.ParseMode(s.Supernode)
	if err != nil {
		return app.Config{}, fmt.Errorf("--supernode: %w", err)
	}
	minUptime := time.Duration(s.SupernodeUptime)
	cfg := app.Config{DataDir: dataDir, NATImitation: s.NATImitation, PortMapping: !s.NATImitation, Supernode: mode, SupernodeMinUptime: minUptime, SupernodeMaxLoad: s.SupernodeMaxLoad}
	if minUptime == 0 {
		cfg.SupernodeMinUptime = -1 // the engine's zero means its default
	}
	if len(s.Listen) > 0 {
		cfg.ListenAddrs = s.Listen
	}
	for _, b := range s.Bootstrap {
		ai, err := flags.AddrInfo("bootstrap", b)
		if err != nil {
			return app.Config{}, err
		}
		cfg.DHTBootstrap = append(cfg.DHTBootstrap, ai)
	}
	if s.Private {
		cfg.Reachability = node.ReachabilityPrivate
	}
	if s.UploadLimit != "" {
		if cfg.UploadLimit, err = parseUploadLimit(s.UploadLimit); err != nil {
			return app.Config{}, fmt.Errorf("--upload-limit: %w", err)
		}
	}
	return cfg, nil
}
