package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/admin"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/metrics"
	"github.com/parleynet/parley/rendezvous/store"
)

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parley-rendezvous", flag.ContinueOnError)
	dataDir := fs.String("data", "parley-rendezvous-data", "directory for the server's keys (identity.key, cert.key) and the default SQLite database")
	db := fs.String("db", "", "database: a SQLite file path, or a postgres://user@host/db URL to share state with other replicas (default: rendezvous.db in --data)")
	certKey := fs.String("cert-key", "", "membership certificate key, shared by all replicas (default: cert.key in --data, created if missing)")
	adminAddr := fs.String("admin", "127.0.0.1:9464", "admin HTTP listener with /healthz and /metrics (empty: none)")
	replica := fs.String("replica", "", "name of this replica (default: random)")
	shutdown := fs.Duration("shutdown-timeout", 10*time.Second, "how long a graceful shutdown waits for clients to move")
	local := fs.Bool("local", false, "use cheap password hashing and short timers (testing only)")
	noLimits := fs.Bool("no-limits", false, "turn off the per-account and per-source rate limits (load tests only)")
	var listen, trusted flags.Strings
	fs.Var(&listen, "listen", "listen multiaddr (repeatable; default TCP and QUIC on port 4001)")
	fs.Var(&trusted, "trusted-relay", "peer ID of a parley-relay allowed to announce itself as a supernode (repeatable); "+
		"enrolled devices may always volunteer")
	open := fs.Bool("open-directory", false, "let any peer announce itself as a supernode, believed as if trusted (local networks only; --local implies it)")
	if err := flags.Parse(fs, args); err != nil {
		return err
	}
	if len(listen) == 0 {
		listen = flags.Strings{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	}
	if *db == "" {
		*db = filepath.Join(*dataDir, "rendezvous.db")
	}
	if *certKey == "" {
		*certKey = filepath.Join(*dataDir, "cert.key")
	}
	logs.Setup("info")

	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	key, err := node.LoadOrCreateIdentity(*certKey)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}
	n, err := node.New(
		node.WithIdentity(filepath.Join(*dataDir, "identity.key")),
		node.WithListenAddrs(listen...),
		node.WithReachability(node.ReachabilityPublic),
		node.WithServerLimits(),
	)
	if err != nil {
		return err
	}
	defer n.Close()
	// The server is a DHT seed: it is where every node first finds the
	// DHT, so a network of one server and one supernode has two DHT
	// servers. Nobody needs it to keep the DHT working once joined.
	kad, err := dht.New(n, dht.WithMode(dht.ModeServer), dht.WithRoutingTableService(nil))
	if err != nil {
		return fmt.Errorf("start the DHT: %w", err)
	}
	defer kad.Close()
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	defer st.Close()

	cfg := rendezvous.DefaultConfig()
	if *local {
		cfg = rendezvous.LocalConfig(nil)
	}
	cfg.CertKey = key
	cfg.Limits.Disabled = *noLimits
	cfg.Replica = *replica
	for _, s := range trusted {
		id, err := peer.Decode(s)
		if err != nil {
			return fmt.Errorf("--trusted-relay %q: %w", s, err)
		}
		cfg.TrustedSupernodes = append(cfg.TrustedSupernodes, id)
	}
	cfg.OpenDirectory = cfg.OpenDirectory || *open
	if cfg.OpenDirectory {
		fmt.Println("supernode directory is open: any peer may announce itself as a supernode (for local networks only)")
	}
	var adm *admin.Server
	if *adminAddr != "" {
		reg := admin.NewRegistry()
		cfg.Metrics = metrics.New(reg)
		if adm, err = admin.Start(admin.Config{Addr: *adminAddr, Registry: reg, Health: st.Ping}); err != nil {
			return err
		}
	}
	srv, err := rendezvous.New(ctx, n, st, cfg)
	if err != nil {
		return err
	}
	pub, err := cert.EncodePublicKey(srv.CertPublicKey())
	if err != nil {
		return err
	}
	fmt.Printf("parley-rendezvous %s (replica %s)\n", n.ID(), srv.Replica())
	fmt.Printf("certificate key: %s\n", pub)
	if adm != nil {
		fmt.Printf("admin: http://%s/healthz and /metrics\n", adm.Addr())
	}
	fmt.Println("clients and supernodes connect with --rendezvous set to one of:")
	for _, a := range n.Addrs() {
		fmt.Printf("  %s/p2p/%s\n", a, n.ID())
	}
	<-ctx.Done()
	fmt.Println("shutting down: telling clients to reconnect")
	sctx, cancel := context.WithTimeout(context.Background(), *shutdown)
	defer cancel()
	errs := []error{srv.Shutdown(sctx)}
	if adm != nil {
		errs = append(errs, adm.Close(sctx))
	}
	return errors.Join(append(errs, n.Close())...)
}
