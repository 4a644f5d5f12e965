package procnet

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// The benchmarks run small by default, so that
// go test -run='^$' -bench=. -benchtime=1x is quick in CI; these
// variables make them big (see FIGURES.md).
const (
	envSize     = "PARLEY_BENCH_SIZE"      // the file of the file benchmarks; default 16MiB
	envRSSSizes = "PARLEY_BENCH_RSS_SIZES" // comma-separated sizes of BenchmarkPeakRSS; default 8MiB,32MiB
	envFiles    = "PARLEY_BENCH_FILES"     // files in the folder of BenchmarkFolder; default 200
)

// sizeName writes n as tstest.ParseSize reads it.
func sizeName(n int64) string {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.mult && n%u.mult == 0 {
			return fmt.Sprintf("%d%s", n/u.mult, u.suffix)
		}
	}
	return fmt.Sprintf("%dB", n)
}

// run is one measured transfer, start to finish.
type run struct {
	bytes       int64
	elapsed     time.Duration
	prep        time.Duration // before elapsed: croc's sender hashing, parley's publish
	cpu         time.Duration // sender's plus receiver's CPU time
	relayCPU    time.Duration // the relay's, when the data went through one
	senderRSS   int64         // peak RSS during the run
	receiverRSS int64
}

func (r run) mbPerSec() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }

func (r run) cpuPerGiB() float64 { return r.cpu.Seconds() / (float64(r.bytes) / (1 << 30)) }

func (r run) relayCPUPerGiB() float64 { return r.relayCPU.Seconds() / (float64(r.bytes) / (1 << 30)) }

// median is the median of f over runs (the mean of the middle two for an
// even count).
func median(runs []run, f func(run) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v) == 0 {
		return 0
	}
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// report reports the medians of runs, with prefix before each unit
// ("get-MB/s"…), and logs every run.
func report(b *testing.B, prefix string, runs []run) {
	b.Helper()
	for i, r := range runs {
		b.Logf("%s run %d: %s in %s (after %s of preparation), %.1f MB/s, %.2f CPU-s/GiB (relay %.2f), peak RSS sender %d MiB receiver %d MiB",
			prefix, i+1, sizeName(r.bytes), r.elapsed.Round(time.Millisecond), r.prep.Round(time.Millisecond), r.mbPerSec(), r.cpuPerGiB(), r.relayCPUPerGiB(),
			r.senderRSS>>20, r.receiverRSS>>20)
	}
	b.ReportMetric(median(runs, run.mbPerSec), prefix+"-MB/s")
	b.ReportMetric(median(runs, run.cpuPerGiB), prefix+"-cpu-s/GiB")
	if slices.ContainsFunc(runs, func(r run) bool { return r.relayCPU > 0 }) {
		b.ReportMetric(median(runs, run.relayCPUPerGiB), prefix+"-relay-cpu-s/GiB")
	}
	if slices.ContainsFunc(runs, func(r run) bool { return r.senderRSS > 0 }) {
		b.ReportMetric(median(runs, func(r run) float64 { return float64(r.senderRSS) / (1 << 20) }), prefix+"-sender-peak-MiB")
		b.ReportMetric(median(runs, func(r run) float64 { return float64(r.receiverRSS) / (1 << 20) }), prefix+"-receiver-peak-MiB")
	}
	b.ReportMetric(0, "ns/op") // a run's time is in MB/s; b.N runs are not one operation
}

// usageDelta measures the CPU time and the peak RSS of running processes
// over a run: start resets their peak RSS, and the returned function
// reads what they used since.
func usageDelta(b *testing.B, procs ...*Proc) func() []Usage {
	b.Helper()
	before := make([]Usage, len(procs))
	for i, p := range procs {
		if err := p.ResetPeakRSS(); err != nil {
			b.Fatal(err)
		}
		u, err := p.Usage()
		if err != nil {
			b.Fatal(err)
		}
		before[i] = u
	}
	return func() []Usage {
		b.Helper()
		after := make([]Usage, len(procs))
		for i, p := range procs {
			u, err := p.Usage()
			if err != nil {
				b.Fatal(err)
			}
			after[i] = Usage{CPU: u.CPU - before[i].CPU, PeakRSS: u.PeakRSS}
		}
		return after
	}
}
