package procnet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/files"
)

// TestKilledDaemonResumesDownload: bob's daemon is SIGKILLed when half of
// alice's file has arrived. Started again on the same data directory, it
// goes on by itself from the chunks it had verified (it does not start
// over), and the file on disk is alice's, byte for byte.
func TestKilledDaemonResumesDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real daemons and moves 128 MiB; not with -short")
	}
	t.Parallel()
	Build(t) // before the clock starts: a cold build can take a minute
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	alice, bob := startPair(t, ctx, Config{})

	// Big enough that the download takes a second or more on loopback, so
	// that polling every 5 ms catches it between half and whole.
	const size = 128 << 20
	src := filepath.Join(t.TempDir(), "movie.bin")
	writeRandomFile(t, src, size)
	pub, err := alice.API.Publish(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr, err := bob.API.Get(ctx, apitype.GetRequest{Link: pub.Link, Dir: dir, NoSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	half, err := pollTransfer(ctx, bob, tr.ID, 5*time.Millisecond, func(x apitype.Transfer) bool {
		return x.State == apitype.TransferDone || x.BytesTotal > 0 && 2*x.BytesDone >= x.BytesTotal
	})
	if err != nil {
		t.Fatal(err)
	}
	killed := bob.Proc
	if err := bob.Kill(); err != nil {
		t.Fatal(err)
	}
	if u, err := killed.Usage(); err != nil || u.PeakRSS == 0 || u.CPU == 0 {
		t.Errorf("usage of the killed daemon: %+v, %v; want its peak RSS and CPU time", u, err)
	}
	if half.State == apitype.TransferDone || half.BytesDone == half.BytesTotal {
		t.Fatalf("the download was done (%d bytes) before bob's daemon could be killed", half.BytesDone)
	}
	t.Logf("bob's daemon killed at %d of %d bytes (%.0f%%)", half.BytesDone, half.BytesTotal, 100*float64(half.BytesDone)/float64(half.BytesTotal))

	// The chunks verified before the kill are on disk (the daemon makes
	// them durable every few chunks): the restarted run starts from them,
	// not from nothing. Some of the last chunks may have been verified but
	// not yet recorded, so compare with half of what bob had reported.
	kept := verifiedOnDisk(t, dir, pub.CID)
	t.Logf("verified bytes on disk after the kill: %d", kept)
	if kept < half.BytesDone/2 || kept >= size {
		t.Fatalf("after the kill %d of %d bytes are recorded verified on disk; want at least half of the %d bob had reported, and not all", kept, size, half.BytesDone)
	}

	if err := bob.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	transferAfterRestart(t, ctx, bob, tr.ID)
	resumed, err := pollTransfer(ctx, bob, tr.ID, 5*time.Millisecond, func(x apitype.Transfer) bool { return x.BytesDone > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if resumed.BytesDone < kept {
		t.Errorf("the restarted transfer's first progress is %d bytes, less than the %d kept on disk: it started over", resumed.BytesDone, kept)
	}
	done, err := pollTransfer(ctx, bob, tr.ID, 50*time.Millisecond, func(x apitype.Transfer) bool { return x.State == apitype.TransferDone })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed from %d bytes (first progress %d); done %s after the restart", kept, resumed.BytesDone, time.Since(restarted).Round(time.Millisecond))
	if done.CID != pub.CID || done.BytesDone != size {
		t.Errorf("done transfer: CID %s with %d bytes, want %s with %d", done.CID, done.BytesDone, pub.CID, size)
	}
	if want := filepath.Join(dir, "movie.bin"); done.Path != want {
		t.Errorf("downloaded to %s, want %s", done.Path, want)
	}
	assertSameFile(t, done.Path, src)
}

// verifiedOnDisk is how many bytes of content cid the partial download in
// dir records as verified, read as a resumed download reads them.
func verifiedOnDisk(t *testing.T, dir, cidStr string) int64 {
	t.Helper()
	c, err := files.ParseCID(cidStr)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := files.ReadPartialManifest(dir, c)
	if err != nil {
		t.Fatalf("no partial download left by the killed daemon: %v", err)
	}
	m, err := files.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	p, err := files.OpenPartial(dir, c, raw, m)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	return p.Verified()
}

// transferAfterRestart checks that the restarted daemon lists transfer id
// as going on by itself, without a Get or a resume.
func transferAfterRestart(t *testing.T, ctx context.Context, d *Daemon, id string) {
	t.Helper()
	ts, err := d.API.Transfers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ts {
		if x.ID == id {
			if x.State != apitype.TransferRunning && x.State != apitype.TransferFindingProviders {
				t.Fatalf("after the restart the transfer is %s (%s), want it going on by itself", x.State, x.Error)
			}
			return
		}
	}
	t.Fatalf("after the restart %s lists transfers %+v, without %s", d.Name, ts, id)
}

// startPair starts a network with alice and bob signed in and contacts.
func startPair(t testing.TB, ctx context.Context, cfg Config, flags ...string) (alice, bob *Daemon) {
	t.Helper()
	n, err := Start(ctx, t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds := make([]*Daemon, 2)
	for i, name := range []string{"alice", "bob"} {
		if ds[i], err = n.AddDaemon(ctx, name, flags...); err != nil {
			t.Fatal(err)
		}
		if err := ds[i].SignIn(ctx, name+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.Relay {
		for _, d := range ds {
			if err := d.AwaitRelay(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := MakeContacts(ctx, ds[0], ds[1]); err != nil {
		t.Fatal(err)
	}
	return ds[0], ds[1]
}

// pollTransfer lists d's transfers every interval until transfer id
// satisfies ok; a failed or cancelled transfer is an error.
func pollTransfer(ctx context.Context, d *Daemon, id string, interval time.Duration, ok func(apitype.Transfer) bool) (apitype.Transfer, error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ts, err := d.API.Transfers(ctx)
		if err != nil {
			return apitype.Transfer{}, fmt.Errorf("transfers of %s: %w", d.Name, err)
		}
		for _, x := range ts {
			if x.ID != id {
				continue
			}
			if ok(x) {
				return x, nil
			}
			if x.State == apitype.TransferFailed || x.State == apitype.TransferCancelled {
				return x, fmt.Errorf("transfer %s of %s is %s: %s", id, d.Name, x.State, x.Error)
			}
		}
		select {
		case <-ctx.Done():
			return apitype.Transfer{}, fmt.Errorf("waiting on transfer %s of %s: %w", id, d.Name, ctx.Err())
		case <-t.C:
		}
	}
}

// writeRandomFile writes size random bytes to path.
func writeRandomFile(t testing.TB, path string, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err := io.CopyN(w, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// assertSameFile fails t unless the files at got and want hold the same
// bytes (compared a MiB at a time).
func assertSameFile(t testing.TB, got, want string) {
	t.Helper()
	if err := sameFile(got, want); err != nil {
		t.Fatal(err)
	}
}

func sameFile(got, want string) error {
	g, err := os.Open(got)
	if err != nil {
		return fmt.Errorf("downloaded file: %w", err)
	}
	defer g.Close()
	w, err := os.Open(want)
	if err != nil {
		return fmt.Errorf("source file: %w", err)
	}
	defer w.Close()
	gb, wb := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); ; off += int64(len(gb)) {
		gn, gerr := io.ReadFull(g, gb)
		wn, werr := io.ReadFull(w, wb)
		if gn != wn || !bytes.Equal(gb[:gn], wb[:wn]) {
			return fmt.Errorf("%s differs from %s in the MiB at offset %d", got, want, off)
		}
		if gerr != nil || werr != nil { // both ended at the same length
			return nil
		}
	}
}
