package labnet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/testnet/labnet"
	"github.com/parleynet/parley/testnet/natlab"
)

// TestUPnPToSymmetricDirect: alice's router runs miniupnpd, bob is behind
// a symmetric NAT (no hole can be punched). alice's daemon maps its ports
// and advertises the mapped addresses, so bob dials her directly: both
// report "direct", alice's router's conntrack shows bob's NAT connected to
// a port miniupnpd mapped to alice, and her status shows the mapping. When
// her daemon stops, her router holds no mapping any more.
func TestUPnPToSymmetricDirect(t *testing.T) {
	requireUPnP(t)
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Subnet: natlab.UPnPSubnet, Supernodes: 1})
	alice := n.AddClient(t, "alice", natlab.UPnP)
	mappings := awaitPortMappings(t, ctx, alice)
	leases, err := alice.NAT.UPnPMappings()
	if err != nil {
		t.Fatal(err)
	}
	mapped := map[string]bool{} // "tcp/41234": granted by miniupnpd to alice
	for _, l := range leases {
		if l.Internal.Addr() == alice.Host.IP {
			mapped[fmt.Sprintf("%s/%d", l.Protocol, l.External)] = true
		}
	}
	for _, m := range mappings {
		prefix := "/ip4/" + alice.NAT.PublicIP.String() + "/"
		rest, ok := strings.CutPrefix(m.External, prefix)
		if !ok || !mapped[strings.Join(strings.SplitN(rest, "/", 3)[:2], "/")] {
			t.Errorf("alice's status shows %s, which miniupnpd did not grant her (%+v)", m.External, leases)
		}
	}

	bin, err := labnet.Binaries()
	if err != nil {
		t.Fatal(err)
	}
	out, err := alice.Host.Run(ctx, filepath.Join(bin, "parley"), "--data", alice.Dir, "status")
	if err != nil {
		t.Fatalf("parley status: %v\n%s", err, out)
	}
	var line string // "port mapping  A to B, C to D"
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "port mapping  ") {
			line = l
		}
	}
	for _, m := range mappings {
		if want := m.External + " to " + m.Listen; !strings.Contains(line, want) {
			t.Errorf("parley status lacks %q in its port mapping line:\n%s", want, out)
		}
	}

	// AutoNAT v2 confirms a mapped address from outside; alice then
	// needs no relay slot and advertises her mapped addresses only.
	public := awaitPublicAddr(t, ctx, alice, mappings)
	t.Logf("alice's mapped address %s is confirmed public", public)
	awaitNoRelaySlot(t, ctx, alice)

	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)
	if first := bob.MustSend(t, "alice", "hello, directly"); first.Path != "direct" {
		t.Errorf("bob's first message went %q, want direct", first.Path)
	}
	awaitDirectBothWays(t, ctx, bob, alice)
	if reply := alice.MustSend(t, "bob", "and back"); reply.Path != "direct" {
		t.Errorf("alice's reply went %q, want direct", reply.Path)
	}

	// The connection crosses alice's router to a mapped port.
	out, err = alice.NAT.Run(ctx, "conntrack", "-L", "-s", bob.NAT.PublicIP.String(), "-d", alice.NAT.PublicIP.String())
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var through []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		for port := range mapped {
			proto, p, _ := strings.Cut(port, "/")
			if f[0] == proto && strings.Contains(line, " dport="+p+" ") && strings.Contains(line, " src="+alice.Host.IP.String()+" ") {
				through = append(through, line)
			}
		}
	}
	if len(through) == 0 {
		t.Errorf("alice's router shows no connection from bob's NAT to a mapped port %v:\n%s", mapped, out)
	}
	t.Logf("through alice's mapped ports: %q", through)

	// A graceful stop deletes the mappings.
	if err := alice.Stop(); err != nil {
		t.Fatal(err)
	}
	if left, err := alice.NAT.UPnPMappings(); err != nil || len(left) != 0 {
		t.Errorf("after alice's daemon stopped, miniupnpd holds %+v (%v), want none", left, err)
	}
}

// awaitPublicAddr waits until AutoNAT v2 has confirmed one of c's mapped
// addresses reachable, and returns it.
func awaitPublicAddr(t *testing.T, ctx context.Context, c *labnet.Client, ms []apitype.PortMapping) string {
	t.Helper()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range st.PublicAddrs {
			for _, m := range ms {
				if a == m.External {
					return a
				}
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s's mapped addresses %+v were never confirmed public (public: %v)\n%s", c.Name, ms, st.PublicAddrs, c.Log())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// awaitNoRelaySlot waits until c, publicly reachable, has released its
// relay slots and advertises its direct addresses only.
func awaitNoRelaySlot(t *testing.T, ctx context.Context, c *labnet.Client) {
	t.Helper()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Supernodes) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s kept its relay slots %v\n%s", c.Name, st.Supernodes, c.Log())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// awaitPortMappings waits until c's status shows a port mapping.
func awaitPortMappings(t *testing.T, ctx context.Context, c *labnet.Client) []apitype.PortMapping {
	t.Helper()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.PortMappings) > 0 {
			return st.PortMappings
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s's status never showed a port mapping\n%s", c.Name, c.Log())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// TestConeToSymmetricWithoutUPnPRelayed is the contrast to
// TestUPnPToSymmetricDirect: the same pair with a plain cone router on
// alice's side stays relayed (a symmetric NAT never gets a hole-punch
// address, so no punch is even tried). Once alice's punch attempts are
// over the supernode, listening on every interface as supernodes do by
// default, splices the pair, and a probe's bytes cross the splice: its
// label says relayed over TCP, and the supernode's spliced-bytes counter
// grows by the probe while its circuit counter stays about still.
func TestConeToSymmetricWithoutUPnPRelayed(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Subnet: natlab.UPnPSubnet, Supernodes: 1})
	alice := n.AddClient(t, "alice", natlab.Cone)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)
	if m := bob.MustSend(t, "alice", "hello"); !relayed(m.Path) {
		t.Fatalf("bob's message went %q, want relayed", m.Path)
	}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		if cs, _ := bob.Contact(ctx, "alice"); !relayed(cs.Path) {
			t.Fatalf("bob's path to alice became %q, want relayed", cs.Path)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if st, err := alice.Status(ctx); err != nil || len(st.PortMappings) != 0 {
		t.Errorf("alice behind a router without UPnP shows mappings %+v (%v)", st.PortMappings, err)
	}

	// Alice could punch (her NAT is a cone), so the splice waits until
	// her attempts are over: up to 30 s.
	probeSpliced(t, ctx, alice, "bob", n.Supernodes[0])
}

// TestUPnPRestartedBecomesDirect: alice (behind the UPnP router) restarts
// while bob (symmetric NAT) keeps writing to her. Until her router maps
// her new ports she is reachable through a supernode only, so bob's first
// connection to the new alice is relayed; once her mapped addresses reach
// bob in her presence, bob must dial them although the relayed connection
// stands, and both end up direct.
func TestUPnPRestartedBecomesDirect(t *testing.T) {
	requireUPnP(t)
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Subnet: natlab.UPnPSubnet, Supernodes: 1})
	alice := n.AddClient(t, "alice", natlab.UPnP)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)
	bob.MustSend(t, "alice", "before the restart")

	if err := alice.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	var first string
	for i := 0; ; i++ {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := bob.Send(sctx, "alice", fmt.Sprintf("after the restart %d", i))
		cancel()
		if err == nil && m.State == apitype.MessageDelivered {
			first = m.Path
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("bob never reached alice after her restart: %+v %v", m, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("bob's first message to the restarted alice went %q", first)
	awaitDirectBothWays(t, ctx, bob, alice)
	if m := bob.MustSend(t, "alice", "and now directly"); m.Path != "direct" {
		t.Errorf("bob's message after the upgrade went %q, want direct", m.Path)
	}
}

// requireUPnP skips t where the lab's UPnP NAT cannot run (fails it where
// PARLEY_REQUIRE_NATLAB=1 says it must).
func requireUPnP(t *testing.T) {
	t.Helper()
	if err := natlab.AvailableUPnP(); err != nil {
		if os.Getenv("PARLEY_REQUIRE_NATLAB") == "1" {
			t.Fatalf("PARLEY_REQUIRE_NATLAB=1 but the UPnP NAT cannot run: %v", err)
		}
		t.Skip(err)
	}
}

// awaitDirectBothWays waits until a and b each see their path to the
// other as direct.
func awaitDirectBothWays(t *testing.T, ctx context.Context, a, b *labnet.Client) {
	t.Helper()
	for _, c := range [][2]*labnet.Client{{a, b}, {b, a}} {
		if path, err := c[0].AwaitPath(ctx, c[1].Name, func(p string) bool { return p == "direct" }); err != nil {
			t.Fatalf("%s's path to %s: %v (last %q)\n%s", c[0].Name, c[1].Name, err, path, c[0].Log())
		}
	}
}
