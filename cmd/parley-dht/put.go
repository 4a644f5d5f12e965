package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/dht/records"
	"github.com/parleynet/parley/internal/flags"
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

// put signs a record with a key the caller holds and stores it. The
// client itself keeps its throwaway identity: a record carries its own
// signature, whoever stores it.
func (c *cli) put(ctx context.Context, args []string) error {
	var (
		kind     string
		addrs    flags.Strings
		lifetime time.Duration
		seq      uint64
	)
	cf, _, err := c.parse("put", args, 0, "", "file of the private key that signs the record (required; the record is that peer's)", func(fs *flag.FlagSet) {
		fs.StringVar(&kind, "kind", "addr", "record kind: addr or supernode")
		fs.Var(&addrs, "addr", "an address to put in the record (repeatable; at least one)")
		fs.DurationVar(&lifetime, "lifetime", dht.DefaultRecordLifetime, "how long the record is valid (at most 24h)")
		fs.Uint64Var(&seq, "seq", 0, "sequence number (default: the Unix time in milliseconds, above any earlier default)")
	})
	if err != nil {
		if isHelp(err) {
			return nil
		}
		return err
	}
	k, ok := records.KindOf(kind)
	if !ok {
		return fmt.Errorf("--kind %q: want addr or supernode", kind)
	}
	if cf.keyFile == "" {
		return errors.New("put needs --key FILE: records are signed by the peer they are about")
	}
	key, err := loadKey(cf.keyFile)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return errors.New("put needs at least one --addr")
	}
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return fmt.Errorf("--addr %q: %w", s, err)
		}
		mas = append(mas, a)
	}
	if seq == 0 {
		seq = uint64(time.Now().UnixMilli())
	}
	r, err := records.Sign(key, k, seq, mas, time.Now(), lifetime)
	if err != nil {
		return err
	}
	cf.keyFile = "" // the client keeps a throwaway identity
	return c.keyedSession(ctx, cf, true, func(ctx context.Context, s *session) error {
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

// provide announces the client's identity as a provider of a CID, once:
// the CLI exits and does not reprovide, so the records lapse after the
// provider record TTL.
func (c *cli) provide(ctx context.Context, args []string) error {
	cf, rest, err := c.parse("provide", args, 1, "CID", "file of the private key whose peer is announced (default: a throwaway identity)", nil)
	if err != nil {
		if isHelp(err) {
			return nil
		}
		return err
	}
	k, err := cid.Decode(rest[0])
	if err != nil {
		return fmt.Errorf("%q is not a CID: %w", rest[0], err)
	}
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
