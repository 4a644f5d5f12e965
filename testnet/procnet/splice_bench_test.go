package procnet

import (
	"context"
	"testing"
	"time"
)

// BenchmarkSplice: the relay fast path against a circuit and a direct
// connection, in one run, everything over TCP on loopback (daemons and
// supernodes listen on TCP only): a probe of PARLEY_BENCH_SIZE (default
// 1GiB) from alice to bob, b.N times per path. Each path has a network of
// its own: "direct" two public daemons; "circuit" two NAT-imitating
// daemons and a parley-relay with --splice-listen off; "splice" the same
// with the fast path on. Each run is checked against the supernode's
// counters (the bytes crossed its splice, or its circuits). Reported per
// path: MB/s, CPU-s per GiB of both daemons, and of the supernode; and
// splice/direct, circuit/direct.
//
//	go test ./testnet/procnet -run='^$' -bench=BenchmarkSplice -benchtime=3x
func BenchmarkSplice(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), time.Hour)
	defer cancel()
	size := envSizeOr(b, envSize, 1<<30)
	tcpRelay := append([]string{}, LoopbackTCP...)
	for _, path := range []struct {
		name   string
		relay  []string // flags of the relay; nil: no relay, direct
		metric string   // the relay's counter the bytes must cross
	}{
		{"direct", nil, ""},
		{"circuit", append(tcpRelay, "--splice-listen", "off"), MetricCircuitBytes},
		{"splice", tcpRelay, MetricSplicedBytes},
	} {
		b.Run(path.name, func(b *testing.B) {
			var rs []*Relay
			var alice, bob *Daemon
			var relay *Proc
			if path.relay == nil {
				_, alice, bob = startDaemons(b, ctx, LoopbackTCP, nil)
			} else {
				rs, alice, bob = startDaemons(b, ctx, LoopbackTCP, []string{"--nat-imitation"}, path.relay)
				relay = rs[0].Proc
			}
			// Connect them first (a splice follows a circuit's first use).
			if _, err := alice.API.Probe(ctx, bob.Name, 1<<10); err != nil {
				b.Fatal(err)
			}
			if path.metric == MetricSplicedBytes {
				awaitSplice(b, ctx, alice, bob, rs[0])
			}
			runs := make([]run, b.N)
			for i := range runs {
				var before float64
				if path.metric != "" {
					before = metric(b, ctx, rs[0], path.metric)
				}
				runs[i] = probeOnce(ctx, b, alice, bob, size, relay)
				if path.metric != "" {
					if got := metric(b, ctx, rs[0], path.metric) - before; got < float64(size) {
						b.Fatalf("%s grew by %.0f during a %d-byte probe: the bytes did not go that way", path.metric, got, size)
					}
				}
			}
			report(b, "probe", runs)
			record("splice-bench/"+path.name, median(runs, run.mbPerSec))
			if path.name != "direct" {
				reportRatio(b, path.name+"/direct", "splice-bench/"+path.name, "splice-bench/direct")
			}
		})
	}
}
