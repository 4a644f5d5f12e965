package apitypetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/xfer"
)

// The content the file cases publish: a folder with a small file, an
// empty one and one of several MiB in a subfolder.
var testFolder = map[string]int{
	"notes.txt":       13,
	"empty":           0,
	"photos/big.bin":  3<<20 + 12345,
	"photos/tiny.dat": 1,
}

// writeTree writes files of random bytes under root.
func writeTree(t *testing.T, root string, tree map[string]int) {
	t.Helper()
	for name, size := range tree {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, size)
		_, _ = rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameTree fails the test unless got holds the files of want, byte for
// byte.
func sameTree(t *testing.T, want, got string, tree map[string]int) {
	t.Helper()
	for name := range tree {
		w, err := os.ReadFile(filepath.Join(want, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		g, err := os.ReadFile(filepath.Join(got, filepath.FromSlash(name)))
		if err != nil {
			t.Fatalf("downloaded %s: %v", name, err)
		}
		if !bytes.Equal(w, g) {
			t.Errorf("downloaded %s: %d bytes differ from the %d published", name, len(g), len(w))
		}
	}
}

// awaitTransfer reads transfer events of id until one is in a state of
// want; a failed transfer fails the test.
func (w *watcher) awaitTransfer(ctx context.Context, id string, want ...apitype.TransferState) apitype.Transfer {
	w.t.Helper()
	ev := w.until(ctx, "transfer "+id+" "+string(want[0]), func(ev apitype.Event) bool {
		if ev.Kind != apitype.EventTransfer || ev.Transfer == nil || ev.Transfer.ID != id {
			return false
		}
		if ev.Transfer.State == apitype.TransferFailed && !slices.Contains(want, apitype.TransferFailed) {
			w.t.Fatalf("transfer %s failed: %s", id, ev.Transfer.Error)
		}
		return slices.Contains(want, ev.Transfer.State)
	})
	return *ev.Transfer
}

// publishAndGet: alice publishes a folder, bob gets it by its link and
// follows it through events until done.
func (s *suite) publishAndGet(t *testing.T) {
	ctx := caseContext(t)
	src := filepath.Join(t.TempDir(), "album")
	writeTree(t, src, testFolder)
	pub, err := s.alice.Publish(ctx, src)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	var size int64
	for _, n := range testFolder {
		size += int64(n)
	}
	alicePeer := mustStatus(t, ctx, s.alice).Peer
	l, err := xfer.ParseLink(pub.Link)
	if err != nil {
		t.Fatalf("the link %q does not parse: %v", pub.Link, err)
	}
	if pub.Name != "album" || pub.Size != size || pub.Path != src || l.CID.String() != pub.CID || l.From.String() != alicePeer || l.Name != "album" || l.Size != size {
		t.Errorf("Publish: got %+v (link %+v), want album of %d bytes from %s", pub, l, size, alicePeer)
	}
	again, err := s.alice.Publish(ctx, src)
	if err != nil || again.CID != pub.CID {
		t.Errorf("publishing again: got %+v, %v; want the same CID %s", again, err, pub.CID)
	}
	list, err := s.alice.Published(ctx)
	if err != nil || !slices.ContainsFunc(list, func(p apitype.Published) bool { return p.CID == pub.CID }) {
		t.Errorf("Published: got %+v, %v; want it to hold %s", list, err, pub.CID)
	}

	w := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	dir := t.TempDir()
	tr, err := s.bob.Get(ctx, apitype.GetRequest{Link: pub.Link, Dir: dir})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if tr.ID == "" || tr.CID != pub.CID || tr.Direction != "download" || tr.Dir != dir {
		t.Errorf("Get: got %+v, want a download of %s into %s", tr, pub.CID, dir)
	}
	done := w.awaitTransfer(ctx, tr.ID, apitype.TransferDone)
	if done.BytesDone != size || done.BytesTotal != size || done.Path != filepath.Join(dir, "album") || done.CID != pub.CID {
		t.Errorf("done: got %+v, want %d bytes at %s", done, size, filepath.Join(dir, "album"))
	}
	sameTree(t, src, filepath.Join(dir, "album"), testFolder)
	ts, err := s.bob.Transfers(ctx)
	if err != nil || !slices.ContainsFunc(ts, func(x apitype.Transfer) bool { return x.ID == tr.ID && x.State == apitype.TransferDone }) {
		t.Errorf("Transfers: got %+v, %v; want %s done", ts, err, tr.ID)
	}
	// Bob seeds what he downloaded: the same CID, from where it is.
	eventually(t, ctx, "bob seeds the download", func() (bool, string) {
		ps, err := s.bob.Published(ctx)
		ok := slices.ContainsFunc(ps, func(p apitype.Published) bool { return p.CID == pub.CID && p.Path == done.Path })
		return ok && err == nil, "published " + formatPublished(ps)
	})
	if err := s.bob.Unpublish(ctx, pub.CID); err != nil {
		t.Errorf("Unpublish: %v", err)
	}
	if err := s.alice.Unpublish(ctx, pub.CID); err != nil {
		t.Errorf("Unpublish: %v", err)
	}
	list, _ = s.alice.Published(ctx)
	if slices.ContainsFunc(list, func(p apitype.Published) bool { return p.CID == pub.CID }) {
		t.Errorf("after Unpublish, Published still holds %s", pub.CID)
	}
}

func formatPublished(ps []apitype.Published) string {
	var b bytes.Buffer
	for _, p := range ps {
		b.WriteString(p.CID + " at " + p.Path + "; ")
	}
	return b.String()
}

// pauseResumeCancel: bob pauses a download right after starting it,
// resumes it to the end, and cancels another one, whose partial data goes.
func (s *suite) pauseResumeCancel(t *testing.T) {
	ctx := caseContext(t)
	src := filepath.Join(t.TempDir(), "big.bin")
	tree := map[string]int{"big.bin": 8 << 20}
	writeTree(t, filepath.Dir(src), tree)
	pub, err := s.alice.Publish(ctx, src)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	t.Cleanup(func() { _ = s.alice.Unpublish(context.Background(), pub.CID) })

	w := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	dir := t.TempDir()
	tr, err := s.bob.Get(ctx, apitype.GetRequest{Link: pub.Link, Dir: dir, NoSeed: true})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if err := s.bob.PauseTransfer(ctx, tr.ID); err != nil {
		t.Fatalf("PauseTransfer: %v", err)
	}
	// The pause wins unless the whole download was faster than the call.
	if got := w.awaitTransfer(ctx, tr.ID, apitype.TransferPaused, apitype.TransferDone); got.State == apitype.TransferPaused {
		if err := s.bob.ResumeTransfer(ctx, tr.ID); err != nil {
			t.Fatalf("ResumeTransfer: %v", err)
		}
		w.awaitTransfer(ctx, tr.ID, apitype.TransferDone)
	} else {
		t.Logf("the download finished before the pause")
	}
	sameTree(t, filepath.Dir(src), dir, tree)

	other := t.TempDir()
	tr2, err := s.bob.Get(ctx, apitype.GetRequest{Link: pub.Link, Dir: other, NoSeed: true})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if err := s.bob.CancelTransfer(ctx, tr2.ID); err != nil {
		t.Fatalf("CancelTransfer: %v", err)
	}
	if got := w.awaitTransfer(ctx, tr2.ID, apitype.TransferCancelled, apitype.TransferDone); got.State == apitype.TransferCancelled {
		if _, err := os.Stat(filepath.Join(other, ".parley-partial", pub.CID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after CancelTransfer the partial data is still there (%v)", err)
		}
		if _, err := os.Stat(filepath.Join(other, "big.bin")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a cancelled download left its file (%v)", err)
		}
	} else {
		t.Logf("the download finished before the cancel")
	}
}

// transferErrors: bad links and unknown transfers.
func (s *suite) transferErrors(t *testing.T) {
	ctx := caseContext(t)
	b := s.bob
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"get a bad link", func() error { _, err := b.Get(ctx, apitype.GetRequest{Link: "https://example.com/x"}); return err }, xfer.ErrInvalidLink},
		{"get a bad CID", func() error { _, err := b.Get(ctx, apitype.GetRequest{Link: "parley://bafkqaaa"}); return err }, xfer.ErrInvalidLink},
		{"pause an unknown transfer", func() error { return b.PauseTransfer(ctx, "nope") }, xfer.ErrNoSuchTransfer},
		{"resume an unknown transfer", func() error { return b.ResumeTransfer(ctx, "nope") }, xfer.ErrNoSuchTransfer},
		{"cancel an unknown transfer", func() error { return b.CancelTransfer(ctx, "nope") }, xfer.ErrNoSuchTransfer},
		{"publish a missing file", func() error { _, err := b.Publish(ctx, filepath.Join(t.TempDir(), "missing")); return err }, os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
