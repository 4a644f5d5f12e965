package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"text/tabwriter"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) shareCmd() *cobra.Command {
	var detach bool
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "share USER PATH",
		Short: "Offer a file or folder to a contact and wait for the answer",
		Long: `Share offers the file or folder at PATH to the contact USER. It is shared
in place (nothing is copied; a file changed afterwards is no longer
served), not announced, and served only to USER's devices once they
accept. USER gets the offer now, or when they are next online; it shows in
their parley offers and parley watch.

Share then waits for the answer: it says when USER has the offer and
whether they accepted or declined, and then, while USER downloads from
this device, how much it has sent them (a progress bar on a terminal),
until all is sent. Ctrl-C stops waiting, not the offer nor the upload;
--detach only makes the offer. Keep the daemon running until USER has
it. parley cancel-offer ID withdraws it.

--json prints the API's Offer as one JSON object per line at each change.
It exits 0 when all was sent (or on --detach, Ctrl-C) and 1 when USER
declined or their device refused the offer.`,
		Example: `  parley share bob ./talk.mp4
  parley share bob ~/photos/2026 --detach
  parley share bob ./talk.mp4 --json | jq -r .state`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[1]) // the daemon does not run in our folder
			if err != nil {
				return fmt.Errorf("share %s: %w", args[1], err)
			}
			return c.share(cmd.Context(), apitype.ShareRequest{To: args[0], Path: path}, detach)
		},
	})
	cmd.Flags().BoolVar(&detach, "detach", false, "make the offer and return; follow it with parley offers or parley watch")
	// USER comes from the daemon, PATH is a local file.
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return c.completeFirst(users)(cmd, args, prefix)
		}
		return nil, cobra.ShellCompDirectiveDefault
	}
	return cmd
}

// share makes an offer and, unless detach, follows it until it is
// answered or ctx ends.
func (c *cli) share(ctx context.Context, req apitype.ShareRequest, detach bool) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	st, err := cl.Status(callCtx) // the cursor first: no event of the offer is missed
	if err != nil {
		return err
	}
	o, err := cl.Share(callCtx, req)
	if err != nil {
		return err
	}
	lines := json.NewEncoder(c.out)
	show := func(o apitype.Offer) error {
		if c.json {
			return lines.Encode(o)
		}
		_, err := fmt.Fprintln(c.out, offerLine(o))
		return err
	}
	if err := show(o); err != nil {
		return err
	}
	if detach {
		if !c.json {
			fmt.Fprintf(c.out, "follow it with: parley offers (or parley watch)\nwithdraw it with: parley cancel-offer %s\n", safe(o.ID))
		}
		return nil
	}
	stands := func() error { // Ctrl-C: the offer stands
		fmt.Fprintf(c.errOut, "the offer stands (id %s); see parley offers\n", safe(o.ID))
		return nil
	}
	evs, err := cl.Watch(ctx, st.EventSeq)
	if err != nil {
		if ctx.Err() != nil {
			return stands() // Ctrl-C while the stream opened
		}
		return fmt.Errorf("follow the offer (it stands; see parley offers): %w", err)
	}
	for o.State == apitype.OfferPending {
		ev, ok := <-evs
		if !ok {
			if ctx.Err() != nil {
				return stands()
			}
			return fmt.Errorf("the daemon went away; see parley offers when it is back (id %s)", o.ID)
		}
		next := o
		switch {
		case ev.Kind == apitype.EventGap:
			if next, err = c.offer(ctx, cl, o.ID); err != nil {
				if ctx.Err() != nil {
					return stands()
				}
				return err
			}
		case ev.Kind == apitype.EventOffer && ev.Offer != nil && ev.Offer.ID == o.ID:
			next = *ev.Offer
		default:
			continue
		}
		if next.State == o.State && next.Delivered == o.Delivered {
			continue
		}
		o = next
		if err := show(o); err != nil {
			return err // the reader went away (a closed pipe)
		}
	}
	switch o.State {
	case apitype.OfferAccepted:
		return c.followUpload(ctx, cl, evs, o, show)
	case apitype.OfferDeclined:
		return fmt.Errorf("%s declined %s", safe(o.To), safe(o.Name))
	case apitype.OfferRefused:
		return fmt.Errorf("%s's device refused the offer of %s: %s", safe(o.To), safe(o.Name), safe(o.Error))
	}
	return fmt.Errorf("the offer of %s to %s was %s", safe(o.Name), safe(o.To), safe(string(o.State)))
}

// followUpload follows an accepted offer while the recipient downloads:
// a bar of the bytes this device sent them on a terminal, the offer as
// JSON lines with --json, one line at the end otherwise. It returns when
// all was sent, the offer ends, or ctx ends (the recipient goes on
// downloading while the daemon runs).
func (c *cli) followUpload(ctx context.Context, cl *api.Client, evs <-chan apitype.Event, o apitype.Offer, show func(apitype.Offer) error) error {
	to, name := safe(o.To), safe(o.Name)
	var bar *progressbar.ProgressBar
	if !c.json && isTerminal(c.out) {
		bar = progressbar.NewOptions64(max(o.Size, 1),
			progressbar.OptionSetWriter(c.out),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetDescription("sending "+barCut(name)+" to "+to),
		)
	} else if !c.json {
		fmt.Fprintf(c.out, "%s accepted; sending %s from this device (keep the daemon running)\n", to, name)
	}
	update := func() error {
		if bar != nil {
			return bar.Set64(min(o.BytesSent, o.Size))
		}
		if c.json {
			return show(o)
		}
		return nil
	}
	if bar != nil { // JSON lines: the accepted offer was the last line
		if err := update(); err != nil {
			return err
		}
	}
	for o.State == apitype.OfferAccepted && o.BytesSent < o.Size {
		ev, ok := <-evs
		if !ok {
			if bar != nil {
				fmt.Fprintln(c.out)
			}
			if ctx.Err() != nil {
				fmt.Fprintf(c.errOut, "%s goes on downloading from this device while the daemon runs; see parley offers\n", to)
				return nil
			}
			return fmt.Errorf("the daemon went away; see parley offers when it is back (id %s)", safe(o.ID))
		}
		next := o
		var err error
		switch {
		case ev.Kind == apitype.EventGap:
			if next, err = c.offer(ctx, cl, o.ID); err != nil {
				return err
			}
		case ev.Kind == apitype.EventOffer && ev.Offer != nil && ev.Offer.ID == o.ID:
			next = *ev.Offer
		default:
			continue
		}
		if next.BytesSent == o.BytesSent && next.State == o.State {
			continue
		}
		o = next
		if err := update(); err != nil {
			return err
		}
	}
	if bar != nil {
		fmt.Fprintln(c.out)
	}
	if o.State != apitype.OfferAccepted {
		return fmt.Errorf("the offer of %s to %s was %s", name, to, safe(string(o.State)))
	}
	if !c.json {
		fmt.Fprintf(c.out, "sent %s (%s) to %s\n", name, byteCount(o.Size), to)
	}
	return nil
}

// barCut shortens a name for a progress bar's line.
func barCut(name string) string {
	r := []rune(name)
	if len(r) > barName {
		return string(append(r[:barName-1], '…'))
	}
	return name
}

// offer reads the offer id from the daemon.
func (c *cli) offer(ctx context.Context, cl *api.Client, id string) (apitype.Offer, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	list, err := cl.Offers(ctx)
	if err != nil {
		return apitype.Offer{}, err
	}
	for _, o := range list {
		if o.ID == id {
			return o, nil
		}
	}
	return apitype.Offer{}, fmt.Errorf("the offer %s is gone", id)
}

func (c *cli) offersCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "offers",
		Short: "List the files offered to you and by you",
		Long: `Offers lists the offers this device received and made, oldest first: id,
direction (in: to you, out: by you), the other user, name, size, number
of files and state (pending, accepted, declined, cancelled, refused; an
outgoing offer not yet delivered says so). Accept an incoming one with
parley accept-file ID, decline it with parley decline-file ID. --json
prints the API's list of Offer.`,
		Example: `  parley offers
  parley offers --json | jq -r '.[] | select(.direction == "in" and .state == "pending") | .id'`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				list, err := cl.Offers(ctx)
				if err != nil {
					return err
				}
				if c.json {
					if list == nil {
						list = []apitype.Offer{}
					}
					return c.printJSON(list)
				}
				if len(list) == 0 {
					fmt.Fprintln(c.out, "no offers yet: parley share USER PATH")
					return nil
				}
				w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ID\tDIR\tWHO\tNAME\tSIZE\tFILES\tSTATE")
				for _, o := range list {
					who := "from " + safe(o.From)
					if o.Direction == "out" {
						who = "to " + safe(o.To)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", safe(o.ID), safe(o.Direction), who, safe(o.Name),
						byteCount(o.Size), o.Files, offerState(o))
				}
				return w.Flush()
			})
		},
	})
}

func (c *cli) acceptFileCmd() *cobra.Command {
	var detach bool
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "accept-file OFFER [DIR]",
		Short: "Accept a file or folder offered to you and download it",
		Long: `Accept-file accepts the offer OFFER (see parley offers), tells the sender,
and downloads the content from the sender's device into DIR (by default
the downloads folder in the data directory), then follows the download
as parley get does: a progress bar on a terminal, the API's Transfer as
JSON lines otherwise and with --json. The download is not published from
this device. It can be paused and resumed like any download (parley
pause, parley resume). Accepting an accepted offer follows its download.
--detach only starts it.

It exits 3 when no offer has the ID.`,
		Example: `  parley accept-file 3f9c0a1b2c3d4e5f60718293a4b5c6d7
  parley accept-file 3f9c0a1b2c3d4e5f60718293a4b5c6d7 ~/Videos --detach`,
		Args: argRange(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := apitype.AcceptOfferRequest{ID: args[0]}
			if len(args) == 2 {
				abs, err := filepath.Abs(args[1]) // the daemon does not run in our folder
				if err != nil {
					return fmt.Errorf("folder %s: %w", args[1], err)
				}
				req.Dir = abs
			}
			return c.download(cmd.Context(), func(ctx context.Context, cl *api.Client) (apitype.Transfer, error) {
				return cl.AcceptOffer(ctx, req)
			}, detach)
		},
	})
	cmd.Flags().BoolVar(&detach, "detach", false, "start the download and return; follow it with parley transfers or parley watch")
	cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return c.completeFirst(offerIDs)(cmd, args, prefix)
		}
		return nil, cobra.ShellCompDirectiveFilterDirs
	}
	return cmd
}

// offerOps are the commands that answer or withdraw one offer.
var offerOps = map[string]idOp{
	"decline-file": {
		short: "Decline a file or folder offered to you",
		long: `Decline-file declines the offer OFFER (see parley offers) and tells the
sender (now, or when their device is next online). Declining a declined
offer does nothing.`,
		done: "declined the offer ID",
		do:   (*api.Client).DeclineOffer,
	},
	"cancel-offer": {
		short: "Withdraw a file or folder you offered",
		long: `Cancel-offer withdraws the offer OFFER you made (see parley offers): its
content is no longer served to the recipient, and a download of it that
is under way stops. The recipient is not told.`,
		done: "withdrew the offer ID: it is no longer served",
		do:   (*api.Client).CancelOffer,
	},
}

func (c *cli) offerOpCmd(op string) *cobra.Command {
	return c.idOpCmd(op, offerOps[op], "OFFER", "offer", "3f9c0a1b2c3d4e5f60718293a4b5c6d7")
}

// offerIDs completes OFFER arguments.
func offerIDs(ctx context.Context, cl *api.Client) ([]string, error) {
	list, err := cl.Offers(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, o := range list {
		ids = append(ids, o.ID)
	}
	return ids, nil
}

// offerWhat is an offer's content: "talk.mp4 (40.0 MiB, 1 file)", the
// name escaped.
func offerWhat(o apitype.Offer) string {
	n := "1 file"
	if o.Files != 1 {
		n = fmt.Sprintf("%d files", o.Files)
	}
	return fmt.Sprintf("%s (%s, %s)", safe(o.Name), byteCount(o.Size), n)
}

// offerState is where an offer stands, for the list.
func offerState(o apitype.Offer) string {
	switch {
	case o.Direction == "out" && o.State == apitype.OfferPending && !o.Delivered:
		return "pending, not delivered yet"
	case o.State == apitype.OfferRefused:
		return "refused: " + safe(o.Error)
	case o.State == apitype.OfferAccepted && o.TransferID != "":
		return "accepted, transfer " + safe(o.TransferID)
	}
	return safe(string(o.State))
}

// offerLine describes an offer on one line, the network's text escaped.
func offerLine(o apitype.Offer) string {
	id, what := safe(o.ID), offerWhat(o)
	if o.Direction == "in" {
		from := safe(o.From)
		switch o.State {
		case apitype.OfferPending:
			return fmt.Sprintf("%s offers you %s (id %s): parley accept-file %s, or parley decline-file %s", from, what, id, id, id)
		case apitype.OfferAccepted:
			return fmt.Sprintf("you accepted %s from %s (id %s, transfer %s)", what, from, id, safe(o.TransferID))
		case apitype.OfferDeclined:
			return fmt.Sprintf("you declined %s from %s (id %s)", what, from, id)
		}
		return fmt.Sprintf("%s from %s (id %s): %s", what, from, id, offerState(o))
	}
	to := safe(o.To)
	switch o.State {
	case apitype.OfferPending:
		if !o.Delivered {
			return fmt.Sprintf("offered %s to %s (id %s); %s gets it when online", what, to, id, to)
		}
		return fmt.Sprintf("%s has your offer of %s (id %s); waiting for an answer", to, what, id)
	case apitype.OfferAccepted:
		return fmt.Sprintf("%s accepted %s (id %s)", to, what, id)
	case apitype.OfferDeclined:
		return fmt.Sprintf("%s declined %s (id %s)", to, what, id)
	case apitype.OfferCancelled:
		return fmt.Sprintf("you withdrew the offer of %s to %s (id %s)", what, to, id)
	}
	return fmt.Sprintf("%s to %s (id %s): %s", what, to, id, offerState(o))
}
