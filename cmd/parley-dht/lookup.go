package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/dht/records"
	"github.com/parleynet/parley/internal/command"
)

// withSession joins the DHT with a throwaway identity and runs do within
// the timeout.
func (c *cli) withSession(ctx context.Context, do func(context.Context, *session) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.cf.timeout)
	defer cancel()
	s, err := c.start(ctx, &c.cf, nil, true)
	if err != nil {
		return err
	}
	defer s.close()
	return do(ctx, s)
}

type findPeerResult struct {
	Peer         string      `json:"peer"`
	Found        bool        `json:"found"`
	Record       *jsonRecord `json:"record,omitempty"`
	RecordError  string      `json:"record_error,omitempty"`
	Routing      *jsonPeer   `json:"routing,omitempty"`
	RoutingError string      `json:"routing_error,omitempty"`
	Traces       []jsonTrace `json:"traces,omitempty"`
}

// findPeerCmd looks up both what the DHT knows of a peer: its signed
// address record (devices behind NAT have one) and its routing-table entry
// (DHT servers).
func (c *cli) findPeerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "find-peer PEER",
		Short: "Where PEER is: its signed address record and a routing lookup",
		Long: `find-peer looks up what the DHT knows of a peer: its signed address record
(devices, also behind NAT, publish one with their direct and circuit
addresses) and its routing-table entry (DHT servers). PEER is a peer ID.
It exits 3 when neither is found.`,
		Example: `  parley-dht find-peer 12D3KooWbob... --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --trace
  parley-dht find-peer 12D3KooWbob... --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW... --json`,
		Args: command.ExactArgs("PEER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := peer.Decode(args[0])
			if err != nil {
				return command.Usagef("%q is not a peer ID: %w", args[0], err)
			}
			return c.withSession(cmd.Context(), func(ctx context.Context, s *session) error { return c.findPeer(ctx, s, id) })
		},
	}
}

func (c *cli) findPeer(ctx context.Context, s *session, id peer.ID) error {
	res := findPeerResult{Peer: id.String()}
	var rec records.Record
	_, recErr := s.traced(ctx, "address record "+records.KeyString(records.KindAddr, id), func(ctx context.Context) (err error) {
		rec, err = s.dht.LookupAddrs(ctx, id)
		return err
	})
	var ai peer.AddrInfo
	_, routeErr := s.traced(ctx, "peer "+id.String(), func(ctx context.Context) (err error) {
		ai, err = s.dht.FindPeer(ctx, id)
		return err
	})
	if recErr == nil {
		res.Record = toJSONRecord(rec)
	} else {
		res.RecordError = recErr.Error()
	}
	if routeErr == nil {
		p := toJSONPeer(ai)
		res.Routing = &p
	} else {
		res.RoutingError = routeErr.Error()
	}
	res.Found = recErr == nil || routeErr == nil
	res.Traces = s.jsonTraces()
	if c.jsonOut(s) {
		if err := printJSON(c.out, res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(c.out, "peer %s\n", id)
		if recErr == nil {
			fmt.Fprint(c.out, "signed address record: ")
			printRecord(c.out, rec)
		} else {
			fmt.Fprintf(c.out, "signed address record: %v\n", recErr)
		}
		if routeErr == nil {
			printAddrs(c.out, "routing lookup:        ", ai.Addrs)
		} else if recErr == nil && errors.Is(routeErr, dht.ErrNotFound) {
			// kad-dht returns a peer only once it could connect to it.
			fmt.Fprintf(c.out, "routing lookup:        not connectable directly (behind NAT?): use the record's circuit addresses\n")
		} else {
			fmt.Fprintf(c.out, "routing lookup:        %v\n", routeErr)
		}
	}
	switch {
	case res.Found:
		return nil
	case errors.Is(recErr, dht.ErrNotFound) && errors.Is(routeErr, dht.ErrNotFound):
		return command.NotFound(fmt.Errorf("peer %s: no address record and in no routing table", id))
	default:
		return errors.Join(recErr, routeErr)
	}
}

func (c *cli) jsonOut(s *session) bool { return s.cf.json }

type providersResult struct {
	CID       string      `json:"cid"`
	Found     bool        `json:"found"`
	Providers []jsonPeer  `json:"providers"`
	Traces    []jsonTrace `json:"traces,omitempty"`
}

func (c *cli) providersCmd() *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "providers CID",
		Short: "The peers that provide CID",
		Long:  "providers lists the peers that announced themselves as providers of CID, with their addresses. It exits 3 when there are none.",
		Example: `  parley-dht providers bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
  parley-dht providers bafkrei... --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW... --json --max 5`,
		Args: command.ExactArgs("CID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := cid.Decode(args[0])
			if err != nil {
				return command.Usagef("%q is not a CID: %w", args[0], err)
			}
			if max < 1 {
				return command.Usagef("--max must be at least 1")
			}
			return c.withSession(cmd.Context(), func(ctx context.Context, s *session) error { return c.providers(ctx, s, k, max) })
		},
	}
	cmd.Flags().IntVar(&max, "max", dht.DefaultMaxProviders, "stop after this many providers")
	return cmd
}

func (c *cli) providers(ctx context.Context, s *session, k cid.Cid, max int) error {
	var provs []peer.AddrInfo
	_, err := s.traced(ctx, "providers of "+k.String(), func(ctx context.Context) (err error) {
		provs, err = s.dht.FindProviders(ctx, k, max)
		return err
	})
	if err != nil && !errors.Is(err, dht.ErrNotFound) {
		return err
	}
	res := providersResult{CID: k.String(), Found: err == nil, Providers: []jsonPeer{}, Traces: s.jsonTraces()}
	for _, p := range provs {
		res.Providers = append(res.Providers, toJSONPeer(p))
	}
	if s.cf.json {
		if perr := printJSON(c.out, res); perr != nil {
			return perr
		}
	} else {
		for _, p := range provs {
			printAddrs(c.out, p.ID.String()+"  ", p.Addrs)
		}
	}
	return lookupErr(err)
}

type getResult struct {
	Key    string      `json:"key"`
	Found  bool        `json:"found"`
	Record *jsonRecord `json:"record,omitempty"`
	Traces []jsonTrace `json:"traces,omitempty"`
}

func (c *cli) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY",
		Short: "A signed record: /addr/<peer ID> or /supernode/<peer ID>",
		Long: `get fetches the signed record under KEY and checks it: /addr/<peer ID> is a
device's address record, /supernode/<peer ID> a supernode's announcement.
It exits 3 when no valid record is found.`,
		Example: `  parley-dht get /addr/12D3KooWbob... --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
  parley-dht get /supernode/12D3KooW... --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW... --json`,
		Args: command.ExactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, kind, id, err := records.ParseKeyString(args[0])
			if err != nil {
				return command.Usage(err)
			}
			return c.withSession(cmd.Context(), func(ctx context.Context, s *session) error { return c.get(ctx, s, kind, id) })
		},
	}
}

func (c *cli) get(ctx context.Context, s *session, kind records.Kind, id peer.ID) error {
	var r records.Record
	_, err := s.traced(ctx, "record "+records.KeyString(kind, id), func(ctx context.Context) (err error) {
		r, err = s.dht.GetRecord(ctx, kind, id)
		return err
	})
	if err != nil && !errors.Is(err, dht.ErrNotFound) {
		return err
	}
	res := getResult{Key: records.KeyString(kind, id), Found: err == nil, Traces: s.jsonTraces()}
	if err == nil {
		res.Record = toJSONRecord(r)
	}
	if s.cf.json {
		if perr := printJSON(c.out, res); perr != nil {
			return perr
		}
	} else if err == nil {
		printRecord(c.out, r)
	}
	return lookupErr(err)
}

type supernodesResult struct {
	Found      bool        `json:"found"`
	Supernodes []jsonPeer  `json:"supernodes"`
	Traces     []jsonTrace `json:"traces,omitempty"`
}

func (c *cli) supernodesCmd() *cobra.Command {
	var max int
	cmd := &cobra.Command{
		Use:   "supernodes",
		Short: "Current supernodes, found through the DHT alone",
		Long: `supernodes lists the supernodes announced in the DHT (providers of the
supernode CID with a valid signed supernode record), as a device finds them
while the rendezvous server is down. It exits 3 when there are none.`,
		Example: `  parley-dht supernodes --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
  parley-dht supernodes --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW... --json --trace`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if max < 1 {
				return command.Usagef("--max must be at least 1")
			}
			return c.withSession(cmd.Context(), func(ctx context.Context, s *session) error { return c.supernodes(ctx, s, max) })
		},
	}
	cmd.Flags().IntVar(&max, "max", dht.DefaultSupernodes, "stop after this many supernodes")
	return cmd
}

func (c *cli) supernodes(ctx context.Context, s *session, max int) error {
	var sns []peer.AddrInfo
	_, err := s.traced(ctx, "supernodes (providers of "+dht.SupernodeCID.String()+" with a signed record)", func(ctx context.Context) (err error) {
		sns, err = s.dht.FindSupernodes(ctx, max)
		return err
	})
	if err != nil && !errors.Is(err, dht.ErrNotFound) {
		return err
	}
	res := supernodesResult{Found: err == nil, Supernodes: []jsonPeer{}, Traces: s.jsonTraces()}
	for _, p := range sns {
		res.Supernodes = append(res.Supernodes, toJSONPeer(p))
	}
	if s.cf.json {
		if perr := printJSON(c.out, res); perr != nil {
			return perr
		}
	} else {
		for _, p := range sns {
			printAddrs(c.out, p.ID.String()+"  ", p.Addrs)
		}
	}
	return lookupErr(err)
}
