package relay

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/parleynet/parley/node"
)

func TestVolunteerEligibility(t *testing.T) {
	t.Parallel()
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	public, err := node.New(node.WithKey(k), node.WithListenAddrs(node.LoopbackListenAddrs...), node.WithReachability(node.ReachabilityPublic))
	if err != nil {
		t.Fatal(err)
	}
	defer public.Close()
	k2, _, _ := crypto.GenerateEd25519Key(nil)
	natted, err := node.New(node.WithKey(k2), node.WithListenAddrs(node.LoopbackListenAddrs...), node.WithNATImitation())
	if err != nil {
		t.Fatal(err)
	}
	defer natted.Close()

	loggedIn := true
	for _, tt := range []struct {
		name string
		n    *node.Node
		cfg  VolunteerConfig
		want string // part of the reason; "" means eligible
	}{
		{"never", public, VolunteerConfig{Mode: ModeNever, MinUptime: -1}, "does not allow"},
		{"not logged in", public, VolunteerConfig{MinUptime: -1, Ready: func() bool { return false }}, "not logged in"},
		{"behind a NAT", natted, VolunteerConfig{MinUptime: -1}, "no publicly reachable address"},
		{"always, even behind a NAT", natted, VolunteerConfig{Mode: ModeAlways}, ""},
		{"too young", public, VolunteerConfig{MinUptime: time.Hour}, "less than 1h0m0s"},
		{"busy machine", public, VolunteerConfig{MinUptime: -1, MaxLoad: 1.5}, "machine load 2.00 per core"},
		{"eligible", public, VolunteerConfig{MinUptime: -1, MaxLoad: 2.5}, ""},
		{"no load check", public, VolunteerConfig{MinUptime: NoLimit, MaxLoad: NoLimit}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.Ready == nil {
				cfg.Ready = func() bool { return loggedIn }
			}
			v := &Volunteer{node: tt.n, cfg: cfg, load: func() (float64, bool) { return 2, true }}
			v.cfg.MaxCPU = 1 // this test process's own CPU use is not the point
			if v.cfg.MaxLoad == 0 {
				v.cfg.MaxLoad = 3
			}
			var cpu cpuMeter
			got := v.ineligible(&cpu)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("ineligible() = %q, want %q", got, tt.want)
			}
		})
	}
}
