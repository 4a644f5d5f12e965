package procnet

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

// Chat figures from real daemon processes on loopback, driven through
// their local API as the CLI and the web UI drive them (so each figure
// includes one HTTP round trip to the sending daemon):
//
//   - latency: one message at a time, Send until delivered (acknowledged
//     by bob's daemon, which stored it first), p50 and p99, next to the
//     API's own round trip (a status call);
//   - burst: PARLEY_BENCH_MESSAGES messages (default 2000) sent by 256
//     concurrent callers, each call returning once its message is
//     delivered: messages a second, and CPU per thousand messages of both
//     daemons (and the relay when relayed);
//   - fanout3 (direct only): bob has three devices; the time from alice's
//     Send to the message stored on all three (one directly, two through
//     the sealed mailbox), p50 and p99.
//
// BenchmarkChat/direct between public daemons; BenchmarkChat/relayed with
// both imitating a NAT, through a parley-relay supernode.
func BenchmarkChat(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchChat(b, Config{}) })
	b.Run("relayed", func(b *testing.B) { benchChat(b, Config{Relay: true}, "--nat-imitation") })
}

func benchChat(b *testing.B, cfg Config, flags ...string) {
	ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
	defer cancel()
	alice, bob := startPair(b, ctx, cfg, flags...)
	procs := []*Proc{alice.Proc, bob.Proc}
	if cfg.Relay {
		procs = append(procs, alice.n.Relay)
	}
	// Warm up: the first message opens the conversation's stream.
	sendDelivered(ctx, b, alice.API, "bob", "warm-up")

	b.Run("latency", func(b *testing.B) {
		const n = 200
		var took, rtt []time.Duration
		for b.Loop() {
			for i := range n {
				start := time.Now()
				if _, err := alice.API.Status(ctx); err != nil {
					b.Fatal(err)
				}
				rtt = append(rtt, time.Since(start))
				start = time.Now()
				sendDelivered(ctx, b, alice.API, "bob", fmt.Sprint("latency ", i))
				took = append(took, time.Since(start))
			}
		}
		reportQuantiles(b, took, "send")
		reportQuantiles(b, rtt, "api-rtt")
	})
	b.Run("burst", func(b *testing.B) {
		n := envIntOr(b, "PARLEY_BENCH_MESSAGES", 2000)
		var rates, cpuPerK []float64
		for b.Loop() {
			usage := usageDelta(b, procs...)
			start := time.Now()
			sendConcurrently(ctx, b, alice.API, "bob", n, 256)
			elapsed := time.Since(start)
			var cpu time.Duration
			for _, u := range usage() {
				cpu += u.CPU
			}
			rates = append(rates, float64(n)/elapsed.Seconds())
			cpuPerK = append(cpuPerK, cpu.Seconds()/float64(n)*1000)
		}
		b.ReportMetric(medianOf(rates), "msgs/s")
		b.ReportMetric(medianOf(cpuPerK), "cpu-s/1k-msgs")
	})
	if cfg.Relay {
		return
	}
	b.Run("fanout3", func(b *testing.B) {
		const n = 30
		devices := []*Daemon{bob}
		for i := 2; i <= 3; i++ {
			d, err := alice.n.AddDaemon(ctx, fmt.Sprint("bob-device", i))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.API.Enrol(ctx, "bob", "bob-password"); err != nil {
				b.Fatal(err)
			}
			if err := d.await(ctx, "is logged in", func(s apitype.Status) bool { return s.LoggedIn }); err != nil {
				b.Fatal(err)
			}
			devices = append(devices, d)
		}
		// The first message after the new devices shows each has its
		// mailbox key published and alice knows them.
		awaitOnAll(ctx, b, devices, sendDelivered(ctx, b, alice.API, "bob", "hello, devices").ID)
		var took []time.Duration
		for b.Loop() {
			for i := range n {
				start := time.Now()
				m := sendDelivered(ctx, b, alice.API, "bob", fmt.Sprint("fan-out ", i))
				awaitOnAll(ctx, b, devices, m.ID)
				took = append(took, time.Since(start))
			}
		}
		reportQuantiles(b, took, "all3")
	})
}

// sendDelivered sends body and fails unless it comes back delivered.
func sendDelivered(ctx context.Context, b *testing.B, c *api.Client, to, body string) apitype.Message {
	b.Helper()
	m, err := c.Send(ctx, to, body)
	if err != nil {
		b.Fatal(err)
	}
	if m.State != apitype.MessageDelivered {
		b.Fatalf("send %q: state %s, want delivered", body, m.State)
	}
	return m
}

// sendConcurrently sends n messages from `workers` concurrent callers and
// fails unless each comes back delivered.
func sendConcurrently(ctx context.Context, b *testing.B, c *api.Client, to string, n, workers int) {
	b.Helper()
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) || failed.Load() > 0 {
					return
				}
				m, err := c.Send(ctx, to, "burst "+strconv.FormatInt(i, 10))
				if err != nil || m.State != apitype.MessageDelivered {
					failed.Add(1)
					b.Errorf("send burst %d: %s, %v; want delivered", i, m.State, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() > 0 {
		b.FailNow()
	}
}

// awaitOnAll polls each device's history until it holds message id.
func awaitOnAll(ctx context.Context, b *testing.B, devices []*Daemon, id string) {
	b.Helper()
	for _, d := range devices {
		for {
			msgs, err := d.API.History(ctx, apitype.HistoryQuery{Contact: "alice", Limit: 5})
			if err != nil {
				b.Fatal(err)
			}
			if slices.ContainsFunc(msgs, func(m apitype.Message) bool { return m.ID == id }) {
				break
			}
			select {
			case <-ctx.Done():
				b.Fatalf("%s never got message %s", d.Name, id)
			case <-time.After(time.Millisecond):
			}
		}
	}
}

// reportQuantiles reports the p50 and p99 of took in milliseconds.
func reportQuantiles(b *testing.B, took []time.Duration, name string) {
	b.Helper()
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(took[len(took)/2]), name+"-p50-ms")
	b.ReportMetric(ms(took[len(took)*99/100]), name+"-p99-ms")
}

func medianOf(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// envIntOr is the integer in environment variable name, or def.
func envIntOr(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
