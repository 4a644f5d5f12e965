package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet"
)

const loadUsage = `usage: parley-testnet load [--sessions N] [--contacts K] [--db postgres://...] [flags]

load starts a parley-rendezvous process (--local --no-limits) on 127.0.0.1,
opens N client sessions against it from this process (each its own libp2p
host and device key), and reports enrolments/s, logins/s, memory per
session and presence fan-out latency. Run it from inside the Parley module,
or give --server.

`

func runLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parley-testnet load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), loadUsage)
		fs.PrintDefaults()
	}
	var cfg testnet.LoadConfig
	fs.IntVar(&cfg.Sessions, "sessions", 1000, "users, each with one device and one session held")
	fs.IntVar(&cfg.Contacts, "contacts", 5, "group size: users are contacts in cliques of this many")
	fs.StringVar(&cfg.DB, "db", "", "the server's database: a postgres:// URL (default: a SQLite file in --dir)")
	fs.StringVar(&cfg.ServerBinary, "server", "", "parley-rendezvous executable (default: go build it)")
	fs.IntVar(&cfg.FanoutEvents, "fanout-events", 200, "users taken offline and online one at a time (negative: none)")
	fs.DurationVar(&cfg.FanoutInterval, "fanout-interval", 0, "pause between spaced fan-out events (default 20ms)")
	fs.IntVar(&cfg.BurstSize, "burst", 0, "users taken offline and online at once (default sessions/20; negative: none)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "requests in flight while registering, making contacts and logging in")
	fs.DurationVar(&cfg.Hold, "hold", 0, "how long to hold the sessions idle to measure keepalive cost (default 5s)")
	fs.IntVar(&cfg.ProductionEnrolments, "production-enrolments", 40, "registrations on a separate server with production argon2 (0: skip)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the binary, database and server log (default: temporary)")
	if err := flags.Parse(fs, args); err != nil {
		return err
	}
	logs.Setup("error")
	cfg.Progress = os.Stderr
	rep, err := testnet.Load(ctx, cfg)
	fmt.Print(rep)
	return err
}
