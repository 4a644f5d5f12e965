package apitypetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/offers"
)

// awaitOffer reads offer events of id until one satisfies ok.
func (w *watcher) awaitOffer(ctx context.Context, id, what string, ok func(apitype.Offer) bool) apitype.Offer {
	w.t.Helper()
	ev := w.until(ctx, "offer "+id+" "+what, func(ev apitype.Event) bool {
		return ev.Kind == apitype.EventOffer && ev.Offer != nil && ev.Offer.ID == id && ok(*ev.Offer)
	})
	return *ev.Offer
}

func findOffer(list []apitype.Offer, id string) (apitype.Offer, bool) {
	i := slices.IndexFunc(list, func(o apitype.Offer) bool { return o.ID == id })
	if i < 0 {
		return apitype.Offer{}, false
	}
	return list[i], true
}

// shareAndAccept: alice shares a folder with bob, who sees the offer,
// accepts it into a folder and gets it; alice sees the acceptance. A
// second offer alice withdraws, a third bob declines.
func (s *suite) shareAndAccept(t *testing.T) {
	ctx := caseContext(t)
	src := filepath.Join(t.TempDir(), "talk")
	writeTree(t, src, testFolder)
	var size int64
	for _, n := range testFolder {
		size += int64(n)
	}
	aw := watch(t, ctx, s.alice, mustStatus(t, ctx, s.alice).EventSeq)
	bw := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	out, err := s.alice.Share(ctx, apitype.ShareRequest{To: s.bobName, Path: src})
	if err != nil {
		t.Fatalf("Share: %v", err)
	}
	if out.ID == "" || out.Direction != "out" || out.From != s.aliceName || out.To != s.bobName || out.Name != "talk" ||
		out.Size != size || out.Files != len(testFolder) || out.State != apitype.OfferPending || out.Path != src {
		t.Errorf("Share: got %+v", out)
	}
	in := bw.awaitOffer(ctx, out.ID, "arrives", func(apitype.Offer) bool { return true })
	if in.Direction != "in" || in.From != s.aliceName || in.To != s.bobName || in.Name != "talk" || in.Size != size ||
		in.Files != len(testFolder) || in.CID != out.CID || in.State != apitype.OfferPending || !in.Delivered || in.Path != "" {
		t.Errorf("bob's offer: got %+v", in)
	}
	list, err := s.bob.Offers(ctx)
	if got, ok := findOffer(list, out.ID); err != nil || !ok || got.State != apitype.OfferPending {
		t.Errorf("bob's Offers: got %+v, %v; want %s pending", list, err, out.ID)
	}

	dir := t.TempDir()
	tr, err := s.bob.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: in.ID, Dir: dir})
	if err != nil {
		t.Fatalf("AcceptOffer: %v", err)
	}
	if tr.CID != out.CID || tr.Dir != dir || tr.Direction != "download" {
		t.Errorf("AcceptOffer: got %+v, want a download of %s into %s", tr, out.CID, dir)
	}
	bw.awaitTransfer(ctx, tr.ID, apitype.TransferDone)
	sameTree(t, src, filepath.Join(dir, "talk"), testFolder)
	again, err := s.bob.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: in.ID, Dir: dir})
	if err != nil || again.ID != tr.ID {
		t.Errorf("accepting again: got %+v, %v; want transfer %s", again, err, tr.ID)
	}
	if err := s.bob.DeclineOffer(ctx, in.ID); !errors.Is(err, offers.ErrNotPending) {
		t.Errorf("declining an accepted offer: got %v, want %v", err, offers.ErrNotPending)
	}
	aw.awaitOffer(ctx, out.ID, "is accepted", func(o apitype.Offer) bool { return o.State == apitype.OfferAccepted })
	list, _ = s.bob.Offers(ctx)
	if got, _ := findOffer(list, out.ID); got.State != apitype.OfferAccepted || got.TransferID != tr.ID {
		t.Errorf("bob's offer after accepting: got %+v, want accepted with transfer %s", got, tr.ID)
	}

	// Withdrawn by alice.
	withdrawn, err := s.alice.Share(ctx, apitype.ShareRequest{To: s.bobName, Path: filepath.Join(src, "notes.txt")})
	if err != nil {
		t.Fatalf("Share: %v", err)
	}
	if err := s.alice.CancelOffer(ctx, withdrawn.ID); err != nil {
		t.Fatalf("CancelOffer: %v", err)
	}
	list, _ = s.alice.Offers(ctx)
	if got, _ := findOffer(list, withdrawn.ID); got.State != apitype.OfferCancelled {
		t.Errorf("after CancelOffer: got %+v, want cancelled", got)
	}

	// Declined by bob.
	declined, err := s.alice.Share(ctx, apitype.ShareRequest{To: s.bobName, Path: filepath.Join(src, "photos")})
	if err != nil {
		t.Fatalf("Share: %v", err)
	}
	bw.awaitOffer(ctx, declined.ID, "arrives", func(apitype.Offer) bool { return true })
	if err := s.bob.DeclineOffer(ctx, declined.ID); err != nil {
		t.Fatalf("DeclineOffer: %v", err)
	}
	if err := s.bob.DeclineOffer(ctx, declined.ID); err != nil {
		t.Errorf("declining again: %v", err)
	}
	aw.awaitOffer(ctx, declined.ID, "is declined", func(o apitype.Offer) bool { return o.State == apitype.OfferDeclined })
	if _, err := s.bob.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: declined.ID}); !errors.Is(err, offers.ErrNotPending) {
		t.Errorf("accepting a declined offer: got %v, want %v", err, offers.ErrNotPending)
	}
}

// offerErrors: offers to non-contacts, bad paths, unknown offers.
func (s *suite) offerErrors(t *testing.T) {
	ctx := caseContext(t)
	a, b := s.alice, s.bob
	dir := t.TempDir()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"share with a non-contact", func() error {
			_, err := a.Share(ctx, apitype.ShareRequest{To: "nobody-" + randomSuffix(), Path: dir})
			return err
		}, chat.ErrNotAContact},
		{"share a relative path", func() error {
			_, err := a.Share(ctx, apitype.ShareRequest{To: s.bobName, Path: "talk.mp4"})
			return err
		}, app.ErrInvalidArgument},
		{"share a missing file", func() error {
			_, err := a.Share(ctx, apitype.ShareRequest{To: s.bobName, Path: filepath.Join(dir, "missing")})
			return err
		}, os.ErrNotExist},
		{"accept an unknown offer", func() error {
			_, err := b.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: "nope"})
			return err
		}, offers.ErrNoSuchOffer},
		{"accept into a relative folder", func() error {
			_, err := b.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: "nope", Dir: "down"})
			return err
		}, app.ErrInvalidArgument},
		{"decline an unknown offer", func() error { return b.DeclineOffer(ctx, "nope") }, offers.ErrNoSuchOffer},
		{"cancel an unknown offer", func() error { return a.CancelOffer(ctx, "nope") }, offers.ErrNoSuchOffer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
