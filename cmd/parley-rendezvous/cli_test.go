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
		{"stray argument", []string{"--local", "extra"}, 2, `unknown command "extra"`},
		{"bad flag value", []string{"--shutdown-timeout", "soon"}, 2, `invalid argument "soon" for "--shutdown-timeout"`},
		{"one dash", []string{"-data", "d"}, 2, "long flags take two dashes: --data"},
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
