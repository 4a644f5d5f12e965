package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/parleynet/parley/testnet"
)

// watchInterval is how often up refreshes its summary.
const watchInterval = 2 * time.Second

// watch shows the network's summary until ctx ends: on a terminal
// redrawn in place below the walkthrough (the cursor goes back up over
// the previous summary, which is cleared), otherwise as a line per change.
func watch(ctx context.Context, n *testnet.Network, out io.Writer) {
	f, ok := out.(*os.File)
	redraw := ok && term.IsTerminal(int(f.Fd()))
	if !redraw {
		fmt.Fprintln(out, "\nSummary changes follow (Ctrl-C stops the network):")
	}
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	var prev testnet.Summary
	drawn := 0 // lines of the summary on the screen
	for {
		s := n.Summarize(ctx)
		if redraw {
			if drawn > 0 {
				fmt.Fprintf(out, "\033[%dF\033[J", drawn)
			}
			fmt.Fprintf(out, "\n%s  (refreshed every %v; Ctrl-C stops the network)\n%s",
				time.Now().Format(time.TimeOnly), watchInterval, s)
			drawn = len(s.Lines) + 2
		} else {
			for _, l := range s.Changed(prev) {
				fmt.Fprintf(out, "%s %s\n", time.Now().Format(time.TimeOnly), l)
			}
		}
		prev = s
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
