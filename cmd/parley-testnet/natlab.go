package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet/labnet"
	"github.com/parleynet/parley/testnet/labstate"
	"github.com/parleynet/parley/testnet/runner"
	"github.com/parleynet/parley/testnet/topology"
)

func natlabCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "natlab",
		Short: "A Parley network in network namespaces behind real Linux NATs (root)",
		Long: `natlab up spreads a Parley network over network namespaces behind real
Linux NATs (the NAT lab of testnet/natlab) and keeps it up until Ctrl-C;
natlab exec runs a command inside one of its hosts, from another shell.
Both need root.`,
		Example: `  sudo go run ./cmd/parley-testnet natlab up --nat cone=2,symmetric=1
  sudo go run ./cmd/parley-testnet natlab exec alice -- parley status`,
	}
	cmd.AddCommand(natlabUpCmd(), natlabExecCmd())
	return cmd
}

func natlabUpCmd() *cobra.Command {
	var lab labFlags
	var supernodes int
	var dir, state string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a NAT-lab network and keep it up until Ctrl-C",
		Long: `up builds the NAT lab: an internet namespace, a rendezvous server and
supernodes on public hosts, and a client (a parley daemon, built with the
natlab tag from the module this command runs in) per topology entry, each
behind a NAT of its own (cone: MASQUERADE, symmetric: MASQUERADE
--random-fully, udp-blocked: a cone NAT that drops all UDP, upnp: a cone
NAT whose router runs miniupnpd, so the client maps a port) or on a public
host, with a one-way delay per public link and a loss per client link
(NFQUEUE). The clients are registered (password NAME-password), logged in
and all contacts of each other. It prints each host's namespace, address
and data directory, writes them to --state for "natlab exec", and keeps the
network up until Ctrl-C or SIGTERM, then removes everything (the data too,
unless --dir was given). Leftovers of a crashed earlier lab are removed
first.

A topology file (--topology) has one statement a line:
  supernodes 2
  delay 20ms
  loss 1%
  client alice cone
  client bob symmetric 50ms 5%
  client carol public
  client dave udp-blocked`,
		Example: `  sudo go run ./cmd/parley-testnet natlab up
  sudo go run ./cmd/parley-testnet natlab up --nat cone=2,symmetric=2 --delay 40ms --loss 1%
  sudo go run ./cmd/parley-testnet natlab up --topology lab.txt --dir /tmp/lab`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			top, err := lab.topology(supernodes)
			if err != nil {
				return err
			}
			return natlabUp(cmd.Context(), top, dir, state, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	lab.register(cmd, true)
	fs.IntVar(&supernodes, "supernodes", 2, "number of supernodes")
	fs.StringVar(&dir, "dir", "", "`directory` for the logs and the clients' data, kept on exit (default: temporary, removed)")
	fs.StringVar(&state, "state", labstate.DefaultPath, "`file` naming the hosts, for natlab exec")
	return cmd
}

// natlabUp runs the lab until ctx ends.
func natlabUp(ctx context.Context, top topology.Topology, dir, statePath string, out io.Writer) (err error) {
	switch s, err := labstate.Read(statePath); {
	case err == nil:
		return fmt.Errorf("a NAT lab of process %d is running (state in %s): stop it first", s.PID, statePath)
	case errors.Is(err, labstate.ErrNoLab) && s.PID != 0:
		fmt.Fprintf(out, "Removing what the lab of process %d left (it died)\n", s.PID)
		if err := labstate.RemoveLeftovers(statePath, s); err != nil {
			return err
		}
	}
	logDir := dir
	if logDir == "" {
		logDir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create the lab directory: %w", err)
	}
	logPath := filepath.Join(logDir, "parley-testnet-natlab.log")
	if err := logs.ToFile(logPath); err != nil {
		return err
	}
	logs.Setup("warn")
	fmt.Fprintf(out, "Logs go to %s; building the lab (the first run builds the binaries)\n", logPath)
	defer labnet.Cleanup()
	l, err := runner.StartLab(ctx, top, dir)
	if err != nil {
		return fmt.Errorf("start the NAT lab: %w", err)
	}
	defer func() { err = errors.Join(err, l.Close()) }()
	bin, err := labnet.Binaries()
	if err != nil {
		return err
	}
	s := labstate.State{PID: os.Getpid(), Lab: l.Net.Lab.ID, Dir: l.Net.Lab.Dir, OwnDir: dir == "", Bin: bin, Rendezvous: l.Net.Rendezvous.Addr}
	s.Hosts = append(s.Hosts, serverHost(l.Net.Rendezvous, "rendezvous"))
	for _, sn := range l.Net.Supernodes {
		s.Hosts = append(s.Hosts, serverHost(sn, "supernode"))
	}
	for _, tc := range top.Clients {
		c := l.Clients[tc.Name]
		s.Hosts = append(s.Hosts, labstate.Host{Name: tc.Name, Role: tc.Kind, Namespace: c.Host.Namespace,
			IP: c.Host.IP.String(), PublicIP: c.Host.PublicIP.String(), Data: c.Dir})
	}
	if err := labstate.Write(statePath, s); err != nil {
		return err
	}
	defer func() {
		if rerr := os.Remove(statePath); rerr != nil {
			err = errors.Join(err, fmt.Errorf("remove the lab state: %w", rerr))
		}
	}()
	fmt.Fprintf(out, "\nNAT lab %s up, internet namespace %s, data in %s\n\n", s.Lab, l.Net.Lab.Internet, s.Dir)
	fmt.Fprintf(out, "%-12s %-10s %-22s %-15s %-15s %s\n", "host", "role", "namespace", "address", "public address", "data")
	for _, h := range s.Hosts {
		fmt.Fprintf(out, "%-12s %-10s %-22s %-15s %-15s %s\n", h.Name, h.Role, h.Namespace, h.IP, h.PublicIP, h.Data)
	}
	first := top.Clients[0].Name
	fmt.Fprintf(out, "\nUntil Ctrl-C, from another shell (as root):\n")
	fmt.Fprintf(out, "  %s natlab exec %s -- parley status\n", self(), first)
	fmt.Fprintf(out, "  %s natlab exec %s -- parley send %s \"hello through the NATs\"\n", self(), first, top.Clients[1].Name)
	fmt.Fprintf(out, "  %s natlab exec %s -- ip addr\n", self(), first)
	fmt.Fprintf(out, "  ip netns exec %s bash   # a shell on %s\n", s.Hosts[len(s.Hosts)-len(top.Clients)].Namespace, first)
	<-ctx.Done()
	fmt.Fprintln(out, "\nremoving the NAT lab")
	return nil
}

func serverHost(s *labnet.Server, role string) labstate.Host {
	return labstate.Host{Name: s.Host.Name, Role: role, Namespace: s.Host.Namespace, IP: s.Host.IP.String(), PublicIP: s.Host.PublicIP.String()}
}

// self is how the user ran this command, for printed hints.
func self() string {
	if strings.Contains(os.Args[0], "go-build") {
		return "go run ./cmd/parley-testnet"
	}
	return os.Args[0]
}

func natlabExecCmd() *cobra.Command {
	var state string
	cmd := &cobra.Command{
		Use:   "exec HOST -- COMMAND [ARG...]",
		Short: "Run a command inside a host of the running NAT lab",
		Long: `exec runs a command in the network namespace of a host of the lab that
"natlab up" keeps running (ip netns exec), with its standard input, output
and exit status. A command named parley runs the lab's parley binary with
--data of that client, unless --data is given.`,
		Example: `  sudo go run ./cmd/parley-testnet natlab exec alice -- parley status
  sudo go run ./cmd/parley-testnet natlab exec alice -- parley history bob
  sudo go run ./cmd/parley-testnet natlab exec bob -- ping -c 1 203.0.113.2`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return command.Usagef("want HOST -- COMMAND [ARG...]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := labstate.Read(state)
			if err != nil {
				return err
			}
			h, err := s.Host(args[0])
			if err != nil {
				return command.Usage(err)
			}
			argv := s.Command(h, args[1:])
			c := exec.CommandContext(cmd.Context(), argv[0], argv[1:]...)
			c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			if err := c.Run(); err != nil {
				if exit, ok := errors.AsType[*exec.ExitError](err); ok {
					return &command.ExitError{Code: exit.ExitCode(), Err: fmt.Errorf("%s on %s: %w", args[1], h.Name, err)}
				}
				return fmt.Errorf("run %s on %s: %w", args[1], h.Name, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&state, "state", labstate.DefaultPath, "`file` natlab up wrote")
	return cmd
}
