package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/client"
)

const usage = `usage: parley-dht <command> [flags] [arguments]

Looks things up in Parley's DHT, joining it as a short-lived client with a
throwaway identity.

commands:
  find-peer PEER          where PEER is: its signed address record and a routing lookup
  providers CID           the peers that provide CID
  get KEY                 a signed record: /addr/<peer ID> or /supernode/<peer ID>
  put --key FILE --addr MULTIADDR...
                          sign a record with the key in FILE and store it
  provide CID             announce this identity (a throwaway one, or --key's) as a provider of CID
  supernodes              current supernodes, found through the DHT alone
  routing-table NODE      the routing table of a node that serves it to this identity
  ping PEER               DHT-ping a peer
  help                    this text

PEER and NODE are a peer ID, found through the DHT, or a multiaddr ending
in /p2p/<peer ID>. Every command takes, before its arguments:
  --bootstrap MULTIADDR   a DHT node to join through, ending in /p2p/<peer ID> (repeatable)
  --rendezvous MULTIADDR  join through this rendezvous server and the supernodes of its directory
  --timeout DURATION      give up after this long (default 30s)
  --json                  print JSON (one document on standard output)
  --trace                 show each lookup as it happens: every peer queried, its hop, its
                          common prefix length (cpl) and XOR distance to the target, its
                          round-trip time and what it returned, then the hops and total time
                          (with --json: the same as a "traces" list)
  --listen MULTIADDR      listen address of this client (repeatable; default any, random port)
Run parley-dht <command> --help for a command's own flags.

exit status:
  0  found (or done: put, provide, routing-table, ping)
  3  not found: the lookup completed without finding it
  1  error (bad arguments, no reachable bootstrap peer, timeout, refused, ...)

Logging goes to standard error; set GOLOG_LOG_LEVEL, e.g. "parley/dht=debug".
`

// exitNotFound is the exit status of a lookup that found nothing.
const exitNotFound = 3

// notFound marks err as "not found" for the exit status.
func notFound(err error) error {
	return &command.ExitError{Code: exitNotFound, Err: err}
}

func run(ctx context.Context, args []string) error {
	logs.Setup("error")
	return runCLI(ctx, args, os.Stdout)
}

type cli struct {
	out io.Writer
}

// runCLI is run with its output given, for tests.
func runCLI(ctx context.Context, args []string, out io.Writer) error {
	c := &cli{out: out}
	if len(args) == 0 {
		fmt.Fprint(out, usage)
		return errors.New("no command given")
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(out, usage)
		return nil
	case "find-peer":
		return c.findPeer(ctx, rest)
	case "providers":
		return c.providers(ctx, rest)
	case "get":
		return c.get(ctx, rest)
	case "put":
		return c.put(ctx, rest)
	case "provide":
		return c.provide(ctx, rest)
	case "supernodes":
		return c.supernodes(ctx, rest)
	case "routing-table":
		return c.routingTable(ctx, rest)
	case "ping":
		return c.ping(ctx, rest)
	default:
		fmt.Fprint(out, usage)
		return fmt.Errorf("unknown command %q", name)
	}
}

// common are the flags every command takes.
type common struct {
	bootstrap  flags.Strings
	rendezvous string
	timeout    time.Duration
	json       bool
	trace      bool
	listen     flags.Strings
	keyFile    string // only for commands that register --key
}

// parse parses a command's flags and checks its positional arguments.
func (c *cli) parse(name string, args []string, nargs int, argsUsage, keyUsage string, setup func(*flag.FlagSet)) (*common, []string, error) {
	fs := flag.NewFlagSet("parley-dht "+name, flag.ContinueOnError)
	fs.SetOutput(c.out)
	cf := &common{}
	fs.Var(&cf.bootstrap, "bootstrap", "a DHT node to join through, ending in /p2p/<peer ID> (repeatable)")
	fs.StringVar(&cf.rendezvous, "rendezvous", "", "join through this rendezvous server and its supernodes (multiaddr ending in /p2p/<peer ID>)")
	fs.DurationVar(&cf.timeout, "timeout", 30*time.Second, "give up after this long")
	fs.BoolVar(&cf.json, "json", false, "print JSON")
	fs.BoolVar(&cf.trace, "trace", false, "show each lookup as it happens")
	fs.Var(&cf.listen, "listen", "listen address of this client (repeatable)")
	if keyUsage != "" {
		fs.StringVar(&cf.keyFile, "key", "", keyUsage)
	}
	if setup != nil {
		setup(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(c.out, "usage: parley-dht %s [flags] %s\n", name, argsUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() != nargs {
		fs.Usage()
		if fs.NArg() < nargs {
			return nil, nil, fmt.Errorf("%s needs %s", name, argsUsage)
		}
		return nil, nil, fmt.Errorf("%s: unexpected arguments %q (flags go before arguments)", name, fs.Args()[nargs:])
	}
	if cf.timeout <= 0 {
		return nil, nil, errors.New("--timeout must be positive")
	}
	return cf, fs.Args(), nil
}

// isHelp tells -h from real errors: asking for help is not a failure.
func isHelp(err error) bool { return errors.Is(err, flag.ErrHelp) }

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
	listen := []string(cf.listen)
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
			return nil, err
		}
		opts = append(opts, dht.WithBootstrapPeers(ai))
		sources++
	}
	if cf.rendezvous != "" {
		server, err := flags.AddrInfo("rendezvous", cf.rendezvous)
		if err != nil {
			n.Close()
			return nil, err
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
			return nil, errors.New("give --bootstrap MULTIADDR or --rendezvous MULTIADDR to join the DHT")
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
			return peer.AddrInfo{}, fmt.Errorf("%q: %w (want a peer ID or a multiaddr ending in /p2p/<peer ID>)", arg, err)
		}
		return *ai, nil
	}
	id, err := peer.Decode(arg)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%q is not a peer ID: %w", arg, err)
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
		return notFound(err)
	}
	return err
}
