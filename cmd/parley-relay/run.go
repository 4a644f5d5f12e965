package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/admin"
	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/metrics"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
)

// run is the whole command, for main and tests.
func run(ctx context.Context, args []string) error {
	return command.Execute(ctx, newRoot(), args)
}

type options struct {
	identity, certKey, admin     string
	drain                        time.Duration
	limits                       relay.Limits
	noAuthLimits                 bool
	listen, announce, rendezvous []string
	bootstrap                    []string
	spliceListen                 string
}

func newRoot() *cobra.Command {
	o := options{limits: relay.DefaultLimits()}
	cmd := &cobra.Command{
		Use:   "parley-relay [flags]",
		Short: "A headless Parley supernode: a circuit relay announced to the rendezvous directory",
		Long: `parley-relay is a headless Parley supernode for a host with a public
address: a circuit relay (v2) that admits peers holding a valid membership
certificate, announced with its load to the rendezvous servers' supernode
directory (--rendezvous, repeatable: every replica) and to the DHT, where it
is a DHT server.

It learns the certificate key from the first rendezvous server that answers,
or takes it from --cert-key (as parley-rendezvous prints it). At start it
prints its peer ID, which the rendezvous server must trust
(parley-rendezvous --trusted-relay ID), and its addresses. On Ctrl-C or
SIGTERM it leaves the directory and gives its clients up to --drain to move.

Exit status: 0 after a clean shutdown, 1 on error, 2 on a usage error.`,
		Example: `  parley-relay --identity ./relay-data/identity.key --rendezvous /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...
  parley-relay --rendezvous /dns4/rdv.example.org/tcp/4001/p2p/12D3KooW... --announce /ip4/198.51.100.4/tcp/4002
  parley-relay --cert-key CAESIB... --listen /ip4/127.0.0.1/tcp/0 --admin ""`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), &o) },
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	d := &o.limits
	fs.StringArrayVar(&o.rendezvous, "rendezvous", nil, "rendezvous server `multiaddr` ending in /p2p/<peer ID> (repeatable: announce to every replica)")
	fs.StringVar(&o.certKey, "cert-key", "", "the rendezvous server's certificate `key`, as it prints it (default: asked from the first --rendezvous server)")
	fs.StringVar(&o.identity, "identity", "parley-relay-data/identity.key", "path of the supernode's key `file` (created on first run, mode 0600)")
	fs.StringArrayVar(&o.listen, "listen", nil, "listen `multiaddr` (repeatable; default TCP and QUIC on port 4002)")
	fs.StringArrayVar(&o.announce, "announce", nil, "public `multiaddr` to advertise instead of the listen addresses (repeatable)")
	fs.StringArrayVar(&o.bootstrap, "bootstrap", nil, "DHT peer `multiaddr` ending in /p2p/<peer ID> to join the DHT through, besides the rendezvous servers and the supernodes they list (repeatable)")
	fs.StringVar(&o.admin, "admin", "127.0.0.1:9465", "admin HTTP listener with /healthz and /metrics (empty: none)")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "on shutdown, how long clients get to move to other supernodes")
	fs.IntVar(&d.MaxReservations, "max-reservations", d.MaxReservations, "clients that may hold a relay slot at once (announced as capacity)")
	fs.IntVar(&d.ReservationsPerIP, "reservations-per-ip", d.ReservationsPerIP, "relay slots held from one IP address")
	fs.IntVar(&d.CircuitsPerPeer, "circuits-per-peer", d.CircuitsPerPeer, "relayed connections open at once to or from one peer")
	fs.DurationVar(&d.CircuitDuration, "circuit-duration", 0, "longest life of one relayed connection (0: unlimited)")
	fs.Int64Var(&d.CircuitData, "circuit-data", 0, "`bytes` one relayed connection may carry each way (0: unlimited)")
	fs.IntVar(&d.BufferSize, "buffer-size", d.BufferSize, "copy buffer per circuit direction, in `bytes`")
	fs.StringVar(&o.spliceListen, "splice-listen", "", "TCP `host:port` of the relay fast path, where admitted peers' connections are spliced (default: the first TCP listen IP, any port; \"off\": circuits only)")
	fs.BoolVar(&o.noAuthLimits, "no-auth-limits", false, "turn off the certificate presentation rate limits (load tests only)")
	return cmd
}

// serve runs the supernode until ctx ends.
func serve(ctx context.Context, o *options) error {
	var servers, dhtPeers []peer.AddrInfo
	for _, s := range o.rendezvous {
		ai, err := flags.AddrInfo("rendezvous", s)
		if err != nil {
			return command.Usage(err)
		}
		servers = append(servers, ai)
	}
	for _, s := range o.bootstrap {
		ai, err := flags.AddrInfo("bootstrap", s)
		if err != nil {
			return command.Usage(err)
		}
		dhtPeers = append(dhtPeers, ai)
	}
	if len(servers) == 0 && o.certKey == "" {
		return command.Usagef("give --rendezvous (where to announce, and the certificate key) or at least --cert-key")
	}
	listen := o.listen
	if len(listen) == 0 {
		listen = []string{"/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"}
	}
	logs.Setup("info")

	// A headless relay is always a supernode candidate: it is deployed on
	// a public host, so its reachability is declared, not discovered.
	opts := []node.Option{
		node.WithIdentity(o.identity),
		node.WithListenAddrs(listen...),
		node.WithReachability(node.ReachabilityPublic),
		node.WithServerLimits(),
	}
	if len(o.announce) > 0 {
		opts = append(opts, node.WithAnnounceAddrs(o.announce...))
	}
	n, err := node.New(opts...)
	if err != nil {
		return err
	}
	defer n.Close()
	var dirs []*client.Client
	for _, s := range servers {
		dirs = append(dirs, client.New(n, s))
	}
	verifier, err := certVerifier(ctx, o.certKey, dirs)
	if err != nil {
		return err
	}
	kad, err := relay.JoinDHT(n, append(servers, dhtPeers...), dirs)
	if err != nil {
		return err
	}
	defer kad.Close()
	cfg := relay.Config{
		Verifier:     verifier,
		Directories:  dirs,
		Dedicated:    true,
		Announcer:    kad,
		Limits:       o.limits,
		SpliceListen: o.spliceListen,
		Announce:     n.AnnouncedAddrs(),
	}
	if o.noAuthLimits {
		cfg.Limits.AuthPerPeer, cfg.Limits.AuthPerIP = ratelimit.NoLimit, ratelimit.NoLimit
	}
	var adm *admin.Server
	var sn *relay.Supernode
	if o.admin != "" {
		reg := admin.NewRegistry()
		cfg.Metrics = metrics.New(reg)
		health := func(context.Context) error {
			if ctx.Err() != nil {
				return errors.New("shutting down")
			}
			return nil
		}
		if adm, err = admin.Start(admin.Config{Addr: o.admin, Registry: reg, Health: health}); err != nil {
			return err
		}
	}
	if sn, err = relay.Start(n, cfg); err != nil {
		return err
	}
	fmt.Printf("parley-relay %s\n", n.ID())
	for _, s := range servers {
		fmt.Printf("  announcing to %s\n", s.ID)
	}
	for _, a := range n.Addrs() {
		fmt.Printf("  listening on %s/p2p/%s\n", a, n.ID())
	}
	if a := sn.SpliceAddr(); a != nil {
		fmt.Printf("  splice: %s\n", a)
	}
	if adm != nil {
		fmt.Printf("  admin: http://%s/healthz and /metrics\n", adm.Addr())
	}
	<-ctx.Done()
	fmt.Printf("shutting down: asking clients to move (up to %s)\n", o.drain)
	sctx, cancel := context.WithTimeout(context.Background(), o.drain)
	defer cancel()
	errs := []error{sn.Shutdown(sctx)}
	if adm != nil {
		errs = append(errs, adm.Close(sctx))
	}
	return errors.Join(append(errs, n.Close())...)
}

// certVerifier trusts the given certificate key, or the key the first
// reachable rendezvous server reports (over its authenticated channel).
func certVerifier(ctx context.Context, key string, dirs []*client.Client) (*cert.Verifier, error) {
	if key != "" {
		pub, err := cert.ParsePublicKey(key)
		if err != nil {
			return nil, command.Usagef("--cert-key: %w", err)
		}
		return cert.NewVerifier(pub)
	}
	for {
		var errs []error
		for _, d := range dirs {
			ictx, cancel := context.WithTimeout(ctx, 10*time.Second)
			info, err := d.ServerInfo(ictx)
			cancel()
			if err == nil {
				return cert.NewVerifier(info.CertKey)
			}
			errs = append(errs, err)
		}
		fmt.Printf("waiting for a rendezvous server to learn its certificate key: %v\n", errors.Join(errs...))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("certificate key: %w", ctx.Err())
		case <-time.After(5 * time.Second):
		}
	}
}
