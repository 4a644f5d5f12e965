package main

// How the parley command tree runs: Parley's shared conventions
// (command.Execute: usage errors exit 2 with a hint, help and completion
// everywhere), plus what is parley's own: errors that name something that
// does not exist exit 3, and every error a command returns is made safe
// for the terminal, since it may carry a server's or a contact's words.
//
// Exit statuses (the README lists them for users):
//
//	0  ok (also --help, -h and help CMD)
//	1  error: the daemon refused or failed, or cannot be reached
//	2  usage: unknown command or flag, wrong number of arguments, bad
//	   flag value; nothing was asked of the daemon
//	3  not found: the user, contact, request, device or transfer named
//	   does not exist (errors that unwrap to one of notFound)

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
)

// execute runs the command tree root with args and returns nil, or an
// error whose exit status command.ExitCode tells (command.Main prints it).
func execute(ctx context.Context, root *cobra.Command, args []string, notFound ...error) error {
	forEach(root, func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				return commandError(run(cmd, args), notFound)
			}
		}
	})
	return command.Execute(ctx, root, args)
}

// commandError gives a command's error its exit status (the one an
// *command.ExitError in it chose, 3 when it is one of notFound, else 1)
// and makes its text safe for the terminal.
func commandError(err error, notFound []error) error {
	if err == nil {
		return nil
	}
	err = &safeError{err}
	if _, ok := errors.AsType[*command.ExitError](err); ok {
		return err
	}
	for _, nf := range notFound {
		if errors.Is(err, nf) {
			return command.NotFound(err)
		}
	}
	return err
}

// safeError is an error whose text is shown escaped (see safe).
type safeError struct{ err error }

func (e *safeError) Error() string { return safe(e.err.Error()) }
func (e *safeError) Unwrap() error { return e.err }

func forEach(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		forEach(sub, f)
	}
}

// argRange checks the number of positional arguments: from min to max, max
// < 0 for no limit.
func argRange(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return fmt.Errorf("%s needs %s", cmd.Name(), argsOf(cmd))
		case max >= 0 && len(args) > max:
			return fmt.Errorf("%s takes %s; unexpected %q", cmd.Name(), argsOf(cmd), args[max])
		}
		return nil
	}
}

// exactArgs checks that a command has n positional arguments.
func exactArgs(n int) cobra.PositionalArgs { return argRange(n, n) }

// argsOf is the arguments part of cmd's Use line.
func argsOf(cmd *cobra.Command) string {
	_, args, ok := strings.Cut(cmd.Use, " ")
	if !ok {
		return "no arguments"
	}
	return args
}
