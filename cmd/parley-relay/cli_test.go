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
		{"stray argument", []string{"--cert-key", "x", "extra"}, 2, `unknown command "extra"`},
		{"bad flag value", []string{"--drain", "soon"}, 2, `invalid argument "soon" for "--drain"`},
		{"one dash", []string{"-identity", "k"}, 2, "long flags take two dashes: --identity"},
		{"neither rendezvous nor key", []string{"--admin", ""}, 2, "give --rendezvous"},
		{"bad rendezvous address", []string{"--rendezvous", "/ip4/127.0.0.1/tcp/1"}, 2, "--rendezvous"},
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
