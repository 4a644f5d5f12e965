package offers

import (
	"context"
	"errors"
	"github.com/parleynet/parley/app/contacts/contactstest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/app/offers/pb"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

type user struct {
	name   string
	node   *node.Node
	book   *contactstest.Book
	file   string
	svc    *Service
	mu     sync.Mutex
	events []apitype.Offer
	closed []string // the offers OnClosed reported
}

func newUser(t *testing.T, name string) *user {
	t.Helper()
	n := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	u := &user{name: name, node: n, book: contactstest.New(nil), file: filepath.Join(t.TempDir(), "offers.json")}
	u.start(t)
	return u
}

// start starts the user's service (again).
func (u *user) start(t *testing.T) {
	t.Helper()
	svc, err := New(Config{
		Host: u.node, File: u.file, Contacts: u.book, Self: func() string { return u.name },
		RetryInterval: 100 * time.Millisecond,
		OnChange: func(o apitype.Offer) {
			u.mu.Lock()
			u.events = append(u.events, o)
			u.mu.Unlock()
		},
		OnClosed: func(o apitype.Offer) {
			u.mu.Lock()
			u.closed = append(u.closed, o.ID)
			u.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	u.svc = svc
	t.Cleanup(func() { svc.Close() })
}

// befriend makes a and b contacts of each other, online and connected.
func befriend(t *testing.T, a, b *user) {
	t.Helper()
	a.book.Set(b.name, b.node.ID())
	b.book.Set(a.name, a.node.ID())
	a.node.Peerstore().AddAddrs(b.node.ID(), b.node.Addrs(), peerstore.PermanentAddrTTL)
	b.node.Peerstore().AddAddrs(a.node.ID(), a.node.Addrs(), peerstore.PermanentAddrTTL)
}

func (u *user) sawEvent(id string, state apitype.OfferState) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, o := range u.events {
		if o.ID == id && o.State == state {
			return true
		}
	}
	return false
}

func testContent(t *testing.T) Content {
	t.Helper()
	c, err := files.ParseCID("bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4")
	if err != nil {
		t.Fatal(err)
	}
	return Content{CID: c, Name: "talk.mp4", Size: 40 << 20, Files: 1, Path: "/home/alice/talk.mp4"}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := tstest.Poll(ctx, func() error {
		if !cond() {
			return errors.New("waiting until " + what)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRoundTrip: alice offers, bob gets it once, accepts, alice sees it.
func TestRoundTrip(t *testing.T) {
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(t, alice, bob)
	out, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
	if err != nil {
		t.Fatal(err)
	}
	if !out.Delivered || out.State != apitype.OfferPending || out.Direction != "out" || out.To != "bob" || out.From != "alice" {
		t.Fatalf("Offer: got %+v, want a delivered pending offer to bob", out)
	}
	in, err := bob.svc.Get(out.ID)
	if err != nil {
		t.Fatalf("bob has no offer %s: %v", out.ID, err)
	}
	if in.Direction != "in" || in.From != "alice" || in.To != "bob" || in.Name != "talk.mp4" || in.Size != 40<<20 || in.Files != 1 || in.CID != out.CID || in.Path != "" {
		t.Errorf("bob's offer: got %+v, want alice's talk.mp4 (%+v)", in, out)
	}
	if !bob.sawEvent(out.ID, apitype.OfferPending) {
		t.Error("bob got no event for the offer")
	}
	if src, err := bob.svc.Source(out.ID); err != nil || src != alice.node.ID() {
		t.Errorf("Source: got %s, %v; want alice's device %s", src, err, alice.node.ID())
	}

	// Delivered twice (a retry after a lost ack): stored once.
	if err := alice.svc.exchange(t.Context(), bob.node.ID(), offerFrame("alice", out)); err != nil {
		t.Fatalf("delivering again: %v", err)
	}
	if n := len(bob.svc.List()); n != 1 {
		t.Errorf("after a second delivery bob has %d offers, want 1", n)
	}

	var started int
	start := func(o apitype.Offer, from peer.ID) (string, error) {
		started++
		if from != alice.node.ID() {
			t.Errorf("start: from %s, want alice's device", from)
		}
		return "t1", nil
	}
	acc, err := bob.svc.Accept(out.ID, start)
	if err != nil || acc.State != apitype.OfferAccepted || acc.TransferID != "t1" {
		t.Fatalf("Accept: got %+v, %v", acc, err)
	}
	if again, err := bob.svc.Accept(out.ID, start); err != nil || again.TransferID != "t1" || started != 1 {
		t.Errorf("accepting again: got %+v, %v, %d starts; want the same transfer, one start", again, err, started)
	}
	waitFor(t, "alice sees the offer accepted", func() bool {
		o, _ := alice.svc.Get(out.ID)
		return o.State == apitype.OfferAccepted
	})
	if !alice.sawEvent(out.ID, apitype.OfferAccepted) {
		t.Error("alice got no event for the acceptance")
	}
	alice.mu.Lock()
	if len(alice.closed) != 0 {
		t.Errorf("OnClosed reported %v for an accepted offer", alice.closed)
	}
	alice.mu.Unlock()
	if err := bob.svc.Decline(out.ID); !errors.Is(err, ErrNotPending) {
		t.Errorf("declining an accepted offer: got %v, want ErrNotPending", err)
	}
	if _, err := alice.svc.Accept(out.ID, start); !errors.Is(err, ErrNotPending) {
		t.Errorf("the sender accepting its own offer: got %v, want ErrNotPending", err)
	}
	if _, err := bob.svc.Accept("nope", start); !errors.Is(err, ErrNoSuchOffer) {
		t.Errorf("accepting an unknown offer: got %v, want ErrNoSuchOffer", err)
	}
}

// TestDeclineWhileOffline: bob is offline when alice offers; the offer is
// delivered when he is back, and his decline reaches alice when she is.
func TestDeclineWhileOffline(t *testing.T) {
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(t, alice, bob)
	alice.book.Set("bob", "")
	out, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
	if err != nil || out.Delivered {
		t.Fatalf("Offer to offline bob: got %+v, %v; want undelivered", out, err)
	}
	alice.book.Set("bob", bob.node.ID())
	alice.svc.FlushSoon()
	waitFor(t, "bob has the offer", func() bool { _, err := bob.svc.Get(out.ID); return err == nil })
	waitFor(t, "alice sees it delivered", func() bool { o, _ := alice.svc.Get(out.ID); return o.Delivered })

	bob.book.Set("alice", "") // alice went offline
	if err := bob.svc.Decline(out.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few retries, all waiting for alice
	if o, _ := alice.svc.Get(out.ID); o.State != apitype.OfferPending {
		t.Fatalf("alice saw %s while bob could not reach her", o.State)
	}
	bob.book.Set("alice", alice.node.ID())
	waitFor(t, "alice sees the decline", func() bool { o, _ := alice.svc.Get(out.ID); return o.State == apitype.OfferDeclined })
	waitFor(t, "OnClosed reports the declined offer", func() bool {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		return len(alice.closed) == 1 && alice.closed[0] == out.ID
	})
	waitFor(t, "alice gets an event for the decline", func() bool { return alice.sawEvent(out.ID, apitype.OfferDeclined) })
	if err := bob.svc.Decline(out.ID); err != nil {
		t.Errorf("declining again: %v", err)
	}
}

// send opens a stream from n to p and returns the ack to req.
func send(t *testing.T, n *node.Node, p peer.ID, req *pb.Request) *pb.Ack {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	st, err := n.NewStream(ctx, p, ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := wire.Write(st, req, MaxFrameSize); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseWrite()
	ack := new(pb.Ack)
	if err := wire.NewReader(st, MaxFrameSize).Read(ack); err != nil {
		t.Fatalf("read ack: %v", err)
	}
	return ack
}

func validOffer(t *testing.T) *pb.Offer {
	c := testContent(t)
	return &pb.Offer{Id: newID(), Cid: c.CID.String(), Name: c.Name, Size: c.Size, Files: 1, SentUnixMs: time.Now().UnixMilli()}
}

// TestRefused: what bob refuses is not stored and raises no event.
func TestRefused(t *testing.T) {
	alice, bob, carol := newUser(t, "alice"), newUser(t, "bob"), newUser(t, "carol")
	befriend(t, alice, bob)
	carol.node.Peerstore().AddAddrs(bob.node.ID(), bob.node.Addrs(), peerstore.PermanentAddrTTL)
	withOffer := func(sender string, edit func(*pb.Offer)) *pb.Request {
		o := validOffer(t)
		if edit != nil {
			edit(o)
		}
		return &pb.Request{Sender: sender, Body: &pb.Request_Offer{Offer: o}}
	}
	cases := []struct {
		name string
		from *node.Node
		req  *pb.Request
		want pb.Status
	}{
		{"non-contact", carol.node, withOffer("carol", nil), pb.Status_STATUS_TRY_LATER},
		{"non-contact claiming alice", carol.node, withOffer("alice", nil), pb.Status_STATUS_TRY_LATER},
		{"forged sender", alice.node, withOffer("dave", nil), pb.Status_STATUS_REJECTED},
		{"bad id", alice.node, withOffer("alice", func(o *pb.Offer) { o.Id = "../../x" }), pb.Status_STATUS_REJECTED},
		{"upper-case id", alice.node, withOffer("alice", func(o *pb.Offer) { o.Id = strings.ToUpper(newID()) }), pb.Status_STATUS_REJECTED},
		{"bad CID", alice.node, withOffer("alice", func(o *pb.Offer) { o.Cid = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG" }), pb.Status_STATUS_REJECTED},
		{"negative size", alice.node, withOffer("alice", func(o *pb.Offer) { o.Size = -1 }), pb.Status_STATUS_REJECTED},
		{"too many files", alice.node, withOffer("alice", func(o *pb.Offer) { o.Files = files.MaxEntries + 1 }), pb.Status_STATUS_REJECTED},
		{"empty", alice.node, &pb.Request{Sender: "alice"}, pb.Status_STATUS_REJECTED},
		{"reply to an offer never made", alice.node, replyFrame("alice", newID(), true), pb.Status_STATUS_REJECTED},
	}
	for _, name := range hostileNames {
		if !utf8.ValidString(name) {
			continue // protobuf cannot carry it: the decoder refuses the frame
		}
		cases = append(cases, struct {
			name string
			from *node.Node
			req  *pb.Request
			want pb.Status
		}{"name " + name, alice.node, withOffer("alice", func(o *pb.Offer) { o.Name = name }), pb.Status_STATUS_REJECTED})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ack := send(t, c.from, bob.node.ID(), c.req)
			if ack.GetStatus() != c.want || ack.GetError() == "" {
				t.Errorf("got %s (%q), want %s with a reason", ack.GetStatus(), ack.GetError(), c.want)
			}
		})
	}
	if l := bob.svc.List(); len(l) != 0 {
		t.Errorf("bob stored refused offers: %+v", l)
	}
	bob.mu.Lock()
	if len(bob.events) != 0 {
		t.Errorf("bob got events for refused offers: %+v", bob.events)
	}
	bob.mu.Unlock()

	// An id in use by another offer is refused, not overwritten.
	out, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
	if err != nil {
		t.Fatal(err)
	}
	befriend(t, carol, bob)
	if ack := send(t, carol.node, bob.node.ID(), withOffer("carol", func(o *pb.Offer) { o.Id = out.ID })); ack.GetStatus() != pb.Status_STATUS_REJECTED {
		t.Errorf("carol reusing alice's offer id: got %s, want rejected", ack.GetStatus())
	}
	// carol cannot answer alice's offer to bob.
	befriend(t, carol, alice)
	if ack := send(t, carol.node, alice.node.ID(), replyFrame("carol", out.ID, true)); ack.GetStatus() != pb.Status_STATUS_REJECTED {
		t.Errorf("carol answering an offer made to bob: got %s, want rejected", ack.GetStatus())
	}
	if o, _ := alice.svc.Get(out.ID); o.State != apitype.OfferPending {
		t.Errorf("after carol's reply alice's offer is %s, want pending", o.State)
	}
}

// hostileNames are offer names that are refused.
var hostileNames = []string{"../x", "/etc/passwd", "a/b", "..", ".", "", "two\nlines", "esc\x1b[2Jape", "evil\u202egpj.exe", "nul\x00", "sep\u2028x", strings.Repeat("x", MaxNameLen+1), "bad\xffutf8"}

func TestCheckName(t *testing.T) {
	for _, name := range hostileNames {
		if err := CheckName(name); err == nil {
			t.Errorf("CheckName(%q) accepted it", name)
		}
	}
	for _, name := range []string{"talk.mp4", "Photos 2026", "日本語.txt", "🎉 party", strings.Repeat("x", MaxNameLen)} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q): %v", name, err)
		}
	}
	// The sender gets the same check before anything is stored.
	alice := newUser(t, "alice")
	alice.book.Set("bob", "")
	c := testContent(t)
	c.Name = "evil\u202egpj.exe"
	if _, err := alice.svc.Offer(t.Context(), "bob", c); err == nil {
		t.Error("offering a hostile name: no error")
	}
}

// TestOversizedAndMalformedFrames: bob resets the stream without storing
// anything or answering.
func TestOversizedAndMalformedFrames(t *testing.T) {
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(t, alice, bob)
	o := validOffer(t)
	o.Name = strings.Repeat("x", MaxFrameSize)
	for name, frame := range map[string][]byte{
		"oversized": append([]byte{0xff, 0xff, 0x01}, make([]byte, 64)...),
		"garbage":   {0x05, 0xff, 0xff, 0xff, 0xff, 0xff},
		"truncated": {0x40, 0x0a},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			st, err := alice.node.NewStream(ctx, bob.node.ID(), ProtocolID)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.SetDeadline(time.Now().Add(5 * time.Second))
			_, _ = st.Write(frame)
			_ = st.CloseWrite()
			ack := new(pb.Ack)
			if err := wire.NewReader(st, MaxFrameSize).Read(ack); err == nil {
				t.Errorf("bob answered %v to a bad frame", ack)
			}
		})
	}
	if err := wire.Write(new(strings.Builder), &pb.Request{Sender: "alice", Body: &pb.Request_Offer{Offer: o}}, MaxFrameSize); err == nil {
		t.Error("a frame over MaxFrameSize was written")
	}
	if l := bob.svc.List(); len(l) != 0 {
		t.Errorf("bob stored %+v", l)
	}
}

// TestStoreSurvivesReopen: both lists come back after a restart, and a
// reply still waiting is delivered by the restarted service.
func TestStoreSurvivesReopen(t *testing.T) {
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(t, alice, bob)
	out, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
	if err != nil {
		t.Fatal(err)
	}
	bob.book.Set("alice", "")
	if _, err := bob.svc.Accept(out.ID, func(apitype.Offer, peer.ID) (string, error) { return "t9", nil }); err != nil {
		t.Fatal(err)
	}
	bob.svc.Close()
	alice.svc.Close()
	if fi, err := os.Stat(bob.file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("offers file: %v, %v; want mode 0600", fi, err)
	}
	bob.book.Set("alice", alice.node.ID())
	alice.start(t)
	bob.start(t)
	in, err := bob.svc.Get(out.ID)
	if err != nil || in.State != apitype.OfferAccepted || in.TransferID != "t9" || in.From != "alice" {
		t.Fatalf("bob's offer after a restart: got %+v, %v", in, err)
	}
	if src, err := bob.svc.Source(out.ID); err != nil || src != alice.node.ID() {
		t.Errorf("Source after a restart: %s, %v", src, err)
	}
	waitFor(t, "the restarted bob's reply reaches alice", func() bool {
		o, _ := alice.svc.Get(out.ID)
		return o.State == apitype.OfferAccepted && o.Path == "/home/alice/talk.mp4"
	})
}

func TestDamagedStore(t *testing.T) {
	alice := newUser(t, "alice")
	alice.svc.Close()
	if err := os.WriteFile(alice.file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.start(t)
	if l := alice.svc.List(); len(l) != 0 {
		t.Errorf("a damaged file gave %+v", l)
	}
	if _, err := os.Stat(alice.file + ".damaged"); err != nil {
		t.Errorf("the damaged file was not kept aside: %v", err)
	}
}

func TestCancel(t *testing.T) {
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(t, alice, bob)
	out, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.svc.Cancel(out.ID); !errors.Is(err, ErrNotPending) {
		t.Errorf("the recipient cancelling: got %v, want ErrNotPending", err)
	}
	c, err := alice.svc.Cancel(out.ID)
	if err != nil || c.State != apitype.OfferCancelled {
		t.Fatalf("Cancel: %+v, %v", c, err)
	}
	if err := bob.svc.Decline(out.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if o, _ := alice.svc.Get(out.ID); o.State != apitype.OfferCancelled {
		t.Errorf("a late reply changed a cancelled offer to %s", o.State)
	}
}

// FuzzDecode: no frame makes the decoder or the checks panic, and what
// they accept is an offer a user can be shown.
func FuzzDecode(f *testing.F) {
	var b strings.Builder
	_ = wire.Write(&b, &pb.Request{Sender: "alice", Body: &pb.Request_Offer{Offer: &pb.Offer{
		Id: strings.Repeat("ab", 16), Cid: "bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4", Name: "x", Size: 1, Files: 1,
	}}}, MaxFrameSize)
	f.Add([]byte(b.String()))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		req := new(pb.Request)
		if err := wire.NewReader(strings.NewReader(string(data)), MaxFrameSize).Read(req); err != nil {
			return
		}
		_ = idOf(req)
		if req.GetOffer() == nil {
			return
		}
		o, err := checkOffer(req.GetOffer())
		if err != nil {
			return
		}
		if CheckName(o.Name) != nil || !validID(o.ID) || o.Size < 0 || o.Files < 0 {
			t.Fatalf("checkOffer accepted %+v", o)
		}
	})
}

// TestTooManyPending: a contact cannot fill bob's list; once bob answers
// one, the next offer is taken (it waited in alice's list).
func TestTooManyPending(t *testing.T) {
	alice, bob := newUser(t, "alice"), newUser(t, "bob")
	befriend(t, alice, bob)
	var first string
	for i := range MaxPendingPerContact {
		o, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
		if err != nil || !o.Delivered {
			t.Fatalf("offer %d: %+v, %v", i, o, err)
		}
		if i == 0 {
			first = o.ID
		}
	}
	extra, err := alice.svc.Offer(t.Context(), "bob", testContent(t))
	if err != nil || extra.Delivered {
		t.Fatalf("offer over the limit: got %+v, %v; want it kept undelivered", extra, err)
	}
	if _, err := bob.svc.Get(extra.ID); err == nil {
		t.Fatal("bob stored an offer over the limit")
	}
	if err := bob.svc.Decline(first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the waiting offer is delivered", func() bool { _, err := bob.svc.Get(extra.ID); return err == nil })
}
