package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleynet/parley/dht"
)

type jsonRTPeer struct {
	Peer                string     `json:"peer"`
	CPL                 int        `json:"cpl"`
	Added               time.Time  `json:"added"`
	LastUseful          *time.Time `json:"last_useful,omitempty"`
	LastSuccessfulQuery *time.Time `json:"last_successful_query,omitempty"`
	Connected           bool       `json:"connected"`
	Addrs               []string   `json:"addrs"`
}

type routingTableResult struct {
	Peer       string       `json:"peer"`
	Server     bool         `json:"server"`
	BucketSize int          `json:"bucket_size"`
	Peers      []jsonRTPeer `json:"peers"`
	Traces     []jsonTrace  `json:"traces,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

// routingTable reads the routing table of a node that serves
// /parley/dht/rt/1.0.0 to this client's identity.
func (c *cli) routingTable(ctx context.Context, args []string) error {
	cf, rest, err := c.parse("routing-table", args, 1, "NODE", "file of the private key to ask with, if the node allows only some peers (default: a throwaway identity)", nil)
	if err != nil {
		if isHelp(err) {
			return nil
		}
		return err
	}
	return c.keyedSession(ctx, cf, !strings.HasPrefix(rest[0], "/"), func(ctx context.Context, s *session) error {
		ai, err := s.resolve(ctx, rest[0])
		if err != nil {
			return err
		}
		rt, err := dht.RoutingTableOf(ctx, s.node, ai)
		if err != nil {
			return err
		}
		if s.cf.json {
			res := routingTableResult{Peer: rt.Peer.String(), Server: rt.Server, BucketSize: rt.BucketSize, Peers: []jsonRTPeer{}, Traces: s.jsonTraces()}
			for _, p := range rt.Peers {
				res.Peers = append(res.Peers, jsonRTPeer{
					Peer:                p.ID.String(),
					CPL:                 p.CPL,
					Added:               p.Added.UTC(),
					LastUseful:          timePtr(p.LastUseful),
					LastSuccessfulQuery: timePtr(p.LastSuccessfulQuery),
					Connected:           p.Connected,
					Addrs:               addrStrings(p.Addrs),
				})
			}
			return printJSON(c.out, res)
		}
		mode := "client"
		if rt.Server {
			mode = "server"
		}
		fmt.Fprintf(c.out, "routing table of %s (%s mode, bucket size %d): %d peers\n", rt.Peer, mode, rt.BucketSize, len(rt.Peers))
		w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "cpl\tpeer\tconnected\tadded\tlast useful\tlast answered")
		for _, p := range rt.Peers {
			conn := "no"
			if p.Connected {
				conn = "yes"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", p.CPL, p.ID, conn, ago(p.Added), ago(p.LastUseful), ago(p.LastSuccessfulQuery))
		}
		return w.Flush()
	})
}

type pingResult struct {
	Peer   string      `json:"peer"`
	RTTsMs []float64   `json:"rtts_ms"`
	Lost   int         `json:"lost"`
	Traces []jsonTrace `json:"traces,omitempty"`
}

// ping sends DHT pings: it tells whether a peer answers DHT requests and
// how fast.
func (c *cli) ping(ctx context.Context, args []string) error {
	var count int
	var interval time.Duration
	cf, rest, err := c.parse("ping", args, 1, "PEER", "", func(fs *flag.FlagSet) {
		fs.IntVar(&count, "count", 3, "how many pings")
		fs.DurationVar(&interval, "interval", 200*time.Millisecond, "time between pings")
	})
	if err != nil {
		if isHelp(err) {
			return nil
		}
		return err
	}
	if count < 1 {
		return errors.New("--count must be at least 1")
	}
	return c.keyedSession(ctx, cf, !strings.HasPrefix(rest[0], "/"), func(ctx context.Context, s *session) error {
		ai, err := s.resolve(ctx, rest[0])
		if err != nil {
			return err
		}
		s.node.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		res := pingResult{Peer: ai.ID.String(), RTTsMs: []float64{}}
		var last error
		for i := range count {
			if i > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(interval):
				}
			}
			rtt, err := s.dht.Ping(ctx, ai.ID)
			if err != nil {
				res.Lost++
				last = err
				if !s.cf.json {
					fmt.Fprintf(c.out, "ping %s: %v\n", ai.ID, err)
				}
				continue
			}
			res.RTTsMs = append(res.RTTsMs, ms(rtt))
			if !s.cf.json {
				fmt.Fprintf(c.out, "ping %s: %.2fms\n", ai.ID, ms(rtt))
			}
		}
		res.Traces = s.jsonTraces()
		if s.cf.json {
			if err := printJSON(c.out, res); err != nil {
				return err
			}
		}
		if len(res.RTTsMs) == 0 {
			return fmt.Errorf("no answer from %s: %w", ai.ID, last)
		}
		return nil
	})
}
