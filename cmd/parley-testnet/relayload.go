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

const relayLoadUsage = `usage: parley-testnet relay-load [--reservations N] [flags]

relay-load starts a parley-relay process on 127.0.0.1, has N clients of
this process (each its own libp2p host and key) present a certificate and
reserve a slot on it, and reports the supernode's memory per reservation.
Run it from inside the Parley module, or give --relay.

`

func runRelayLoad(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parley-testnet relay-load", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), relayLoadUsage)
		fs.PrintDefaults()
	}
	var cfg testnet.RelayLoadConfig
	fs.IntVar(&cfg.Reservations, "reservations", 1000, "clients that each hold a slot")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "reservations in flight")
	fs.StringVar(&cfg.Binary, "relay", "", "parley-relay executable (default: go build it)")
	fs.StringVar(&cfg.Dir, "dir", "", "directory for the binary, key and log (default: temporary)")
	if err := flags.Parse(fs, args); err != nil {
		return err
	}
	logs.Setup("error")
	cfg.Progress = os.Stderr
	rep, err := testnet.RelayLoad(ctx, cfg)
	fmt.Print(rep)
	return err
}
