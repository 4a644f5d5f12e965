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

// TestStatusShowsNAT: the NAT type per transport with what it means, and
// only what libp2p determined.
func TestStatusShowsNAT(t *testing.T) {
	for _, tt := range []struct {
		name, reach string
		nat         apitype.NATStatus
		want        string
	}{
		{"public", "public", apitype.NATStatus{TCP: apitype.NATUnknown, UDP: apitype.NATUnknown}, "none in the way (publicly reachable)"},
		{"not yet", "private", apitype.NATStatus{TCP: apitype.NATUnknown, UDP: apitype.NATUnknown}, "unknown (not determined yet) for TCP and UDP"},
		{"an older daemon", "private", apitype.NATStatus{}, "unknown (not determined yet) for TCP and UDP"},
		{"cone", "private", apitype.NATStatus{TCP: apitype.NATEndpointIndependent, UDP: apitype.NATEndpointIndependent},
			"endpoint-independent (cone: hole punching can connect directly) for TCP and UDP"},
		{"mixed", "private", apitype.NATStatus{TCP: apitype.NATEndpointDependent, UDP: apitype.NATUnknown},
			"TCP endpoint-dependent (symmetric: direct connections rarely form, relays carry them), UDP unknown (not determined yet)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := natState(tt.reach, tt.nat); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	_, _, dir := startFake(t)
	if out := mustParley(t, context.Background(), "", "--data", dir, "status"); !strings.Contains(out, "\nnat           ") {
		t.Errorf("parley status has no nat line:\n%s", out)
	}
}

// TestStatusWithoutNetwork: a daemon waiting for its network says so and
// how to choose one.
func TestStatusWithoutNetwork(t *testing.T) {
	var out strings.Builder
	c := &cli{out: &out}
	c.printStatus(apitype.Status{Peer: "12D3KooWx", Setup: &apitype.NetworkSetup{}})
	if !strings.Contains(out.String(), "network       (none chosen yet: open the web UI with parley ui, or start the daemon with --rendezvous)") {
		t.Errorf("got\n%s", out.String())
	}
}
