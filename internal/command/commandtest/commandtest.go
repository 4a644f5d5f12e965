// Package commandtest checks that a command tree follows the conventions
// of package command: every command documents itself with an example and
// answers --help, -h and help COMMAND with exit status 0, and refuses an
// unknown flag or a stray argument with exit status 2.
package commandtest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/internal/command"
)

// Run runs the tree newRoot builds with args through command.Execute and
// returns its standard output, standard error and exit status.
func Run(t *testing.T, newRoot func() *cobra.Command, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	err := command.Execute(t.Context(), root, args)
	if err != nil {
		command.PrintError(&errOut, root.Name(), err)
	}
	return out.String(), errOut.String(), command.ExitCode(err)
}

// CheckTree checks every command of the tree newRoot builds (a new tree
// per run): a description and an example, --help, -h and help PATH exit 0
// and print them, an unknown flag exits 2, and so does a stray argument
// (for commands that refuse nine arguments) or an unknown subcommand.
// Nothing runs a command's action: every run either asks for help or
// fails before it.
func CheckTree(t *testing.T, newRoot func() *cobra.Command) {
	t.Helper()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, s := range c.Commands() {
			if !s.Hidden {
				walk(s, append(path[:len(path):len(path)], s.Name()))
			}
		}
	}
	build := func() *cobra.Command {
		r := newRoot()
		r.InitDefaultCompletionCmd("completion") // as Execute does
		return r
	}
	root := build()
	walk(root, nil)
	for _, path := range paths {
		name := strings.Join(append([]string{root.Name()}, path...), " ")
		t.Run(name, func(t *testing.T) {
			c, _, err := build().Find(path)
			if err != nil {
				t.Fatal(err)
			}
			if len(path) > 0 && path[0] == "completion" {
				c = nil // cobra's: described by Execute
			}
			if c != nil && (c.Example == "" || c.Short == "") {
				t.Errorf("%s: Short %q, Example %q: want both", name, c.Short, c.Example)
			}
			for _, args := range [][]string{
				append(path[:len(path):len(path)], "--help"),
				append(path[:len(path):len(path)], "-h"),
				append([]string{"help"}, path...),
			} {
				out, errOut, code := Run(t, newRoot, args...)
				if code != 0 {
					t.Errorf("%s %v: exit %d, want 0\n%s", root.Name(), args, code, errOut)
				}
				if !strings.Contains(out, "Examples:") {
					t.Errorf("%s %v: no example:\n%s", root.Name(), args, out)
				}
				if c != nil && !strings.Contains(out, firstLine(c)) {
					t.Errorf("%s %v: no description %q:\n%s", root.Name(), args, firstLine(c), out)
				}
			}
			args := append(path[:len(path):len(path)], "--no-such-flag")
			if _, errOut, code := Run(t, newRoot, args...); code != command.ExitUsage || !strings.Contains(errOut, "--help' for usage") {
				t.Errorf("%s %v: exit %d, want %d with a usage hint\n%s", root.Name(), args, code, command.ExitUsage, errOut)
			}
			fresh, _, _ := build().Find(path)
			stray := []string{"stray1", "stray2", "stray3", "stray4", "stray5", "stray6", "stray7", "stray8", "stray9"}
			switch {
			case fresh.HasSubCommands():
				args = append(path[:len(path):len(path)], "no-such-command")
			case fresh.Args != nil && fresh.Args(fresh, stray) != nil:
				args = append(path[:len(path):len(path)], stray...)
			default:
				return // takes any arguments
			}
			if _, errOut, code := Run(t, newRoot, args...); code != command.ExitUsage {
				t.Errorf("%s %v: exit %d, want %d\n%s", root.Name(), args, code, command.ExitUsage, errOut)
			}
		})
	}
}

func firstLine(c *cobra.Command) string {
	s := c.Long
	if s == "" {
		s = c.Short
	}
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
