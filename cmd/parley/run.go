package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/offers"
	"github.com/parleynet/parley/app/xfer"
	"github.com/parleynet/parley/rendezvous"
)

// cli is the state one run of the parley command shares between its
// subcommands: the persistent flags and the streams.
type cli struct {
	dataDir string
	json    bool // --json of the command that runs
	out     io.Writer
	errOut  io.Writer
	in      io.Reader
	stdin   *bufio.Reader // reads passwords from in when it is not a terminal
}

func run(ctx context.Context, args []string) error {
	return runCLI(ctx, args, os.Stdin, os.Stdout, os.Stderr)
}

// runCLI is run with its streams given, for tests.
func runCLI(ctx context.Context, args []string, in io.Reader, out, errOut io.Writer) error {
	c := &cli{out: out, errOut: errOut, in: in}
	return execute(ctx, c.root(), args, notFound...)
}

// notFound are the errors that exit 3: the user, contact, request,
// device, transfer or offer named does not exist (the daemon's API errors
// unwrap to them).
var notFound = []error{rendezvous.ErrNotFound, chat.ErrNotAContact, xfer.ErrNoSuchTransfer, offers.ErrNoSuchOffer}

// root is the parley command with every subcommand.
func (c *cli) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "parley",
		Short: "The Parley desktop client",
		Long: `Parley is a peer-to-peer chat overlay. parley daemon runs this device's
client; the other commands talk to the running daemon through its local API.

Flags may come before or after arguments; -- ends the flags (parley send
bob -- -1 is fine). Passwords are read from the terminal, or one per line
from standard input.

Exit status: 0 ok, 1 error, 2 usage (unknown command or flag, wrong
number of arguments, bad flag value), 3 not found (no such user, contact,
request, device, transfer or offer).`,
		Example: `  parley daemon --rendezvous /ip4/203.0.113.7/tcp/4001/p2p/12D3KooW…
  parley register alice
  parley send bob "hi bob"
  parley watch
  parley --data /tmp/alice status --json`,
	}
	root.SetIn(c.in)
	root.SetOut(c.out)
	root.SetErr(c.errOut)
	root.PersistentFlags().StringVar(&c.dataDir, "data", defaultDataDir(), "client data directory: $PARLEY_DATA, else ~/.parley")
	root.AddCommand(
		c.daemonCmd(),
		c.accountCmd("register"), c.accountCmd("enrol"),
		c.requestContactCmd(),
		c.contactOpCmd("accept"), c.contactOpCmd("decline"), c.contactOpCmd("remove"),
		c.contactOpCmd("block"), c.contactOpCmd("unblock"),
		c.contactsCmd(),
		c.sendCmd(), c.historyCmd(), c.chatsCmd(), c.probeCmd(), c.watchCmd(),
		c.statusCmd(), c.devicesCmd(), c.revokeCmd(),
		c.changePasswordCmd(), c.deleteAccountCmd(),
		c.publishCmd(), c.publishedCmd(), c.unpublishCmd(),
		c.getCmd(), c.transfersCmd(),
		c.transferOpCmd("pause"), c.transferOpCmd("resume"), c.transferOpCmd("cancel"),
		c.shareCmd(), c.offersCmd(), c.acceptFileCmd(),
		c.offerOpCmd("decline-file"), c.offerOpCmd("cancel-offer"),
		c.uiCmd(),
	)
	c.completeArgs(root)
	return root
}

func defaultDataDir() string {
	if d := os.Getenv("PARLEY_DATA"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".parley"
	}
	return filepath.Join(home, ".parley")
}

// parley is how a hint names this command: with --data when the data
// directory is not the default one, so that the hint works when pasted.
func (c *cli) parley() string {
	if c.dataDir == defaultDataDir() {
		return "parley"
	}
	return "parley --data " + shellQuote(c.dataDir)
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// jsonFlag adds --json to cmd.
func (c *cli) jsonFlag(cmd *cobra.Command) *cobra.Command {
	cmd.Flags().BoolVar(&c.json, "json", false, "print JSON (the API's field names)")
	return cmd
}

const requestTimeout = 60 * time.Second

// dial finds the daemon of the data directory.
func (c *cli) dial() (*api.Client, error) { return api.Dial(c.dataDir) }

// call runs do against the daemon, bounded by requestTimeout.
func (c *cli) call(ctx context.Context, do func(context.Context, *api.Client) error) error {
	cl, err := c.dial()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return do(ctx, cl)
}

// printJSON prints v indented, for --json.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
