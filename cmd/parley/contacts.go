package main

import (
	"context"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/parleynet/parley/app/api"
)

// requestContact is request-contact, and add-contact (its older name).
func (c *cli) requestContact(ctx context.Context, name string, args []string) error {
	return c.clientCmd(ctx, name, args, 1, "USER", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		user := strings.ToLower(rest[0])
		res, err := cl.RequestContact(ctx, user)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(res)
		}
		if res.Accepted {
			fmt.Fprintf(c.out, "%s is now a contact\n", user)
		} else {
			fmt.Fprintf(c.out, "asked %s; you become contacts when %s accepts (they see the request now, or when they next log in)\n", user, user)
		}
		return nil
	})
}

// contactOp runs one of the commands that name a user and return nothing.
func (c *cli) contactOp(ctx context.Context, name string, args []string) error {
	type op struct {
		call func(*api.Client, context.Context, string) error
		done string // what happened, with %[1]s the user
	}
	ops := map[string]op{
		"accept":  {(*api.Client).AcceptContact, "%[1]s is now a contact"},
		"decline": {(*api.Client).DeclineContact, "declined the request of %[1]s (they are not told)"},
		"remove":  {(*api.Client).RemoveContact, "removed %[1]s: no longer a contact, or your request is withdrawn"},
		"block":   {(*api.Client).Block, "blocked %[1]s: no longer a contact, and their requests are ignored (undo with: parley unblock %[1]s)"},
		"unblock": {(*api.Client).Unblock, "unblocked %[1]s; they may ask to be a contact again"},
	}
	o := ops[name]
	return c.clientCmd(ctx, name, args, 1, "USER", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		user := strings.ToLower(rest[0])
		if err := o.call(cl, ctx, user); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(struct{}{})
		}
		fmt.Fprintf(c.out, o.done+"\n", user)
		return nil
	})
}

func (c *cli) contacts(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "contacts", args, 0, "", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
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
			fmt.Fprintf(c.out, "blocked: %s (undo with: parley unblock USER)\n", strings.Join(b.Blocked, ", "))
		}
		return nil
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
		fmt.Fprintf(w, "  %s\t%s\t%s\n", ct.Username, state, ct.Path)
	}
}

// printRequests lists pending contact requests both ways.
func printRequests(out io.Writer, incoming, outgoing []string) {
	for _, u := range incoming {
		fmt.Fprintf(out, "%s asks to be your contact: parley accept %s (or parley decline %s)\n", u, u, u)
	}
	if len(outgoing) > 0 {
		fmt.Fprintf(out, "waiting for an answer from: %s\n", strings.Join(outgoing, ", "))
	}
}
