// Package command is the shared body of Parley's main functions: a context
// cancelled by Ctrl-C or SIGTERM, and an error printed with the command's
// name and exit status 1, or the status an *ExitError carries.
package command

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// ExitError is an error that chooses the command's exit status, for
// commands whose scripts tell outcomes apart (parley-dht exits 3 when a
// lookup finds nothing).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit status for err: 0 for nil, an *ExitError's code,
// otherwise 1.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := errors.AsType[*ExitError](err); ok {
		return e.Code
	}
	return 1
}

// Main runs run with the command-line arguments and exits on error.
func Main(name string, run func(ctx context.Context, args []string) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(ExitCode(err))
	}
}
