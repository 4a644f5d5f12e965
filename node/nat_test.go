package node_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// TestNATType: the node reports the NAT type per transport from the
// host's events, unknown until one came, with libp2p's swapped labels put
// right (see natTracker.record).
func TestNATType(t *testing.T) {
	n := nodetest.New(t, node.WithReachability(node.ReachabilityPrivate))
	if tcp, udp := n.NATType(); tcp != network.NATDeviceTypeUnknown || udp != network.NATDeviceTypeUnknown {
		t.Fatalf("at start: got tcp %v, udp %v; want unknown", tcp, udp)
	}
	em, err := n.EventBus().Emitter(new(event.EvtNATDeviceTypeChanged))
	if err != nil {
		t.Fatal(err)
	}
	defer em.Close()
	// What libp2p v0.51.0 emits for a symmetric NAT on TCP and a cone
	// NAT on UDP: the labels the wrong way round.
	for _, e := range []event.EvtNATDeviceTypeChanged{
		{TransportProtocol: network.NATTransportUDP, NatDeviceType: network.NATDeviceTypeEndpointDependent},
		{TransportProtocol: network.NATTransportTCP, NatDeviceType: network.NATDeviceTypeEndpointIndependent},
	} {
		if err := em.Emit(e); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tcp, udp := n.NATType()
		if tcp == network.NATDeviceTypeEndpointDependent && udp == network.NATDeviceTypeEndpointIndependent {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got tcp %v, udp %v; want tcp endpoint dependent, udp endpoint independent", tcp, udp)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNATEventsSwapped checks that the go-libp2p in use still labels its
// NAT type events the wrong way round, as natTracker.record assumes: when
// a libp2p release fixes it, this fails and eventsSwapped must go.
func TestNATEventsSwapped(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/libp2p/go-libp2p").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "p2p", "host", "observedaddrs", "manager.go"))
	if err != nil {
		t.Skipf("libp2p's source: %v", err)
	}
	for _, want := range []string{
		"func (o *Manager) getNATType() (tcpNATType, udpNATType network.NATDeviceType)",
		"newUDPNAT, newTCPNAT := o.getNATType()",
	} {
		if !strings.Contains(string(src), want) {
			t.Errorf("libp2p's observed address manager no longer has %q: check whether its NAT type events are labelled right now, and drop eventsSwapped if so", want)
		}
	}
}
