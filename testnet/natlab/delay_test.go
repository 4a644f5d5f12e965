package natlab

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// rtt measures n UDP round trips from h to an observer and returns the
// fastest and the median.
func rtt(t testing.TB, h *Host, to netip.AddrPort, n int) (fastest, median time.Duration) {
	t.Helper()
	pc := must(h.ListenPacket("udp4", ":0"))(t)
	defer pc.Close()
	var rtts []time.Duration
	for i := range n {
		start := time.Now()
		udpAsk(t, pc, to, fmt.Sprint("rtt", i))
		rtts = append(rtts, time.Since(start))
	}
	slices.Sort(rtts)
	return rtts[0], rtts[len(rtts)/2]
}

// TestDelay: a packet waits the delay of the link it enters the internet
// on plus that of the link it leaves on; packets keep their order; a bulk
// TCP transfer across delayed links arrives intact.
func TestDelay(t *testing.T) {
	l := NewForTest(t, Config{})
	const delay = 20 * time.Millisecond
	a := must(l.AddPublicHost("a", delay))(t)
	b := must(l.AddPublicHost("b", delay))(t)
	c := must(l.AddPublicHost("c", 0))(t)
	d := must(l.AddPublicHost("d", 0))(t)
	nat := must(l.AddNAT("nat", Cone, delay))(t)
	e := must(nat.AddHost("e"))(t)

	observers := map[*Host]netip.AddrPort{}
	for _, h := range []*Host{b, c, d} {
		observers[h] = udpObserver(t, h, 7000)
	}
	type path struct {
		name     string
		from, to *Host
		want     time.Duration // the round trip's delays
	}
	// A delay is never shorter than set, and a few hundred microseconds
	// late (wake-ups of this process). The fastest of several round trips
	// shows that; the median also shows the machine's load.
	const lateFastest, lateMedian = 5 * time.Millisecond, 30 * time.Millisecond
	check := func(p path) {
		t.Helper()
		fastest, median := rtt(t, p.from, observers[p.to], 9)
		t.Logf("UDP RTT %s: fastest %v, median %v (want %v)", p.name, fastest.Round(10*time.Microsecond), median.Round(10*time.Microsecond), p.want)
		if fastest < p.want || fastest > p.want+lateFastest || median > p.want+lateMedian {
			t.Errorf("UDP RTT %s: fastest %v, median %v; want the fastest within %v..%v, the median below %v",
				p.name, fastest, median, p.want, p.want+lateFastest, p.want+lateMedian)
		}
	}
	check(path{"a-b (20+20 ms)", a, b, 4 * delay})
	check(path{"a-c (20+0 ms)", a, c, 2 * delay})
	check(path{"e behind nat-b (20+20 ms)", e, b, 4 * delay})
	check(path{"c-d (no delay)", c, d, 0})

	if err := a.SetDelay(0); err != nil {
		t.Fatal(err)
	}
	check(path{"a-b after a's delay went to 0", a, b, 2 * delay})
	if err := a.SetDelay(delay); err != nil {
		t.Fatal(err)
	}
	if err := e.SetDelay(delay); err == nil {
		t.Error("SetDelay on a host behind a NAT: got nil, want an error")
	}

	t.Run("order", func(t *testing.T) { testOrder(t, a, b) })
	t.Run("bulk", func(t *testing.T) { testBulk(t, a, b, 64<<20) })
	t.Run("QUIC", func(t *testing.T) { testQUICBulk(t, a, b, 16<<20) })
}

// testOrder sends numbered datagrams as fast as it can from a to b and
// checks that they arrive in order.
func testOrder(t *testing.T, a, b *Host) {
	const count = 5000
	rx := must(b.ListenPacket("udp4", ":7100"))(t)
	defer rx.Close()
	rx.(*net.UDPConn).SetReadBuffer(8 << 20)
	var got []uint32
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			rx.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := rx.ReadFrom(buf)
			if err != nil || n < 4 {
				return
			}
			seq := binary.BigEndian.Uint32(buf)
			got = append(got, seq)
			if seq == count-1 {
				return
			}
		}
	})
	tx := must(a.ListenPacket("udp4", ":0"))(t)
	defer tx.Close()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.IP, 7100))
	start := time.Now()
	for i := range uint32(count) {
		var buf [32]byte
		binary.BigEndian.PutUint32(buf[:], i)
		if _, err := tx.WriteTo(buf[:], to); err != nil {
			t.Fatal(err)
		}
		if i%100 == 99 {
			// 100 datagrams a millisecond: the queue holds hundreds at a
			// time, while the receiver's buffer does not overflow.
			time.Sleep(time.Millisecond)
		}
	}
	sent := time.Since(start)
	wg.Wait()
	t.Logf("%d of %d datagrams arrived (sent in %v)", len(got), count, sent.Round(time.Millisecond))
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("datagram %d arrived after %d", got[i], got[i-1])
		}
	}
	if len(got) < count*99/100 {
		t.Errorf("%d of %d datagrams arrived, want at least 99%%", len(got), count)
	}
}

// testBulk sends size pseudo-random bytes over TCP from a to b and
// compares checksums.
func testBulk(t *testing.T, a, b *Host, size int64) {
	ln := must(b.Listen("tcp4", ":7200"))(t)
	defer ln.Close()
	type result struct {
		n   int64
		sum []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		h := sha256.New()
		n, err := io.Copy(h, c)
		res <- result{n, h.Sum(nil), err}
	}()
	c := must(a.DialContext(testContext(t, 5*time.Second), "tcp4", netip.AddrPortFrom(b.IP, 7200).String()))(t)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	h := sha256.New()
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	start := time.Now()
	n, err := io.Copy(io.MultiWriter(c, h), src)
	if err != nil {
		t.Fatalf("send: %v after %d bytes", err, n)
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := <-res
	elapsed := time.Since(start)
	if r.err != nil && !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("receive: %v after %d bytes", r.err, r.n)
	}
	if r.n != size || !bytes.Equal(r.sum, h.Sum(nil)) {
		t.Fatalf("received %d bytes with SHA-256 %x, sent %d with %x", r.n, r.sum, size, h.Sum(nil))
	}
	t.Logf("%d MiB across 20+20 ms links (RTT 80 ms) in %v: %.1f MB/s", size>>20, elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6)
}
