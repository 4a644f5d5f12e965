package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/parleynet/parley/internal/flags"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet"
)

const usage = `usage: parley-testnet up [--dir DIR] [--supernodes N]
       parley-testnet load [flags]         (parley-testnet load --help)
       parley-testnet relay-load [flags]   (parley-testnet relay-load --help)

up          starts a rendezvous server, supernodes and two NAT-imitating
            clients (alice and bob) on 127.0.0.1, has them log in, become
            contacts and chat, and keeps running until Ctrl-C.
load        measures a rendezvous server under many sessions.
relay-load  measures a supernode's memory per reservation.
`

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "load" {
		return runLoad(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "relay-load" {
		return runRelayLoad(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "up" {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("expected the subcommand up")
	}
	fs := flag.NewFlagSet("parley-testnet up", flag.ContinueOnError)
	dir := fs.String("dir", "", "data directory, kept across runs (default: a temporary directory removed on exit)")
	supernodes := fs.Int("supernodes", 1, "number of supernodes")
	if err := flags.Parse(fs, args[1:]); err != nil {
		return err
	}
	logs.Setup("warn")

	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n, err := testnet.Up(startCtx, testnet.Config{Dir: *dir, Supernodes: *supernodes}, os.Stdout)
	if err != nil {
		return err
	}
	<-ctx.Done()
	fmt.Println("\nstopping the network")
	return n.Close()
}
