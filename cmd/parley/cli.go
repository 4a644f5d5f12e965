package main

// The cobra plumbing of the parley command: how a command tree runs, which
// errors are usage errors, and which exit status an error gets. Everything
// parley-specific about commands lives in the other files; this file is
// the part to swap for the shared conventions of internal/command.
//
// Exit statuses (the README lists them for users):
//
//	0  ok (also --help, -h and help CMD)
//	1  error: the daemon refused or failed, or cannot be reached
//	2  usage: unknown command or flag, wrong number of arguments, bad
//	   flag value; nothing was asked of the daemon
//	3  not found: the user, contact, request or device named does not
//	   exist (errors that unwrap to one of execute's notFound sentinels:
//	   parley passes rendezvous.ErrNotFound and chat.ErrNotAContact)

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
)

// Exit statuses besides 0 and 1.
const (
	exitUsage    = 2
	exitNotFound = 3
)

// execute runs the command tree root with args and returns nil, or an
// error whose exit status command.ExitCode tells (command.Main prints it).
// Errors returned by a command's RunE are the command's own: exit 3 when
// they unwrap to one of notFound, the status of an *command.ExitError in
// them, else 1. Every other error comes from cobra checking the command
// line, and is a usage error (exit 2). root's streams must be set; help
// goes to root's output.
func execute(ctx context.Context, root *cobra.Command, args []string, notFound ...error) error {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetArgs(args)
	root.SetHelpCommand(helpCommand(root))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	completionExamples(root)
	requireSubcommand(root)
	markRunErrors(root)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if re, ok := errors.AsType[*runError](err); ok {
		return withExitCode(re, notFound)
	}
	if _, ok := errors.AsType[*command.ExitError](err); ok {
		return err
	}
	return usageError(cmd, err)
}

// usageError is err, a mistake in how cmd was called, with exit status 2
// and a pointer to cmd's help.
func usageError(cmd *cobra.Command, err error) error {
	path := "parley"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	sep := " "
	if strings.Contains(err.Error(), "\n") { // cobra's "Did you mean this?"
		sep = "\n"
	}
	return &command.ExitError{Code: exitUsage, Err: fmt.Errorf("%w%s(see: %s --help)", err, sep, path)}
}

// usagef is a usage error found by a command's own checks (a flag value
// out of range, say), before anything was asked of the daemon.
func usagef(cmd *cobra.Command, format string, args ...any) error {
	return usageError(cmd, fmt.Errorf(format, args...))
}

// withExitCode gives a command's error its exit status: the one an
// *command.ExitError in it chose, 3 when it is one of notFound, else 1.
func withExitCode(err error, notFound []error) error {
	if _, ok := errors.AsType[*command.ExitError](err); ok {
		return err
	}
	for _, nf := range notFound {
		if errors.Is(err, nf) {
			return &command.ExitError{Code: exitNotFound, Err: err}
		}
	}
	return err
}

// runError marks an error as returned by a command's RunE, as opposed to
// cobra's checks of the command line. Its text is made safe for the
// terminal: it may carry a server's words.
type runError struct{ err error }

func (e *runError) Error() string { return safe(e.err.Error()) }
func (e *runError) Unwrap() error { return e.err }

// markRunErrors wraps the RunE of every command in the tree so that its
// errors are told apart from usage errors.
func markRunErrors(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			if err := run(cmd, args); err != nil {
				return &runError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		markRunErrors(sub)
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

// helpCommand is `help [command]`: help for a command, exit 2 for an
// unknown one (cobra's own exits 0).
func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:     "help [command]",
		Short:   "Show help for a command",
		Long:    "Help shows a command's description, arguments, flags and examples; the same as " + root.Name() + " COMMAND --help.",
		Example: "  " + root.Name() + " help\n  " + root.Name() + " help history",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 && cmd == root {
				return usageError(c, fmt.Errorf("unknown command %q", strings.Join(args, " ")))
			}
			return cmd.Help()
		},
	}
}

// requireSubcommand makes the commands that only group others (parley
// itself, completion) refuse a command line without a subcommand (cobra
// shows their help and exits 0) or with an unknown one (cobra does that
// for completion).
func requireSubcommand(cmd *cobra.Command) {
	if cmd.HasSubCommands() && !cmd.Runnable() {
		if cmd.HasParent() {
			cmd.Args = cobra.NoArgs // unknown command "x" for "parley completion"
		}
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			cmd.SetOut(cmd.ErrOrStderr())
			cmd.Help()
			cmd.SetOut(out)
			return usageError(cmd, errors.New("no command given"))
		}
		// Their usage is still "parley [command]", not "parley [flags]".
		cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1))
	}
	for _, sub := range cmd.Commands() {
		requireSubcommand(sub)
	}
}

// completionExamples gives cobra's completion commands an example each.
func completionExamples(root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = "  " + root.Name() + " completion bash > /etc/bash_completion.d/" + root.Name() + "\n  source <(" + root.Name() + " completion bash)"
		for _, sh := range c.Commands() {
			if sh.Example == "" {
				sh.Example = fmt.Sprintf("  %s completion %s > %s-completion.%s", root.Name(), sh.Name(), root.Name(), sh.Name())
			}
		}
	}
}
