package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/datadir"
)

func (c *cli) accountCmd(name string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   name + " USER",
		Short: "Create an account with this device (asks for a password)",
		Long: `Register creates the account USER with this device as its first device,
and waits until the device is logged in. It asks for a password on the
terminal, or reads one line of standard input.`,
		Example: `  parley register alice
  echo "$PASSWORD" | parley register alice --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				password, err := c.readPassword("password")
				if err != nil {
					return err
				}
				register := cl.Register
				if name == "enrol" {
					register = cl.Enrol
				}
				acct, err := register(ctx, args[0], password)
				if err != nil {
					return err
				}
				if c.json {
					return c.printJSON(acct)
				}
				fmt.Fprintf(c.out, "logged in as %s\n", safe(acct.Username))
				return nil
			})
		},
	}
	if name == "enrol" {
		cmd.Short = "Add this device to an existing account (asks for its password)"
		cmd.Long = `Enrol adds this device to the account USER, and waits until the device is
logged in. It asks for the account's password on the terminal, or reads one
line of standard input.`
		cmd.Example = `  parley enrol alice
  echo "$PASSWORD" | parley enrol alice --json`
	}
	return c.jsonFlag(cmd)
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
		fmt.Fprintf(c.errOut, "%s: ", what)
		pw, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.errOut)
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

func (c *cli) changePasswordCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "change-password",
		Short: "Change the account's password (asks for the current and the new one)",
		Long: `Change-password replaces the account's password. It asks for the current
and the new password (twice) on the terminal, or reads them one per line
from standard input. Enrolled devices stay logged in; enrolling a new
device needs the new password.`,
		Example: `  parley change-password
  printf '%s\n%s\n' "$OLD" "$NEW" | parley change-password --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
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
		},
	})
}

func (c *cli) deleteAccountCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "delete-account",
		Short: "Delete the account with its devices and contacts (asks for the password)",
		Long: `Delete-account deletes the account this device acts for, for good, with all
its devices and contacts. It asks for the password on the terminal, or
reads one line of standard input. The chat history stays on this device.`,
		Example: `  parley delete-account
  echo "$PASSWORD" | parley delete-account --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				st, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				if st.Username == "" {
					return errors.New("this device is not logged in to an account; nothing to delete")
				}
				if _, ok := c.terminal(); ok {
					fmt.Fprintf(c.errOut, "This deletes the account %s for good, with all its devices and contacts.\nType its password to confirm.\n", safe(st.Username))
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
				fmt.Fprintf(c.out, "deleted the account %s with its devices and contacts; this device is logged out\n", safe(st.Username))
				fmt.Fprintf(c.out, "(the chat history stays in %s; register again with: parley register USER)\n", filepath.Join(c.dataDir, datadir.HistoryFile))
				return nil
			})
		},
	})
}

func (c *cli) devicesCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "devices",
		Short: "List the account's devices (online, revoked)",
		Long: `Devices lists the account's devices, oldest first: when each was enrolled,
whether it is online or revoked, and which one is this device.`,
		Example: `  parley devices
  parley devices --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
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
		},
	})
}

func (c *cli) revokeCmd() *cobra.Command {
	return c.jsonFlag(&cobra.Command{
		Use:   "revoke DEVICE",
		Short: "Revoke one of the account's devices (a lost laptop, say)",
		Long: `Revoke revokes one of the account's devices by its ID (from parley
devices): it is logged out and can never log in again. Revoking this
device logs it out for good. It exits 3 when DEVICE is not one of the
account's devices.`,
		Example: `  parley devices
  parley revoke 12D3KooWLaptop…
  parley revoke 12D3KooWLaptop… --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				st, err := cl.Status(ctx)
				if err != nil {
					return err
				}
				if err := cl.RevokeDevice(ctx, args[0]); err != nil {
					return err
				}
				if c.json {
					return c.printJSON(struct{}{})
				}
				if args[0] == st.Peer {
					fmt.Fprintln(c.out, "revoked this device: it is logged out for good (see parley status)")
					return nil
				}
				fmt.Fprintf(c.out, "revoked device %s: it is logged out and can never log in again\n", args[0])
				return nil
			})
		},
	})
}
