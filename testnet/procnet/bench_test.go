package procnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
)

// Figures users feel, from real daemon processes on loopback: a file
// published by alice and fetched by bob start to finish (the file complete
// and verified on disk), against the raw stream speed of probe and against
// croc. See FIGURES.md for the figures and how to make them big.

// measured keeps the medians of this process's benchmarks, for the ratios
// between them ("direct/get-MB/s"…).
var measured = struct {
	sync.Mutex
	m map[string]float64
}{m: map[string]float64{}}

func record(key string, v float64) {
	measured.Lock()
	defer measured.Unlock()
	measured.m[key] = v
}

func recorded(key string) (float64, bool) {
	measured.Lock()
	defer measured.Unlock()
	v, ok := measured.m[key]
	return v, ok
}

// reportRatio reports num/den as unit when both were measured.
func reportRatio(b *testing.B, unit, num, den string) {
	b.Helper()
	n, ok1 := recorded(num)
	d, ok2 := recorded(den)
	if !ok1 || !ok2 || d == 0 {
		b.Logf("no %s: %s or %s not measured in this run", unit, num, den)
		return
	}
	b.ReportMetric(n/d, unit)
}

// BenchmarkDirect: a file (PARLEY_BENCH_SIZE, default 16MiB) between two
// public daemons on loopback: parley get, then probe on the same pair,
// then croc through its own relay. Each b.N is a run; the medians are
// reported, and get/probe, get/croc.
func BenchmarkDirect(b *testing.B) {
	benchFile(b, "direct", Config{})
}

// BenchmarkRelayed: the same with both daemons imitating a NAT, so the
// data goes through a parley-relay supernode; get/direct and get/croc
// use the medians of BenchmarkDirect in the same run.
func BenchmarkRelayed(b *testing.B) {
	benchFile(b, "relayed", Config{Relay: true}, "--nat-imitation")
}

func benchFile(b *testing.B, name string, cfg Config, flags ...string) {
	ctx, cancel := context.WithTimeout(b.Context(), time.Hour)
	defer cancel()
	size := tstest.EnvSize(b, envSize, 16<<20)
	alice, bob := startPair(b, ctx, cfg, flags...)
	src := filepath.Join(b.TempDir(), "data.bin")
	writeRandomFile(b, src, size)
	pub, err := alice.API.Publish(ctx, src)
	if err != nil {
		b.Fatal(err)
	}
	var relay *Proc
	if cfg.Relay {
		relay = alice.n.Relay
	}
	b.Run("get", func(b *testing.B) {
		runs := make([]run, b.N)
		for i := range runs {
			runs[i] = getOnce(ctx, b, alice, bob, pub, src, relay)
		}
		checkPath(ctx, b, alice, bob, cfg.Relay)
		report(b, "get", runs)
		record(name+"/get", median(runs, run.mbPerSec))
		if name == "relayed" {
			reportRatio(b, "relayed/direct", "relayed/get", "direct/get")
			reportRatio(b, "relayed/croc", "relayed/get", "direct/croc")
		}
	})
	b.Run("probe", func(b *testing.B) {
		runs := make([]run, b.N)
		for i := range runs {
			runs[i] = probeOnce(ctx, b, alice, bob, min(size, 1<<30), relay)
		}
		report(b, "probe", runs)
		record(name+"/probe", median(runs, run.mbPerSec))
		reportRatio(b, "get/probe", name+"/get", name+"/probe")
	})
	if cfg.Relay {
		return // croc always goes through its relay: BenchmarkDirect/croc is the one
	}
	b.Run("croc", func(b *testing.B) {
		croc := startCrocRelay(ctx, b, crocBinary(b))
		runs := make([]run, b.N)
		for i := range runs {
			out := b.TempDir()
			runs[i] = croc.send(ctx, b, src, out, size)
			assertSameFile(b, filepath.Join(out, filepath.Base(src)), src)
			_ = os.RemoveAll(out)
		}
		report(b, "croc", runs)
		record(name+"/croc", median(runs, run.mbPerSec))
		reportRatio(b, "get/croc", name+"/get", name+"/croc")
	})
}

// getOnce has bob get alice's content into a new folder and measures it
// from the Get call to the transfer being done (every chunk verified,
// the file in place); then checks the file against src and deletes it.
func getOnce(ctx context.Context, b *testing.B, alice, bob *Daemon, pub apitype.Published, src string, relay *Proc) run {
	b.Helper()
	dir, err := os.MkdirTemp(b.TempDir(), "get-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	procs := []*Proc{alice.Proc, bob.Proc}
	if relay != nil {
		procs = append(procs, relay)
	}
	usage := usageDelta(b, procs...)
	start := time.Now()
	done := getAndWait(ctx, b, bob, pub.Link, dir)
	elapsed := time.Since(start)
	u := usage()
	if done.CID != pub.CID {
		b.Fatalf("got %s, want %s", done.CID, pub.CID)
	}
	if err := sameFile(done.Path, src); err != nil {
		b.Fatal(err)
	}
	r := run{bytes: pub.Size, elapsed: elapsed, cpu: u[0].CPU + u[1].CPU, senderRSS: u[0].PeakRSS, receiverRSS: u[1].PeakRSS}
	if relay != nil {
		r.relayCPU = u[2].CPU
	}
	return r
}

// getAndWait starts a Get of link into dir (not seeded afterwards) and
// waits on d's events until it is done.
func getAndWait(ctx context.Context, b *testing.B, d *Daemon, link, dir string) apitype.Transfer {
	b.Helper()
	st, err := d.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	evs, err := d.API.Watch(wctx, st.EventSeq)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := d.API.Get(ctx, apitype.GetRequest{Link: link, Dir: dir, NoSeed: true})
	if err != nil {
		b.Fatal(err)
	}
	for ev := range evs {
		if ev.Kind == apitype.EventGap {
			b.Fatal("missed events of the download")
		}
		if ev.Kind != apitype.EventTransfer || ev.Transfer.ID != tr.ID {
			continue
		}
		switch ev.Transfer.State {
		case apitype.TransferDone:
			return *ev.Transfer
		case apitype.TransferFailed, apitype.TransferCancelled:
			b.Fatalf("download %s: %s", ev.Transfer.State, ev.Transfer.Error)
		}
	}
	b.Fatalf("waiting for the download: %v", ctx.Err())
	return apitype.Transfer{}
}

// probeOnce has alice probe bob with size bytes; the speed is the
// probe's own (first byte sent to bob's answer).
func probeOnce(ctx context.Context, b *testing.B, alice, bob *Daemon, size int64, relay *Proc) run {
	b.Helper()
	r, res := probe(ctx, b, alice, bob, size, relay)
	b.Logf("probe path: %s (probe says %.1f MB/s)", res.Path, res.MBPerSecond)
	return r
}

// probeMeasured is probeOnce without its log line per probe (a
// benchmark's log is cut after ten lines).
func probeMeasured(ctx context.Context, b *testing.B, alice, bob *Daemon, size int64, relay *Proc) run {
	b.Helper()
	r, _ := probe(ctx, b, alice, bob, size, relay)
	return r
}

// probe has alice probe bob with size bytes, measuring the CPU of both
// daemons and of relay (nil: none).
func probe(ctx context.Context, b *testing.B, alice, bob *Daemon, size int64, relay *Proc) (run, apitype.ProbeResult) {
	b.Helper()
	procs := []*Proc{alice.Proc, bob.Proc}
	if relay != nil {
		procs = append(procs, relay)
	}
	usage := usageDelta(b, procs...)
	res, err := alice.API.Probe(ctx, bob.Name, size)
	if err != nil {
		b.Fatal(err)
	}
	u := usage()
	if !res.Intact || res.Bytes != size {
		b.Fatalf("probe: %+v, want %d bytes intact", res, size)
	}
	r := run{bytes: res.Bytes, elapsed: res.Duration, cpu: u[0].CPU + u[1].CPU, senderRSS: u[0].PeakRSS, receiverRSS: u[1].PeakRSS}
	if relay != nil {
		r.relayCPU = u[2].CPU
	}
	return r, res
}

// checkPath fails b unless alice's connection to bob went the way the
// benchmark says: through the supernode, or direct.
func checkPath(ctx context.Context, b *testing.B, alice, bob *Daemon, relayed bool) {
	b.Helper()
	st, err := alice.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range st.Contacts {
		if c.Username != bob.Name {
			continue
		}
		b.Logf("alice to bob: %s", c.Path)
		if relayed != strings.HasPrefix(c.Path, "relayed") {
			b.Fatalf("alice reaches bob %s; this benchmark wants relayed=%v", c.Path, relayed)
		}
		return
	}
	b.Fatalf("alice has no contact %s", bob.Name)
}

// BenchmarkFolder: a folder of PARLEY_BENCH_FILES files (default 200) of
// 4 KiB each, start to finish: parley publish plus get, against croc send
// (hashing) plus receive of the same folder. The metrics parley-s and
// croc-s are those whole times; MB/s are of the transfer alone (get,
// receive).
func BenchmarkFolder(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), time.Hour)
	defer cancel()
	count := int(tstest.EnvSize(b, envFiles, 200))
	const fileSize = 4 << 10
	b.Run("parley", func(b *testing.B) {
		alice, bob := startPair(b, ctx, Config{})
		runs := make([]run, b.N)
		for i := range runs {
			src := writeFolder(b, count, fileSize)
			usage := usageDelta(b, alice.Proc, bob.Proc)
			start := time.Now()
			pub, err := alice.API.Publish(ctx, src)
			if err != nil {
				b.Fatal(err)
			}
			published := time.Now()
			dir := b.TempDir()
			done := getAndWait(ctx, b, bob, pub.Link, dir)
			u := usage()
			runs[i] = run{bytes: int64(count) * fileSize, prep: published.Sub(start), elapsed: time.Since(published),
				cpu: u[0].CPU + u[1].CPU, senderRSS: u[0].PeakRSS, receiverRSS: u[1].PeakRSS}
			checkFolder(b, done.Path, src, count)
		}
		report(b, "parley", runs)
		b.ReportMetric(median(runs, wholeSeconds), "parley-s")
		record("folder/parley", median(runs, wholeSeconds))
	})
	b.Run("croc", func(b *testing.B) {
		croc := startCrocRelay(ctx, b, crocBinary(b))
		runs := make([]run, b.N)
		for i := range runs {
			src := writeFolder(b, count, fileSize)
			out := b.TempDir()
			runs[i] = croc.send(ctx, b, src, out, int64(count)*fileSize)
			checkFolder(b, filepath.Join(out, filepath.Base(src)), src, count)
		}
		report(b, "croc", runs)
		b.ReportMetric(median(runs, wholeSeconds), "croc-s")
		record("folder/croc", median(runs, wholeSeconds))
		reportRatio(b, "parley-s/croc-s", "folder/parley", "folder/croc")
	})
}

// wholeSeconds is a run's time start to finish, preparation included.
func wholeSeconds(r run) float64 { return (r.prep + r.elapsed).Seconds() }

// writeFolder writes count random files of size bytes into a new folder
// and returns its path.
func writeFolder(b *testing.B, count, size int) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "folder")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, size)
	for i := range count {
		_, _ = rand.Read(buf)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d.bin", i)), buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// checkFolder fails b unless got holds the count files of want, equal.
func checkFolder(b *testing.B, got, want string, count int) {
	b.Helper()
	entries, err := os.ReadDir(got)
	if err != nil {
		b.Fatal(err)
	}
	if len(entries) != count {
		b.Fatalf("%s has %d entries, want %d", got, len(entries), count)
	}
	for _, e := range entries {
		if err := sameFile(filepath.Join(got, e.Name()), filepath.Join(want, e.Name())); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPeakRSS: the sender's and the receiver's peak RSS during a get,
// for each size of PARLEY_BENCH_RSS_SIZES (default 8MiB,32MiB), each on a
// fresh pair of daemons. Streaming should keep both flat as the size
// grows.
func BenchmarkPeakRSS(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Hour)
	defer cancel()
	sizes := []int64{8 << 20, 32 << 20}
	if v := os.Getenv(envRSSSizes); v != "" {
		sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := tstest.ParseSize(s)
			if err != nil {
				b.Fatalf("%s: %v", envRSSSizes, err)
			}
			sizes = append(sizes, n)
		}
	}
	for _, size := range sizes {
		b.Run(sizeName(size), func(b *testing.B) {
			alice, bob := startPair(b, ctx, Config{})
			src := filepath.Join(b.TempDir(), "data.bin")
			writeRandomFile(b, src, size)
			pub, err := alice.API.Publish(ctx, src)
			if err != nil {
				b.Fatal(err)
			}
			runs := make([]run, b.N)
			for i := range runs {
				runs[i] = getOnce(ctx, b, alice, bob, pub, src, nil)
			}
			report(b, "get", runs)
		})
	}
}
