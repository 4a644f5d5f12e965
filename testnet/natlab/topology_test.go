package natlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPublicToPublic: two public hosts reach each other over UDP and TCP,
// through the internet namespace, and each sees the other's own address.
func TestPublicToPublic(t *testing.T) {
	l := NewForTest(t, Config{})
	a := must(l.AddPublicHost("a", 0))(t)
	b := must(l.AddPublicHost("b", 0))(t)
	if a.IP != netip.MustParseAddr("203.0.113.2") || b.IP != netip.MustParseAddr("203.0.113.3") || a.PublicIP != a.IP {
		t.Fatalf("addresses: a %s (public %s), b %s; want 203.0.113.2 and .3", a.IP, a.PublicIP, b.IP)
	}
	udp := udpObserver(t, b, 7000)
	tcp := tcpObserver(t, b, 7001)

	pc := must(a.ListenPacket("udp4", ":0"))(t)
	defer pc.Close()
	local := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	if got := udpAsk(t, pc, udp, "hello"); got != netip.AddrPortFrom(a.IP, local.Port()) {
		t.Errorf("UDP: b saw %s, want %s:%d", got, a.IP, local.Port())
	}

	c := must(a.DialContext(testContext(t, 5*time.Second), "tcp4", tcp.String()))(t)
	defer c.Close()
	localTCP := c.LocalAddr().(*net.TCPAddr).AddrPort()
	if got := tcpAsk(t, c); got != netip.AddrPortFrom(a.IP, localTCP.Port()) {
		t.Errorf("TCP: b saw %s, want %s:%d", got, a.IP, localTCP.Port())
	}

	// The packets were forwarded by the internet namespace: its FORWARD
	// chain counted them.
	out := must(l.RunInternet(testContext(t, 5*time.Second), "iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n"))(t)
	if !strings.Contains(string(out), delayChain) || countersZero(string(out)) {
		t.Errorf("internet FORWARD chain saw no packets:\n%s", out)
	}
}

// countersZero reports whether every rule line of `iptables -L -v -x -n`
// counted zero packets.
func countersZero(listing string) bool {
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] != "pkts" && f[0] != "Chain" && f[0] != "0" {
			return false
		}
	}
	return true
}

// TestNATMapping: behind a cone NAT a host bound to a fixed port appears
// as <NAT>:<same port> to every destination, over UDP and TCP; behind a
// symmetric NAT the port differs per destination.
func TestNATMapping(t *testing.T) {
	l := NewForTest(t, Config{})
	s1 := must(l.AddPublicHost("s1", 0))(t)
	s2 := must(l.AddPublicHost("s2", 0))(t)
	udp := []netip.AddrPort{udpObserver(t, s1, 7000), udpObserver(t, s2, 7000)}
	tcp := []netip.AddrPort{tcpObserver(t, s1, 7001), tcpObserver(t, s2, 7001)}

	for _, typ := range []NATType{Cone, Symmetric} {
		nat := must(l.AddNAT(typ.String(), typ, 0))(t)
		h := must(nat.AddHost(typ.String() + "-host"))(t)
		if h.PublicIP != nat.PublicIP || !nat.LAN.Contains(h.IP) || h.NAT != nat {
			t.Fatalf("%s host: IP %s, public %s; NAT %s with LAN %s", typ, h.IP, h.PublicIP, nat.PublicIP, nat.LAN)
		}
		for _, network := range []string{"udp", "tcp"} {
			t.Run(typ.String()+"/"+network, func(t *testing.T) {
				const port = 4001
				var seen []netip.AddrPort
				switch network {
				case "udp":
					pc := must(h.ListenPacket("udp4", fmt.Sprintf(":%d", port)))(t)
					defer pc.Close()
					for i, to := range udp {
						seen = append(seen, udpAsk(t, pc, to, fmt.Sprint("q", i)))
					}
				case "tcp":
					for _, to := range tcp {
						seen = append(seen, tcpAsk(t, dialFrom(t, h, port, to)))
					}
				}
				for i, s := range seen {
					if s.Addr() != nat.PublicIP {
						t.Errorf("destination %d saw %s, want the NAT's address %s", i+1, s, nat.PublicIP)
					}
				}
				t.Logf("%s NAT, %s from port %d: destinations saw %v", typ, network, port, seen)
				switch typ {
				case Cone:
					for i, s := range seen {
						if s.Port() != port {
							t.Errorf("destination %d saw port %d, want the host's own %d", i+1, s.Port(), port)
						}
					}
				case Symmetric:
					if seen[0].Port() == seen[1].Port() {
						t.Errorf("both destinations saw port %d, want a different port each", seen[0].Port())
					}
				}
			})
		}
	}
}

// TestUnsolicitedInboundDropped: a NAT lets in replies to what its host
// sent, and silently drops everything else: other hosts, other ports of
// the same host, and TCP connection attempts, which time out.
func TestUnsolicitedInboundDropped(t *testing.T) {
	l := NewForTest(t, Config{})
	server := must(l.AddPublicHost("server", 0))(t)
	stranger := must(l.AddPublicHost("stranger", 0))(t)
	nat := must(l.AddNAT("nat", Cone, 0))(t)
	h := must(nat.AddHost("h"))(t)
	observer := udpObserver(t, server, 7000)

	const port = 4001
	pc := must(h.ListenPacket("udp4", fmt.Sprintf(":%d", port)))(t)
	defer pc.Close()
	if got := udpAsk(t, pc, observer, "out"); got != netip.AddrPortFrom(nat.PublicIP, port) {
		t.Fatalf("server saw %s, want %s:%d", got, nat.PublicIP, port)
	}

	mapped := netip.AddrPortFrom(nat.PublicIP, port)
	send := func(from *Host, srcPort int, payload string) {
		t.Helper()
		spc := must(from.ListenPacket("udp4", fmt.Sprintf(":%d", srcPort)))(t)
		defer spc.Close()
		if _, err := spc.WriteTo([]byte(payload), net.UDPAddrFromAddrPort(mapped)); err != nil {
			t.Fatal(err)
		}
	}
	send(stranger, 7000, "from a stranger")
	send(server, 7002, "from the server's other port")
	pc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 2048)
	if n, from, err := pc.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("host received %q from %v (%v), want nothing", buf[:n], from, err)
	}
	// The mapping still works for the server it belongs to.
	if got := udpAsk(t, pc, observer, "again"); got != mapped {
		t.Errorf("server saw %s, want %s", got, mapped)
	}

	// TCP: a listener behind the NAT is unreachable from outside; the
	// attempt times out rather than being refused.
	ln := must(h.Listen("tcp4", ":4003"))(t)
	defer ln.Close()
	start := time.Now()
	c, err := stranger.DialContext(testContext(t, 300*time.Millisecond), "tcp4", netip.AddrPortFrom(nat.PublicIP, 4003).String())
	if err == nil {
		c.Close()
		t.Fatalf("stranger connected to %s:4003 behind the NAT", nat.PublicIP)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial behind the NAT: got %v after %v, want a timeout", err, time.Since(start).Round(time.Millisecond))
	}
}

// TestLANAndHolePunching: hosts behind one NAT talk directly over its LAN;
// hosts behind two cone NATs punch a UDP hole to each other's public
// address and port; with a symmetric NAT on one side the punch fails.
func TestLANAndHolePunching(t *testing.T) {
	l := NewForTest(t, Config{})
	cone1 := must(l.AddNAT("cone1", Cone, 0))(t)
	cone2 := must(l.AddNAT("cone2", Cone, 0))(t)
	sym := must(l.AddNAT("sym", Symmetric, 0))(t)
	a := must(cone1.AddHost("a"))(t)
	a2 := must(cone1.AddHost("a2"))(t)
	b := must(cone2.AddHost("b"))(t)
	c := must(sym.AddHost("c"))(t)

	lan := udpObserver(t, a2, 7000)
	pc := must(a.ListenPacket("udp4", ":0"))(t)
	if got := udpAsk(t, pc, lan, "neighbour"); got.Addr() != a.IP {
		t.Errorf("a2 saw %s, want a's LAN address %s", got, a.IP)
	}
	pc.Close()

	const port = 4001
	punch := func(x, y *Host) bool {
		t.Helper()
		px := must(x.ListenPacket("udp4", fmt.Sprintf(":%d", port)))(t)
		defer px.Close()
		py := must(y.ListenPacket("udp4", fmt.Sprintf(":%d", port)))(t)
		defer py.Close()
		// Each side sends to where it expects the other: its NAT's
		// address and the port the other bound.
		toX := net.UDPAddrFromAddrPort(netip.AddrPortFrom(x.PublicIP, port))
		toY := net.UDPAddrFromAddrPort(netip.AddrPortFrom(y.PublicIP, port))
		gotX, gotY := make(chan bool, 1), make(chan bool, 1)
		recv := func(pc net.PacketConn, got chan bool) {
			pc.SetReadDeadline(time.Now().Add(600 * time.Millisecond))
			_, _, err := pc.ReadFrom(make([]byte, 64))
			got <- err == nil
		}
		go recv(px, gotX)
		go recv(py, gotY)
		for range 5 {
			px.WriteTo([]byte("punch"), toY)
			time.Sleep(20 * time.Millisecond)
			py.WriteTo([]byte("punch"), toX)
			time.Sleep(20 * time.Millisecond)
		}
		return <-gotX && <-gotY
	}
	if !punch(a, b) {
		t.Error("cone to cone: the hole punch failed")
	}
	if punch(a, c) {
		t.Error("cone to symmetric: the hole punch succeeded")
	}
}
