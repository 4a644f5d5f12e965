package natlab

import (
	"net"
	"testing"
	"time"
)

// TestBlockUDP: behind a NAT that blocks UDP, a host still reaches a
// public server over TCP, and no datagram gets out.
func TestBlockUDP(t *testing.T) {
	l := NewForTest(t, Config{})
	server := must(l.AddPublicHost("server", 0))(t)
	nat := must(l.AddNAT("fw", Cone, 0))(t)
	host := must(nat.AddHost("client"))(t)
	udpTo := udpObserver(t, server, 4000)
	tcpTo := tcpObserver(t, server, 4001)

	pc := must(host.ListenPacket("udp4", ":5000"))(t)
	defer pc.Close()
	if seen := udpAsk(t, pc, udpTo, "before"); seen.Addr() != nat.PublicIP {
		t.Fatalf("before the block the server saw %v, want the NAT's %v", seen, nat.PublicIP)
	}
	if err := nat.BlockUDP(); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo([]byte("after"), net.UDPAddrFromAddrPort(udpTo)); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	if n, _, err := pc.ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatalf("a datagram crossed the UDP block (%d bytes back)", n)
	}
	c := dialFrom(t, host, 5001, tcpTo)
	defer c.Close()
	if seen := tcpAsk(t, c); seen.Addr() != nat.PublicIP {
		t.Errorf("over TCP the server saw %v, want the NAT's %v", seen, nat.PublicIP)
	}
}
