package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/apitype"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/datadir"
)

func (c *cli) account(ctx context.Context, name string, args []string) error {
	return c.clientCmd(ctx, name, args, 1, "USER", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		password, err := c.readPassword("password")
		if err != nil {
			return err
		}
		if name == "register" {
			_, err = cl.Register(ctx, rest[0], password)
		} else {
			_, err = cl.Enrol(ctx, rest[0], password)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "logged in as %s\n", strings.ToLower(rest[0]))
		return nil
	})
}

// terminal is standard input when it is a terminal.
func (c *cli) terminal() (*os.File, bool) {
	f, ok := c.in.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// readPassword asks for what (for example "password") on the terminal
// without echo, or reads the next line of standard input when it is not a
// terminal (scripts).
func (c *cli) readPassword(what string) (string, error) {
	if f, ok := c.terminal(); ok {
		fmt.Fprintf(os.Stderr, "%s: ", what)
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", what, err)
		}
		return string(pw), nil
	}
	if c.stdin == nil {
		c.stdin = bufio.NewReader(c.in)
	}
	line, err := c.stdin.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read %s: no password on standard input", what)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

func (c *cli) changePassword(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "change-password", args, 0, "(reads the current and the new password)", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		old, err := c.readPassword("current password")
		if err != nil {
			return err
		}
		pw, err := c.readPassword("new password")
		if err != nil {
			return err
		}
		if _, ok := c.terminal(); ok {
			again, err := c.readPassword("new password again")
			if err != nil {
				return err
			}
			if again != pw {
				return errors.New("the two new passwords differ; nothing was changed")
			}
		}
		if err := cl.ChangePassword(ctx, old, pw); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(struct{}{})
		}
		fmt.Fprintln(c.out, "password changed; enrolled devices stay logged in, and enrolling a new device needs the new password")
		return nil
	})
}

func (c *cli) deleteAccount(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "delete-account", args, 0, "(reads the password)", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if st.Username == "" {
			return errors.New("this device is not logged in to an account; nothing to delete")
		}
		if _, ok := c.terminal(); ok {
			fmt.Fprintf(os.Stderr, "This deletes the account %s for good, with all its devices and contacts.\nType its password to confirm.\n", st.Username)
		}
		pw, err := c.readPassword("password")
		if err != nil {
			return err
		}
		if err := cl.DeleteAccount(ctx, pw); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(struct{}{})
		}
		fmt.Fprintf(c.out, "deleted the account %s with its devices and contacts; this device is logged out\n", st.Username)
		fmt.Fprintf(c.out, "(the chat history stays in %s; register again with: parley register USER)\n", filepath.Join(c.dataDir, datadir.HistoryFile))
		return nil
	})
}

func (c *cli) devices(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "devices", args, 0, "", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		devs, err := cl.Devices(ctx)
		if err != nil {
			return err
		}
		if c.json {
			if devs == nil {
				devs = []apitype.Device{}
			}
			return c.printJSON(devs)
		}
		w := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "DEVICE\tENROLLED\tSTATE")
		for _, d := range devs {
			state := "offline"
			switch {
			case !d.Revoked.IsZero():
				state = "revoked " + d.Revoked.Local().Format("2006-01-02 15:04")
			case d.Online:
				state = "online"
			}
			this := ""
			if d.This {
				this = "(this device)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", d.Peer, d.Enrolled.Local().Format("2006-01-02 15:04"), state, this)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(c.out, "revoke a lost device with: parley revoke DEVICE")
		return nil
	})
}

func (c *cli) revoke(ctx context.Context, args []string) error {
	return c.clientCmd(ctx, "revoke", args, 1, "DEVICE", nil, func(ctx context.Context, cl *api.Client, rest []string) error {
		st, err := cl.Status(ctx)
		if err != nil {
			return err
		}
		if err := cl.RevokeDevice(ctx, rest[0]); err != nil {
			return err
		}
		if c.json {
			return c.printJSON(struct{}{})
		}
		if rest[0] == st.Peer {
			fmt.Fprintln(c.out, "revoked this device: it is logged out for good (see parley status)")
			return nil
		}
		fmt.Fprintf(c.out, "revoked device %s: it is logged out and can never log in again\n", rest[0])
		return nil
	})
}
