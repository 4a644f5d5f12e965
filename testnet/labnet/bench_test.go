package labnet_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/testnet/labnet"
	"github.com/parleynet/parley/testnet/natlab"
)

// BenchmarkHolePunch measures, per pair of NAT types with 20 ms on every
// public link, how often a fresh connection ends up hole-punched, the time
// from sending a first message to its acknowledgement (over the relay),
// and the time until the direct connection. Each op is one attempt: bob's
// daemon restarts (a fresh node, no connection to alice) and alice sends
// as soon as she sees him online. An attempt fails when no direct
// connection appears within 25 s (go-libp2p tries three punches of up to
// 5 s, the watchdog more). Before each attempt both NATs forget their
// mappings towards each other (conntrack -D).
//
//	go test -run '^$' -bench HolePunch -benchtime 20x ./testnet/labnet
func BenchmarkHolePunch(b *testing.B) {
	pairs := []struct {
		name      string
		alice     natlab.NATType
		bob       natlab.NATType
		punchable bool
	}{
		{"cone-cone", natlab.Cone, natlab.Cone, true},
		{"cone-symmetric", natlab.Cone, natlab.Symmetric, false},
		{"symmetric-symmetric", natlab.Symmetric, natlab.Symmetric, false},
	}
	for _, pair := range pairs {
		b.Run(pair.name, func(b *testing.B) {
			n := labnet.Start(b, labnet.Config{Delay: 20 * time.Millisecond})
			alice := n.AddClient(b, "alice", pair.alice)
			bob := n.AddClient(b, "bob", pair.bob)
			n.MakeContacts(b, alice, bob)
			var first, direct []time.Duration
			punched := 0
			attempt := 0
			for b.Loop() {
				attempt++
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				restartAt := time.Now()
				if err := bob.Stop(); err != nil {
					b.Fatal(err)
				}
				tstest.WaitFor(b, time.Minute, func() error {
					if cs, ok := alice.Contact(ctx, "bob"); !ok || cs.Online {
						return fmt.Errorf("attempt %d: alice never saw bob go offline: she sees him as %+v (found %v)", attempt, cs, ok)
					}
					return nil
				})
				if err := bob.Start(ctx); err != nil {
					b.Fatal(err)
				}
				restarted := time.Since(restartAt)
				tstest.WaitFor(b, time.Minute, func() error {
					cs, ok := alice.Contact(ctx, "bob")
					if ok && cs.Online && cs.Path == "not connected" &&
						slices.ContainsFunc(cs.Addrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit") }) {
						return nil
					}
					return fmt.Errorf("attempt %d: bob did not come back: alice sees him as %+v (found %v), want online, not connected, with circuit addresses", attempt, cs, ok)
				})
				// Each attempt starts with no mapping left open between the
				// two NATs by the previous attempt's punch.
				for _, pair := range [][2]*labnet.Client{{alice, bob}, {bob, alice}} {
					out, err := pair[0].NAT.Run(ctx, "conntrack", "-D", "-d", pair[1].NAT.PublicIP.String())
					if err != nil && !strings.Contains(string(out), "0 flow entries") {
						b.Fatalf("forget %s's NAT mappings to %s: %v %s (install the conntrack package)", pair[0].Name, pair[1].Name, err, out)
					}
				}
				b.Logf("attempt %d: bob restarted in %v, back online after %v", attempt, restarted, time.Since(restartAt))
				start := time.Now()
				m := alice.MustSend(b, "bob", fmt.Sprintf("attempt %d", attempt))
				first = append(first, time.Since(start))
				actx, acancel := context.WithDeadline(ctx, start.Add(25*time.Second))
				path, err := alice.AwaitPath(actx, "bob", func(p string) bool { return p == "holepunched" })
				acancel()
				if err == nil {
					punched++
					direct = append(direct, time.Since(start))
				}
				b.Logf("attempt %d: first message %s in %v; then %s", attempt, m.Path, first[len(first)-1], path)
				cancel()
			}
			b.ReportMetric(100*float64(punched)/float64(attempt), "%punched")
			b.ReportMetric(float64(median(first).Milliseconds()), "ms-first-msg")
			if len(direct) > 0 {
				b.ReportMetric(float64(median(direct).Milliseconds()), "ms-to-direct")
			}
			b.Logf("%s: %d of %d attempts hole-punched; first message median %v (max %v); direct median %v",
				pair.name, punched, attempt, median(first), slices.Max(first), median(direct))
			if pair.punchable && punched == 0 {
				b.Errorf("no %s attempt was hole-punched", pair.name)
			}
		})
	}
}

// median is the middle of v (the upper one of an even count), zero when v
// is empty.
func median[T cmp.Ordered](v []T) T {
	if len(v) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkChatLatency measures, with 20 ms on every public link, the
// time from alice's Send to its acknowledgement (bob's daemon stored it),
// one message at a time, between real daemons behind real NATs: over the
// hole-punched path of a cone-cone pair and the relayed path of a
// symmetric pair. A packet between two public hosts takes both their
// links' delays (natlab's delayer): 40 ms one way on the direct path, a
// round trip of 80 ms, and 160 ms through the supernode; the figure to
// compare is the p50 and p99 over that round trip.
//
//	PARLEY_BENCH_MESSAGES=100 go test -run '^$' -bench ChatLatency -benchtime 1x ./testnet/labnet
//
// (20 messages a path by default, so that CI's single run stays short.)
func BenchmarkChatLatency(b *testing.B) {
	msgs := 20
	if v := os.Getenv("PARLEY_BENCH_MESSAGES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("PARLEY_BENCH_MESSAGES=%q: want a positive number", v)
		}
		msgs = n
	}
	for _, pair := range []struct {
		name     string
		nat      natlab.NATType
		path     string
		pathRTTs time.Duration
	}{
		{"holepunched", natlab.Cone, "holepunched", 80 * time.Millisecond},
		{"relayed", natlab.Symmetric, "relayed", 160 * time.Millisecond},
	} {
		b.Run(pair.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			n := labnet.Start(b, labnet.Config{Delay: 20 * time.Millisecond})
			alice := n.AddClient(b, "alice", pair.nat)
			bob := n.AddClient(b, "bob", pair.nat)
			n.MakeContacts(b, alice, bob)
			alice.MustSend(b, "bob", "warm-up")
			if pair.path == "holepunched" {
				if _, err := alice.AwaitPath(ctx, "bob", func(p string) bool { return p == "holepunched" }); err != nil {
					b.Fatal(err)
				}
			}
			var took []time.Duration
			for b.Loop() {
				for i := range msgs {
					start := time.Now()
					m := alice.MustSend(b, "bob", fmt.Sprint("latency ", i))
					took = append(took, time.Since(start))
					if !strings.HasPrefix(m.Path, pair.path) {
						b.Fatalf("message %d went %q, want %s", i, m.Path, pair.path)
					}
				}
			}
			slices.Sort(took)
			p50, p99 := took[len(took)/2], took[len(took)*99/100]
			b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64((p50-pair.pathRTTs).Microseconds())/1000, "p50-over-rtt-ms")
			b.ReportMetric(float64((p99-pair.pathRTTs).Microseconds())/1000, "p99-over-rtt-ms")
		})
	}
}

// BenchmarkLabProbe measures, with 20 ms on every public link (an 80 ms
// round trip between two NATed clients), a probe (PARLEY_BENCH_SIZE,
// 256 MiB by default) between real daemons behind real NATs on the paths
// a pair can get: hole-punched as users get it (two cone NATs, default
// listeners: DCUtR dials every transport at once and QUIC, one round trip
// quicker, wins), hole-punched on TCP (two cone NATs whose daemons listen
// on TCP only), and relayed (cone and symmetric: no punch, the supernode
// splices two TCP connections). The pairs take turns in every round; the
// figures are medians, and each probe's own label must name the path it
// counts for. Every packet crossing the lab's internet passes through
// natlab's delayer, a user-space NFQUEUE program; and on TCP at this
// round trip the send buffer's limit (net.ipv4.tcp_wmem, 4 MiB at most
// here) caps what one connection has in flight, where quic-go's windows
// are its own (15 MiB a connection).
//
//	go test -run '^$' -bench LabProbe -benchtime 3x ./testnet/labnet
func BenchmarkLabProbe(b *testing.B) {
	size := tstest.EnvSize(b, "PARLEY_BENCH_SIZE", 256<<20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	n := labnet.Start(b, labnet.Config{Delay: 20 * time.Millisecond})
	tcpOnly := []string{"--listen", "/ip4/0.0.0.0/tcp/0"}
	alice := n.AddClient(b, "alice", natlab.Cone)
	bob := n.AddClient(b, "bob", natlab.Cone)
	carol := n.AddClient(b, "carol", natlab.Cone, tcpOnly...)
	dave := n.AddClient(b, "dave", natlab.Cone, tcpOnly...)
	erin := n.AddClient(b, "erin", natlab.Symmetric)
	paths := []struct {
		name      string
		from, to  *labnet.Client
		path      func(string) bool
		transport string
	}{
		{"holepunched", alice, bob, func(p string) bool { return p == "holepunched" }, "quic"},
		{"holepunched-tcp", carol, dave, func(p string) bool { return p == "holepunched" }, "tcp"},
		{"relayed", alice, erin, relayed, "tcp"},
	}
	for _, p := range paths {
		n.MakeContacts(b, p.from, p.to)
		p.from.MustSend(b, p.to.Name, "warm-up")
		if _, err := p.from.AwaitPath(ctx, p.to.Name, p.path); err != nil {
			b.Fatalf("%s: %v", p.name, err)
		}
		// A relayed pair is spliced once hole punching is over (up to
		// 30 s); until then it runs on the circuit.
		tstest.WaitFor(b, time.Minute, func() error {
			if cs, _ := p.from.Contact(ctx, p.to.Name); cs.Transport != p.transport {
				return fmt.Errorf("%s: %s's path to %s is %q over %q, want %s", p.name, p.from.Name, p.to.Name, cs.Path, cs.Transport, p.transport)
			}
			return nil
		})
	}
	rates := make([][]float64, len(paths))
	round := 0
	for b.Loop() {
		for i := range paths {
			k := (i + round) % len(paths)
			p := paths[k]
			res, err := p.from.Probe(ctx, p.to.Name, size)
			if err != nil {
				b.Fatalf("%s probe: %v", p.name, err)
			}
			if !res.Intact || res.Bytes != size || !p.path(res.Path) || res.Transport != p.transport {
				b.Fatalf("%s probe %+v: want %d bytes intact over %s", p.name, res, size, p.transport)
			}
			b.Logf("round %d %s: %.1f MB/s (%s over %s)", round+1, p.name, res.MBPerSecond, res.Path, res.Transport)
			rates[k] = append(rates[k], res.MBPerSecond)
		}
		round++
	}
	med := make([]float64, len(paths))
	for i, p := range paths {
		med[i] = median(rates[i])
		b.ReportMetric(med[i], p.name+"-MB/s")
	}
	b.ReportMetric(med[1]/med[0], "punched-tcp/quic")
	b.ReportMetric(med[2]/med[0], "relayed/punched")
}
