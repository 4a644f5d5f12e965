package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/logs"
	"github.com/parleynet/parley/testnet"
	"github.com/parleynet/parley/testnet/labnet"
	"github.com/parleynet/parley/testnet/report"
	"github.com/parleynet/parley/testnet/runner"
	"github.com/parleynet/parley/testnet/scenario"
)

// runFlags are the flags of run.
type runFlags struct {
	natlab     bool
	reportDir  string
	clients    int
	supernodes int
	lab        labFlags
	attempts   int
	direct     time.Duration
	messages   int
	sizeMiB    int
	duration   time.Duration
}

func runCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a scripted scenario (connectivity, chat, failover, files, churn, dht) to the end and write a report",
		Long: `run brings up a network, runs one scenario to the end, takes the network
down and writes a report into --report: report.json, report.md (Markdown
tables, also printed) and SVG charts (connectivity.svg, a heat map of the
outcomes by NAT-type pair; latency.svg, a latency distribution). The
numbers are what happened: the path labels the clients report and the
times at which messages arrived at their receivers.

Scenarios:
  connectivity  every pair of clients connects afresh --attempts times (each
                attempt restarts every client and clears the NATs' mappings)
                and sends one message: direct, hole-punched, relayed or
                failed; time to first message and to a direct path
  chat          --messages messages each way between every pair: latency
                and messages lost (must be none)
  failover      a relayed pair chats while the supernode relaying it is
                killed (SIGKILL), then the next one stopped (SIGTERM): time
                to recover, messages lost (must be none)
  files         in every pair one publishes a file of --size-mib MiB of
                random bytes and the other downloads it: time, MB/s, the
                path it took, and whether the download is intact; with
                croc on PATH also the same size sent with croc through its
                relay on 127.0.0.1 (--no-local), and parley's MB/s ÷ croc's
  churn         every pair chats both ways for --duration while the clients
                restart one after another and a supernode leaves (SIGTERM):
                messages lost (must be none)
  dht           every client provides a CID, then looks up every other
                client's address record and CID in the DHT: latency, hops
                (from the DHT's trace of each lookup) and success rate;
                loopback only (the daemons' API has no DHT call)

Without --natlab the network runs in this process on 127.0.0.1: engines
that imitate a NAT, so every pair is relayed (no build, no root; the
connectivity matrix has one row). With --natlab (root) the real binaries
run in network namespaces behind real Linux NATs (see "natlab up" for the
topology flags), built with the natlab tag from the module this command
runs in.

The exit status is 1 when a check failed: a pair that could not talk, a
cone↔cone pair that did not end up direct, a message lost.`,
		Example: `  go run ./cmd/parley-testnet run chat
  sudo go run ./cmd/parley-testnet run connectivity --natlab --nat cone=3,symmetric=3 --attempts 10
  sudo go run ./cmd/parley-testnet run failover --natlab --nat symmetric=2 --supernodes 3`,
		Args: command.ExactArgs("SCENARIO"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := f.options(args[0], cmd.Flags().Changed("supernodes"))
			if err != nil {
				return err
			}
			o.Command = "parley-testnet " + strings.Join(os.Args[1:], " ")
			return runScenario(cmd.Context(), o, f.reportDir, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	fs.BoolVar(&f.natlab, "natlab", false, "run in the NAT lab (root): real binaries behind real Linux NATs")
	fs.StringVar(&f.reportDir, "report", "parley-testnet-report", "`directory` for report.json, report.md and the charts")
	fs.IntVar(&f.clients, "clients", 3, "loopback: number of clients")
	fs.IntVar(&f.supernodes, "supernodes", 2, "number of supernodes (failover and churn: default 3, they stop supernodes)")
	f.lab.register(cmd, false)
	fs.IntVar(&f.attempts, "attempts", 3, "connectivity: attempts per pair")
	fs.DurationVar(&f.direct, "direct-timeout", 25*time.Second, "connectivity: how long an attempt waits for a direct path")
	fs.IntVar(&f.messages, "messages", 20, "chat: messages each way between every pair")
	fs.IntVar(&f.sizeMiB, "size-mib", 16, "files: size of each file in MiB")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "churn: how long clients come and go")
	return cmd
}

// options checks the flags and makes the runner's options.
func (f runFlags) options(name string, supernodesSet bool) (runner.Options, error) {
	if !slices.Contains(runner.Scenarios, name) {
		return runner.Options{}, command.Usagef("unknown scenario %q: want one of %s", name, strings.Join(runner.Scenarios, ", "))
	}
	stopsSupernodes := name == "failover" || name == "churn"
	if stopsSupernodes && !supernodesSet {
		f.supernodes = 3
	}
	switch {
	case f.supernodes < 1:
		return runner.Options{}, command.Usagef("--supernodes must be at least 1")
	case stopsSupernodes && f.supernodes < 3:
		return runner.Options{}, command.Usagef("%s stops supernodes and needs two left: --supernodes must be at least 3", name)
	case f.duration < time.Second:
		return runner.Options{}, command.Usagef("--duration must be at least 1s")
	case f.clients < 2:
		return runner.Options{}, command.Usagef("--clients must be at least 2")
	case f.attempts < 1:
		return runner.Options{}, command.Usagef("--attempts must be at least 1")
	case f.messages < 1:
		return runner.Options{}, command.Usagef("--messages must be at least 1")
	case f.sizeMiB < 1:
		return runner.Options{}, command.Usagef("--size-mib must be at least 1")
	case f.direct <= 0:
		return runner.Options{}, command.Usagef("--direct-timeout must be positive")
	case name == "dht" && f.natlab:
		return runner.Options{}, command.Usagef("dht runs on loopback only: the daemons' API has no DHT call")
	}
	o := runner.Options{
		Scenario:   name,
		NATLab:     f.natlab,
		Clients:    f.clients,
		Supernodes: f.supernodes,
		Connectivity: scenario.ConnectivityConfig{Attempts: f.attempts, DirectTimeout: f.direct,
			MessageTimeout: max(f.direct, 30*time.Second)},
		Chat: scenario.ChatConfig{Messages: f.messages, Grace: 30 * time.Second},
		Churn: scenario.ChurnConfig{Duration: f.duration, Period: 5 * time.Second, Interval: 500 * time.Millisecond,
			Grace: 60 * time.Second},
		DHT:      scenario.DHTConfig{Timeout: 30 * time.Second},
		Files:    scenario.FilesConfig{Size: int64(f.sizeMiB) << 20, Timeout: 5 * time.Minute, Croc: crocPath()},
		Failover: scenario.FailoverConfig{Interval: 200 * time.Millisecond, Settle: 3 * time.Second, RecoverTimeout: 60 * time.Second, Grace: 60 * time.Second},
	}
	if f.natlab {
		top, err := f.lab.topology(f.supernodes)
		if err != nil {
			return o, err
		}
		o.Topology = top
	}
	return o, nil
}

// runScenario runs a scenario with the logs in the report directory,
// writes the report and prints its Markdown.
func runScenario(ctx context.Context, o runner.Options, dir string, out, progress io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create report directory: %w", err)
	}
	logPath := filepath.Join(dir, "run.log")
	if err := logs.ToFile(logPath); err != nil {
		return err
	}
	logs.Setup("warn")
	fmt.Fprintf(progress, "Logs go to %s\n", logPath)
	o.Progress = progress
	if o.NATLab {
		defer labnet.Cleanup() // the lab binaries
	}
	r, err := runner.Run(ctx, o)
	if err != nil {
		r.Problems = append(r.Problems, "the run stopped: "+err.Error())
	}
	if werr := report.Write(dir, r); werr != nil {
		return errors.Join(err, werr)
	}
	if err := report.WriteMarkdown(out, r); err != nil {
		return err
	}
	fmt.Fprintf(progress, "Report in %s (report.json, report.md, charts)\n", dir)
	if err != nil {
		return fmt.Errorf("run %s: %w (details in %s)", o.Scenario, err, logPath)
	}
	if len(r.Problems) > 0 {
		return fmt.Errorf("run %s: %d checks failed, first: %s", o.Scenario, len(r.Problems), r.Problems[0])
	}
	return nil
}

// crocPath is croc's path, or empty when it is not on PATH.
func crocPath() string {
	p, _ := exec.LookPath("croc")
	return p
}

// demoName names the ith client made from --nat counts.
func demoName(i int) string { return testnet.DemoUsers(i + 1)[i].Name }
