package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parley-rendezvous", flag.ContinueOnError)
	dataDir := fs.String("data", "parley-rendezvous-data", "directory for the server key (identity.key) and the SQLite database (rendezvous.db)")
	local := fs.Bool("local", false, "use cheap password hashing and short timers (testing only)")
	var listen flags.Strings
	fs.Var(&listen, "listen", "listen multiaddr (repeatable; default TCP and QUIC on port 4001)")
	if err := flags.Parse(fs, args); err != nil {
		return err
	}
	if len(listen) == 0 {
		listen = flags.Strings{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	}
	logs.Setup("info")

	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	n, err := node.New(
		node.WithIdentity(filepath.Join(*dataDir, "identity.key")),
		node.WithListenAddrs(listen...),
		node.WithReachability(node.ReachabilityPublic),
	)
	if err != nil {
		return err
	}
	defer n.Close()
	store, err := sqlite.Open(filepath.Join(*dataDir, "rendezvous.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	cfg := rendezvous.DefaultConfig()
	if *local {
		cfg = rendezvous.LocalConfig()
	}
	srv := rendezvous.New(n, store, cfg)

	fmt.Printf("parley-rendezvous %s\n", n.ID())
	fmt.Println("clients and supernodes connect with --rendezvous set to one of:")
	for _, a := range n.Addrs() {
		fmt.Printf("  %s/p2p/%s\n", a, n.ID())
	}
	<-ctx.Done()
	fmt.Println("shutting down")
	return errors.Join(srv.Close(), n.Close())
}
