package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet"
)

func loadCmd() *cobra.Command {
	var cfg testnet.LoadConfig
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Measure a rendezvous server under many sessions",
		Long: `load starts a parley-rendezvous process (--local --no-limits) on 127.0.0.1,
opens N client sessions against it from this process (each its own libp2p
host and device key), and reports enrolments/s, logins/s, memory per
session and presence fan-out latency. Progress goes to standard error, the
report to standard output. Run it from inside the Parley module, or give
--server.`,
		Example: `  go run ./cmd/parley-testnet load --sessions 10000
  go run ./cmd/parley-testnet load --sessions 2000 --db postgres://parley@127.0.0.1/parley_load
  go run ./cmd/parley-testnet load --sessions 500 --production-enrolments 0 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logs.Setup("error")
			cfg.Progress = os.Stderr
			rep, err := testnet.Load(cmd.Context(), cfg)
			return printReport(cmd.OutOrStdout(), rep, asJSON, err)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&cfg.Sessions, "sessions", 1000, "users, each with one device and one session held")
	fs.IntVar(&cfg.Contacts, "contacts", 5, "group size: users are contacts in cliques of this many")
	fs.StringVar(&cfg.DB, "db", "", "the server's database: a postgres:// `URL` (default: a SQLite file in --dir)")
	fs.StringVar(&cfg.ServerBinary, "server", "", "parley-rendezvous `executable` (default: go build it)")
	fs.IntVar(&cfg.FanoutEvents, "fanout-events", 200, "users taken offline and online one at a time (negative: none)")
	fs.DurationVar(&cfg.FanoutInterval, "fanout-interval", 0, "pause between spaced fan-out events (default 20ms)")
	fs.IntVar(&cfg.BurstSize, "burst", 0, "users taken offline and online at once (default sessions/20; negative: none)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "requests in flight while registering, making contacts and logging in")
	fs.DurationVar(&cfg.Hold, "hold", 0, "how long to hold the sessions idle to measure keepalive cost (default 5s)")
	fs.IntVar(&cfg.ProductionEnrolments, "production-enrolments", 40, "registrations on a separate server with production argon2 (0: skip)")
	fs.StringVar(&cfg.Dir, "dir", "", "`directory` for the binary, database and server log (default: temporary)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
