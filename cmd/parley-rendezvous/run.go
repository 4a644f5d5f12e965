package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/admin"
	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/metrics"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store"
)

// run is the whole command, for main and tests.
func run(ctx context.Context, args []string) error {
	return command.Execute(ctx, newRoot(), args)
}

type options struct {
	dataDir, db, certKey, admin, replica string
	shutdown                             time.Duration
	local, noLimits, open                bool
	listen, trusted                      []string
}

func newRoot() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "parley-rendezvous [flags]",
		Short: "The Parley rendezvous server: accounts, devices, contacts, presence and the supernode directory",
		Long: `parley-rendezvous is the Parley rendezvous server: accounts, devices,
contacts, presence and the supernode directory. It is also a DHT seed.

At start it prints its peer ID, its certificate key and the multiaddrs that
clients and supernodes give as --rendezvous; it runs until Ctrl-C or
SIGTERM, then tells its clients to reconnect (to it or another replica) and
waits up to --shutdown-timeout for them to leave.

Data lives in --data (mode 0700): identity.key, cert.key and, unless --db
says otherwise, the SQLite database rendezvous.db. Several replicas may
share one PostgreSQL database (--db postgres://...), each with its own
--data and --replica and the same --cert-key.

Exit status: 0 after a clean shutdown, 1 on error, 2 on a usage error.`,
		Example: `  parley-rendezvous --data ./rdv-data --listen /ip4/0.0.0.0/tcp/4001 --listen /ip4/0.0.0.0/udp/4001/quic-v1
  parley-rendezvous --data ./rdv-a --replica a --db postgres://parley@db/parley --cert-key ./shared/cert.key
  parley-rendezvous --local --data /tmp/rdv --listen /ip4/127.0.0.1/tcp/0 --admin ""`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.StringVar(&o.dataDir, "data", "parley-rendezvous-data", "`directory` for the server's keys (identity.key, cert.key) and the default SQLite database")
	fs.StringVar(&o.db, "db", "", "`database`: a SQLite file path, or a postgres://user@host/db URL to share state with other replicas (default: rendezvous.db in --data)")
	fs.StringVar(&o.certKey, "cert-key", "", "membership certificate key `file`, shared by all replicas (default: cert.key in --data, created if missing)")
	fs.StringArrayVar(&o.listen, "listen", nil, "listen `multiaddr` (repeatable; default TCP and QUIC on port 4001)")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9464", "admin HTTP listener with /healthz and /metrics (empty: none)")
	fs.StringVar(&o.replica, "replica", "", "`name` of this replica (default: random)")
	fs.DurationVar(&o.shutdown, "shutdown-timeout", 10*time.Second, "how long a graceful shutdown waits for clients to move")
	fs.StringArrayVar(&o.trusted, "trusted-relay", nil, "`peer ID` of a parley-relay allowed to announce itself as a supernode (repeatable); "+
		"enrolled devices may always volunteer")
	fs.BoolVar(&o.open, "open-directory", false, "let any peer announce itself as a supernode, believed as if trusted (local networks only; --local implies it)")
	fs.BoolVar(&o.local, "local", false, "use cheap password hashing and short timers (testing only)")
	fs.BoolVar(&o.noLimits, "no-limits", false, "turn off the per-account and per-source rate limits (load tests only)")
	return cmd
}

// serve runs the server until ctx ends.
func serve(ctx context.Context, o *options) error {
	listen := o.listen
	if len(listen) == 0 {
		listen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	}
	if o.db == "" {
		o.db = filepath.Join(o.dataDir, "rendezvous.db")
	}
	if o.certKey == "" {
		o.certKey = filepath.Join(o.dataDir, "cert.key")
	}
	logs.Setup("info")

	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	key, err := node.LoadOrCreateIdentity(o.certKey)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}
	n, err := node.New(
		node.WithIdentity(filepath.Join(o.dataDir, "identity.key")),
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
	st, err := store.Open(ctx, o.db)
	if err != nil {
		return err
	}
	defer st.Close()

	cfg := server.DefaultConfig()
	if o.local {
		cfg = server.LocalConfig(nil)
	}
	cfg.CertKey = key
	if o.noLimits {
		cfg.Limits = server.NoLimits()
	}
	cfg.Replica = o.replica
	for _, s := range o.trusted {
		id, err := peer.Decode(s)
		if err != nil {
			return command.Usagef("--trusted-relay %q: %w", s, err)
		}
		cfg.TrustedSupernodes = append(cfg.TrustedSupernodes, id)
	}
	cfg.OpenDirectory = cfg.OpenDirectory || o.open
	if cfg.OpenDirectory {
		fmt.Println("supernode directory is open: any peer may announce itself as a supernode (for local networks only)")
	}
	var adm *admin.Server
	if o.admin != "" {
		reg := admin.NewRegistry()
		cfg.Metrics = metrics.New(reg)
		if adm, err = admin.Start(admin.Config{Addr: o.admin, Registry: reg, Health: st.Ping}); err != nil {
			return err
		}
	}
	srv, err := server.New(ctx, n, st, cfg)
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
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdown)
	defer cancel()
	errs := []error{srv.Shutdown(sctx)}
	if adm != nil {
		errs = append(errs, adm.Close(sctx))
	}
	return errors.Join(append(errs, n.Close())...)
}
