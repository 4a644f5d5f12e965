package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) getCmd() *cobra.Command {
	var (
		dir            string
		noSeed, detach bool
	)
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "get LINK",
		Short: "Download content by its parley:// link and follow the download",
		Long: `Get starts downloading the content a parley:// link names into --dir (by
default the downloads folder in the data directory), then follows it live
until it is done, failed or cancelled. The daemon does the downloading:
Ctrl-C stops following, not the download, and prints how to watch or pause
it. --detach only starts it.

On a terminal it shows a progress bar with the bytes verified so far, the
rate, the time left at that rate and the peers fetched from, as the daemon
reports them. Otherwise, and with --json, it prints the API's Transfer as
one JSON object per line at each report.

Once done, the content is published from this device too (others fetch it
from you as well) unless --no-seed.

It exits 0 when the download is done (printing where it is) or still
going on (--detach, Ctrl-C), and 1 when it failed (resume it with parley
resume ID) or was cancelled.`,
		Example: `  parley get 'parley://bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4?name=slides.pdf&size=41943040'
  parley get "$LINK" --dir ~/Downloads --no-seed
  parley get "$LINK" --detach --json | jq -r .id`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.GetRequest{Link: args[0], NoSeed: noSeed}
			if dir != "" {
				abs, err := filepath.Abs(dir) // the daemon does not run in our folder
				if err != nil {
					return fmt.Errorf("--dir %s: %w", dir, err)
				}
				req.Dir = abs
			}
			return c.download(cmd.Context(), func(ctx context.Context, cl *api.Client) (apitype.Transfer, error) {
				return cl.Get(ctx, req)
			}, detach)
		},
	})
	cmd.Flags().StringVar(&dir, "dir", "", "the folder to download into (default: the downloads folder in the data directory)")
	cmd.Flags().BoolVar(&noSeed, "no-seed", false, "do not publish the content from this device once downloaded")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the download and return; follow it with parley transfers or parley watch")
	cmd.MarkFlagDirname("dir")
	return cmd
}

// download starts a download (get, accept-file) and, unless detach,
// follows it from the event stream until it is over or ctx ends (Ctrl-C).
func (c *cli) download(ctx context.Context, start func(context.Context, *api.Client) (apitype.Transfer, error), detach bool) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	// The cursor comes before Get, so no event of the transfer is missed.
	callCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	st, err := cl.Status(callCtx)
	if err != nil {
		return err
	}
	t, err := start(callCtx, cl)
	if err != nil {
		return err
	}
	return c.follow(ctx, cl, st.EventSeq, t, detach)
}

// follow prints a download just started and, unless detach, follows it
// from the event stream after since until it is over or ctx ends
// (Ctrl-C).
func (c *cli) follow(ctx context.Context, cl *api.Client, since uint64, t apitype.Transfer, detach bool) error {
	if detach {
		if c.json {
			return c.printJSON(t)
		}
		fmt.Fprintf(c.out, "downloading %s (id %s) into %s\n", safe(t.Name), safe(t.ID), safe(t.Dir))
		c.followHint(c.out, t.ID)
		return nil
	}
	var err error
	var show progress
	msgs := c.out // where messages go: standard output is JSON lines without a terminal
	if !c.json && isTerminal(c.out) {
		show = newBar(c.out, t)
	} else {
		show = &jsonLines{enc: json.NewEncoder(c.out)}
		msgs = c.errOut
	}
	evs, err := cl.Watch(ctx, since)
	if err != nil {
		if ctx.Err() != nil { // Ctrl-C while the stream opened: the download goes on
			fmt.Fprintf(msgs, "the download goes on in the daemon (id %s)\n", safe(t.ID))
			c.followHint(msgs, t.ID)
			return nil
		}
		return fmt.Errorf("follow the download (it goes on; see parley transfers): %w", err)
	}
	if err := show.update(t); err != nil {
		return err
	}
	for !finished(t.State) {
		ev, ok := <-evs
		if !ok {
			show.stop()
			if ctx.Err() != nil { // Ctrl-C: the download goes on
				fmt.Fprintf(msgs, "the download goes on in the daemon (id %s)\n", safe(t.ID))
				c.followHint(msgs, t.ID)
				return nil
			}
			return fmt.Errorf("the daemon went away; see parley transfers when it is back (id %s)", t.ID)
		}
		switch {
		case ev.Kind == apitype.EventGap:
			// Events were lost: read where the transfer stands.
			if t, err = c.transfer(ctx, cl, t.ID); err != nil {
				show.stop()
				return err
			}
		case ev.Kind == apitype.EventTransfer && ev.Transfer != nil && ev.Transfer.ID == t.ID:
			t = *ev.Transfer
		default:
			continue
		}
		if err := show.update(t); err != nil {
			return err // the reader went away (a closed pipe)
		}
	}
	show.stop()
	switch t.State {
	case apitype.TransferFailed:
		return fmt.Errorf("download of %s failed: %s; %s", safe(t.Name), safe(t.Error), failureHint(t))
	case apitype.TransferCancelled:
		return fmt.Errorf("download of %s was cancelled", safe(t.Name))
	}
	fmt.Fprintf(msgs, "downloaded %s to %s\n", safe(t.Name), safe(t.Path))
	return nil
}

// transfer reads the transfer id from the daemon.
func (c *cli) transfer(ctx context.Context, cl *api.Client, id string) (apitype.Transfer, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	ts, err := cl.Transfers(ctx)
	if err != nil {
		return apitype.Transfer{}, err
	}
	for _, t := range ts {
		if t.ID == id {
			return t, nil
		}
	}
	return apitype.Transfer{}, fmt.Errorf("the transfer %s is gone", id)
}

// followHint says how to follow, pause or cancel a download.
func (c *cli) followHint(w io.Writer, id string) {
	id = safe(id)
	fmt.Fprintf(w, "follow it with: parley transfers (or parley watch)\npause it with:  parley pause %s\ncancel it with: parley cancel %s\n", id, id)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progress shows how a download goes.
type progress interface {
	update(apitype.Transfer) error
	stop()
}

// jsonLines prints each report as one JSON object per line.
type jsonLines struct{ enc *json.Encoder }

func (j *jsonLines) update(t apitype.Transfer) error { return j.enc.Encode(t) }
func (j *jsonLines) stop()                           {}

// bar draws a progress bar (github.com/schollz/progressbar). The bar's
// position and every number beside it come from the daemon's reports
// (verified bytes, rate, peers): the bar's own rate and time estimates are
// off.
type bar struct {
	w   io.Writer
	bar *progressbar.ProgressBar
	max int64
}

func newBar(w io.Writer, t apitype.Transfer) *bar {
	b := &bar{w: w, max: max(t.BytesTotal, 1)}
	b.bar = progressbar.NewOptions64(b.max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionSetDescription(barText(t)),
	)
	return b
}

func (b *bar) update(t apitype.Transfer) error {
	if t.BytesTotal > 0 && t.BytesTotal != b.max {
		b.max = t.BytesTotal
		b.bar.ChangeMax64(b.max)
	}
	b.bar.Describe(barText(t))
	return b.bar.Set64(min(t.BytesDone, b.max))
}

func (b *bar) stop() {
	fmt.Fprintln(b.w)
}

// barText is what the bar shows beside itself: the name (cut short, so
// that the line fits a terminal) and the daemon's numbers.
func barText(t apitype.Transfer) string {
	return barCut(safe(t.Name)) + ": " + progressText(t)
}

// barName is the most runes of a name the bar shows.
const barName = 24

// failureHint says what to do about a failed download.
func failureHint(t apitype.Transfer) string {
	switch t.ErrorCode {
	case apitype.TransferNoSpace:
		return "free some space, then go on from the verified bytes with: parley resume " + t.ID
	case apitype.TransferNotAdmitted:
		return "the providers only serve logged-in members (or the user it was offered to): check parley status, then: parley resume " + t.ID
	}
	return "retry with: parley resume " + t.ID
}
