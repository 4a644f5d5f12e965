package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/command"
)

// TestShareDetach: PATH is sent absolute, the offer is printed with how
// to follow it; a user who is not a contact exits 3.
func TestShareDetach(t *testing.T) {
	f, _, dir := startFake(t)
	ctx := context.Background()
	want, err := filepath.Abs("talk.mp4")
	if err != nil {
		t.Fatal(err)
	}
	out := mustParley(t, ctx, "", "--data", dir, "share", "bob", "talk.mp4", "--detach")
	if got := f.lastShare(); got != (apitype.ShareRequest{To: "bob", Path: want}) {
		t.Errorf("shared %+v, want bob and %s", got, want)
	}
	if !strings.HasPrefix(out, "offered talk.mp4 (3.0 MiB, 12 files) to bob (id o2); bob gets it when online\n") ||
		!strings.Contains(out, "parley cancel-offer o2") {
		t.Errorf("got\n%s", out)
	}
	_, err = parley(t, ctx, "", "--data", dir, "share", "carol", "talk.mp4", "--detach")
	if code := command.ExitCode(err); code != command.ExitNotFound || !strings.Contains(err.Error(), "not a contact") {
		t.Errorf("share with carol: got %v (exit %d), want exit 3, not a contact", err, code)
	}
}

func offerEvent(seq uint64, o apitype.Offer) apitype.Event {
	return apitype.Event{Seq: seq, Time: fakeTime, Kind: apitype.EventOffer, Offer: &o}
}

// TestShareFollows: share follows its offer through events (not those
// of other offers) and exits 0 when accepted, 1 when declined, 0 on
// Ctrl-C.
func TestShareFollows(t *testing.T) {
	f, _, dir := startFake(t)
	sent := fakeOffers()[1]
	sent.Name, sent.Path = "talk.mp4", filepath.Join(mustAbs(t, "."), "talk.mp4")
	delivered := sent
	delivered.Delivered = true
	accepted := delivered
	accepted.State = apitype.OfferAccepted
	declined := delivered
	declined.State = apitype.OfferDeclined
	other := delivered
	other.ID = "o9"
	next := func(t *testing.T, w *running, want apitype.Offer) {
		t.Helper()
		var got apitype.Offer
		line := w.next(t)
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("got %q: %v", line, err)
		}
		if !got.Created.Equal(want.Created) {
			t.Errorf("created: got %v, want %v", got.Created, want.Created)
		}
		got.Created = want.Created
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}

	w := startParley(t, "--data", dir, "share", "bob", "talk.mp4", "--json")
	next(t, w, sent)
	f.send(t, 0, offerEvent(42, other))
	f.send(t, 0, offerEvent(43, delivered))
	next(t, w, delivered)
	f.send(t, 0, offerEvent(44, delivered)) // no change: no line
	f.send(t, 0, offerEvent(45, accepted))
	next(t, w, accepted)
	// Then bob downloads: the bytes sent, until all of it.
	half, all := accepted, accepted
	half.BytesSent, all.BytesSent = accepted.Size/2, accepted.Size
	f.send(t, 0, offerEvent(46, half))
	next(t, w, half)
	f.send(t, 0, offerEvent(47, all))
	next(t, w, all)
	if err := w.wait(t); err != nil {
		t.Errorf("all sent: got %v, want exit 0", err)
	}

	// Without --json, on no terminal: one line when accepted, one when
	// all is sent.
	w = startParley(t, "--data", dir, "share", "bob", "talk.mp4")
	w.next(t) // offered
	f.send(t, 1, offerEvent(48, accepted))
	for _, want := range []string{"bob accepted talk.mp4", "bob accepted; sending talk.mp4 from this device", "sent talk.mp4 (3.0 MiB) to bob"} {
		if l := w.next(t); !strings.HasPrefix(l, want) {
			t.Errorf("got %q, want %q…", l, want)
		}
		if want == "bob accepted; sending talk.mp4 from this device" {
			f.send(t, 1, offerEvent(49, all))
		}
	}
	if err := w.wait(t); err != nil {
		t.Errorf("all sent, text: got %v, want exit 0", err)
	}

	w = startParley(t, "--data", dir, "share", "bob", "talk.mp4")
	if l := w.next(t); !strings.HasPrefix(l, "offered talk.mp4") {
		t.Errorf("got %q", l)
	}
	f.send(t, 2, offerEvent(50, declined))
	if l := w.next(t); l != "bob declined talk.mp4 (3.0 MiB, 12 files) (id o2)" {
		t.Errorf("got %q", l)
	}
	if err := w.wait(t); command.ExitCode(err) != 1 || !strings.Contains(err.Error(), "bob declined talk.mp4") {
		t.Errorf("declined: got %v, want exit 1", err)
	}

	w = startParley(t, "--data", dir, "share", "bob", "talk.mp4", "--json")
	next(t, w, sent)
	f.send(t, 3, apitype.Event{Seq: 1, Time: fakeTime, Kind: apitype.EventGap})
	w.stop()
	if err := w.wait(t); err != nil {
		t.Errorf("Ctrl-C: got %v, want exit 0", err)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// TestOffersText: the list shows both directions, and a hostile name
// from the network is escaped.
func TestOffersText(t *testing.T) {
	_, _, dir := startFake(t)
	out := mustParley(t, context.Background(), "", "--data", dir, "offers")
	for _, want := range []string{"ID", "STATE", "o1", "from bob", "talk.mp4", "40.0 MiB", "pending\n",
		"o2", "to bob", "pending, not delivered yet", `x\x1b[31mred\u202etxt.exe`, "declined"} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant %q", out, want)
		}
	}
	if strings.ContainsAny(out, "\x1b\u202e") {
		t.Errorf("raw control characters in\n%q", out)
	}
	var list []apitype.Offer
	if err := json.Unmarshal([]byte(mustParley(t, context.Background(), "", "--data", dir, "offers", "--json")), &list); err != nil || len(list) != 3 || list[2].Name != fakeOffers()[2].Name {
		t.Errorf("--json: got %+v, %v; want the three offers, names exact", list, err)
	}
}

// TestAcceptDeclineCancel: accept-file sends DIR absolute and follows the
// download; unknown offers exit 3.
func TestAcceptDeclineCancel(t *testing.T) {
	f, _, dir := startFake(t)
	ctx := context.Background()
	out := mustParley(t, ctx, "", "--data", dir, "accept-file", "o1", "videos", "--detach")
	if got := f.lastAccept(); got != (apitype.AcceptOfferRequest{ID: "o1", Dir: mustAbs(t, "videos")}) {
		t.Errorf("accepted %+v, want o1 into %s", got, mustAbs(t, "videos"))
	}
	if !strings.HasPrefix(out, "downloading slides.pdf (id t1) into "+mustAbs(t, "videos")) || !strings.Contains(out, "parley pause t1") {
		t.Errorf("got\n%s", out)
	}
	mustParley(t, ctx, "", "--data", dir, "accept-file", "o1", "--detach")
	if got := f.lastAccept(); got.Dir != "" {
		t.Errorf("got %+v, want the daemon's downloads folder", got)
	}

	// Followed like a get: JSON lines until done.
	w := startParley(t, "--data", dir, "accept-file", "o1", "--json")
	var first apitype.Transfer
	if err := json.Unmarshal([]byte(w.next(t)), &first); err != nil || first.ID != "t1" {
		t.Fatalf("got %+v, %v", first, err)
	}
	done := fakeTransfer()
	done.State, done.BytesDone, done.Path = apitype.TransferDone, 40<<20, "/home/alice/Downloads/slides.pdf"
	f.send(t, 0, transferEvent(42, done))
	w.next(t)
	if err := w.wait(t); err != nil {
		t.Errorf("done: got %v, want exit 0", err)
	}

	if out := mustParley(t, ctx, "", "--data", dir, "decline-file", "o1"); out != "declined the offer o1\n" {
		t.Errorf("decline-file: got %q", out)
	}
	if out := mustParley(t, ctx, "", "--data", dir, "cancel-offer", "o2"); out != "withdrew the offer o2: it is no longer served\n" {
		t.Errorf("cancel-offer: got %q", out)
	}
	for _, args := range [][]string{{"accept-file", "nope", "--detach"}, {"decline-file", "nope"}, {"cancel-offer", "nope"}} {
		_, err := parley(t, ctx, "", append([]string{"--data", dir}, args...)...)
		if code := command.ExitCode(err); code != command.ExitNotFound || !strings.Contains(err.Error(), "no such offer") {
			t.Errorf("%s: got %v (exit %d), want exit 3", args[0], err, code)
		}
	}
}

func TestOfferLines(t *testing.T) {
	list := fakeOffers()
	accepted := list[0]
	accepted.State, accepted.TransferID = apitype.OfferAccepted, "t1"
	refused := list[1]
	refused.State, refused.Error = apitype.OfferRefused, "the name is refused\n"
	for _, tt := range []struct {
		o    apitype.Offer
		want string
	}{
		{list[0], "bob offers you talk.mp4 (40.0 MiB, 1 file) (id o1): parley accept-file o1, or parley decline-file o1"},
		{accepted, "you accepted talk.mp4 (40.0 MiB, 1 file) from bob (id o1, transfer t1)"},
		{list[2], `you declined x\x1b[31mred\u202etxt.exe (1 B, 1 file) from eve (id o3)`},
		{refused, `photos (3.0 MiB, 12 files) to bob (id o2): refused: the name is refused\n`},
	} {
		if got := offerLine(tt.o); got != tt.want {
			t.Errorf("got  %q\nwant %q", got, tt.want)
		}
	}
	ev := offerEvent(1, list[0])
	if got := eventWhat(ev); got != offerLine(list[0]) {
		t.Errorf("watch: got %q", got)
	}
}
