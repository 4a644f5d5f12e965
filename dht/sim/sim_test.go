package sim

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSimulation builds a small network, checks that every lookup
// succeeds, kills 30% of the nodes (crash mode, so it runs quickly) and
// checks that lookups succeed again once the routing tables refreshed.
func TestSimulation(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	n, err := New(ctx, Config{N: 30, Crash: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.ProvideContent(ctx, 10); err != nil {
		t.Fatal(err)
	}
	res, err := n.Measure(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before: %s", format(res))
	for name, s := range map[string]Stats{"FindPeer": res.FindPeer, "FindProviders": res.FindProviders} {
		if s.Lookups != 20 || s.Succeeded != s.Lookups {
			t.Errorf("%s: %d of %d succeeded", name, s.Succeeded, s.Lookups)
		}
		if s.HopsP95 < s.HopsMedian || s.TimeMedian <= 0 || s.QueriedMean < 1 {
			t.Errorf("%s: implausible %+v", name, s)
		}
	}
	// Every node knows every other (FindPeer needs no hop); provider
	// records are held by others (at least one hop).
	if res.FindProviders.HopsMedian < 1 {
		t.Errorf("FindProviders: %+v, want at least one hop", res.FindProviders)
	}
	if killed := n.Kill(0.3); killed != 9 {
		t.Fatalf("killed %d, want 9", killed)
	}
	killedRT := n.RoutingTables()
	if killedRT.DeadShare == 0 {
		t.Fatalf("no dead entries right after the kill: %s", killedRT)
	}
	if err := n.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = n.Measure(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the kill and a refresh: %s", format(res))
	if res.N != 21 || res.FindPeer.Succeeded != res.FindPeer.Lookups || res.FindProviders.Succeeded != res.FindProviders.Lookups {
		t.Errorf("after churn: %s", format(res))
	}
	if res.RoutingTables.DeadShare >= killedRT.DeadShare {
		t.Errorf("a refresh did not evict dead entries: %s after the kill, %s after the refresh", killedRT, res.RoutingTables)
	}
}

func format(r Result) string {
	return fmt.Sprintf("N=%d FindPeer %s | FindProviders %s | %s", r.N, formatStats(r.FindPeer), formatStats(r.FindProviders), r.RoutingTables)
}

func formatStats(s Stats) string {
	return fmt.Sprintf("%d/%d ok (%.1f%%), hops median %d p95 %d (mean %.2f), time median %s p95 %s, %.1f queried",
		s.Succeeded, s.Lookups, 100*s.SuccessRate(), s.HopsMedian, s.HopsP95, s.HopsMean,
		s.TimeMedian.Round(100*time.Microsecond), s.TimeP95.Round(100*time.Microsecond), s.QueriedMean)
}

// env reads the benchmark settings.
func envInts(b *testing.B, name string, def []int) []int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			b.Fatalf("%s=%q: want numbers of nodes, comma-separated", name, v)
		}
		out = append(out, n)
	}
	return out
}

func envInt(b *testing.B, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("%s=%q: %v", name, v, err)
		}
		return n
	}
	return def
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("%s=%q: %v", name, v, err)
		}
		return d
	}
	return def
}

// progress prints at once: a benchmark's own log appears only when it
// ends, and the large runs take long.
func progress(b *testing.B) func(string, ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s %s: %s\n", time.Now().Format(time.TimeOnly), b.Name(), fmt.Sprintf(format, args...))
	}
}

func report(b *testing.B, r Result) {
	for kind, s := range map[string]Stats{"peer": r.FindPeer, "prov": r.FindProviders} {
		b.ReportMetric(float64(s.HopsMedian), "hops-median-"+kind)
		b.ReportMetric(float64(s.HopsP95), "hops-p95-"+kind)
		b.ReportMetric(float64(s.TimeMedian.Microseconds())/1000, "ms-median-"+kind)
		b.ReportMetric(float64(s.TimeP95.Microseconds())/1000, "ms-p95-"+kind)
		b.ReportMetric(100*s.SuccessRate(), "success-%-"+kind)
	}
}

// BenchmarkLookups measures FindPeer and FindProviders in simulated
// networks. By default it builds one network of 30 nodes, so that CI's
// -benchtime=1x stays quick. The full sweep:
//
//	PARLEY_DHT_SIM_N=100,300,1000,3000 go test -run='^$' -bench=Lookups -benchtime=1x -timeout=2h ./dht/sim
//
// PARLEY_DHT_SIM_LOOKUPS (default 200 with PARLEY_DHT_SIM_N, else 20)
// sets the lookups per kind, PARLEY_DHT_SIM_LATENCY (default 20ms) the
// one-way link latency. It logs a table and the least-squares fit of mean
// hops against log2 N.
func BenchmarkLookups(b *testing.B) {
	sizes := envInts(b, "PARLEY_DHT_SIM_N", []int{30})
	lookups := envInt(b, "PARLEY_DHT_SIM_LOOKUPS", map[bool]int{true: 200, false: 20}[os.Getenv("PARLEY_DHT_SIM_N") != ""])
	latency := envDuration(b, "PARLEY_DHT_SIM_LATENCY", 20*time.Millisecond)
	var results []Result
	for _, size := range sizes {
		b.Run(fmt.Sprintf("N=%d", size), func(b *testing.B) {
			for range b.N {
				r := simulate(b, size, lookups, latency)
				results = append(results, r)
				report(b, r)
			}
		})
	}
	// The parent of sub-benchmarks has its log dropped: print the table.
	fmt.Printf("one-way latency %s, %d lookups of each kind per size\n", latency, lookups)
	fmt.Printf("%6s | %-44s | %-44s\n", "N", "FindPeer: hops med/p95, time med/p95, ok", "FindProviders: hops med/p95, time med/p95, ok")
	for _, r := range results {
		fmt.Printf("%6d | %s | %s\n", r.N, row(r.FindPeer), row(r.FindProviders))
	}
	if len(results) >= 2 {
		for _, kind := range []string{"FindPeer", "FindProviders"} {
			var xs, ys []float64
			for _, r := range results {
				s := r.FindPeer
				if kind == "FindProviders" {
					s = r.FindProviders
				}
				xs = append(xs, math.Log2(float64(r.N)))
				ys = append(ys, s.HopsMean)
			}
			a, slope, r2 := fit(xs, ys)
			fmt.Printf("%s: mean hops = %.3f + %.3f·log2(N), R² = %.3f\n", kind, a, slope, r2)
		}
	}
}

func simulate(b *testing.B, size, lookups int, latency time.Duration) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	start := time.Now()
	logf := progress(b)
	n, err := New(ctx, Config{N: size, Logf: logf})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.ProvideContent(ctx, min(100, size)); err != nil {
		logf("provide: %v", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	logf("N=%d built: %d MiB of heap in use, %d goroutines", size, ms.HeapInuse>>20, runtime.NumGoroutine())
	n.SetLatency(latency)
	r, err := n.Measure(ctx, lookups)
	if err != nil {
		b.Fatal(err)
	}
	logf("N=%d measured after %s: %s", size, time.Since(start).Round(time.Second), format(r))
	return r
}

func row(s Stats) string {
	return fmt.Sprintf("%2d / %2d, %7.1fms / %7.1fms, %5.1f%%", s.HopsMedian, s.HopsP95,
		float64(s.TimeMedian.Microseconds())/1000, float64(s.TimeP95.Microseconds())/1000, 100*s.SuccessRate())
}

// fit is the least-squares line y = a + b·x with its R².
func fit(xs, ys []float64) (a, b, r2 float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	b = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a = (sy - b*sx) / n
	var ssr, sst float64
	mean := sy / n
	for i := range xs {
		d := ys[i] - (a + b*xs[i])
		ssr += d * d
		sst += (ys[i] - mean) * (ys[i] - mean)
	}
	if sst == 0 {
		return a, b, 1
	}
	return a, b, 1 - ssr/sst
}

// BenchmarkChurn kills 30% of a network's nodes without warning and
// measures lookups right after, then once the dead nodes' connections
// dropped and each of two routing-table refresh rounds ran, then again
// after a third round. The nodes die silently (they stop answering; their
// connections stay open until DropDeadConnections), which makes requests
// to them wait the full request timeout. By default the network has 30
// nodes and the nodes crash instead (connections closed at once), so that
// CI's -benchtime=1x stays quick. The figure:
//
//	PARLEY_DHT_SIM_CHURN_N=1000 go test -run='^$' -bench=Churn -benchtime=1x -timeout=2h ./dht/sim
//
// PARLEY_DHT_SIM_LOOKUPS and PARLEY_DHT_SIM_LATENCY apply as for
// BenchmarkLookups; PARLEY_DHT_SIM_CHURN (default 0.3) is the share
// killed; PARLEY_DHT_SIM_CRASH=1 or 0 forces crash or silent deaths.
func BenchmarkChurn(b *testing.B) {
	size := envInts(b, "PARLEY_DHT_SIM_CHURN_N", []int{30})[0]
	lookups := envInt(b, "PARLEY_DHT_SIM_LOOKUPS", map[bool]int{true: 200, false: 20}[os.Getenv("PARLEY_DHT_SIM_CHURN_N") != ""])
	latency := envDuration(b, "PARLEY_DHT_SIM_LATENCY", 20*time.Millisecond)
	share := 0.3
	if v := os.Getenv("PARLEY_DHT_SIM_CHURN"); v != "" {
		var err error
		if share, err = strconv.ParseFloat(v, 64); err != nil || share <= 0 || share >= 1 {
			b.Fatalf("PARLEY_DHT_SIM_CHURN=%q: want a share between 0 and 1", v)
		}
	}
	crash := os.Getenv("PARLEY_DHT_SIM_CHURN_N") == ""
	if v := os.Getenv("PARLEY_DHT_SIM_CRASH"); v != "" {
		crash = v == "1"
	}
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
		logf := progress(b)
		n, err := New(ctx, Config{N: size, Crash: crash, Logf: logf})
		if err != nil {
			b.Fatal(err)
		}
		if err := n.ProvideContent(ctx, min(100, size)); err != nil {
			logf("provide: %v", err)
		}
		n.SetLatency(latency)
		phase := func(name string) Result {
			start := time.Now()
			r, err := n.Measure(ctx, lookups)
			if err != nil {
				b.Fatal(err)
			}
			logf("%-28s (measured in %s): %s", name, time.Since(start).Round(time.Second), format(r))
			return r
		}
		phase("before")
		killed := n.Kill(share)
		how := "silently (connections left open)"
		if crash {
			how = "by crashing (connections closed)"
		}
		logf("killed %d of %d nodes without warning, %s", killed, size, how)
		after := phase("right after the kill")
		n.DropDeadConnections()
		for i := 1; i <= 3; i++ {
			start := time.Now()
			if err := n.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			logf("refresh round %d took %s", i, time.Since(start).Round(time.Second))
			r := phase(fmt.Sprintf("after refresh round %d", i))
			if i == 3 {
				report(b, r)
			}
		}
		b.ReportMetric(100*after.FindPeer.SuccessRate(), "success-%-peer-at-kill")
		b.ReportMetric(100*after.FindProviders.SuccessRate(), "success-%-prov-at-kill")
		n.Close()
		cancel()
	}
}
