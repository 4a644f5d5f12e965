package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous/client"
)

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parley-relay", flag.ContinueOnError)
	identity := fs.String("identity", "parley-relay-data/identity.key", "path of the supernode's key file (created on first run, mode 0600)")
	rdv := fs.String("rendezvous", "", "rendezvous server multiaddr, ending in /p2p/<peer ID> (required)")
	var listen flags.Strings
	fs.Var(&listen, "listen", "listen multiaddr (repeatable; default TCP and QUIC on port 4002)")
	if err := flags.Parse(fs, args); err != nil {
		return err
	}
	server, err := flags.AddrInfo("rendezvous", *rdv)
	if err != nil {
		return err
	}
	if len(listen) == 0 {
		listen = flags.Strings{"/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"}
	}
	logs.Setup("info")

	// A headless relay is always a supernode candidate: it is deployed on
	// a public host, so its reachability is declared, not discovered.
	n, err := node.New(
		node.WithIdentity(*identity),
		node.WithListenAddrs(listen...),
		node.WithReachability(node.ReachabilityPublic),
	)
	if err != nil {
		return err
	}
	defer n.Close()
	sn, err := relay.Start(n, client.New(n, server), relay.Config{})
	if err != nil {
		return err
	}
	fmt.Printf("parley-relay %s, announcing to %s\n", n.ID(), server.ID)
	for _, a := range n.Addrs() {
		fmt.Printf("  listening on %s/p2p/%s\n", a, n.ID())
	}
	<-ctx.Done()
	fmt.Println("shutting down")
	return errors.Join(sn.Close(), n.Close())
}
