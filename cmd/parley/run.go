package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

const usage = `usage: parley [--data DIR] <command> [arguments]

commands:
  daemon [--rendezvous ADDR]   run the client (keeps running; the others talk to it); the data
                               directory remembers its flags, so later starts need none
  register USER                create an account with this device (asks for a password)
  enrol USER                   add this device to an existing account (asks for its password)
  request-contact USER         ask USER to be a contact (also: add-contact)
  accept USER                  accept USER's contact request
  decline USER                 decline USER's contact request (USER is not told)
  remove USER                  end a contact, or withdraw your request
  block USER                   remove USER and ignore their requests
  unblock USER                 lift a block
  contacts                     list contacts with presence, pending requests and blocks
  send USER MESSAGE...         send a chat message
  history USER                 show the messages exchanged with USER
  probe USER [--size 16MiB]    test the connection to USER: throughput, path, integrity
  status                       show login, supernodes, contacts, requests and connection paths
  devices                      list the account's devices (online, revoked)
  revoke DEVICE                revoke one of the account's devices (a lost laptop, say)
  change-password              change the account's password (asks for the current and the new one)
  delete-account               delete the account with its devices and contacts (asks for the password)

--data defaults to $PARLEY_DATA, or ~/.parley. Add --json after a command for JSON output.
Passwords are read from the terminal, or one per line from standard input.
`

type cli struct {
	dataDir string
	json    bool
	out     io.Writer
	in      io.Reader
	stdin   *bufio.Reader // reads passwords from in when it is not a terminal
}

func run(ctx context.Context, args []string) error {
	return runCLI(ctx, args, os.Stdin, os.Stdout)
}

// runCLI is run with its input and output given, for tests.
func runCLI(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("parley", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	dataDir := fs.String("data", defaultDataDir(), "client data directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("no command given")
	}
	c := &cli{dataDir: *dataDir, out: out, in: in}
	name, rest := fs.Arg(0), fs.Args()[1:]
	switch name {
	case "daemon":
		return c.daemon(ctx, rest)
	case "register", "enrol":
		return c.account(ctx, name, rest)
	case "request-contact", "add-contact":
		return c.requestContact(ctx, name, rest)
	case "accept", "decline", "remove", "block", "unblock":
		return c.contactOp(ctx, name, rest)
	case "contacts":
		return c.contacts(ctx, rest)
	case "devices":
		return c.devices(ctx, rest)
	case "revoke":
		return c.revoke(ctx, rest)
	case "change-password":
		return c.changePassword(ctx, rest)
	case "delete-account":
		return c.deleteAccount(ctx, rest)
	case "send":
		return c.send(ctx, rest)
	case "history":
		return c.history(ctx, rest)
	case "probe":
		return c.probe(ctx, rest)
	case "status":
		return c.status(ctx, rest)
	default:
		fs.Usage()
		return fmt.Errorf("unknown command %q", name)
	}
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

// flags parses a subcommand's flags, including --json, and checks the
// number of positional arguments.
func (c *cli) flags(name string, args []string, minArgs int, argsUsage string, setup func(*flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet("parley "+name, flag.ContinueOnError)
	fs.BoolVar(&c.json, "json", false, "print JSON")
	if setup != nil {
		setup(fs)
	}
	fs.Usage = func() { fmt.Fprintf(fs.Output(), "usage: parley %s %s\n", name, argsUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() < minArgs {
		fs.Usage()
		return nil, fmt.Errorf("%s needs %s", name, argsUsage)
	}
	return fs.Args(), nil
}
