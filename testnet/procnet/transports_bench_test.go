package procnet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
)

// What users run, transport by transport: 1 GiB probes (PARLEY_BENCH_SIZE
// to change) between real daemon processes, direct and through a
// parley-relay supernode, on TCP and on QUIC, each transport forced by the
// listen addresses of the daemons and the supernode (a process that listens
// on one transport only is reached on it only), and direct between daemons
// listening on both as users run them ("default": the daemon's choice,
// TCP first between contacts). The paths take turns within every round,
// the order turning round by round, so that a noisy neighbour hurts them
// alike; croc through its relay joins the rounds when croc is on PATH.
// Medians over b.N rounds:
//
//	go test -run '^$' -bench Transports -benchtime 5x ./testnet/procnet/
//
// Metrics per path (tcp-direct, quic-relayed…): MB/s and CPU seconds per
// GiB of the sender, the receiver and the supernode; then same-run ratios:
// quic/tcp direct and relayed, default/quic direct (what a default pair
// gains over the QUIC it used to get), relayed/direct per transport,
// relayed/croc.

// transportListen are the listen addresses of a process forced onto one
// transport; "default" is both, as users run: a pair then connects the way the
// daemon chooses (TCP first between contacts).
var transportListen = map[string][]string{
	"tcp":     {"--listen", "/ip4/127.0.0.1/tcp/0"},
	"quic":    {"--listen", "/ip4/127.0.0.1/udp/0/quic-v1"},
	"default": loopback,
}

// pathCase is one of the measured paths: a pair of daemons and, when
// relayed, the supernode between them.
type pathCase struct {
	name       string // "tcp-direct"…
	transport  string
	relayed    bool
	from, to   *Daemon
	relay      *Proc
	wantPrefix string // of the probe's path label
}

// transportRun is one probe on one path.
type transportRun struct {
	transport               string // the probe's, as its path label said
	bytes                   int64
	elapsed                 time.Duration
	sender, receiver, relay time.Duration // CPU time
}

func (r transportRun) mbPerSec() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }

func (r transportRun) perGiB(d time.Duration) float64 {
	return d.Seconds() / (float64(r.bytes) / (1 << 30))
}

func transportMedian(runs []transportRun, f func(transportRun) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	switch {
	case len(v) == 0:
		return 0
	case len(v)%2 == 1:
		return v[len(v)/2]
	default:
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
}

// startTransportNet starts a rendezvous server and a pair of daemons that
// are contacts, listening on transport only: public ones (in a network
// without a supernode, where they hold no relay slot that a dial could
// take instead of the direct path), or, relayed, a pair behind imitated
// NATs with a supernode listening on transport only.
func startTransportNet(tb testing.TB, ctx context.Context, transport string, relayed bool) pathCase {
	tb.Helper()
	listen := transportListen[transport]
	n := &Network{Dir: tb.TempDir(), tb: tb, bins: Build(tb)}
	tb.Cleanup(n.printLogsIfFailed)
	var err error
	if n.Rendezvous, err = startProc(tb, "rendezvous", n.logPath("rendezvous"), n.bins.Rendezvous, nil,
		append([]string{"--local", "--data", filepath.Join(n.Dir, "rendezvous"), "--admin", ""}, loopback...)...); err != nil {
		tb.Fatal(err)
	}
	if n.RendezvousAddr, err = awaitTCPAddr(ctx, n.Rendezvous, "  "); err != nil {
		tb.Fatal(err)
	}
	add := func(name string, flags ...string) *Daemon {
		d := &Daemon{Name: name, Dir: filepath.Join(n.Dir, name), n: n}
		d.args = append([]string{"--data", d.Dir, "daemon", "--json", "--rendezvous", n.RendezvousAddr, "--supernode", "never"}, listen...)
		d.args = append(d.args, flags...)
		if err := d.start(ctx); err != nil {
			tb.Fatal(err)
		}
		if err := d.SignIn(ctx, name+"-password"); err != nil {
			tb.Fatal(err)
		}
		return d
	}
	// What a pair gets: the transport forced; by default the daemon's
	// choice, TCP first between contacts unless the pair connected before
	// it knew they are (the DHT connects public daemons to each other as
	// soon as they start, and that connection stays: QUIC).
	want := "direct/" + transport
	if transport == "default" {
		want = "direct/"
	}
	if !relayed {
		alice, bob := add("alice"), add("bob")
		if err := MakeContacts(ctx, alice, bob); err != nil {
			tb.Fatal(err)
		}
		return pathCase{name: transport + "-direct", transport: transport, from: alice, to: bob, wantPrefix: want}
	}
	if n.Relay, err = startProc(tb, "relay", n.logPath("relay"), n.bins.Relay, nil,
		append([]string{"--identity", filepath.Join(n.Dir, "relay", "identity.key"), "--rendezvous", n.RendezvousAddr,
			"--admin", "", "--drain", "0s"}, listen...)...); err != nil {
		tb.Fatal(err)
	}
	if n.RelayAddr, err = n.Relay.awaitRelayStarted(ctx); err != nil {
		tb.Fatal(err)
	}
	carol, dave := add("carol", "--nat-imitation"), add("dave", "--nat-imitation")
	for _, d := range []*Daemon{carol, dave} {
		if err := d.AwaitRelay(ctx); err != nil {
			tb.Fatal(err)
		}
	}
	if err := MakeContacts(ctx, carol, dave); err != nil {
		tb.Fatal(err)
	}
	relayPeer := n.RelayAddr[strings.LastIndex(n.RelayAddr, "/")+1:]
	return pathCase{name: transport + "-relayed", transport: transport, relayed: true, from: carol, to: dave, relay: n.Relay,
		wantPrefix: "relayed/" + transport + " via " + relayPeer}
}

// awaitRelayStarted waits for the supernode's "listening on" line (any
// transport: Network.Start waits for a TCP one) and returns its address.
func (p *Proc) awaitRelayStarted(ctx context.Context) (string, error) {
	const prefix = "  listening on "
	line, err := p.awaitLine(ctx, "its listening line", func(l string) bool {
		return strings.HasPrefix(l, prefix+"/ip4/127.0.0.1/") && strings.Contains(l, "/p2p/")
	})
	return strings.TrimPrefix(line, prefix), err
}

// probePath probes c.to from c.from with size bytes and checks that the
// probe went the way c says.
func probePath(ctx context.Context, tb testing.TB, c pathCase, size int64) transportRun {
	tb.Helper()
	procs := []*Proc{c.from.Proc, c.to.Proc}
	if c.relay != nil {
		procs = append(procs, c.relay)
	}
	before := make([]Usage, len(procs))
	for i, p := range procs {
		u, err := p.Usage()
		if err != nil {
			tb.Fatal(err)
		}
		before[i] = u
	}
	res, err := c.from.API.Probe(ctx, c.to.Name, size)
	if err != nil {
		tb.Fatalf("%s: probe: %v", c.name, err)
	}
	used := make([]time.Duration, len(procs))
	for i, p := range procs {
		u, err := p.Usage()
		if err != nil {
			tb.Fatal(err)
		}
		used[i] = u.CPU - before[i].CPU
	}
	if !res.Intact || res.Bytes != size {
		tb.Fatalf("%s: probe %+v, want %d bytes intact", c.name, res, size)
	}
	label := apitype.PathLabel(res.Path, res.Transport)
	if !strings.HasPrefix(label, c.wantPrefix) {
		tb.Fatalf("%s: the probe went %q, want %s", c.name, label, c.wantPrefix)
	}
	r := transportRun{transport: res.Transport, bytes: res.Bytes, elapsed: res.Duration, sender: used[0], receiver: used[1]}
	if c.relay != nil {
		r.relay = used[2]
	}
	return r
}

// TestProbeTransportLabels: daemons (and a supernode) that listen on one
// transport only label the probe, the contact's status and the receiver's
// view of the same connection with that transport; daemons that listen on
// both connect on TCP or QUIC (TCP first between contacts, unless the DHT
// connected them first), and both sides say the same.
func TestProbeTransportLabels(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 12 processes")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for _, transport := range []string{"tcp", "quic", "default"} {
		t.Run(transport, func(t *testing.T) {
			cases := []pathCase{startTransportNet(t, ctx, transport, false)}
			if transport != "default" {
				cases = append(cases, startTransportNet(t, ctx, transport, true))
			}
			for _, c := range cases {
				r := probePath(ctx, t, c, 1<<20)
				if c.transport == "default" {
					t.Logf("the default pair connected on %s", r.transport)
					c.wantPrefix += r.transport // and both sides say so
				}
				for _, side := range [][2]*Daemon{{c.from, c.to}, {c.to, c.from}} {
					st, err := side[0].Status(ctx)
					if err != nil {
						t.Fatal(err)
					}
					i := slices.IndexFunc(st.Contacts, func(ct apitype.ContactStatus) bool { return ct.Username == side[1].Name })
					if i < 0 {
						t.Fatalf("%s has no contact %s", side[0].Name, side[1].Name)
					}
					ct := st.Contacts[i]
					if label := apitype.PathLabel(ct.Path, ct.Transport); !strings.HasPrefix(label, c.wantPrefix) {
						t.Errorf("%s: %s reaches %s %q, want %s", c.name, side[0].Name, side[1].Name, label, c.wantPrefix)
					}
				}
			}
		})
	}
}

// BenchmarkTransports: see the comment at the top of the file.
func BenchmarkTransports(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Hour)
	defer cancel()
	size := min(tstest.EnvSize(b, envSize, 1<<30), 1<<30) // a probe's limit
	progress(machine())
	var cases []pathCase
	for _, c := range []struct {
		transport string
		relayed   bool
	}{{"tcp", false}, {"quic", false}, {"default", false}, {"tcp", true}, {"quic", true}} {
		cases = append(cases, startTransportNet(b, ctx, c.transport, c.relayed))
	}

	var croc *crocRelay
	var src string
	if bin, err := exec.LookPath("croc"); err == nil {
		croc = startCrocRelay(ctx, b, bin)
		src = filepath.Join(b.TempDir(), "data.bin")
		writeRandomFile(b, src, size)
	} else {
		progress("croc is not on PATH, so no croc figures; install it with: %s", crocInstall)
	}

	runs := map[string][]transportRun{}
	var crocRuns []run
	rounds := b.N
	for round := range rounds {
		// Each round starts at another path, croc's turn among them.
		order := append(slices.Clone(cases), pathCase{name: "croc"})
		k := round % len(order)
		order = append(order[k:], order[:k]...)
		for _, c := range order {
			if c.name == "croc" {
				if croc != nil {
					out := b.TempDir()
					r := croc.send(ctx, b, src, out, size)
					_ = os.RemoveAll(out)
					crocRuns = append(crocRuns, r)
					progress("round %d croc: %.1f MB/s, sender+receiver %.2f CPU-s/GiB, relay %.2f", round+1, r.mbPerSec(), r.cpuPerGiB(), r.relayCPUPerGiB())
				}
				continue
			}
			r := probePath(ctx, b, c, size)
			runs[c.name] = append(runs[c.name], r)
			progress("round %d %s (%s): %.1f MB/s, CPU-s/GiB sender %.2f receiver %.2f supernode %.2f",
				round+1, c.name, r.transport, r.mbPerSec(), r.perGiB(r.sender), r.perGiB(r.receiver), r.perGiB(r.relay))
		}
	}

	mbps := map[string]float64{}
	var table strings.Builder
	fmt.Fprintf(&table, "medians of %d rounds, %s each:\n", rounds, sizeName(size))
	fmt.Fprintf(&table, "| path | MB/s | CPU-s/GiB sender | receiver | supernode | all |\n|---|---:|---:|---:|---:|---:|\n")
	for _, c := range cases {
		rs := runs[c.name]
		m := transportMedian(rs, transportRun.mbPerSec)
		mbps[c.name] = m
		s := transportMedian(rs, func(r transportRun) float64 { return r.perGiB(r.sender) })
		rc := transportMedian(rs, func(r transportRun) float64 { return r.perGiB(r.receiver) })
		sn := transportMedian(rs, func(r transportRun) float64 { return r.perGiB(r.relay) })
		all := transportMedian(rs, func(r transportRun) float64 { return r.perGiB(r.sender + r.receiver + r.relay) })
		name := c.name
		if c.transport == "default" {
			seen := map[string]int{}
			for _, r := range rs {
				seen[r.transport]++
			}
			name = fmt.Sprintf("%s (on tcp %d×, quic %d×)", name, seen["tcp"], seen["quic"])
		}
		fmt.Fprintf(&table, "| %s | %.0f | %.2f | %.2f | %.2f | %.2f |\n", name, m, s, rc, sn, all)
		b.ReportMetric(m, c.name+"-MB/s")
		b.ReportMetric(all, c.name+"-cpu-s/GiB")
		if c.relayed {
			b.ReportMetric(sn, c.name+"-supernode-cpu-s/GiB")
		}
	}
	if len(crocRuns) > 0 {
		m := median(crocRuns, run.mbPerSec)
		mbps["croc"] = m
		fmt.Fprintf(&table, "| croc --no-compress via its relay | %.0f | (sender+receiver %.2f) | | %.2f | %.2f |\n", m,
			median(crocRuns, run.cpuPerGiB), median(crocRuns, run.relayCPUPerGiB),
			median(crocRuns, func(r run) float64 { return r.cpuPerGiB() + r.relayCPUPerGiB() }))
		b.ReportMetric(m, "croc-MB/s")
	}
	ratio := func(unit, num, den string) {
		if mbps[den] == 0 || mbps[num] == 0 {
			return
		}
		b.ReportMetric(mbps[num]/mbps[den], unit)
		fmt.Fprintf(&table, "%s = %.2f\n", unit, mbps[num]/mbps[den])
	}
	ratio("quic/tcp-direct", "quic-direct", "tcp-direct")
	ratio("default/quic-direct", "default-direct", "quic-direct")
	ratio("quic/tcp-relayed", "quic-relayed", "tcp-relayed")
	ratio("tcp-relayed/direct", "tcp-relayed", "tcp-direct")
	ratio("quic-relayed/direct", "quic-relayed", "quic-direct")
	ratio("tcp-relayed/croc", "tcp-relayed", "croc")
	ratio("quic-relayed/croc", "quic-relayed", "croc")
	// go test keeps 10 lines of a benchmark's log: the table goes to
	// standard error whole.
	fmt.Fprint(os.Stderr, table.String())
	b.ReportMetric(0, "ns/op")
}

// progress prints a line of a long benchmark as it happens (go test keeps
// only 10 lines of a benchmark's log).
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "transports: "+format+"\n", args...)
}

// machine says what the figures depend on: the cores, the load, and the
// UDP socket buffer limits (quic-go asks for 7 MiB; as root it gets them
// whatever the limit says).
func machine() string {
	read := func(path string) string {
		data, err := os.ReadFile(path)
		if err != nil {
			return "?"
		}
		return strings.TrimSpace(string(data))
	}
	buffers := "the 7 MiB quic-go wants (root, or limits of at least 3.5 MiB)"
	if advice := node.UDPBufferAdvice(); advice != "" {
		buffers = "LESS than quic-go wants: " + advice
	}
	return fmt.Sprintf("machine: %d CPUs, load average %s; net.core.rmem_max=%s wmem_max=%s, uid %d: the daemons' UDP buffers are %s",
		runtime.NumCPU(), read("/proc/loadavg"), read("/proc/sys/net/core/rmem_max"), read("/proc/sys/net/core/wmem_max"), os.Getuid(), buffers)
}
