package procnet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
)

// startRelayed starts a network with one parley-relay per flag list in
// relays (each list is that relay's extra flags) and alice and bob as
// NAT-imitating daemons, signed in, holding reservations, and contacts.
func startRelayed(tb testing.TB, ctx context.Context, relays ...[]string) (rs []*Relay, alice, bob *Daemon) {
	tb.Helper()
	return startDaemons(tb, ctx, loopback, []string{"--nat-imitation"}, relays...)
}

// startDaemons starts a network with one parley-relay per flag list in
// relays, and alice and bob with the listen flags and other flags given,
// signed in, holding reservations when there are relays, and contacts.
func startDaemons(tb testing.TB, ctx context.Context, listen, flags []string, relays ...[]string) (rs []*Relay, alice, bob *Daemon) {
	tb.Helper()
	n, err := Start(ctx, tb, Config{})
	if err != nil {
		tb.Fatal(err)
	}
	for i, flags := range relays {
		r, err := n.AddRelay(ctx, fmt.Sprintf("relay%d", i+1), flags...)
		if err != nil {
			tb.Fatal(err)
		}
		rs = append(rs, r)
	}
	ds := make([]*Daemon, 2)
	for i, name := range []string{"alice", "bob"} {
		if ds[i], err = n.AddDaemonListen(ctx, name, listen, flags...); err != nil {
			tb.Fatal(err)
		}
		if err := ds[i].SignIn(ctx, name+"-password"); err != nil {
			tb.Fatal(err)
		}
	}
	for _, d := range ds {
		if len(rs) == 0 {
			break
		}
		if err := d.await(ctx, fmt.Sprintf("holds %d relay reservations", min(len(rs), 2)), func(s apitype.Status) bool {
			return len(s.Supernodes) >= min(len(rs), 2)
		}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := MakeContacts(ctx, ds[0], ds[1]); err != nil {
		tb.Fatal(err)
	}
	return rs, ds[0], ds[1]
}

// metric reads one series of r, failing tb on error.
func metric(tb testing.TB, ctx context.Context, r *Relay, name string) float64 {
	tb.Helper()
	m, err := r.Metrics(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return m[name]
}

// awaitSplice has alice probe bob with a few bytes, which connects them
// (through a circuit), and waits until one of rs holds an open splice
// and returns it.
func awaitSplice(tb testing.TB, ctx context.Context, alice, bob *Daemon, rs ...*Relay) *Relay {
	tb.Helper()
	if _, err := alice.API.Probe(ctx, bob.Name, 1<<10); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		for _, r := range rs {
			if m, err := r.Metrics(ctx); err == nil && m[MetricSplices] >= 1 {
				return r
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("no supernode holds a spliced connection: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestSplicedRelay: two NATed daemons relayed by a supernode get a
// spliced connection, and a probe's bytes go through the splice (the
// supernode's spliced-bytes counter grows by the transfer) and not its
// circuits (its relayed-bytes counter stays still).
func TestSplicedRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rs, alice, bob := startRelayed(t, ctx, nil)
	relay := rs[0]
	if relay.Splice == "" {
		t.Fatal("parley-relay printed no splice address")
	}
	awaitSplice(t, ctx, alice, bob, relay)
	circuit0, spliced0 := metric(t, ctx, relay, MetricCircuitBytes), metric(t, ctx, relay, MetricSplicedBytes)
	const size = 64 << 20
	res, err := alice.API.Probe(ctx, bob.Name, size)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Intact || res.Bytes != size {
		t.Fatalf("probe: %+v, want %d bytes intact", res, size)
	}
	if want := "relayed via " + relay.Peer; res.Path != want {
		t.Errorf("probe path %q, want %q", res.Path, want)
	}
	circuit, spliced := metric(t, ctx, relay, MetricCircuitBytes)-circuit0, metric(t, ctx, relay, MetricSplicedBytes)-spliced0
	t.Logf("during a %d MiB probe at %.0f MB/s the supernode spliced %.1f MiB and relayed %.1f MiB through circuits",
		size>>20, res.MBPerSecond, spliced/(1<<20), circuit/(1<<20))
	if spliced < size {
		t.Errorf("the supernode spliced %.0f bytes, want at least the probe's %d", spliced, size)
	}
	if circuit > 1<<20 {
		t.Errorf("the supernode relayed %.0f bytes through circuits during the probe, want about none", circuit)
	}
}

// TestSpliceOffFallsBackToCircuit: a supernode started with
// --splice-listen off relays through its circuit, as before.
func TestSpliceOffFallsBackToCircuit(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	rs, alice, bob := startRelayed(t, ctx, []string{"--splice-listen", "off"})
	relay := rs[0]
	if relay.Splice != "" {
		t.Fatalf("parley-relay --splice-listen off printed a splice address %s", relay.Splice)
	}
	if _, err := alice.API.Probe(ctx, bob.Name, 1<<10); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // a splice, if one were made, would be made by now
	circuit0 := metric(t, ctx, relay, MetricCircuitBytes)
	const size = 16 << 20
	res, err := alice.API.Probe(ctx, bob.Name, size)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Intact || res.Bytes != size || !strings.HasPrefix(res.Path, "relayed via ") {
		t.Fatalf("probe: %+v, want %d bytes intact, relayed", res, size)
	}
	if circuit := metric(t, ctx, relay, MetricCircuitBytes) - circuit0; circuit < size {
		t.Errorf("the supernode relayed %.0f bytes through circuits, want at least the probe's %d", circuit, size)
	}
	if n := metric(t, ctx, relay, MetricSplicesTotal); n != 0 {
		t.Errorf("%s = %v, want 0", MetricSplicesTotal, n)
	}
}

// TestSplicingSupernodeKilled: the supernode splicing a download is
// SIGKILLed halfway; the download completes through the other supernode
// without anyone resuming it, and a probe afterwards goes through it too.
func TestSplicingSupernodeKilled(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	rs, alice, bob := startRelayed(t, ctx, nil, nil)
	busy := awaitSplice(t, ctx, alice, bob, rs...)
	other := rs[0]
	if other == busy {
		other = rs[1]
	}
	const size = 512 << 20
	src := filepath.Join(t.TempDir(), "data.bin")
	writeRandomFile(t, src, size)
	pub, err := alice.API.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	spliced0, otherSpliced0 := metric(t, ctx, busy, MetricSplicedBytes), metric(t, ctx, other, MetricSplicedBytes)
	tr, err := bob.API.Get(ctx, apitype.GetRequest{Link: pub.Link, Dir: t.TempDir(), NoSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	// Kill the splicing supernode once 64 MiB went through it.
	for {
		if m, err := busy.Metrics(ctx); err == nil && m[MetricSplicedBytes]-spliced0 >= 64<<20 {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := busy.Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	ts, err := bob.API.Transfers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		if x.ID == tr.ID && x.State == apitype.TransferDone {
			t.Fatalf("the download was done before the supernode was killed; make it bigger")
		}
	}
	// The download's streams to alice broke with the connection; the
	// download looks for its provider again and goes on from the chunks
	// already verified, through the other supernode, by itself.
	done := awaitTransferEnd(t, ctx, bob, tr.ID)
	if done.State != apitype.TransferDone {
		t.Fatalf("the download after the supernode died: %s: %s", done.State, done.Error)
	}
	assertSameFile(t, done.Path, src)
	t.Logf("download done %s after the supernode was killed", time.Since(killed).Round(time.Millisecond))
	// The rest of the download (about 448 MiB) started on the circuit
	// through the other supernode and moved to its splice when it came.
	rest := metric(t, ctx, other, MetricSplicedBytes) - otherSpliced0
	t.Logf("the other supernode spliced %.1f MiB of the rest of the download", rest/(1<<20))
	if rest < 256<<20 {
		t.Errorf("the other supernode spliced %.1f MiB of the rest of the download, want most of it (the download's streams move to a splice)", rest/(1<<20))
	}
	// The new circuit through the other supernode was spliced in turn: a
	// probe now goes through that splice.
	awaitSplice(t, ctx, alice, bob, other)
	before := metric(t, ctx, other, MetricSplicedBytes)
	const probeSize = 16 << 20
	res, err := alice.API.Probe(ctx, bob.Name, probeSize)
	if err != nil {
		t.Fatal(err)
	}
	if want := "relayed via " + other.Peer; !res.Intact || res.Path != want {
		t.Fatalf("probe after the kill: %+v, want intact and %q", res, want)
	}
	if got := metric(t, ctx, other, MetricSplicedBytes) - before; got < probeSize {
		t.Errorf("the other supernode spliced %.0f bytes of the probe after the kill, want at least %d", got, probeSize)
	}
}

// awaitTransferEnd polls d's transfer id until it is done, failed or
// cancelled.
func awaitTransferEnd(t *testing.T, ctx context.Context, d *Daemon, id string) apitype.Transfer {
	t.Helper()
	tr, err := pollTransfer(ctx, d, id, 100*time.Millisecond, func(x apitype.Transfer) bool { return x.State == apitype.TransferDone })
	if err == nil {
		return tr
	}
	ts, lerr := d.API.Transfers(ctx)
	if lerr != nil {
		t.Fatal(errors.Join(err, lerr))
	}
	for _, x := range ts {
		if x.ID == id {
			return x
		}
	}
	t.Fatal(err)
	return tr
}
