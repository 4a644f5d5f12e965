package testnet

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
)

// writeRandom writes a file of size random bytes.
func writeRandom(t *testing.T, path string, size int) []byte {
	t.Helper()
	b := make([]byte, size)
	_, _ = rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// awaitTransfer waits on c's events until transfer id satisfies ok; a
// failed transfer fails the test unless ok accepts it.
func awaitTransfer(t *testing.T, ctx context.Context, evs <-chan apitype.Event, id string, what string, ok func(apitype.Transfer) bool) apitype.Transfer {
	t.Helper()
	for {
		select {
		case ev, open := <-evs:
			if !open {
				t.Fatalf("waiting until transfer %s %s: the event stream closed", id, what)
			}
			if ev.Kind != apitype.EventTransfer || ev.Transfer.ID != id {
				continue
			}
			if ok(*ev.Transfer) {
				return *ev.Transfer
			}
			if ev.Transfer.State == apitype.TransferFailed {
				t.Fatalf("transfer %s failed: %s", id, ev.Transfer.Error)
			}
		case <-ctx.Done():
			t.Fatalf("waiting until transfer %s %s: %v", id, what, ctx.Err())
		}
	}
}

func watchEvents(t *testing.T, ctx context.Context, c *Client) <-chan apitype.Event {
	t.Helper()
	evs, err := c.Engine.Watch(ctx, c.Status().EventSeq)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("downloaded file: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes that differ from the %d published", path, len(got), len(want))
	}
}

// TestPublishedContentFoundThroughDHT: alice publishes a file; carol, who
// is not her contact and never talked to her, gets it by its CID alone
// (the link without alice's peer ID): she finds alice as a provider in the
// DHT, and reaches her, behind her imitated NAT, through a supernode.
func TestPublishedContentFoundThroughDHT(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, carol := addClient(t, ctx, n, "alice"), addClient(t, ctx, n, "carol")
	for _, c := range []*Client{alice, carol} {
		if err := SignIn(ctx, c, c.Name+"-password"); err != nil {
			t.Fatal(err)
		}
		if err := c.AwaitRelay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	src := filepath.Join(t.TempDir(), "report.pdf")
	want := writeRandom(t, src, 5<<20+7)
	pub, err := alice.Engine.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if carol.Engine.Node().Network().Connectedness(alice.Engine.Node().ID()) != 0 {
		t.Fatalf("carol is connected to alice before the download")
	}
	evs := watchEvents(t, ctx, carol)
	dir := t.TempDir()
	var tr apitype.Transfer
	// Alice's provider record may take a moment to be stored: get until
	// the DHT names her.
	tstest.WaitFor(t, waitTimeout, func() error {
		if tr, err = carol.Engine.Get(ctx, apitype.GetRequest{Link: "parley://" + pub.CID, Dir: dir}); err != nil {
			t.Fatal(err)
		}
		got := awaitTransfer(t, ctx, evs, tr.ID, "finds a provider or fails", func(x apitype.Transfer) bool {
			return x.State == apitype.TransferDone || x.State == apitype.TransferRunning || x.State == apitype.TransferFailed
		})
		if got.State == apitype.TransferFailed {
			return fmt.Errorf("transfer failed: %s", got.Error)
		}
		return nil
	})
	done := awaitTransfer(t, ctx, evs, tr.ID, "is done", func(x apitype.Transfer) bool { return x.State == apitype.TransferDone })
	if done.CID != pub.CID || done.BytesDone != int64(len(want)) {
		t.Errorf("done: got %+v, want %s with %d bytes", done, pub.CID, len(want))
	}
	sameFile(t, filepath.Join(dir, "report.pdf"), want)
	conns := carol.Engine.Node().Network().ConnsToPeer(alice.Engine.Node().ID())
	if len(conns) == 0 {
		t.Errorf("carol is not connected to alice after the download")
	}
	for _, c := range conns {
		t.Logf("carol to alice: %s", c.RemoteMultiaddr())
	}
}

// TestDownloadResumesAfterRestart: bob's engine stops in the middle of a
// download; started again on the same data directory, it goes on by
// itself and the file arrives intact.
func TestDownloadResumesAfterRestart(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	src := filepath.Join(t.TempDir(), "movie.bin")
	want := writeRandom(t, src, 96<<20)
	pub, err := alice.Engine.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	evs := watchEvents(t, ctx, bob)
	tr, err := bob.Engine.Get(ctx, apitype.GetRequest{Link: pub.Link})
	if err != nil {
		t.Fatal(err)
	}
	mid := awaitTransfer(t, ctx, evs, tr.ID, "is under way", func(x apitype.Transfer) bool {
		return x.State == apitype.TransferRunning && x.BytesDone > 0 || x.State == apitype.TransferDone
	})
	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}
	if mid.State == apitype.TransferDone {
		t.Fatalf("the download finished before bob could stop")
	}
	t.Logf("bob stopped at %d of %d bytes", mid.BytesDone, mid.BytesTotal)
	restarted := time.Now()
	bob = addClient(t, ctx, n, "bob")
	evs = watchEvents(t, ctx, bob)
	ts, _ := bob.Engine.Transfers(ctx)
	if len(ts) != 1 || ts[0].ID != tr.ID {
		t.Fatalf("after the restart bob has transfers %+v, want %s", ts, tr.ID)
	}
	var done apitype.Transfer
	if ts[0].State != apitype.TransferDone {
		done = awaitTransfer(t, ctx, evs, tr.ID, "is done", func(x apitype.Transfer) bool { return x.State == apitype.TransferDone })
	} else {
		done = ts[0]
	}
	t.Logf("bob finished %s after the restart", time.Since(restarted).Round(time.Millisecond))
	sameFile(t, done.Path, want)
	if done.Path != filepath.Join(bob.Dir, "downloads", "movie.bin") {
		t.Errorf("downloaded to %s, want the data directory's downloads folder", done.Path)
	}
}
