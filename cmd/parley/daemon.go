package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
)

func (c *cli) daemon(ctx context.Context, args []string) error {
	var rdv, apiAddr, supernode string
	var minUptime time.Duration
	var maxLoad float64
	var private, natImitation bool
	var listen, bootstrap flags.Strings
	_, err := c.flags("daemon", args, 0, "--rendezvous ADDR [flags]", func(fs *flag.FlagSet) {
		fs.StringVar(&rdv, "rendezvous", "", "rendezvous server multiaddr ending in /p2p/<peer ID> (required)")
		fs.StringVar(&apiAddr, "api", "127.0.0.1:0", "loopback address of the local API")
		fs.Var(&listen, "listen", "listen multiaddr (repeatable; default TCP and QUIC on all interfaces, any port)")
		fs.Var(&bootstrap, "bootstrap", "DHT peer multiaddr ending in /p2p/<peer ID> to join the DHT through, besides the rendezvous server and its supernodes (repeatable)")
		fs.BoolVar(&private, "private", false, "declare this device behind a NAT instead of waiting for AutoNAT")
		fs.BoolVar(&natImitation, "nat-imitation", false, "refuse unsolicited inbound connections, as if behind a NAT (local testing)")
		fs.StringVar(&supernode, "supernode", "auto", "serve other users as a supernode: auto (when AutoNAT confirms a public address, after --supernode-uptime, with spare CPU), always, or never")
		fs.DurationVar(&minUptime, "supernode-uptime", 10*time.Minute, "with --supernode=auto, how long the device must be up first")
		fs.Float64Var(&maxLoad, "supernode-max-load", 1.5, "with --supernode=auto, the machine's load average per core above which the device does not serve")
	})
	if err != nil {
		return err
	}
	server, err := flags.AddrInfo("rendezvous", rdv)
	if err != nil {
		return err
	}
	logs.Setup("info")
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	mode, err := relay.ParseMode(supernode)
	if err != nil {
		return fmt.Errorf("--supernode: %w", err)
	}
	cfg := app.Config{DataDir: c.dataDir, Rendezvous: server, NATImitation: natImitation, Supernode: mode, SupernodeMinUptime: minUptime, SupernodeMaxLoad: maxLoad}
	if minUptime == 0 {
		cfg.SupernodeMinUptime = -1 // the engine's zero means its default
	}
	if len(listen) > 0 {
		cfg.ListenAddrs = listen
	}
	for _, b := range bootstrap {
		ai, err := flags.AddrInfo("bootstrap", b)
		if err != nil {
			return err
		}
		cfg.DHTBootstrap = append(cfg.DHTBootstrap, ai)
	}
	if private {
		cfg.Reachability = node.ReachabilityPrivate
	}
	e, err := app.Start(cfg)
	if err != nil {
		return err
	}
	srv, err := api.Listen(e, c.dataDir, apiAddr)
	if err != nil {
		e.Close()
		return err
	}
	fmt.Fprintf(c.out, "parley daemon: device %s, data in %s, API on %s\n", e.Node().ID(), c.dataDir, srv.Addr())
	<-ctx.Done()
	fmt.Fprintln(c.out, "shutting down")
	return errors.Join(srv.Close(), e.Close())
}
