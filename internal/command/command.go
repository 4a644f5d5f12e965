// Package command is the shared body of Parley's main functions: a context
// cancelled by Ctrl-C or SIGTERM, a command tree run with the same
// conventions in every binary, and an error printed once with the
// command's name and a documented exit status.
//
// Exit statuses, the same for every Parley binary:
//
//	0  success
//	1  error (the step that failed is named)
//	2  usage: unknown command or flag, wrong argument count, bad flag value
//	3  not found: a lookup completed without finding what was asked
//
// Command trees use cobra (github.com/spf13/cobra), the most used Go CLI
// library (gh, kubectl, hugo): one definition per command generates its
// usage, help and shell completion, and flags are accepted anywhere on the
// line, before or after positional arguments.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit statuses (0 is success).
const (
	ExitFailure  = 1
	ExitUsage    = 2
	ExitNotFound = 3
)

// ExitError is an error that chooses the command's exit status, for
// commands whose scripts tell outcomes apart (parley-dht exits 3 when a
// lookup finds nothing).
type ExitError struct {
	Code int
	Err  error
	// Hint, if set, is a line Main prints after the error, such as
	// "Run 'parley-dht providers --help' for usage."
	Hint string
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Usage marks err as a usage error (exit status 2), for a check a command
// makes itself, such as a flag value out of range. Execute adds the hint
// to the command's help.
func Usage(err error) error { return &ExitError{Code: ExitUsage, Err: err} }

// Usagef is Usage of a formatted error.
func Usagef(format string, args ...any) error { return Usage(fmt.Errorf(format, args...)) }

// NotFound marks err as "not found" (exit status 3).
func NotFound(err error) error { return &ExitError{Code: ExitNotFound, Err: err} }

// ExitCode is the exit status for err: 0 for nil, an *ExitError's code,
// otherwise 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*ExitError](err); ok {
		return e.Code
	}
	return ExitFailure
}

// Main runs run with the command-line arguments and a context cancelled
// by Ctrl-C or SIGTERM, and on error prints "name: error" (and the
// error's hint) once to standard error and exits with ExitCode. A command
// tree's run is typically
//
//	func run(ctx context.Context, args []string) error {
//		return command.Execute(ctx, newRoot(), args)
//	}
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		PrintError(os.Stderr, name, err)
		os.Exit(ExitCode(err))
	}
}

// PrintError prints err as Main does.
func PrintError(w io.Writer, name string, err error) {
	fmt.Fprintf(w, "%s: %v\n", name, err)
	if e, ok := errors.AsType[*ExitError](err); ok && e.Hint != "" {
		fmt.Fprintln(w, e.Hint)
	}
}

// Execute runs the command tree under root with args and ctx (which
// commands read with cmd.Context()) and returns the error Main prints. It
// applies Parley's conventions:
//
//   - cobra prints nothing on error (no "Error:" line, no usage dump):
//     the caller prints the error once;
//   - an error before the command ran (unknown command or flag, wrong
//     argument count, bad flag value, missing required flag) is a usage
//     error, exit status 2, with the hint "Run 'CMD --help' for usage.";
//     so is an error a command marks with Usage;
//   - a command group run without a subcommand is a usage error;
//   - every tree has `help [command]` and `completion bash|zsh|fish|powershell`,
//     each with an example;
//   - a long flag written with one dash (-data) is refused with a hint to
//     write --data.
//
// Execute changes root: build a new tree for each call. Output goes to
// root's OutOrStdout and ErrOrStderr (set them with SetOut and SetErr).
func Execute(ctx context.Context, root *cobra.Command, args []string) error {
	prepare(root)
	var ran bool
	forEach(root, func(c *cobra.Command) {
		if run := c.RunE; run != nil {
			c.RunE = func(cmd *cobra.Command, args []string) error {
				ran = true
				return run(cmd, args)
			}
		}
	})
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(flagError)
	root.SetArgs(args)
	if args == nil {
		root.SetArgs([]string{}) // not os.Args
	}
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	if cmd == nil {
		cmd = root
	}
	e, ok := errors.AsType[*ExitError](err)
	if !ok && !ran {
		e = &ExitError{Code: ExitUsage, Err: err}
		err = e
	}
	if e != nil && e.Code == ExitUsage && e.Hint == "" {
		e.Hint = fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
	}
	return err
}

// prepare adds the help and completion commands and makes command groups
// refuse unknown subcommands and a missing one.
func prepare(root *cobra.Command) {
	root.SetHelpCommand(helpCommand(root))
	// cobra adds its completion command on demand, and only to a root
	// with subcommands; asking for it by name adds it to every root.
	root.InitDefaultCompletionCmd("completion")
	forEach(root, func(c *cobra.Command) {
		if c.Name() == "completion" && c.Parent() == root {
			c.Example = "  " + root.Name() + " completion bash > ~/.local/share/bash-completion/completions/" + root.Name()
			for _, sh := range c.Commands() {
				switch sh.Name() {
				case "fish":
					sh.Example = "  " + root.Name() + " completion fish | source"
				case "powershell":
					sh.Example = "  " + root.Name() + " completion powershell | Out-String | Invoke-Expression"
				default:
					sh.Example = "  source <(" + root.Name() + " completion " + sh.Name() + ")"
				}
			}
		}
		if c.HasSubCommands() && c.Args == nil {
			c.Args = knownCommand
		}
		if !c.Runnable() && c.HasSubCommands() {
			c.RunE = func(cmd *cobra.Command, _ []string) error {
				var names []string
				for _, s := range cmd.Commands() {
					if s.IsAvailableCommand() && s.Name() != "help" && s.Name() != "completion" {
						names = append(names, s.Name())
					}
				}
				return Usagef("missing command: one of %s", strings.Join(names, ", "))
			}
		}
	})
}

// knownCommand refuses the arguments of a command group: the first one
// is not one of its commands.
func knownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, set only where cobra suggests
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
	}
	return errors.New(msg)
}

func helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:     "help [command]",
		Short:   "Help about any command",
		Long:    "Help prints the description, usage, flags and examples of a command.",
		Example: fmt.Sprintf("  %[1]s help\n  %[1]s help completion", root.Name()),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			c, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, s := range c.Commands() {
				if s.IsAvailableCommand() && strings.HasPrefix(s.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(s.Name(), s.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			c, rest, err := root.Find(args)
			if err != nil || len(rest) > 0 {
				return Usagef("unknown help topic %q", strings.Join(args, " "))
			}
			return c.Help()
		},
	}
}

// oneDash is pflag's error for -data: "unknown shorthand flag: 'd' in -data".
var oneDash = regexp.MustCompile(`unknown shorthand flag: '.' in -([a-zA-Z][a-zA-Z0-9-]+)`)

func flagError(cmd *cobra.Command, err error) error {
	if m := oneDash.FindStringSubmatch(err.Error()); m != nil && cmd.Flags().Lookup(m[1]) != nil {
		return fmt.Errorf("%w (long flags take two dashes: --%s)", err, m[1])
	}
	return err
}

// forEach calls f for c and every command under it.
func forEach(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, s := range c.Commands() {
		forEach(s, f)
	}
}

// ExactArgs requires exactly the named positional arguments, such as
// ExactArgs("USER") or ExactArgs("CID"), and says which is missing
// ("providers needs CID") or which are extra.
func ExactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return fmt.Errorf("%s needs %s", cmd.Name(), strings.Join(names[len(args):], " "))
		case len(args) > len(names):
			return fmt.Errorf("%s: unexpected arguments %q", cmd.Name(), args[len(names):])
		}
		return nil
	}
}
