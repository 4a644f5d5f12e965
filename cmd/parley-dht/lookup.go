package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/dht/records"
)

// withSession parses a lookup command's flags, joins the DHT and runs do
// within the timeout.
func (c *cli) withSession(ctx context.Context, name string, args []string, nargs int, argsUsage string, setup func(*flag.FlagSet),
	do func(context.Context, *session, []string) error) error {
	cf, rest, err := c.parse(name, args, nargs, argsUsage, "", setup)
	if err != nil {
		if isHelp(err) {
			return nil
		}
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	s, err := c.start(ctx, cf, nil, true)
	if err != nil {
		return err
	}
	defer s.close()
	return do(ctx, s, rest)
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

// findPeer looks up both what the DHT knows of a peer: its signed address
// record (devices behind NAT have one) and its routing-table entry (DHT
// servers).
func (c *cli) findPeer(ctx context.Context, args []string) error {
	return c.withSession(ctx, "find-peer", args, 1, "PEER", nil, func(ctx context.Context, s *session, rest []string) error {
		id, err := peer.Decode(rest[0])
		if err != nil {
			return fmt.Errorf("%q is not a peer ID: %w", rest[0], err)
		}
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
			return notFound(fmt.Errorf("peer %s: no address record and in no routing table", id))
		default:
			return errors.Join(recErr, routeErr)
		}
	})
}

func (c *cli) jsonOut(s *session) bool { return s.cf.json }

type providersResult struct {
	CID       string      `json:"cid"`
	Found     bool        `json:"found"`
	Providers []jsonPeer  `json:"providers"`
	Traces    []jsonTrace `json:"traces,omitempty"`
}

func (c *cli) providers(ctx context.Context, args []string) error {
	var max int
	return c.withSession(ctx, "providers", args, 1, "CID", func(fs *flag.FlagSet) {
		fs.IntVar(&max, "max", dht.DefaultMaxProviders, "stop after this many providers")
	}, func(ctx context.Context, s *session, rest []string) error {
		k, err := cid.Decode(rest[0])
		if err != nil {
			return fmt.Errorf("%q is not a CID: %w", rest[0], err)
		}
		var provs []peer.AddrInfo
		_, err = s.traced(ctx, "providers of "+k.String(), func(ctx context.Context) (err error) {
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
	})
}

type getResult struct {
	Key    string      `json:"key"`
	Found  bool        `json:"found"`
	Record *jsonRecord `json:"record,omitempty"`
	Traces []jsonTrace `json:"traces,omitempty"`
}

func (c *cli) get(ctx context.Context, args []string) error {
	return c.withSession(ctx, "get", args, 1, "KEY (/addr/<peer ID> or /supernode/<peer ID>)", nil, func(ctx context.Context, s *session, rest []string) error {
		_, kind, id, err := records.ParseKeyString(rest[0])
		if err != nil {
			return err
		}
		var r records.Record
		_, err = s.traced(ctx, "record "+rest[0], func(ctx context.Context) (err error) {
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
	})
}

type supernodesResult struct {
	Found      bool        `json:"found"`
	Supernodes []jsonPeer  `json:"supernodes"`
	Traces     []jsonTrace `json:"traces,omitempty"`
}

func (c *cli) supernodes(ctx context.Context, args []string) error {
	var max int
	return c.withSession(ctx, "supernodes", args, 0, "", func(fs *flag.FlagSet) {
		fs.IntVar(&max, "max", dht.DefaultSupernodes, "stop after this many supernodes")
	}, func(ctx context.Context, s *session, _ []string) error {
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
	})
}
