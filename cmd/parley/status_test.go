package main

import (
	"context"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/apitype"
)

// TestStatusShowsPortMapping: parley status names the router's mapping,
// and "(none)" when there is none.
func TestStatusShowsPortMapping(t *testing.T) {
	_, _, dir := startFake(t)
	out := mustParley(t, context.Background(), "", "--data", dir, "status")
	if want := "port mapping  /ip4/203.0.113.5/tcp/41234 to /ip4/0.0.0.0/tcp/4001\n"; !strings.Contains(out, want) {
		t.Errorf("got\n%s\nwant it to contain %q", out, want)
	}
	if got := portMappings(nil); got != "(none)" {
		t.Errorf("no mapping: got %q, want (none)", got)
	}
	two := []apitype.PortMapping{{External: "/ip4/203.0.113.5/tcp/1", Listen: "/ip4/0.0.0.0/tcp/2"}, {External: "/ip4/203.0.113.5/udp/3/quic-v1", Listen: "/ip4/0.0.0.0/udp/4/quic-v1"}}
	if got, want := portMappings(two), "/ip4/203.0.113.5/tcp/1 to /ip4/0.0.0.0/tcp/2, /ip4/203.0.113.5/udp/3/quic-v1 to /ip4/0.0.0.0/udp/4/quic-v1"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestStatusShowsSupernodeRTTs: each supernode with its measured round
// trip; one not measured yet without.
func TestStatusShowsSupernodeRTTs(t *testing.T) {
	_, _, dir := startFake(t)
	out := mustParley(t, context.Background(), "", "--data", dir, "status")
	if want := "supernodes    12D3KooWSuper (12.3 ms)\n"; !strings.Contains(out, want) {
		t.Errorf("got\n%s\nwant it to contain %q", out, want)
	}
	if got := orNone(withRTTs([]string{"a", "b\x1b[2J"}, map[string]float64{"a": 1})); got != `a (1.0 ms), b\x1b[2J` {
		t.Errorf("got %q", got)
	}
}
