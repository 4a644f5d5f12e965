package procnet

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/tstest"
)

// BenchmarkSplice: the relay fast path against a circuit and a direct
// connection, in one run, everything over TCP on loopback (daemons and
// supernodes listen on TCP only): probes of PARLEY_BENCH_SIZE (default
// 1GiB) from alice to bob. Each path has a network of its own: "direct"
// two public daemons; "circuit" two NAT-imitating daemons and a
// parley-relay with --splice-listen off; "splice" the same with the fast
// path on. Each b.N is a round of one probe per path, interleaved so that
// the machine's other load falls on all three alike; each probe is
// checked against the supernode's counters (its bytes crossed the splice,
// or the circuits). Reported per path (medians): MB/s, CPU-s per GiB of
// both daemons, and of the supernode; and splice/direct, circuit/direct.
//
//	go test ./testnet/procnet -run='^$' -bench=BenchmarkSplice -benchtime=5x
func BenchmarkSplice(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), time.Hour)
	defer cancel()
	size := tstest.EnvSize(b, envSize, 1<<30)
	type path struct {
		name       string
		relayFlags []string // nil: no relay, direct
		metric     string   // the relay's counter the bytes must cross
		relay      *Relay
		alice, bob *Daemon
		runs       []run
	}
	tcpRelay := append([]string{}, LoopbackTCP...)
	paths := []*path{
		{name: "direct"},
		{name: "circuit", relayFlags: append(tcpRelay, "--splice-listen", "off"), metric: MetricCircuitBytes},
		{name: "splice", relayFlags: tcpRelay, metric: MetricSplicedBytes},
	}
	for _, p := range paths {
		if p.relayFlags == nil {
			_, p.alice, p.bob = startDaemons(b, ctx, LoopbackTCP, nil)
		} else {
			var rs []*Relay
			rs, p.alice, p.bob = startDaemons(b, ctx, LoopbackTCP, []string{"--nat-imitation"}, p.relayFlags)
			p.relay = rs[0]
		}
		// Connect them first (a splice follows a circuit's first use).
		if _, err := p.alice.API.Probe(ctx, p.bob.Name, 1<<10); err != nil {
			b.Fatal(err)
		}
		if p.metric == MetricSplicedBytes {
			awaitSplice(b, ctx, p.alice, p.bob, p.relay)
		}
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			var before float64
			var relay *Proc
			if p.relay != nil {
				before = metric(b, ctx, p.relay, p.metric)
				relay = p.relay.Proc
			}
			p.runs = append(p.runs, probeMeasured(ctx, b, p.alice, p.bob, size, relay))
			if p.relay != nil {
				if got := metric(b, ctx, p.relay, p.metric) - before; got < float64(size) {
					b.Fatalf("%s: %s grew by %.0f during a %d-byte probe: the bytes did not go that way", p.name, p.metric, got, size)
				}
			}
		}
	}
	// One line per path with every run (benchmark logs are cut after ten
	// lines, and probeOnce logs one per probe; probeMeasured does not).
	for _, p := range paths {
		var line strings.Builder
		for _, r := range p.runs {
			fmt.Fprintf(&line, " %.0fMB/s(%.2f+%.2f)", r.mbPerSec(), r.cpuPerGiB(), r.relayCPUPerGiB())
		}
		b.Logf("%s: MB/s(daemons+supernode CPU-s/GiB) per run:%s", p.name, line.String())
	}
	for _, p := range paths {
		report(b, p.name, p.runs)
		record("splice-bench/"+p.name, median(p.runs, run.mbPerSec))
	}
	reportRatio(b, "splice/direct", "splice-bench/splice", "splice-bench/direct")
	reportRatio(b, "circuit/direct", "splice-bench/circuit", "splice-bench/direct")
	reportRatio(b, "splice/circuit", "splice-bench/splice", "splice-bench/circuit")
}
