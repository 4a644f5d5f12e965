package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

func (c *cli) requestContactCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:     "request-contact USER",
		Aliases: []string{"add-contact"},
		Short:   "Ask a user to be a contact",
		Long: `Request-contact asks USER to become a contact (add-contact is its older
name). USER sees the request now, or at their next login; the two of you
are contacts when they accept, or at once when they had asked you too.`,
		Example: `  parley request-contact bob
  parley add-contact bob --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := strings.ToLower(args[0])
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				res, err := cl.RequestContact(ctx, user)
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(res)
				}
				if res.Accepted {
					fmt.Fprintf(c.out, "%s is now a contact\n", safe(user))
				} else {
					fmt.Fprintf(c.out, "asked %s; you become contacts when %s accepts (they see the request now, or when they next log in)\n", safe(user), safe(user))
				}
				return nil
			})
		},
	})
}

// contactOps are the commands that name a user and return nothing.
var contactOps = map[string]struct {
	call    func(*api.Client, context.Context, string) error
	short   string
	long    string
	done    string // what happened, with %[1]s the user
	example string
}{
	"accept": {(*api.Client).AcceptContact, "Accept a user's contact request",
		"Accept makes USER, who asked to be your contact, a contact. It exits 3 when USER has not asked.",
		"%[1]s is now a contact", "  parley accept alice"},
	"decline": {(*api.Client).DeclineContact, "Decline a user's contact request (they are not told)",
		"Decline drops USER's contact request; USER is not told. It exits 3 when USER has not asked.",
		"declined the request of %[1]s (they are not told)", "  parley decline mallory"},
	"remove": {(*api.Client).RemoveContact, "End a contact, or withdraw your request",
		"Remove ends the contact with USER, or withdraws your request to USER.",
		"removed %[1]s: no longer a contact, or your request is withdrawn", "  parley remove bob"},
	"block": {(*api.Client).Block, "Remove a user and ignore their requests",
		"Block removes USER as a contact (or their request) and ignores their requests from now on. Undo with parley unblock USER.",
		"blocked %[1]s: no longer a contact, and their requests are ignored (undo with: parley unblock %[1]s)", "  parley block mallory"},
	"unblock": {(*api.Client).Unblock, "Lift a block",
		"Unblock lifts a block: USER may ask to be a contact again.",
		"unblocked %[1]s; they may ask to be a contact again", "  parley unblock mallory"},
}

func (c *cli) contactOpCmd(name string) *cobra.Command {
	o := contactOps[name]
	return c.jsonFlag(&cobra.Command{
		Use:     name + " USER",
		Short:   o.short,
		Long:    o.long + " --json prints {}.",
		Example: o.example + "\n" + o.example + " --json",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := strings.ToLower(args[0])
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				if err := o.call(cl, ctx, user); err != nil {
					return err
				}
				if c.json {
					return c.printJSON(struct{}{})
				}
				fmt.Fprintf(c.out, o.done+"\n", safe(user))
				return nil
			})
		},
	})
}

func (c *cli) contactsCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "contacts",
		Short: "List contacts with presence, pending requests and blocks",
		Long: `Contacts reads the contact book from the server and lists each contact with
presence, devices and connection path, then the requests waiting both ways
and the blocked users.`,
		Example: `  parley contacts
  parley contacts --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				b, err := cl.Contacts(ctx)
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(b)
				}
				fmt.Fprintln(c.out, "contacts:")
				w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
				printContacts(w, b.Contacts)
				if len(b.Contacts) == 0 {
					fmt.Fprintln(w, "  (none yet: parley request-contact USER)")
				}
				if err := w.Flush(); err != nil {
					return err
				}
				printRequests(c.out, b.Incoming, b.Outgoing)
				if len(b.Blocked) > 0 {
					fmt.Fprintf(c.out, "blocked: %s (undo with: parley unblock USER)\n", safeJoin(b.Blocked))
				}
				return nil
			})
		},
	})
}

// printContacts writes one line per contact: presence, devices and path.
func printContacts(w io.Writer, contacts []apitype.ContactStatus) {
	for _, ct := range contacts {
		state := "offline"
		if ct.Online {
			state = "online"
			if n := len(ct.Devices); n > 1 {
				state = fmt.Sprintf("online on %d devices", n)
			}
		} else if !ct.LastSeen.IsZero() {
			state = "last seen " + ct.LastSeen.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\n", safe(ct.Username), state, safe(apitype.PathLabel(ct.Path, ct.Transport)))
	}
}

// printRequests lists pending contact requests both ways.
func printRequests(out io.Writer, incoming, outgoing []string) {
	for _, u := range incoming {
		u = safe(u)
		fmt.Fprintf(out, "%s asks to be your contact: parley accept %s (or parley decline %s)\n", u, u, u)
	}
	if len(outgoing) > 0 {
		fmt.Fprintf(out, "waiting for an answer from: %s\n", safeJoin(outgoing))
	}
}

// safeJoin lists users for people, each made safe.
func safeJoin(users []string) string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = safe(u)
	}
	return strings.Join(out, ", ")
}
