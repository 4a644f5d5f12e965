package testnet

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
)

// awaitOffer waits on evs until offer id (or, with id "", any offer)
// satisfies ok.
func awaitOffer(t *testing.T, ctx context.Context, evs <-chan apitype.Event, id, what string, ok func(apitype.Offer) bool) apitype.Offer {
	t.Helper()
	for {
		select {
		case ev, open := <-evs:
			if !open {
				t.Fatalf("waiting until offer %s %s: the event stream closed", id, what)
			}
			if ev.Kind == apitype.EventOffer && (id == "" || ev.Offer.ID == id) && ok(*ev.Offer) {
				return *ev.Offer
			}
		case <-ctx.Done():
			t.Fatalf("waiting until offer %s %s: %v", id, what, ctx.Err())
		}
	}
}

// TestShareWithContact: alice shares a folder with bob; bob sees the
// offer, accepts it into a folder of his choice and gets the files
// intact, and alice sees the acceptance. carol, a member and alice's
// contact too, is refused the content by its CID and alice's device.
// A second offer bob declines, and alice sees that.
func TestShareWithContact(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	carol := signedIn(t, ctx, n, "carol")[0]
	if err := MakeContacts(ctx, alice, carol); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitOnline(ctx, carol, "alice"); err != nil {
		t.Fatal(err)
	}

	src := filepath.Join(t.TempDir(), "talk")
	video := writeRandom(t, filepath.Join(src, "talk.mp4"), 3<<20+17)
	notes := writeRandom(t, filepath.Join(src, "notes", "slides.txt"), 999)
	aliceEvs, bobEvs := watchEvents(t, ctx, alice), watchEvents(t, ctx, bob)
	if _, err := alice.Engine.Share(ctx, apitype.ShareRequest{To: "dave", Path: src}); err == nil {
		t.Error("sharing with a user who is not a contact: no error")
	}
	out, err := alice.Engine.Share(ctx, apitype.ShareRequest{To: "bob", Path: src})
	if err != nil {
		t.Fatal(err)
	}
	if out.Direction != "out" || out.To != "bob" || out.Name != "talk" || out.Files != 2 || out.Size != int64(len(video)+len(notes)) {
		t.Errorf("Share: got %+v", out)
	}
	if ps, _ := alice.Engine.Published(ctx); len(ps) != 0 {
		t.Errorf("shared content is published: %+v", ps)
	}

	in := awaitOffer(t, ctx, bobEvs, out.ID, "arrives", func(o apitype.Offer) bool { return o.State == apitype.OfferPending })
	if in.Direction != "in" || in.From != "alice" || in.Name != "talk" || in.Files != 2 || in.Size != out.Size || in.CID != out.CID {
		t.Errorf("bob's offer: got %+v, want alice's %+v", in, out)
	}
	dir := t.TempDir()
	tr, err := bob.Engine.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: in.ID, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	done := awaitTransfer(t, ctx, bobEvs, tr.ID, "is done", func(x apitype.Transfer) bool { return x.State == apitype.TransferDone })
	sameFile(t, filepath.Join(done.Path, "talk.mp4"), video)
	sameFile(t, filepath.Join(dir, "talk", "notes", "slides.txt"), notes)
	if again, err := bob.Engine.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: in.ID, Dir: dir}); err != nil || again.ID != tr.ID {
		t.Errorf("accepting again: got %+v, %v; want transfer %s", again, err, tr.ID)
	}
	if ps, _ := bob.Engine.Published(ctx); len(ps) != 0 {
		t.Errorf("bob seeds what was offered to him alone: %+v", ps)
	}
	awaitOffer(t, ctx, aliceEvs, out.ID, "is accepted", func(o apitype.Offer) bool { return o.State == apitype.OfferAccepted })
	// alice's upload progress, from what her file server sent to bob's
	// device, reaches the size bob verified (events and the list agree).
	sent := awaitOffer(t, ctx, aliceEvs, out.ID, "reports all bytes sent", func(o apitype.Offer) bool { return o.BytesSent >= done.BytesDone })
	if done.BytesDone != out.Size || sent.BytesSent > 2*out.Size {
		t.Errorf("bob verified %d bytes, alice reports %d sent; the offer is %d", done.BytesDone, sent.BytesSent, out.Size)
	}
	if list, _ := alice.Engine.Offers(ctx); len(list) == 0 || list[0].BytesSent != sent.BytesSent {
		t.Errorf("alice's offer list: %+v, want bytes_sent %d", list, sent.BytesSent)
	}

	// carol holds a certificate and can reach alice, but the offer was
	// not made to her.
	carolEvs := watchEvents(t, ctx, carol)
	link := "parley://" + out.CID + "?from=" + alice.Status().Peer
	ctr, err := carol.Engine.Get(ctx, apitype.GetRequest{Link: link, Dir: t.TempDir(), NoSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	failed := awaitTransfer(t, ctx, carolEvs, ctr.ID, "is refused", func(x apitype.Transfer) bool { return x.State == apitype.TransferFailed })
	if failed.BytesDone != 0 || !strings.Contains(failed.Error, "not admitted") {
		t.Errorf("carol's download: %d bytes, error %q; want none and \"not admitted\"", failed.BytesDone, failed.Error)
	}

	// A decline reaches alice.
	one := filepath.Join(t.TempDir(), "draft.txt")
	writeRandom(t, one, 10)
	second, err := alice.Engine.Share(ctx, apitype.ShareRequest{To: "bob", Path: one})
	if err != nil {
		t.Fatal(err)
	}
	awaitOffer(t, ctx, bobEvs, second.ID, "arrives", func(o apitype.Offer) bool { return true })
	if err := bob.Engine.DeclineOffer(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	awaitOffer(t, ctx, aliceEvs, second.ID, "is declined", func(o apitype.Offer) bool { return o.State == apitype.OfferDeclined })
	// What bob declined is no longer served to him.
	declinedLink := "parley://" + second.CID + "?from=" + alice.Status().Peer
	dtr, err := bob.Engine.Get(ctx, apitype.GetRequest{Link: declinedLink, Dir: t.TempDir(), NoSeed: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := awaitTransfer(t, ctx, bobEvs, dtr.ID, "is refused", func(x apitype.Transfer) bool { return x.State == apitype.TransferFailed }); got.BytesDone != 0 {
		t.Errorf("bob fetched %d bytes of what he declined", got.BytesDone)
	}
	list, err := alice.Engine.Offers(ctx)
	if err != nil || len(list) != 2 || list[0].State != apitype.OfferAccepted || list[1].State != apitype.OfferDeclined {
		t.Errorf("alice's offers: got %+v, %v", list, err)
	}
}

// awaitOfferState polls c's offers until id satisfies ok.
func awaitOfferState(t *testing.T, c *Client, id, what string, ok func(apitype.Offer) bool) apitype.Offer {
	t.Helper()
	var got apitype.Offer
	tstest.WaitFor(t, waitTimeout, func() error {
		list, err := c.Engine.Offers(context.Background())
		if err != nil {
			return err
		}
		for _, o := range list {
			if o.ID == id {
				got = o
				if ok(o) {
					return nil
				}
				return fmt.Errorf("%s's offer %s is %+v, waiting until %s", c.Name, id, o, what)
			}
		}
		return fmt.Errorf("%s has no offer %s yet, waiting until %s", c.Name, id, what)
	})
	return got
}

// TestShareWithOfflineContact: bob is offline when alice shares a file
// with him; the offer reaches him when he is back, and, alice now
// offline, his acceptance reaches her when she is back (both kept across
// restarts); his download, failed while she was away, resumes by
// itself when she is back.
func TestShareWithOfflineContact(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	n := startNetwork(t, ctx)
	alice, bob := startPair(t, ctx, n)
	if err := n.StopClient(bob); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitPresence(ctx, alice, "bob", func(c apitype.ContactStatus) bool { return !c.Online }); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "song.flac")
	want := writeRandom(t, src, 2<<20+3)
	out, err := alice.Engine.Share(ctx, apitype.ShareRequest{To: "bob", Path: src})
	if err != nil {
		t.Fatal(err)
	}
	if out.Delivered {
		t.Fatalf("the offer to offline bob says delivered: %+v", out)
	}

	bob = addClient(t, ctx, n, "bob") // same data directory: same device
	awaitOfferState(t, bob, out.ID, "it arrives", func(o apitype.Offer) bool { return o.State == apitype.OfferPending })
	awaitOfferState(t, alice, out.ID, "it is delivered", func(o apitype.Offer) bool { return o.Delivered })

	if err := n.StopClient(alice); err != nil {
		t.Fatal(err)
	}
	if _, err := AwaitPresence(ctx, bob, "alice", func(c apitype.ContactStatus) bool { return !c.Online }); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tr, err := bob.Engine.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: out.ID, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// With alice away the download finds no provider and fails; once she
	// is back it resumes by itself and completes.
	tstest.WaitFor(t, 2*waitTimeout, func() error {
		ts, err := bob.Engine.Transfers(ctx)
		if err != nil || len(ts) != 1 || ts[0].ID != tr.ID {
			return fmt.Errorf("transfers %+v, %v", ts, err)
		}
		if ts[0].State != apitype.TransferFailed {
			return fmt.Errorf("transfer is %s, waiting until it fails", ts[0].State)
		}
		return nil
	})
	alice = addClient(t, ctx, n, "alice")
	awaitOfferState(t, alice, out.ID, "it is accepted", func(o apitype.Offer) bool { return o.State == apitype.OfferAccepted })
	tstest.WaitFor(t, 2*waitTimeout, func() error {
		ts, err := bob.Engine.Transfers(ctx)
		if err != nil || len(ts) != 1 {
			return fmt.Errorf("transfers %+v, %v", ts, err)
		}
		if ts[0].State != apitype.TransferDone {
			return fmt.Errorf("transfer is %s (%s), waiting until it is done", ts[0].State, ts[0].Error)
		}
		return nil
	})
	sameFile(t, filepath.Join(dir, "song.flac"), want)
}
