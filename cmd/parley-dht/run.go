package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/client"
)

// run is the whole command, for main.
func run(ctx context.Context, args []string) error {
	logs.Setup("error")
	return runCLI(ctx, args, os.Stdout)
}

// runCLI is run with its output given, for tests.
func runCLI(ctx context.Context, args []string, out io.Writer) error {
	root := newRoot()
	root.SetOut(out)
	return command.Execute(ctx, root, args)
}

type cli struct {
	out io.Writer // the command's standard output
	cf  common
}

// common are the flags every command takes.
type common struct {
	bootstrap  []string
	rendezvous string
	timeout    time.Duration
	json       bool
	trace      bool
	listen     []string
	keyFile    string // only for commands that register --key
}

func newRoot() *cobra.Command {
	c := &cli{}
	root := &cobra.Command{
		Use:   "parley-dht",
		Short: "Look things up in Parley's DHT",
		Long: `parley-dht looks things up in Parley's DHT, joining it as a short-lived
client with a throwaway identity, through --bootstrap peers or through a
rendezvous server and the supernodes of its directory (--rendezvous). It
runs one command and leaves.

PEER and NODE are a peer ID, found through the DHT, or a multiaddr ending
in /p2p/<peer ID>. Flags go anywhere on the line.

--trace shows each lookup as it happens: every peer queried, its hop, its
common prefix length (cpl) and XOR distance to the target, its round-trip
time and what it returned, then the hops and total time (with --json: the
same as a "traces" list). --json prints one document on standard output.

exit status:
  0  found (or done: put, provide, routing-table, ping)
  1  error (no reachable bootstrap peer, timeout, refused, ...)
  2  usage: unknown command or flag, wrong arguments, bad flag value
  3  not found: the lookup completed without finding it

Logging goes to standard error; set GOLOG_LOG_LEVEL, e.g. "parley/dht=debug".`,
		Example: `  parley-dht find-peer --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --trace 12D3KooWbob...
  parley-dht supernodes --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --json
  parley-dht providers bafkrei... --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW...`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			c.out = cmd.OutOrStdout()
			if c.cf.timeout <= 0 {
				return command.Usagef("--timeout must be positive")
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.SortFlags = false
	pf.StringArrayVar(&c.cf.bootstrap, "bootstrap", nil, "a DHT node to join through: a `multiaddr` ending in /p2p/<peer ID> (repeatable)")
	pf.StringVar(&c.cf.rendezvous, "rendezvous", "", "join through this rendezvous server and the supernodes of its directory (`multiaddr` ending in /p2p/<peer ID>)")
	pf.DurationVar(&c.cf.timeout, "timeout", 30*time.Second, "give up after this long")
	pf.BoolVar(&c.cf.json, "json", false, "print JSON (one document on standard output)")
	pf.BoolVar(&c.cf.trace, "trace", false, "show each lookup as it happens")
	pf.StringArrayVar(&c.cf.listen, "listen", nil, "listen `multiaddr` of this client (repeatable; default any, random port)")
	root.AddCommand(c.findPeerCmd(), c.providersCmd(), c.getCmd(), c.putCmd(), c.provideCmd(), c.supernodesCmd(), c.routingTableCmd(), c.pingCmd())
	return root
}

// keyFlag registers --key on cmd with the given meaning.
func (c *cli) keyFlag(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&c.cf.keyFile, "key", "", usage)
}

// session is this CLI's node in the DHT.
type session struct {
	cli    *cli
	cf     *common
	node   *node.Node
	dht    *dht.DHT
	traces []namedTrace
}

type namedTrace struct {
	lookup string
	trace  *dht.Trace
}

// loadKey reads an existing key file (never creates one).
func loadKey(path string) (crypto.PrivKey, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("--key: %w", err)
	}
	return node.LoadOrCreateIdentity(path)
}

// start joins the DHT as a client. key is the identity (nil: a throwaway
// one); with bootstrap it waits until the routing table holds a server.
func (c *cli) start(ctx context.Context, cf *common, key crypto.PrivKey, bootstrap bool) (*session, error) {
	if key == nil {
		var err error
		if key, _, err = crypto.GenerateEd25519Key(nil); err != nil {
			return nil, fmt.Errorf("generate throwaway identity: %w", err)
		}
	}
	listen := cf.listen
	if len(listen) == 0 {
		listen = node.DefaultListenAddrs
	}
	n, err := node.New(node.WithKey(key), node.WithListenAddrs(listen...), node.WithReachability(node.ReachabilityPrivate))
	if err != nil {
		return nil, err
	}
	opts := []dht.Option{dht.WithMode(dht.ModeClient)}
	var sources int
	for _, s := range cf.bootstrap {
		ai, err := flags.AddrInfo("bootstrap", s)
		if err != nil {
			n.Close()
			return nil, command.Usage(err)
		}
		opts = append(opts, dht.WithBootstrapPeers(ai))
		sources++
	}
	if cf.rendezvous != "" {
		server, err := flags.AddrInfo("rendezvous", cf.rendezvous)
		if err != nil {
			n.Close()
			return nil, command.Usage(err)
		}
		rc := client.New(n, server)
		opts = append(opts, dht.WithBootstrapPeers(server), dht.WithBootstrapFunc(func(ctx context.Context) ([]peer.AddrInfo, error) {
			return rc.Supernodes(ctx, 0, nil)
		}))
		sources++
	}
	d, err := dht.New(n, opts...)
	if err != nil {
		n.Close()
		return nil, err
	}
	s := &session{cli: c, cf: cf, node: n, dht: d}
	if bootstrap {
		if sources == 0 {
			s.close()
			return nil, command.Usagef("give --bootstrap MULTIADDR or --rendezvous MULTIADDR to join the DHT")
		}
		if err := d.Bootstrap(ctx); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *session) close() {
	s.dht.Close()
	s.node.Close()
}

// traced runs one lookup under a trace, printing it as it happens with
// --trace (without --json).
func (s *session) traced(ctx context.Context, lookup string, f func(context.Context) error) (*dht.Trace, error) {
	live := s.cf.trace && !s.cf.json
	var onEvent func(dht.TraceEvent)
	if live {
		fmt.Fprintf(s.cli.out, "lookup: %s\n", lookup)
		onEvent = func(ev dht.TraceEvent) { printEvent(s.cli.out, ev) }
	}
	tr := s.dht.NewTrace(onEvent)
	lctx, cancel := context.WithCancel(ctx)
	err := f(tr.Context(lctx))
	tr.Stop()
	cancel() // requests the lookup no longer needs
	if live {
		printSummary(s.cli.out, tr.Summary())
	}
	s.traces = append(s.traces, namedTrace{lookup, tr})
	return tr, err
}

// resolve turns PEER (a multiaddr ending in /p2p/<id>, or a peer ID) into
// an AddrInfo, looking a bare ID up in the DHT.
func (s *session) resolve(ctx context.Context, arg string) (peer.AddrInfo, error) {
	if strings.HasPrefix(arg, "/") {
		ai, err := peer.AddrInfoFromString(arg)
		if err != nil {
			return peer.AddrInfo{}, command.Usagef("%q: %w (want a peer ID or a multiaddr ending in /p2p/<peer ID>)", arg, err)
		}
		return *ai, nil
	}
	id, err := peer.Decode(arg)
	if err != nil {
		return peer.AddrInfo{}, command.Usagef("%q is not a peer ID: %w", arg, err)
	}
	var ai peer.AddrInfo
	_, err = s.traced(ctx, "peer "+id.String(), func(ctx context.Context) error {
		ai, err = s.dht.FindPeer(ctx, id)
		return err
	})
	if err != nil {
		return peer.AddrInfo{}, lookupErr(err)
	}
	return ai, nil
}

// lookupErr marks a not-found outcome for the exit status.
func lookupErr(err error) error {
	if errors.Is(err, dht.ErrNotFound) {
		return command.NotFound(err)
	}
	return err
}
