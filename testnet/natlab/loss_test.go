package natlab

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestLoss: a link with 20% loss drops about that share of the datagrams
// crossing it; a link without loss drops none; a host behind a NAT has
// no link of its own.
func TestLoss(t *testing.T) {
	l := NewForTest(t, Config{LossSeed: 16})
	a := must(l.AddPublicHost("a", 0))(t)
	b := must(l.AddPublicHost("b", 0))(t)
	c := must(l.AddPublicHost("c", 5*time.Millisecond))(t)
	nat := must(l.AddNAT("nat", Cone, 0))(t)
	e := must(nat.AddHost("e"))(t)
	if err := a.SetLoss(0.2); err != nil {
		t.Fatal(err)
	}
	if err := e.SetLoss(0.2); err == nil {
		t.Error("SetLoss on a host behind a NAT: got nil, want an error")
	}
	if err := b.SetLoss(1); err == nil {
		t.Error("SetLoss(1): got nil, want an error")
	}

	const count = 500
	check := func(from, to *Host, port int, lo, hi float64) {
		t.Helper()
		lost := float64(count-deliver(t, from, to, port, count)) / count
		t.Logf("%s -> %s: %.1f%% of %d datagrams lost", from.Name, to.Name, 100*lost, count)
		if lost < lo || lost > hi {
			t.Errorf("%s -> %s: %.1f%% lost, want %.0f%% to %.0f%%", from.Name, to.Name, 100*lost, 100*lo, 100*hi)
		}
	}
	check(a, b, 7300, 0.05, 0.40)
	check(b, a, 7301, 0.05, 0.40)
	check(c, b, 7302, 0, 0) // queued for its delay, never dropped
	if err := a.SetLoss(0); err != nil {
		t.Fatal(err)
	}
	check(a, b, 7303, 0, 0)
}

// deliver sends count numbered datagrams from one host to another, paced
// so that no buffer overflows, and returns how many arrived.
func deliver(t *testing.T, from, to *Host, port, count int) int {
	t.Helper()
	rx := must(to.ListenPacket("udp4", fmt.Sprintf(":%d", port)))(t)
	defer rx.Close()
	var got atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			rx.SetReadDeadline(time.Now().Add(time.Second))
			if _, _, err := rx.ReadFrom(buf); err != nil {
				return
			}
			got.Add(1)
		}
	}()
	tx := must(from.ListenPacket("udp4", ":0"))(t)
	defer tx.Close()
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(to.IP, uint16(port)))
	for i := range count {
		if _, err := tx.WriteTo(fmt.Appendf(nil, "%d", i), dst); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(time.Millisecond)
		}
	}
	<-done
	return int(got.Load())
}
