package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/dht/records"
	"github.com/parleynet/parley/internal/command"
)

// session runs do as a DHT client whose identity is --key's, if given.
func (c *cli) keyedSession(ctx context.Context, cf *common, bootstrap bool, do func(context.Context, *session) error) error {
	var key crypto.PrivKey
	if cf.keyFile != "" {
		var err error
		if key, err = loadKey(cf.keyFile); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	s, err := c.start(ctx, cf, key, bootstrap)
	if err != nil {
		return err
	}
	defer s.close()
	return do(ctx, s)
}

type putResult struct {
	Key      string      `json:"key"`
	StoredOn int         `json:"stored_on"` // how many DHT servers accepted it
	Record   *jsonRecord `json:"record"`
	Traces   []jsonTrace `json:"traces,omitempty"`
}

// putCmd signs a record with a key the caller holds and stores it. The
// client itself keeps its throwaway identity: a record carries its own
// signature, whoever stores it.
func (c *cli) putCmd() *cobra.Command {
	var (
		kind     string
		addrs    []string
		lifetime time.Duration
		seq      uint64
	)
	cmd := &cobra.Command{
		Use:   "put --key FILE --addr MULTIADDR...",
		Short: "Sign a record with the key in FILE and store it",
		Long: `put signs an address record (or, with --kind supernode, a supernode
record) about the peer whose private key is in FILE, with the addresses
given by --addr, and stores it on the DHT servers closest to its key. The
client itself keeps a throwaway identity. A record with a lower sequence
number than the one stored is refused.`,
		Example: `  parley-dht put --key ./alice/identity.key --addr /ip4/192.0.2.9/tcp/4001 --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
  parley-dht put --key relay.key --kind supernode --addr /ip4/198.51.100.4/tcp/4002 --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW... --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, ok := records.KindOf(kind)
			if !ok {
				return command.Usagef("--kind %q: want addr or supernode", kind)
			}
			if c.cf.keyFile == "" {
				return command.Usagef("put needs --key FILE: records are signed by the peer they are about")
			}
			key, err := loadKey(c.cf.keyFile)
			if err != nil {
				return err
			}
			if len(addrs) == 0 {
				return command.Usagef("put needs at least one --addr")
			}
			var mas []ma.Multiaddr
			for _, s := range addrs {
				a, err := ma.NewMultiaddr(s)
				if err != nil {
					return command.Usagef("--addr %q: %w", s, err)
				}
				mas = append(mas, a)
			}
			if seq == 0 {
				seq = uint64(time.Now().UnixMilli())
			}
			r, err := records.Sign(key, k, seq, mas, time.Now(), lifetime)
			if err != nil {
				return command.Usagef("sign the record: %w", err)
			}
			return c.put(cmd.Context(), r)
		},
	}
	c.keyFlag(cmd, "`file` of the private key that signs the record (required; the record is that peer's)")
	fs := cmd.Flags()
	fs.StringVar(&kind, "kind", "addr", "record kind: addr or supernode")
	fs.StringArrayVar(&addrs, "addr", nil, "an address to put in the record (repeatable; at least one)")
	fs.DurationVar(&lifetime, "lifetime", dht.DefaultRecordLifetime, "how long the record is valid (at most 24h)")
	fs.Uint64Var(&seq, "seq", 0, "sequence number (default: the Unix time in milliseconds, above any earlier default)")
	return cmd
}

func (c *cli) put(ctx context.Context, r records.Record) error {
	cf := c.cf
	cf.keyFile = "" // the client keeps a throwaway identity
	return c.keyedSession(ctx, &cf, true, func(ctx context.Context, s *session) error {
		var n int
		_, err := s.traced(ctx, "put "+records.KeyString(r.Kind, r.Peer), func(ctx context.Context) (err error) {
			n, err = s.dht.PutRecord(ctx, r)
			return err
		})
		if err != nil {
			if errors.Is(err, dht.ErrRefused) {
				return fmt.Errorf("%w; a record with a higher sequence number may be stored: retry with a larger --seq", err)
			}
			return err
		}
		if s.cf.json {
			return printJSON(c.out, putResult{Key: records.KeyString(r.Kind, r.Peer), StoredOn: n, Record: toJSONRecord(r), Traces: s.jsonTraces()})
		}
		fmt.Fprintf(c.out, "stored on %d peers: ", n)
		printRecord(c.out, r)
		return nil
	})
}

type provideResult struct {
	CID      string      `json:"cid"`
	Provider string      `json:"provider"`
	StoredOn int         `json:"stored_on"`
	Expires  time.Time   `json:"expires"` // when the stored provider records lapse, unless announced again
	Traces   []jsonTrace `json:"traces,omitempty"`
}

// provideCmd announces the client's identity as a provider of a CID,
// once: the CLI exits and does not reprovide, so the records lapse after
// the provider record TTL.
func (c *cli) provideCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "provide CID",
		Short: "Announce this identity (a throwaway one, or --key's) as a provider of CID",
		Long: `provide announces this client's identity (a throwaway one, or the key in
--key's file) as a provider of CID, once: parley-dht does not reprovide, so
the provider records lapse after their lifetime.`,
		Example: `  parley-dht provide bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy --rendezvous /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...
  parley-dht provide bafkrei... --key ./alice/identity.key --bootstrap /ip4/127.0.0.1/tcp/4002/p2p/12D3KooW... --json`,
		Args: command.ExactArgs("CID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := cid.Decode(args[0])
			if err != nil {
				return command.Usagef("%q is not a CID: %w", args[0], err)
			}
			return c.provide(cmd.Context(), k)
		},
	}
	c.keyFlag(cmd, "`file` of the private key whose peer is announced (default: a throwaway identity)")
	return cmd
}

func (c *cli) provide(ctx context.Context, k cid.Cid) error {
	cf := &c.cf
	return c.keyedSession(ctx, cf, true, func(ctx context.Context, s *session) error {
		tr, err := s.traced(ctx, "provide "+k.String(), func(ctx context.Context) error {
			return s.dht.Provide(ctx, k)
		})
		if err != nil {
			return err
		}
		stored := 0
		for _, ev := range tr.Events() {
			if ev.Kind == dht.TraceResponse && ev.Message == "ADD_PROVIDER" {
				stored++
			}
		}
		expires := time.Now().Add(dht.DefaultProviderRecordTTL).UTC()
		if s.cf.json {
			return printJSON(c.out, provideResult{CID: k.String(), Provider: s.node.ID().String(), StoredOn: stored, Expires: expires, Traces: s.jsonTraces()})
		}
		fmt.Fprintf(c.out, "%s is announced as a provider of %s on %d peers, until about %s\n",
			s.node.ID(), k, stored, expires.Local().Format(time.DateTime))
		if len(s.node.Addrs()) > 0 {
			printAddrs(c.out, "with addresses ", s.node.Addrs())
		}
		if cf.keyFile == "" {
			fmt.Fprintln(c.out, "(a throwaway identity: nobody will answer at these addresses once parley-dht exits)")
		}
		return nil
	})
}
