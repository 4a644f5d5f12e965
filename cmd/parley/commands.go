package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parleynet/parley/app/api"
)

const requestTimeout = 60 * time.Second

// clientCmd runs a subcommand that talks to the daemon: it parses the
// subcommand's flags, finds the daemon and bounds the call with a timeout.
func (c *cli) clientCmd(ctx context.Context, name string, args []string, minArgs int, argsUsage string,
	setup func(*flag.FlagSet), do func(context.Context, *api.Client, []string) error) error {
	rest, err := c.flags(name, args, minArgs, argsUsage, setup)
	if err != nil {
		return err
	}
	cl, err := api.Dial(c.dataDir)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return do(ctx, cl, rest)
}

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) send(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "send", args, 2, "USER MESSAGE...", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		m, err := cl.Send(ctx, rest[0], strings.Join(rest[1:], " "))
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(m)
		}
		if m.State == apitype.MessageQueued {
			fmt.Fprintf(c.out, "queued for %s, who cannot be reached now; it is delivered when %s is online (id %s)\n", m.To, m.To, m.ID)
			return nil
		}
		fmt.Fprintf(c.out, "delivered to %s (%s), id %s\n", m.To, m.Path, m.ID)
		return nil
	})
}

func (c *cli) probe(ctx context.Context, args []string) error {
	var size sizeFlag = 16 << 20
	rest, err := c.flags("probe", args, 1, "USER", func(fs *flag.FlagSet) {
		fs.Var(&size, "size", "how much to send, e.g. 64MiB (at most 1GiB)")
	})
	if err != nil {
		return err
	}
	cl, err := api.Dial(c.dataDir)
	if err != nil {
		return err
	}
	// Allow for a slow path: 30 s plus 256 KiB/s.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+time.Duration(size/(256<<10))*time.Second)
	defer cancel()
	res, err := cl.Probe(ctx, rest[0], int64(size))
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(res)
	}
	fmt.Fprintf(c.out, "sent %s to %s in %s: %.1f MB/s, %s; every byte arrived intact\n",
		sizeFlag(res.Bytes), rest[0], res.Duration.Round(time.Millisecond), res.MBPerSecond, res.Path)
	return nil
}

func (c *cli) history(ctx context.Context, args []string) error {
	var limit int
	return c.clientCmd(ctx, "history", args, 1, "USER", func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 50, "how many of the latest messages to show (1 to 1000)")
	}, func(ctx context.Context, cl *api.Client, rest []string) error {
		msgs, err := cl.History(ctx, apitype.HistoryQuery{Contact: rest[0], Limit: limit})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(msgs)
		}
		if len(msgs) == 0 {
			fmt.Fprintf(c.out, "no messages with %s yet\n", rest[0])
		}
		for _, m := range msgs {
			how := m.Path
			switch m.State {
			case apitype.MessageQueued:
				how = "queued"
			case apitype.MessageFailed:
				how = "not delivered: " + m.Error
			}
			fmt.Fprintf(c.out, "%s  %-10s %s   [%s]\n", m.Sent.Local().Format("2006-01-02 15:04:05"), m.From+":", m.Body, how)
		}
		return nil
	})
}

func (c *cli) status(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "status", args, 0, "", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		s, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(s)
		}
		user := s.Username
		if user == "" {
			user = "(none)"
		}
		fmt.Fprintf(c.out, "device        %s\nuser          %s\nlogin         %s\nreachability  %s\n",
			s.Peer, user, loginState(s.LoggedIn, s.Login), s.Reachability)
		if len(s.PublicAddrs) > 0 {
			fmt.Fprintf(c.out, "public addrs  %s\n", strings.Join(s.PublicAddrs, ", "))
		}
		fmt.Fprintf(c.out, "supernodes    %s\n", orNone(s.Supernodes))
		fmt.Fprintf(c.out, "serving       %s\n", servingState(s.Supernode))
		fmt.Fprintf(c.out, "dht           %s\n", dhtState(s.DHT))
		fmt.Fprintf(c.out, "contacts:\n")
		w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
		printContacts(w, s.Contacts)
		if len(s.Contacts) == 0 {
			fmt.Fprintln(w, "  (none yet: parley request-contact USER)")
		}
		if err := w.Flush(); err != nil {
			return err
		}
		printRequests(c.out, s.Incoming, s.Outgoing)
		return nil
	})
}

// servingState describes this device's own supernode role.
func servingState(v apitype.SupernodeState) string {
	switch {
	case v.Serving && v.Active:
		return fmt.Sprintf("as an active supernode: %d clients hold a slot, %d relayed connections", v.Reservations, v.Circuits)
	case v.Serving:
		return fmt.Sprintf("as a standby supernode (the directory has enough active ones): %d clients hold a slot", v.Reservations)
	case v.Mode == "never":
		return "not as a supernode (--supernode=never)"
	default:
		return "not as a supernode: " + v.Reason
	}
}

// loginState describes the session for people.
func loginState(loggedIn bool, p *apitype.LoginProblem) string {
	switch {
	case loggedIn:
		return "logged in"
	case p == nil:
		return "logging in"
	case p.Reason == apitype.LoginNotEnrolled:
		return "not enrolled yet: " + p.Hint
	case p.Stopped:
		return fmt.Sprintf("stopped: %s.\n              %s", p.Error, p.Hint)
	default:
		return fmt.Sprintf("not logged in: %s; trying again at %s", p.Error, p.RetryAt.Local().Format("15:04:05"))
	}
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, ", ")
}

// dhtState is the DHT line of the status.
func dhtState(d apitype.DHTStatus) string {
	s := fmt.Sprintf("%s mode, %d peers in the routing table", d.Mode, d.Peers)
	if d.RecordSeq == 0 {
		return s + ", address record not published yet"
	}
	return fmt.Sprintf("%s, address record #%d published (expires %s)", s, d.RecordSeq, d.RecordExpires.Local().Format(time.TimeOnly))
}
