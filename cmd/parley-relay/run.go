package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/internal/admin"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/metrics"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
)

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parley-relay", flag.ContinueOnError)
	identity := fs.String("identity", "parley-relay-data/identity.key", "path of the supernode's key file (created on first run, mode 0600)")
	certKey := fs.String("cert-key", "", "the rendezvous server's certificate key, as it prints it (default: asked from the first --rendezvous server)")
	adminAddr := fs.String("admin", "127.0.0.1:9465", "admin HTTP listener with /healthz and /metrics (empty: none)")
	drain := fs.Duration("drain", 10*time.Second, "on shutdown, how long clients get to move to other supernodes")
	d := relay.DefaultLimits()
	maxRsvp := fs.Int("max-reservations", d.MaxReservations, "clients that may hold a relay slot at once (announced as capacity)")
	perIP := fs.Int("reservations-per-ip", d.ReservationsPerIP, "relay slots held from one IP address")
	perPeer := fs.Int("circuits-per-peer", d.CircuitsPerPeer, "relayed connections open at once to or from one peer")
	circuitDur := fs.Duration("circuit-duration", 0, "longest life of one relayed connection (0: unlimited)")
	circuitData := fs.Int64("circuit-data", 0, "bytes one relayed connection may carry each way (0: unlimited)")
	bufSize := fs.Int("buffer-size", d.BufferSize, "copy buffer per circuit direction, in bytes")
	noLimits := fs.Bool("no-auth-limits", false, "turn off the certificate presentation rate limits (load tests only)")
	var listen, announce, rdvs, bootstrap flags.Strings
	fs.Var(&bootstrap, "bootstrap", "DHT peer multiaddr ending in /p2p/<peer ID> to join the DHT through, besides the rendezvous servers and the supernodes they list (repeatable)")
	fs.Var(&rdvs, "rendezvous", "rendezvous server multiaddr ending in /p2p/<peer ID> (repeatable: announce to every replica)")
	fs.Var(&listen, "listen", "listen multiaddr (repeatable; default TCP and QUIC on port 4002)")
	fs.Var(&announce, "announce", "public multiaddr to advertise instead of the listen addresses (repeatable)")
	if err := flags.Parse(fs, args); err != nil {
		return err
	}
	var servers, dhtPeers []peer.AddrInfo
	for _, s := range rdvs {
		ai, err := flags.AddrInfo("rendezvous", s)
		if err != nil {
			return err
		}
		servers = append(servers, ai)
	}
	for _, s := range bootstrap {
		ai, err := flags.AddrInfo("bootstrap", s)
		if err != nil {
			return err
		}
		dhtPeers = append(dhtPeers, ai)
	}
	if len(servers) == 0 && *certKey == "" {
		return errors.New("give --rendezvous (where to announce, and the certificate key) or at least --cert-key")
	}
	if len(listen) == 0 {
		listen = flags.Strings{"/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"}
	}
	logs.Setup("info")

	// A headless relay is always a supernode candidate: it is deployed on
	// a public host, so its reachability is declared, not discovered.
	opts := []node.Option{
		node.WithIdentity(*identity),
		node.WithListenAddrs(listen...),
		node.WithReachability(node.ReachabilityPublic),
		node.WithServerLimits(),
	}
	if len(announce) > 0 {
		opts = append(opts, node.WithAnnounceAddrs(announce...))
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
	verifier, err := certVerifier(ctx, *certKey, dirs)
	if err != nil {
		return err
	}
	kad, err := relay.JoinDHT(n, append(servers, dhtPeers...), dirs)
	if err != nil {
		return err
	}
	defer kad.Close()
	cfg := relay.Config{
		Verifier:    verifier,
		Directories: dirs,
		Dedicated:   true,
		Announcer:   kad,
		Limits: relay.Limits{
			MaxReservations:   *maxRsvp,
			ReservationsPerIP: *perIP,
			CircuitsPerPeer:   *perPeer,
			CircuitDuration:   *circuitDur,
			CircuitData:       *circuitData,
			BufferSize:        *bufSize,
		},
	}
	cfg.Limits.NoAuthLimits = *noLimits
	var adm *admin.Server
	var sn *relay.Supernode
	if *adminAddr != "" {
		reg := admin.NewRegistry()
		cfg.Metrics = metrics.New(reg)
		health := func(context.Context) error {
			if ctx.Err() != nil {
				return errors.New("shutting down")
			}
			return nil
		}
		if adm, err = admin.Start(admin.Config{Addr: *adminAddr, Registry: reg, Health: health}); err != nil {
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
	if adm != nil {
		fmt.Printf("  admin: http://%s/healthz and /metrics\n", adm.Addr())
	}
	<-ctx.Done()
	fmt.Printf("shutting down: asking clients to move (up to %s)\n", *drain)
	sctx, cancel := context.WithTimeout(context.Background(), *drain)
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
			return nil, fmt.Errorf("--cert-key: %w", err)
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
