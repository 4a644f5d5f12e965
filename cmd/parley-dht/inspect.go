package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/command"
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

// routingTableCmd reads the routing table of a node that serves
// /parley/dht/rt/1.0.0 to this client's identity.
func (c *cli) routingTableCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "routing-table NODE",
		Short: "The routing table of a node that serves it to this identity",
		Long: `routing-table reads the routing table of NODE, which serves it to this
client (supernodes, relays and the rendezvous server do): every peer with
its common prefix length, whether it is connected, and when it was added,
last useful and last answered. NODE is a multiaddr ending in /p2p/<peer ID>,
or a peer ID looked up in the DHT.`,
		Example: `  parley-dht routing-table /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW...
  parley-dht routing-table 12D3KooW... --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --json`,
		Args: command.ExactArgs("NODE"),
		RunE: func(cmd *cobra.Command, args []string) error { return c.routingTable(cmd.Context(), args[0]) },
	}
	c.keyFlag(cmd, "`file` of the private key to ask with, if the node allows only some peers (default: a throwaway identity)")
	return cmd
}

func (c *cli) routingTable(ctx context.Context, target string) error {
	cf := &c.cf
	return c.keyedSession(ctx, cf, !strings.HasPrefix(target, "/"), func(ctx context.Context, s *session) error {
		ai, err := s.resolve(ctx, target)
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

// pingCmd sends DHT pings: it tells whether a peer answers DHT requests
// and how fast.
func (c *cli) pingCmd() *cobra.Command {
	var count int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "ping PEER",
		Short: "DHT-ping a peer",
		Long: `ping sends DHT pings to PEER and prints each round trip: it tells whether a
peer answers DHT requests (DHT servers do) and how fast. PEER is a multiaddr
ending in /p2p/<peer ID>, or a peer ID looked up in the DHT. It exits 1 when
no ping was answered.`,
		Example: `  parley-dht ping /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW...
  parley-dht ping 12D3KooW... --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW... --count 10 --json`,
		Args: command.ExactArgs("PEER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 {
				return command.Usagef("--count must be at least 1")
			}
			return c.ping(cmd.Context(), args[0], count, interval)
		},
	}
	cmd.Flags().IntVar(&count, "count", 3, "how many pings")
	cmd.Flags().DurationVar(&interval, "interval", 200*time.Millisecond, "time between pings")
	return cmd
}

func (c *cli) ping(ctx context.Context, target string, count int, interval time.Duration) error {
	cf := &c.cf
	return c.keyedSession(ctx, cf, !strings.HasPrefix(target, "/"), func(ctx context.Context, s *session) error {
		ai, err := s.resolve(ctx, target)
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
