package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
)

func (c *cli) daemon(ctx context.Context, args []string) (err error) {
	// The flags fill cmdline. The data directory remembers the ones given;
	// the ones not given take the values it remembers.
	var cmdline datadir.Settings
	var fset *flag.FlagSet
	_, err = c.flags("daemon", args, 0, "[--rendezvous ADDR] [flags]", func(fs *flag.FlagSet) {
		fset = fs
		fs.StringVar(&cmdline.Rendezvous, "rendezvous", "", "rendezvous server multiaddr ending in /p2p/<peer ID> (required the first time; the data directory remembers it, as every flag given)")
		fs.StringVar(&cmdline.API, "api", "127.0.0.1:0", "loopback address of the local API")
		fs.Var((*flags.Strings)(&cmdline.Listen), "listen", "listen multiaddr (repeatable; default TCP and QUIC on all interfaces, any port)")
		fs.Var((*flags.Strings)(&cmdline.Bootstrap), "bootstrap", "DHT peer multiaddr ending in /p2p/<peer ID> to join the DHT through, besides the rendezvous server and its supernodes (repeatable)")
		fs.BoolVar(&cmdline.Private, "private", false, "declare this device behind a NAT instead of waiting for AutoNAT (remembered; --private=false to undo)")
		fs.BoolVar(&cmdline.NATImitation, "nat-imitation", false, "refuse unsolicited inbound connections, as if behind a NAT (local testing; remembered; --nat-imitation=false to undo)")
		fs.StringVar(&cmdline.Supernode, "supernode", "auto", "serve other users as a supernode: auto (when AutoNAT confirms a public address, after --supernode-uptime, with spare CPU), always, or never")
		fs.DurationVar((*time.Duration)(&cmdline.SupernodeUptime), "supernode-uptime", 10*time.Minute, "with --supernode=auto, how long the device must be up first")
		fs.Float64Var(&cmdline.SupernodeMaxLoad, "supernode-max-load", 1.5, "with --supernode=auto, the machine's load average per core above which the device does not serve")
	})
	if err != nil {
		return err
	}
	given := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { given[f.Name] = true })

	// The data directory comes first: its lock keeps a second daemon
	// out before it opens anything there.
	dir, err := datadir.Open(c.dataDir)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, dir.Close()) }()
	saved := cmdline // a setting the file lacks keeps the flag's default
	if _, err := dir.LoadSettings(&saved); err != nil {
		return err
	}
	s := datadir.Merge(saved, cmdline, func(flag string) bool { return given[flag] })
	cfg, err := engineConfig(c.dataDir, s)
	if err != nil {
		return err
	}

	logs.Setup("info")
	e, err := app.Start(cfg)
	if err != nil {
		return err
	}
	srv, err := api.Listen(e, c.dataDir, s.API)
	if err != nil {
		e.Close()
		return err
	}
	// Saved once they worked: a mistyped flag is not remembered.
	if err := dir.SaveSettings(s); err != nil {
		return errors.Join(err, srv.Close(), e.Close())
	}
	fmt.Fprintf(c.out, "parley daemon: device %s, data in %s, API on %s\n", e.Node().ID(), c.dataDir, srv.Addr())
	<-ctx.Done()
	fmt.Fprintln(c.out, "shutting down")
	return errors.Join(srv.Close(), e.Close())
}

// engineConfig checks the daemon's settings and turns them into the
// engine's configuration.
func engineConfig(dataDir string, s datadir.Settings) (app.Config, error) {
	if s.Rendezvous == "" {
		return app.Config{}, fmt.Errorf("--rendezvous is required the first time a data directory is used (it is remembered in %s): "+
			"the server's multiaddr ending in /p2p/<peer ID>, as printed by parley-rendezvous", dataDir)
	}
	server, err := flags.AddrInfo("rendezvous", s.Rendezvous)
	if err != nil {
		return app.Config{}, err
	}
	mode, err := relay.ParseMode(s.Supernode)
	if err != nil {
		return app.Config{}, fmt.Errorf("--supernode: %w", err)
	}
	minUptime := time.Duration(s.SupernodeUptime)
	cfg := app.Config{DataDir: dataDir, Rendezvous: server, NATImitation: s.NATImitation, Supernode: mode, SupernodeMinUptime: minUptime, SupernodeMaxLoad: s.SupernodeMaxLoad}
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
	return cfg, nil
}
