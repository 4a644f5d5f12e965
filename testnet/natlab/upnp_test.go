package natlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	libp2pnat "github.com/libp2p/go-libp2p/p2p/net/nat"
)

// upnpHelperEnv, set to a TCP port, makes TestUPnPClientHelper a UPnP
// client: run in a lab host's namespace, it maps the port with go-libp2p's
// NAT package (which renews its mappings), prints "mapped <addr:port>",
// and on SIGTERM closes it (deleting its mappings) and prints "closed".
const upnpHelperEnv = "PARLEY_NATLAB_UPNP_HELPER"

func TestUPnPClientHelper(t *testing.T) {
	port, err := strconv.Atoi(os.Getenv(upnpHelperEnv))
	if err != nil {
		t.Skip("a helper process of TestUPnPMapping")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	nat, err := libp2pnat.DiscoverNAT(dctx)
	if err != nil {
		t.Fatalf("discover NAT: %v", err)
	}
	if err := nat.AddMapping(dctx, "tcp", port); err != nil {
		t.Fatalf("map tcp %d: %v", port, err)
	}
	ext, ok := nat.GetMapping("tcp", port)
	if !ok {
		t.Fatalf("tcp %d: the router granted no mapping", port)
	}
	fmt.Printf("mapped %s\n", ext)
	<-ctx.Done()
	if err := nat.Close(); err != nil {
		t.Fatalf("close NAT: %v", err)
	}
	fmt.Println("closed")
}

// requireUPnP skips a test that needs a UPnP NAT where it cannot run (fails
// it, with the install hint, under PARLEY_REQUIRE_NATLAB=1).
func requireUPnP(t *testing.T) {
	t.Helper()
	if err := AvailableUPnP(); err != nil {
		if os.Getenv("PARLEY_REQUIRE_NATLAB") == "1" {
			t.Fatalf("PARLEY_REQUIRE_NATLAB=1 but the UPnP NAT cannot run: %v", err)
		}
		t.Skip(err)
	}
}

// TestUPnPMapping: a host behind a UPnP NAT obtains a mapping with
// go-libp2p's NAT package; miniupnpd lists it and forwards it (a public
// host connects to the mapped address and reaches the host, while an
// unmapped port stays closed), the client
// renews its lease, and a graceful stop (SIGTERM) removes it.
func TestUPnPMapping(t *testing.T) {
	requireUPnP(t)
	l := NewForTest(t, Config{Subnet: UPnPSubnet})
	nat := must(l.AddNAT("router", UPnP, 0))(t)
	h := must(nat.AddHost("h"))(t)
	far := must(l.AddPublicHost("far", 0))(t)
	ctx := testContext(t, 90*time.Second)

	ln := must(h.Listen("tcp", ":4001"))(t)
	defer ln.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^TestUPnPClientHelper$", "-test.v")
	cmd.Env = append(os.Environ(), upnpHelperEnv+"=4001")
	client := must(h.StartCmd("mapper", cmd))(t)
	lines, err := client.WaitOutput(ctx, regexp.MustCompile(`^mapped (\S+)$`))
	if err != nil {
		t.Fatalf("no mapping: %v", err)
	}
	ext, err := netip.ParseAddrPort(lines[1])
	if err != nil {
		t.Fatalf("mapping %q: %v", lines[0], err)
	}
	ext = netip.AddrPortFrom(ext.Addr().Unmap(), ext.Port())
	if ext.Addr() != nat.PublicIP {
		t.Errorf("mapped to %s, want the NAT's public address %s", ext, nat.PublicIP)
	}

	first := upnpLease(t, nat, ext.Port())
	if first.Internal != netip.AddrPortFrom(h.IP, 4001) {
		t.Errorf("miniupnpd maps %d to %s, want %s:4001", ext.Port(), first.Internal, h.IP)
	}
	rules, err := nat.Run(ctx, "nft", "list", "table", "inet", upnpTable)
	if err != nil {
		t.Fatalf("%v: %s", err, rules)
	}
	if want := fmt.Sprintf("dnat ip to %s:4001", h.IP); !strings.Contains(string(rules), want) {
		t.Errorf("miniupnpd's table lacks %q:\n%s", want, rules)
	}

	c, err := far.DialContext(ctx, "tcp", ext.String())
	if err != nil {
		t.Fatalf("dial the mapped address from the internet: %v", err)
	}
	c.Close()
	select {
	case from := <-accepted:
		if got := from.(*net.TCPAddr).AddrPort().Addr().Unmap(); got != far.IP {
			t.Errorf("the host saw a connection from %s, want %s", got, far.IP)
		}
	case <-ctx.Done():
		t.Fatal("the connection to the mapped address never reached the host")
	}

	// A port nobody mapped stays closed.
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := far.DialContext(dctx, "tcp", netip.AddrPortFrom(nat.PublicIP, 4001).String()); err == nil {
		c.Close()
		t.Error("an unmapped port of the UPnP NAT accepted a connection from the internet")
	}

	// go-libp2p renews every 20 s a lease of 60 s.
	for {
		if m := upnpLease(t, nat, ext.Port()); m.Expires.After(first.Expires) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("lease never renewed (expires %v)", first.Expires)
		case <-time.After(time.Second):
		}
	}

	if err := client.Stop(15 * time.Second); err != nil {
		t.Fatalf("stop the client: %v", err)
	}
	if !slicesContains(client.Lines(), "closed") {
		t.Errorf("the client did not close its NAT: %q", client.Lines())
	}
	ms, err := nat.UPnPMappings()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 0 {
		t.Errorf("mappings left after the client stopped: %+v", ms)
	}
	rules, err = nat.Run(ctx, "nft", "list", "table", "inet", upnpTable)
	if err != nil {
		t.Fatalf("%v: %s", err, rules)
	}
	if strings.Contains(string(rules), "dnat") {
		t.Errorf("DNAT rule left after the client stopped:\n%s", rules)
	}
}

// upnpLease is miniupnpd's TCP mapping of port ext; it fails the test if
// there is none.
func upnpLease(t *testing.T, nat *NAT, ext uint16) UPnPMapping {
	t.Helper()
	ms, err := nat.UPnPMappings()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Protocol == "tcp" && m.External == ext {
			return m
		}
	}
	t.Fatalf("miniupnpd holds no TCP mapping of port %d: %+v", ext, ms)
	return UPnPMapping{}
}

func slicesContains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}

// TestUPnPNeedsPublicSubnet: miniupnpd maps nothing on the documentation
// ranges, so a UPnP NAT on the default subnet is refused with advice.
func TestUPnPNeedsPublicSubnet(t *testing.T) {
	requireUPnP(t)
	l := NewForTest(t, Config{})
	if _, err := l.AddNAT("router", UPnP, 0); err == nil || !strings.Contains(err.Error(), "UPnPSubnet") {
		t.Fatalf("got %v, want an error naming UPnPSubnet", err)
	}
}

func TestParseLease(t *testing.T) {
	m, err := parseLease("TCP:41234:10.1.0.2:4001:1796000000:libp2p:x")
	if err != nil {
		t.Fatal(err)
	}
	want := UPnPMapping{Protocol: "tcp", External: 41234, Internal: netip.MustParseAddrPort("10.1.0.2:4001"), Expires: time.Unix(1796000000, 0), Desc: "libp2p:x"}
	if m != want {
		t.Errorf("got %+v, want %+v", m, want)
	}
	if _, err := parseLease("TCP:x"); err == nil {
		t.Error("a short line parsed")
	}
}

// TestUPnPCloseStopsMiniUPnPd: closing the lab kills miniupnpd and leaves
// nothing of the lab behind.
func TestUPnPCloseStopsMiniUPnPd(t *testing.T) {
	requireUPnP(t)
	l := NewForTest(t, Config{Subnet: UPnPSubnet})
	nat := must(l.AddNAT("router", UPnP, 0))(t)
	pid := nat.MiniUPnPd().Pid()
	if !alive(pid) {
		t.Fatalf("miniupnpd (pid %d) is not running", pid)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		t.Errorf("miniupnpd (pid %d) survived Close", pid)
	}
	assertNoTrace(t, l.ID)
}
