package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet"
)

func relayLoadCmd() *cobra.Command {
	var cfg testnet.RelayLoadConfig
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "relay-load",
		Short: "Measure a supernode's memory per reservation",
		Long: `relay-load starts a parley-relay process on 127.0.0.1, has N clients of
this process (each its own libp2p host and key) present a certificate and
reserve a slot on it, and reports the supernode's memory per reservation.
Progress goes to standard error, the report to standard output. Run it from
inside the Parley module, or give --relay.`,
		Example: `  go run ./cmd/parley-testnet relay-load --reservations 5000
  go run ./cmd/parley-testnet relay-load --reservations 1000 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logs.Setup("error")
			cfg.Progress = os.Stderr
			rep, err := testnet.RelayLoad(cmd.Context(), cfg)
			return printReport(cmd.OutOrStdout(), rep, asJSON, err)
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.IntVar(&cfg.Reservations, "reservations", 1000, "clients that each hold a slot")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "reservations in flight")
	fs.StringVar(&cfg.Binary, "relay", "", "parley-relay `executable` (default: go build it)")
	fs.StringVar(&cfg.Dir, "dir", "", "`directory` for the binary, key and log (default: temporary)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
