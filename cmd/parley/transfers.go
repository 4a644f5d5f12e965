package main

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) transfersCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "transfers",
		Short: "List the downloads: state, progress, rate and peers",
		Long: `Transfers lists this daemon's downloads, oldest first, finished ones
included: id, name, state, verified bytes of the total, rate and the number
of peers fetched from. Unfinished downloads go on after the daemon restarts
(paused ones stay paused). --json prints the API's list of Transfer.`,
		Example: `  parley transfers
  parley transfers --json | jq -r '.[] | select(.state == "failed") | .id'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				ts, err := cl.Transfers(ctx)
				if err != nil {
					return err
				}
				if c.json {
					if ts == nil {
						ts = []apitype.Transfer{}
					}
					return c.printJSON(ts)
				}
				if len(ts) == 0 {
					fmt.Fprintln(c.out, "no transfers yet: parley get LINK")
					return nil
				}
				w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tNAME\tSTATE\tDONE\tRATE\tPEERS")
				for _, t := range ts {
					state := safe(string(t.State))
					if t.State == apitype.TransferFailed && t.Error != "" {
						state += ": " + safe(t.Error)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\n", safe(t.ID), safe(t.Name), state,
						doneOfTotal(t), rate(t), t.Peers)
				}
				return w.Flush()
			})
		},
	})
}

// transferOps are the commands that act on one transfer.
var transferOps = map[string]idOp{
	"pause": {
		short: "Pause a download, keeping what was verified",
		long: `Pause stops the download ID (see parley transfers), keeping the chunks
already verified; parley resume ID goes on from them.`,
		done: "paused ID; resume with: parley resume ID",
		do:   (*api.Client).PauseTransfer,
	},
	"resume": {
		short: "Resume a paused or failed download",
		long: `Resume goes on with the paused or failed download ID (see parley
transfers) from the chunks already verified. parley watch or parley
transfers shows how it goes.`,
		done: "resumed ID; follow it with parley transfers or parley watch; pause it with: parley pause ID",
		do:   (*api.Client).ResumeTransfer,
	},
	"cancel": {
		short: "Cancel a download and delete what was downloaded",
		long: `Cancel stops the download ID (see parley transfers) and deletes what was
downloaded of it. A download that is done is not deleted.`,
		done: "cancelled ID",
		do:   (*api.Client).CancelTransfer,
	},
}

func (c *cli) transferOpCmd(op string) *cobra.Command {
	return c.idOpCmd(op, transferOps[op], "ID", "transfer", "7f3a9c")
}

// idOp is a command that acts on one transfer or offer, named by its ID.
type idOp struct {
	short, long string
	done        string // what is printed, ID standing for the ID
	do          func(*api.Client, context.Context, string) error
}

// idOpCmd builds the command op (o) on one noun, whose argument the usage
// calls arg; exampleID is an ID for the examples.
func (c *cli) idOpCmd(op string, o idOp, arg, noun, exampleID string) *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   op + " " + arg,
		Short: o.short,
		Long: o.long + `

It exits 3 when no ` + noun + ` has the ID. --json prints {}.`,
		Example: fmt.Sprintf("  parley %s %s\n  parley %s %s --json", op, exampleID, op, exampleID),
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				if err := o.do(cl, ctx, args[0]); err != nil {
					return err
				}
				if c.json {
					return c.printJSON(struct{}{})
				}
				fmt.Fprintln(c.out, strings.ReplaceAll(o.done, "ID", safe(args[0])))
				return nil
			})
		},
	})
}

// transferIDs completes ID arguments.
func transferIDs(ctx context.Context, cl *api.Client) ([]string, error) {
	ts, err := cl.Transfers(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, t := range ts {
		ids = append(ids, t.ID)
	}
	return ids, nil
}

// doneOfTotal is a transfer's verified bytes of its total: "12.0 MiB of
// 40.0 MiB (30%)".
func doneOfTotal(t apitype.Transfer) string {
	if t.BytesTotal <= 0 {
		return byteCount(t.BytesDone)
	}
	return fmt.Sprintf("%s of %s (%d%%)", byteCount(t.BytesDone), byteCount(t.BytesTotal), t.BytesDone*100/t.BytesTotal)
}

// rate is a transfer's rate, "-" when it is not fetching.
func rate(t apitype.Transfer) string {
	if t.State != apitype.TransferRunning || t.Rate <= 0 {
		return "-"
	}
	return byteCount(int64(t.Rate)) + "/s"
}

// eta is how long the rest of a transfer takes at the daemon's rate; 0
// when that cannot be told.
func eta(t apitype.Transfer) time.Duration {
	left := t.BytesTotal - t.BytesDone
	if t.State != apitype.TransferRunning || t.Rate <= 0 || left <= 0 {
		return 0
	}
	return time.Duration(float64(left) / t.Rate * float64(time.Second)).Round(time.Second)
}

// transferLine describes a transfer on one line, the network's text
// escaped: "slides.pdf (id 7f3a): running, 12.0 MiB of 40.0 MiB (30%),
// 2.0 MiB/s, ETA 14s, 3 peers".
func transferLine(t apitype.Transfer) string {
	what := fmt.Sprintf("%s (id %s): %s", safe(t.Name), safe(t.ID), progressText(t))
	if t.State == apitype.TransferDone && t.Path != "" {
		what += " at " + safe(t.Path)
	}
	return what
}

// progressText is where a transfer stands, from the daemon's numbers
// only: the state, the verified bytes, and while running the rate, the
// time left at that rate and the peers.
func progressText(t apitype.Transfer) string {
	switch t.State {
	case apitype.TransferRunning:
		s := fmt.Sprintf("%s, %s", doneOfTotal(t), rate(t))
		if d := eta(t); d > 0 {
			s += ", ETA " + d.String()
		}
		return s + ", " + peers(t.Peers)
	case apitype.TransferFindingProviders:
		return "finding providers, " + doneOfTotal(t)
	case apitype.TransferFailed:
		return "failed: " + safe(t.Error)
	case apitype.TransferDone:
		return "done, " + byteCount(t.BytesDone)
	}
	return safe(string(t.State)) + ", " + doneOfTotal(t)
}

func peers(n int) string {
	if n == 1 {
		return "1 peer"
	}
	return fmt.Sprintf("%d peers", n)
}

// finished reports whether a transfer is over: done, failed or cancelled.
func finished(s apitype.TransferState) bool {
	return s == apitype.TransferDone || s == apitype.TransferFailed || s == apitype.TransferCancelled
}
