package command_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/command/commandtest"
)

func TestExitCode(t *testing.T) {
	notFound := command.NotFound(errors.New("not found"))
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"success", nil, 0},
		{"plain error", errors.New("boom"), 1},
		{"exit error", notFound, 3},
		{"wrapped exit error", fmt.Errorf("lookup: %w", notFound), 3},
		{"usage", command.Usagef("--count must be positive"), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := command.ExitCode(tt.err); got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
	if notFound.Error() != "not found" || !errors.Is(notFound, errors.Unwrap(notFound)) {
		t.Fatal("ExitError does not show or unwrap its error")
	}
}

// newTree is a small tree: a group with a lookup command that takes one
// argument and a flag, as parley-dht's do.
func newTree() *cobra.Command {
	root := &cobra.Command{
		Use:     "tool",
		Short:   "A tool for tests",
		Example: "  tool find NAME",
	}
	var json bool
	var count int
	find := &cobra.Command{
		Use:     "find NAME",
		Short:   "Find NAME",
		Long:    "Find looks NAME up.",
		Example: "  tool find alice --json",
		Args:    command.ExactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 {
				return command.Usagef("--count must be at least 1")
			}
			switch args[0] {
			case "nobody":
				return command.NotFound(errors.New("nobody: not found"))
			case "broken":
				return errors.New("look up broken: connection refused")
			}
			fmt.Fprintf(cmd.OutOrStdout(), "found %s json=%v ctx=%v\n", args[0], json, cmd.Context() != nil)
			return nil
		},
	}
	find.Flags().BoolVar(&json, "json", false, "print JSON")
	find.Flags().IntVar(&count, "count", 1, "how many")
	root.AddCommand(find)
	return root
}

func TestExecute(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		out, inErr string
	}{
		{"flags after the argument", []string{"find", "alice", "--json"}, 0, "found alice json=true ctx=true", ""},
		{"flags before the argument", []string{"find", "--json", "alice"}, 0, "found alice json=true", ""},
		{"not found", []string{"find", "nobody"}, 3, "", "tool: nobody: not found\n"},
		{"runtime error", []string{"find", "broken"}, 1, "", "tool: look up broken: connection refused\n"},
		{"missing argument", []string{"find"}, 2, "", "tool: find needs NAME\nRun 'tool find --help' for usage."},
		{"stray argument", []string{"find", "a", "b"}, 2, "", `find: unexpected arguments ["b"]`},
		{"unknown flag", []string{"find", "a", "--frob"}, 2, "", "unknown flag: --frob\nRun 'tool find --help' for usage."},
		{"bad flag value", []string{"find", "a", "--count", "many"}, 2, "", `invalid argument "many" for "--count"`},
		{"flag value checked by the command", []string{"find", "a", "--count", "0"}, 2, "", "tool: --count must be at least 1\nRun 'tool find --help' for usage."},
		{"one dash", []string{"find", "a", "-count=2"}, 2, "", "long flags take two dashes: --count"},
		{"unknown command", []string{"fnd"}, 2, "", `tool: unknown command "fnd" for "tool" (did you mean find?)` + "\nRun 'tool --help' for usage."},
		{"no command", nil, 2, "", "missing command: one of find"},
		{"help", []string{"help", "find"}, 0, "Find looks NAME up.", ""},
		{"help of nothing", []string{"help", "nothing"}, 2, "", `unknown help topic "nothing"`},
		{"--help anywhere", []string{"find", "x", "--help"}, 0, "tool find alice --json", ""},
		{"completion", []string{"completion", "bash"}, 0, "bash completion V2 for tool", ""},
		{"completion of an unknown shell", []string{"completion", "tcsh"}, 2, "", `unknown command "tcsh"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := commandtest.Run(t, newTree, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.inErr) {
				t.Fatalf("got exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errOut, tt.code, tt.out, tt.inErr)
			}
			if code != 0 && strings.Count(errOut, "\n") > 2 {
				t.Errorf("more than the error and its hint on stderr:\n%s", errOut)
			}
		})
	}
}

// TestServerRoot: a root that is itself the command (a server) refuses
// arguments and still has help and completion.
func TestServerRoot(t *testing.T) {
	newRoot := func() *cobra.Command {
		return &cobra.Command{
			Use:     "server",
			Short:   "A server",
			Example: "  server --listen :1",
			Args:    cobra.NoArgs,
			RunE:    func(*cobra.Command, []string) error { return errors.New("ran") },
		}
	}
	if _, errOut, code := commandtest.Run(t, newRoot, "extra"); code != 2 || !strings.Contains(errOut, `unknown command "extra"`) {
		t.Errorf("got exit %d, %q", code, errOut)
	}
	if out, _, code := commandtest.Run(t, newRoot, "completion", "zsh"); code != 0 || !strings.Contains(out, "#compdef server") {
		t.Errorf("completion zsh: exit %d\n%s", code, out)
	}
	commandtest.CheckTree(t, newRoot)
}

func TestCheckTree(t *testing.T) { commandtest.CheckTree(t, newTree) }
