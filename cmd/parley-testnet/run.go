package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet"
)

// run is the whole command, for main.
func run(ctx context.Context, args []string) error {
	return command.Execute(ctx, newRoot(), args)
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "parley-testnet",
		Short: "A local Parley network on one machine: demos, scenarios with reports, NAT lab, load tests",
		Long: `parley-testnet runs a Parley network on one machine: "up" is the quickest
way to see Parley work (on 127.0.0.1); "run" runs a scripted scenario and
writes a report, on loopback or in the NAT lab; "natlab" keeps a network
up behind real Linux NATs (root); "load" and "relay-load" measure a
rendezvous server and a supernode under load.

Exit status: 0 ok, 1 error (for run: also a failed check), 2 usage error.`,
		Example: `  go run ./cmd/parley-testnet up
  go run ./cmd/parley-testnet up --dir /tmp/parley-demo --supernodes 2 --clients 4
  go run ./cmd/parley-testnet run chat --report /tmp/chat-report
  sudo go run ./cmd/parley-testnet run connectivity --natlab --nat cone=3,symmetric=3 --attempts 10
  sudo go run ./cmd/parley-testnet natlab up
  go run ./cmd/parley-testnet load --sessions 10000 --json`,
	}
	root.AddCommand(upCmd(), runCmd(), natlabCmd(), loadCmd(), relayLoadCmd())
	return root
}

func upCmd() *cobra.Command {
	var cfg testnet.Config
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a rendezvous server, supernodes and NAT-imitating clients, and watch them chat",
		Long: `up starts a rendezvous server (on an embedded SQLite file), supernodes and
clients (alice and bob by default; --clients 5 adds carol, dave and user5)
whose hosts behave as if behind a NAT, all on 127.0.0.1. It registers the
users, makes each a contact of every other, has the first greet each other
one and get an answer, and prints every step, then the parley and
parley-dht commands that talk to the network. Until Ctrl-C it then shows a
summary every 2 s: who is online, how each pair of clients is connected,
and each supernode's reservations and circuits (redrawn in place on a
terminal, otherwise a line per change).

Logs and warnings go to testnet.log in the network's directory, named at
start, not to the terminal.

With --dir the network's data (keys, accounts, contacts, history) and its
ports stay in DIR: a second run with the same --dir logs the same users in
again without repeating what is already done, on the same ports, so the
commands printed before keep working.`,
		Example: `  go run ./cmd/parley-testnet up
  go run ./cmd/parley-testnet up --dir /tmp/parley-demo
  go run ./cmd/parley-testnet up --dir /tmp/parley-demo --supernodes 2
  go run ./cmd/parley-testnet up --supernodes 2 --clients 4`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return up(cmd.Context(), cfg, cmd.OutOrStdout()) },
	}
	cmd.Flags().StringVar(&cfg.Dir, "dir", "", "data `directory`, kept across runs with its accounts, history and ports (default: a temporary directory removed on exit)")
	cmd.Flags().IntVar(&cfg.Supernodes, "supernodes", 1, "number of supernodes")
	cmd.Flags().IntVar(&cfg.Clients, "clients", 2, "number of clients (demo users alice, bob, carol, dave, user5…)")
	return cmd
}

// up runs the walkthrough with the logs in a file of the network's
// directory, and keeps the network up until ctx ends.
func up(ctx context.Context, cfg testnet.Config, out io.Writer) (err error) {
	if cfg.Supernodes < 1 {
		return command.Usagef("--supernodes must be at least 1")
	}
	if cfg.Clients < 2 {
		return command.Usagef("--clients must be at least 2")
	}
	if cfg.Dir == "" {
		if cfg.Dir, err = os.MkdirTemp("", "parley-testnet-"); err != nil {
			return fmt.Errorf("create testnet directory: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(cfg.Dir); rerr != nil && err == nil {
				err = fmt.Errorf("remove the testnet directory: %w", rerr)
			}
		}()
	} else if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("create testnet directory: %w", err)
	}
	logPath := filepath.Join(cfg.Dir, "testnet.log")
	if err := logs.ToFile(logPath); err != nil {
		return err
	}
	logs.Setup("warn")
	fmt.Fprintf(out, "Logs and warnings go to %s\n", logPath)

	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	n, err := testnet.Up(startCtx, cfg, out)
	if err != nil {
		return fmt.Errorf("%w (details in %s)", err, logPath)
	}
	watch(ctx, n, out)
	fmt.Fprintln(out, "\nstopping the network")
	return n.Close()
}
