package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/chat"
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

func (c *cli) account(ctx context.Context, name string, args []string) error {
	return c.clientCmd(ctx, name, args, 1, "USER", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		password, err := c.readPassword()
		if err != nil {
			return err
		}
		if name == "register" {
			err = cl.Register(ctx, rest[0], password)
		} else {
			err = cl.Enrol(ctx, rest[0], password)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "logged in as %s\n", strings.ToLower(rest[0]))
		return nil
	})
}

// readPassword asks on the terminal without echo, or reads one line from
// standard input when it is not a terminal (scripts).
func (c *cli) readPassword() (string, error) {
	if f, ok := c.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(os.Stderr, "password: ")
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(pw), nil
	}
	line, err := bufio.NewReader(c.in).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("read password: no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (c *cli) addContact(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "add-contact", args, 1, "USER", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		accepted, err := cl.AddContact(ctx, rest[0])
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(map[string]bool{"accepted": accepted})
		}
		if accepted {
			fmt.Fprintf(c.out, "%s is now a contact\n", rest[0])
		} else {
			fmt.Fprintf(c.out, "asked %s; you become contacts when %s adds you too\n", rest[0], rest[0])
		}
		return nil
	})
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
		if m.State == chat.Queued {
			fmt.Fprintf(c.out, "queued for %s, who cannot be reached now; it is delivered when %s is online (id %s)\n", m.To, m.To, m.ID)
			return nil
		}
		fmt.Fprintf(c.out, "delivered to %s (%s), id %s\n", m.To, m.Path, m.ID)
		return nil
	})
}

func (c *cli) history(ctx context.Context, args []string) error {
	var limit int
	return c.clientCmd(ctx, "history", args, 1, "USER", func(fs *flag.FlagSet) {
		fs.IntVar(&limit, "limit", 50, "how many of the latest messages to show (1 to 1000)")
	}, func(ctx context.Context, cl *api.Client, rest []string) error {
		msgs, err := cl.History(ctx, rest[0], limit)
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
			case chat.Queued:
				how = "queued"
			case chat.Failed:
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
		user := "(not logged in: run parley register or parley enrol)"
		if s.LoggedIn {
			user = s.Username
		}
		fmt.Fprintf(c.out, "device        %s\nuser          %s\nreachability  %s\n", s.Peer, user, s.Reachability)
		fmt.Fprintf(c.out, "supernodes    %s\n", orNone(s.Supernodes))
		fmt.Fprintf(c.out, "contacts:\n")
		w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
		for _, ct := range s.Contacts {
			state := "offline"
			if ct.Online {
				state = "online"
			} else if !ct.LastSeen.IsZero() {
				state = "last seen " + ct.LastSeen.Local().Format("2006-01-02 15:04")
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\n", ct.Username, state, ct.Path)
		}
		if len(s.Contacts) == 0 {
			fmt.Fprintln(w, "  (none yet: parley add-contact USER)")
		}
		return w.Flush()
	})
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, ", ")
}
