package main

import (
	"strings"
	"testing"

	"github.com/parleynet/parley/internal/command/commandtest"
)

func TestCLI(t *testing.T) {
	commandtest.CheckTree(t, newRoot)
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"no subcommand", nil, 2, "missing command: one of load, relay-load, up"},
		{"unknown subcommand", []string{"down"}, 2, `unknown command "down"`},
		{"stray argument", []string{"up", "now"}, 2, `unknown command "now" for "parley-testnet up"`},
		{"bad flag value", []string{"up", "--supernodes", "two"}, 2, `invalid argument "two" for "--supernodes"`},
		{"supernodes out of range", []string{"up", "--supernodes", "0"}, 2, "--supernodes must be at least 1"},
		{"flag of another subcommand", []string{"load", "--reservations", "5"}, 2, "unknown flag: --reservations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := commandtest.Run(t, newRoot, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.err) {
				t.Fatalf("got exit %d, %q; want %d, %q", code, errOut, tt.code, tt.err)
			}
		})
	}
}
