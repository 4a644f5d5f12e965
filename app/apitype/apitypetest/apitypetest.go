// Package apitypetest is the conformance suite for apitype.Client
// implementations: the engine in-process (app.Engine) and the daemon's
// local HTTP API (api.Client). Both homes must answer the same calls with
// the same results, the same events and the same sentinel errors, so each
// one's tests call Run with two fresh devices on one network.
package apitypetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/testnet"
)

// Timeout bounds each case: waits for logins, deliveries and events.
const Timeout = 30 * time.Second

// Run runs the suite. newPair must return Clients for two fresh devices
// (never registered nor enrolled) that can reach each other through one
// running network, which lives until the test ends. Run calls it once;
// the cases run in order on the same pair and build on each other
// (register, then become contacts, then chat), so a failed setup case
// skips the rest.
func Run(t *testing.T, newPair func(t *testing.T) (alice, bob apitype.Client)) {
	alice, bob := newPair(t)
	suffix := randomSuffix()
	s := &suite{
		alice:     alice,
		bob:       bob,
		aliceName: "alice-" + suffix,
		bobName:   "bob-" + suffix,
		password:  "correct horse battery",
	}
	cases := []struct {
		name  string
		run   func(t *testing.T)
		setup bool // the cases after it need it
	}{
		{"FreshDevice", s.freshDevice, false},
		{"Register", s.register, true},
		{"Contacts", s.contacts, true},
		{"SendAndHistory", s.sendAndHistory, false},
		{"MessageEvents", s.messageEvents, false},
		{"ReadReceipts", s.readReceipts, false},
		{"WatchResume", s.watchResume, false},
		{"WatchGap", s.watchGap, false},
		{"Errors", s.errors, false},
		{"Probe", s.probe, false},
		{"PublishAndGet", s.publishAndGet, false},
		{"PauseResumeCancel", s.pauseResumeCancel, false},
		{"TransferErrors", s.transferErrors, false},
		{"ShareAndAccept", s.shareAndAccept, false},
		{"OfferErrors", s.offerErrors, false},
		{"Devices", s.devices, false},
		{"RemoveBlockDecline", s.removeBlockDecline, false}, // alice and bob are contacts no more
		{"ChangePassword", s.changePassword, false},
		{"DeleteAccount", s.deleteAccount, false}, // last: bob has no account
	}
	for _, c := range cases {
		if !t.Run(c.name, c.run) && c.setup {
			t.Fatalf("%s failed; the cases after it need it", c.name)
		}
	}
}

type suite struct {
	alice, bob         apitype.Client
	aliceName, bobName string
	password           string
}

func randomSuffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func caseContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// eventually waits until cond reports true, failing the test when ctx
// ends first; the last state cond described is in the failure.
func eventually(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	err := tstest.Poll(ctx, func() error {
		if ok, last := cond(); !ok {
			return fmt.Errorf("waiting until %s; last seen: %s", what, last)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// NewPair starts a loopback network (package testnet) with two fresh
// clients, alice and bob, closed when the test ends: what both homes'
// tests give Run.
func NewPair(t *testing.T) (a, b *testnet.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close network: %v", err)
		}
	})
	if a, err = n.AddClient(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if b, err = n.AddClient(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	return a, b
}

func mustStatus(t *testing.T, ctx context.Context, c apitype.Client) apitype.Status {
	t.Helper()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// watcher reads one Watch stream and checks that its events are numbered
// without gaps or repeats.
type watcher struct {
	t    *testing.T
	evs  <-chan apitype.Event
	last uint64 // the Seq of the last event read
	stop context.CancelFunc
}

func watch(t *testing.T, ctx context.Context, c apitype.Client, since uint64) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(ctx)
	evs, err := c.Watch(ctx, since)
	if err != nil {
		cancel()
		t.Fatalf("Watch(%d): %v", since, err)
	}
	t.Cleanup(cancel)
	return &watcher{t: t, evs: evs, last: since, stop: cancel}
}

// next is the next event; a gap event is returned as is (the caller
// checks for it), any other event must be numbered last+1.
func (w *watcher) next(ctx context.Context) apitype.Event {
	w.t.Helper()
	select {
	case ev, ok := <-w.evs:
		if !ok {
			w.t.Fatalf("the event stream closed after event %d", w.last)
		}
		if ev.Kind != apitype.EventGap && ev.Seq != w.last+1 {
			w.t.Fatalf("event %s numbered %d after event %d, want %d (lost or repeated events)", ev.Kind, ev.Seq, w.last, w.last+1)
		}
		w.last = ev.Seq
		return ev
	case <-ctx.Done():
		w.t.Fatalf("no event after %d: %v", w.last, ctx.Err())
		return apitype.Event{}
	}
}

// until reads events until one satisfies ok and returns it. A gap fails
// the test.
func (w *watcher) until(ctx context.Context, what string, ok func(apitype.Event) bool) apitype.Event {
	w.t.Helper()
	for {
		ev := w.next(ctx)
		if ev.Kind == apitype.EventGap {
			w.t.Fatalf("waiting for %s: got a gap event at %d", what, ev.Seq)
		}
		if ok(ev) {
			return ev
		}
	}
}

func (s *suite) freshDevice(t *testing.T) {
	ctx := caseContext(t)
	var peers []string
	for name, c := range map[string]apitype.Client{"alice": s.alice, "bob": s.bob} {
		st := mustStatus(t, ctx, c)
		if _, err := peer.Decode(st.Peer); err != nil {
			t.Errorf("%s: Status.Peer %q is not a peer ID: %v", name, st.Peer, err)
		}
		peers = append(peers, st.Peer)
		if st.LoggedIn || st.Username != "" {
			t.Errorf("%s: fresh device: got LoggedIn=%v Username=%q, want logged out with no username", name, st.LoggedIn, st.Username)
		}
		if len(st.Contacts)+len(st.Incoming)+len(st.Outgoing) != 0 {
			t.Errorf("%s: fresh device: got contacts %v, incoming %v, outgoing %v, want none", name, st.Contacts, st.Incoming, st.Outgoing)
		}
		eventually(t, ctx, name+" reports it is not enrolled", func() (bool, string) {
			st := mustStatus(t, ctx, c)
			return st.Login != nil && st.Login.Reason == apitype.LoginNotEnrolled && st.Login.Stopped && st.Login.Hint != "",
				fmt.Sprintf("%+v", st.Login)
		})
	}
	if len(peers) == 2 && peers[0] == peers[1] {
		t.Errorf("both devices have peer ID %s", peers[0])
	}
}

func (s *suite) register(t *testing.T) {
	ctx := caseContext(t)
	acct, err := s.alice.Register(ctx, s.aliceName, s.password)
	if err != nil {
		t.Fatalf("Register(%s): %v", s.aliceName, err)
	}
	if acct.Username != s.aliceName {
		t.Errorf("Register: got account %q, want %q", acct.Username, s.aliceName)
	}
	st := mustStatus(t, ctx, s.alice)
	if !st.LoggedIn || st.Username != s.aliceName || st.Login != nil {
		t.Errorf("after Register: got LoggedIn=%v Username=%q Login=%+v, want logged in as %s", st.LoggedIn, st.Username, st.Login, s.aliceName)
	}

	// bob's device is still fresh: a taken name and a wrong password are
	// refused with the owner's sentinels, and leave it able to register.
	if _, err := s.bob.Register(ctx, s.aliceName, "another password"); !errors.Is(err, rendezvous.ErrUsernameTaken) {
		t.Errorf("Register a taken name: got %v, want rendezvous.ErrUsernameTaken", err)
	}
	if _, err := s.bob.Enrol(ctx, s.aliceName, "wrong password!"); !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Errorf("Enrol with a wrong password: got %v, want rendezvous.ErrBadCredentials", err)
	}
	// A string that is not UTF-8 is refused, never altered on the way (a
	// password with U+FFFD in place of a byte would lock the user out).
	if _, err := s.bob.Register(ctx, s.bobName, "bad \xff password"); !errors.Is(err, rendezvous.ErrBadRequest) {
		t.Errorf("Register with a password that is not UTF-8: got %v, want rendezvous.ErrBadRequest", err)
	}
	if st := mustStatus(t, ctx, s.bob); st.LoggedIn || st.Username != "" {
		t.Errorf("bob after refused calls: got LoggedIn=%v Username=%q, want still not enrolled", st.LoggedIn, st.Username)
	}
	acct, err = s.bob.Register(ctx, strings.ToUpper(s.bobName), s.password)
	if err != nil {
		t.Fatalf("Register(%s): %v", s.bobName, err)
	}
	if acct.Username != s.bobName {
		t.Errorf("Register(%s): got account %q, want the canonical %q", strings.ToUpper(s.bobName), acct.Username, s.bobName)
	}
	if st := mustStatus(t, ctx, s.bob); !st.LoggedIn || st.Username != s.bobName {
		t.Errorf("bob after Register: got LoggedIn=%v Username=%q, want logged in as %s", st.LoggedIn, st.Username, s.bobName)
	}
}

func (s *suite) contacts(t *testing.T) {
	ctx := caseContext(t)
	aw := watch(t, ctx, s.alice, mustStatus(t, ctx, s.alice).EventSeq)
	bw := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)

	res, err := s.alice.RequestContact(ctx, s.bobName)
	if err != nil {
		t.Fatalf("RequestContact: %v", err)
	}
	if res.Accepted {
		t.Errorf("RequestContact: got Accepted, want a pending request (bob never asked)")
	}
	eventually(t, ctx, "alice lists bob as outgoing", func() (bool, string) {
		st := mustStatus(t, ctx, s.alice)
		book, err := s.alice.Contacts(ctx)
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(st.Outgoing, s.bobName) && slices.Contains(book.Outgoing, s.bobName),
			fmt.Sprintf("Status.Outgoing %v, ContactBook.Outgoing %v", st.Outgoing, book.Outgoing)
	})
	bw.until(ctx, "bob's contact event: requested", func(ev apitype.Event) bool {
		return ev.Kind == apitype.EventContact && ev.Username == s.aliceName && ev.Change == "requested"
	})
	eventually(t, ctx, "bob lists alice as incoming", func() (bool, string) {
		st := mustStatus(t, ctx, s.bob)
		book, err := s.bob.Contacts(ctx)
		if err != nil {
			return false, err.Error()
		}
		return slices.Contains(st.Incoming, s.aliceName) && slices.Contains(book.Incoming, s.aliceName),
			fmt.Sprintf("Status.Incoming %v, ContactBook.Incoming %v", st.Incoming, book.Incoming)
	})

	if err := s.bob.AcceptContact(ctx, s.aliceName); err != nil {
		t.Fatalf("AcceptContact: %v", err)
	}
	aw.until(ctx, "alice's contact event: accepted", func(ev apitype.Event) bool {
		return ev.Kind == apitype.EventContact && ev.Username == s.bobName && ev.Change == "accepted"
	})
	for _, side := range []struct {
		who   string
		c     apitype.Client
		other string
	}{{"alice", s.alice, s.bobName}, {"bob", s.bob, s.aliceName}} {
		eventually(t, ctx, side.who+" has "+side.other+" as an online contact, with no request left", func() (bool, string) {
			book, err := side.c.Contacts(ctx)
			if err != nil {
				return false, err.Error()
			}
			st := mustStatus(t, ctx, side.c)
			has := func(cs []apitype.ContactStatus) bool {
				return slices.ContainsFunc(cs, func(c apitype.ContactStatus) bool { return c.Username == side.other })
			}
			online := slices.ContainsFunc(st.Contacts, func(c apitype.ContactStatus) bool {
				return c.Username == side.other && c.Online && c.Peer != ""
			})
			pending := len(book.Incoming) + len(book.Outgoing) + len(st.Incoming) + len(st.Outgoing)
			return has(book.Contacts) && online && pending == 0,
				fmt.Sprintf("book %+v, status contacts %+v incoming %v outgoing %v", book, st.Contacts, st.Incoming, st.Outgoing)
		})
	}
}

// awaitDelivered waits until the sender's history has message id
// delivered, and returns it.
func awaitDelivered(t *testing.T, ctx context.Context, c apitype.Client, contact, id string) apitype.Message {
	t.Helper()
	var got apitype.Message
	eventually(t, ctx, "message "+id+" delivered", func() (bool, string) {
		msgs, err := c.History(ctx, apitype.HistoryQuery{Contact: contact, Limit: apitype.MaxHistoryLimit})
		if err != nil {
			return false, err.Error()
		}
		i := slices.IndexFunc(msgs, func(m apitype.Message) bool { return m.ID == id })
		if i < 0 {
			return false, "not in the history"
		}
		got = msgs[i]
		return got.State == apitype.MessageDelivered, fmt.Sprintf("%+v", got)
	})
	return got
}

// mustSend sends body from alice to bob.
func (s *suite) mustSend(t *testing.T, ctx context.Context, body string) apitype.Message {
	t.Helper()
	m, err := s.alice.Send(ctx, s.bobName, body)
	if err != nil {
		t.Fatalf("Send(%q): %v", body, err)
	}
	if m.ID == "" || m.Body != body || m.From != s.aliceName || m.To != s.bobName || m.Incoming {
		t.Fatalf("Send(%q): got %+v, want an outgoing message from %s to %s with the body as sent", body, m, s.aliceName, s.bobName)
	}
	if m.State != apitype.MessageDelivered && m.State != apitype.MessageQueued {
		t.Fatalf("Send(%q): got state %q, want delivered or queued", body, m.State)
	}
	return m
}

// hostileBodies are message bodies a careless home would alter: line
// breaks, terminal escapes, bidirectional overrides, JSON and HTML
// specials, and characters encoders like to escape.
var hostileBodies = []string{
	"hello",
	"line one\nline two\r\nline three\n",
	"\x1b[31mred\x1b[0m \x1b]0;title\x07 \x1b[2J",
	"abc \u202egnp.exe\u202c \u2066isolate\u2069 \u200f",
	`{"json":"<b>&amp;</b>"} \u0000 \\ "quoted"`,
	"\t tabs and trailing spaces   ",
	"emoji 👋🏽, combining é, \u2028 \u2029 \ufeff",
	"NUL \x00 and DEL \x7f and C1 \u0085\u009b inside",
}

func (s *suite) sendAndHistory(t *testing.T) {
	ctx := caseContext(t)
	var sent []apitype.Message
	for _, body := range hostileBodies {
		sent = append(sent, s.mustSend(t, ctx, body))
	}
	for _, m := range sent {
		got := awaitDelivered(t, ctx, s.alice, s.bobName, m.ID)
		if got.Body != m.Body {
			t.Errorf("alice's history of %s: body %q, want %q as sent", m.ID, got.Body, m.Body)
		}
		if got.Path == "" || got.Incoming || got.From != s.aliceName || got.To != s.bobName {
			t.Errorf("alice's history of %s: got %+v, want an outgoing message with a path", m.ID, got)
		}
		if !got.Sent.Equal(m.Sent) {
			t.Errorf("alice's history of %s: sent at %v, but Send said %v", m.ID, got.Sent, m.Sent)
		}
	}
	var got []apitype.Message
	eventually(t, ctx, "bob's history holds every message", func() (bool, string) {
		msgs, err := s.bob.History(ctx, apitype.HistoryQuery{Contact: s.aliceName, Limit: len(sent)})
		if err != nil {
			return false, err.Error()
		}
		got = msgs
		return len(msgs) == len(sent), fmt.Sprintf("%d messages", len(msgs))
	})
	for i, m := range got {
		want := sent[i]
		if m.ID != want.ID || m.Body != want.Body || !m.Incoming || m.State != apitype.MessageReceived || m.From != s.aliceName || m.To != s.bobName {
			t.Errorf("bob's history[%d]: got %+v, want incoming message %s received with body %q (oldest first)", i, m, want.ID, want.Body)
		}
		if !m.Sent.Equal(want.Sent) {
			t.Errorf("bob's history[%d]: sent at %v, but alice's Send said %v", i, m.Sent, want.Sent)
		}
	}
	// Limit picks the most recent messages, still oldest first.
	last2, err := s.alice.History(ctx, apitype.HistoryQuery{Contact: s.bobName, Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(last2) != 2 || last2[0].ID != sent[len(sent)-2].ID || last2[1].ID != sent[len(sent)-1].ID {
		t.Errorf("History limit 2: got %d messages %v, want the last two sent", len(last2), ids(last2))
	}
	// Before pages back from a message.
	prev, err := s.alice.History(ctx, apitype.HistoryQuery{Contact: s.bobName, Limit: 2, Before: last2[0].ID})
	if err != nil || len(prev) != 2 || prev[0].ID != sent[len(sent)-4].ID || prev[1].ID != sent[len(sent)-3].ID {
		t.Errorf("History limit 2 before %s: got %v, %v; want the two sent before it", last2[0].ID, ids(prev), err)
	}
	// The contact name is canonicalised like every username.
	upper, err := s.alice.History(ctx, apitype.HistoryQuery{Contact: strings.ToUpper(s.bobName), Limit: 2})
	if err != nil || len(upper) != 2 {
		t.Errorf("History of %s: got %d messages, %v; want the same as for %s", strings.ToUpper(s.bobName), len(upper), err, s.bobName)
	}
}

func ids(msgs []apitype.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

func (s *suite) messageEvents(t *testing.T) {
	ctx := caseContext(t)
	bw := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	aw := watch(t, ctx, s.alice, mustStatus(t, ctx, s.alice).EventSeq)
	body := "watch me\n\x1b[1m\u202e"
	m := s.mustSend(t, ctx, body)
	ev := bw.until(ctx, "bob's message event", func(ev apitype.Event) bool { return ev.Kind == apitype.EventMessage })
	got := ev.Message
	if got == nil || got.ID != m.ID || got.Body != body || !got.Incoming || got.From != s.aliceName || got.State != apitype.MessageReceived {
		t.Errorf("message event: got %+v, want incoming message %s from %s with body %q", got, m.ID, s.aliceName, body)
	}
	if ev.Time.IsZero() {
		t.Errorf("message event %d has no time", ev.Seq)
	}
	if got != nil && !got.Sent.Equal(m.Sent) {
		t.Errorf("message event: sent at %v, but Send said %v", got.Sent, m.Sent)
	}
	if m.State == apitype.MessageQueued {
		ev := aw.until(ctx, "alice's message_state event", func(ev apitype.Event) bool {
			return ev.Kind == apitype.EventMessageState && ev.Message != nil && ev.Message.ID == m.ID
		})
		if ev.Message.State != apitype.MessageDelivered {
			t.Errorf("message_state event: got state %q, want delivered", ev.Message.State)
		}
	}
}

// readReceipts: bob's unread count shows alice's messages until he reads
// them; then an unread event says 0, and alice sees her messages read.
func (s *suite) readReceipts(t *testing.T) {
	ctx := caseContext(t)
	m := s.mustSend(t, ctx, "read me")
	var unread int
	eventually(t, ctx, "bob's conversation with alice has unread messages", func() (bool, string) {
		convs, err := s.bob.Conversations(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, c := range convs {
			if c.Contact == s.aliceName && c.Last != nil && c.Last.ID == m.ID {
				unread = c.Unread
				return c.Unread > 0, fmt.Sprintf("%d unread", c.Unread)
			}
		}
		return false, fmt.Sprintf("conversations %+v", convs)
	})
	bw := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	aw := watch(t, ctx, s.alice, mustStatus(t, ctx, s.alice).EventSeq)
	res, err := s.bob.MarkRead(ctx, strings.ToUpper(s.aliceName))
	if err != nil || res.Marked != unread {
		t.Fatalf("MarkRead: %+v, %v; want %d marked", res, err, unread)
	}
	bw.until(ctx, "bob's unread event", func(ev apitype.Event) bool {
		return ev.Kind == apitype.EventUnread && ev.Unread != nil && ev.Unread.Contact == s.aliceName && ev.Unread.Count == 0
	})
	if again, err := s.bob.MarkRead(ctx, s.aliceName); err != nil || again.Marked != 0 {
		t.Errorf("MarkRead again: %+v, %v; want 0 marked", again, err)
	}
	aw.until(ctx, "alice's message_state event: read", func(ev apitype.Event) bool {
		return ev.Kind == apitype.EventMessageState && ev.Message != nil && ev.Message.ID == m.ID && ev.Message.State == apitype.MessageRead
	})
	msgs, err := s.alice.History(ctx, apitype.HistoryQuery{Contact: s.bobName, Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].ID != m.ID || msgs[0].State != apitype.MessageRead {
		t.Errorf("alice's history after bob read: %+v, %v; want %s read", msgs, err, m.ID)
	}
	msgs, err = s.bob.History(ctx, apitype.HistoryQuery{Contact: s.aliceName, Limit: 1})
	if err != nil || len(msgs) != 1 || msgs[0].State != apitype.MessageRead || !msgs[0].Incoming {
		t.Errorf("bob's history after reading: %+v, %v; want an incoming message read", msgs, err)
	}
}

// watchResume reads some of bob's events, stops, and watches again from
// the last Seq it saw: the rest follow, none repeated, none lost.
func (s *suite) watchResume(t *testing.T) {
	ctx := caseContext(t)
	const n = 6
	start := mustStatus(t, ctx, s.bob).EventSeq
	var want []string
	for i := range n {
		want = append(want, s.mustSend(t, ctx, fmt.Sprintf("resume %d", i)).ID)
	}
	var got []string
	isMessage := func(ev apitype.Event) bool { return ev.Kind == apitype.EventMessage }
	first := watch(t, ctx, s.bob, start)
	for len(got) < n/2 {
		got = append(got, first.until(ctx, "a message event", isMessage).Message.ID)
	}
	first.stop()
	// The stopped stream's channel is closed (after what it had buffered).
	for closed := false; !closed; {
		select {
		case _, ok := <-first.evs:
			closed = !ok
		case <-ctx.Done():
			t.Fatal("the channel of a Watch whose ctx ended is not closed")
		}
	}
	second := watch(t, ctx, s.bob, first.last)
	for len(got) < n {
		got = append(got, second.until(ctx, "a message event", isMessage).Message.ID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("message events across the resumption: got %v, want %v, once each, in order", got, want)
	}

	// From 0, every event kept is replayed from the first.
	all := watch(t, ctx, s.bob, 0)
	if ev := all.next(ctx); ev.Kind == apitype.EventGap || ev.Seq != 1 {
		t.Errorf("Watch(0): first event %s %d, want event 1 (all are kept)", ev.Kind, ev.Seq)
	}
}

// watchGap: a cursor the device never reached (another daemon run's)
// starts the stream with a gap, then events follow from there.
func (s *suite) watchGap(t *testing.T) {
	ctx := caseContext(t)
	seq := mustStatus(t, ctx, s.bob).EventSeq
	w := watch(t, ctx, s.bob, seq+1000)
	gap := w.next(ctx)
	if gap.Kind != apitype.EventGap {
		t.Fatalf("Watch from the future: first event %s %d, want a gap", gap.Kind, gap.Seq)
	}
	if gap.Seq < seq || gap.Seq >= seq+1000 {
		t.Errorf("gap event: Seq %d, want the last event's number (at least %d)", gap.Seq, seq)
	}
	m := s.mustSend(t, ctx, "after the gap")
	ev := w.until(ctx, "the message after the gap", func(ev apitype.Event) bool { return ev.Kind == apitype.EventMessage })
	if ev.Message.ID != m.ID {
		t.Errorf("after the gap: got message %s, want %s", ev.Message.ID, m.ID)
	}
}

func (s *suite) errors(t *testing.T) {
	ctx := caseContext(t)
	a := s.alice
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"send to a non-contact", func() error { _, err := a.Send(ctx, "nobody-"+randomSuffix(), "hi"); return err }, chat.ErrNotAContact},
		{"empty body", func() error { _, err := a.Send(ctx, s.bobName, ""); return err }, chat.ErrInvalidMessage},
		{"body too long", func() error { _, err := a.Send(ctx, s.bobName, strings.Repeat("x", chat.MaxBodySize+1)); return err }, chat.ErrInvalidMessage},
		{"body not UTF-8", func() error { _, err := a.Send(ctx, s.bobName, "bad \xff byte"); return err }, chat.ErrInvalidMessage},
		{"send to a bad username", func() error { _, err := a.Send(ctx, "!!", "hi"); return err }, rendezvous.ErrBadRequest},
		{"history limit too large", func() error {
			_, err := a.History(ctx, apitype.HistoryQuery{Contact: s.bobName, Limit: apitype.MaxHistoryLimit + 1})
			return err
		}, app.ErrInvalidArgument},
		{"history limit negative", func() error {
			_, err := a.History(ctx, apitype.HistoryQuery{Contact: s.bobName, Limit: -1})
			return err
		}, app.ErrInvalidArgument},
		{"history of a bad username", func() error { _, err := a.History(ctx, apitype.HistoryQuery{Contact: "a b"}); return err }, rendezvous.ErrBadRequest},
		{"history before a bad id", func() error {
			_, err := a.History(ctx, apitype.HistoryQuery{Contact: s.bobName, Before: strings.Repeat("f", 65)})
			return err
		}, app.ErrInvalidArgument},
		{"read a bad username", func() error { _, err := a.MarkRead(ctx, "a b"); return err }, rendezvous.ErrBadRequest},
		{"request a bad username", func() error { _, err := a.RequestContact(ctx, "x"); return err }, rendezvous.ErrBadRequest},
		{"accept a bad username", func() error { return a.AcceptContact(ctx, "!!") }, rendezvous.ErrBadRequest},
		{"probe a bad username", func() error { _, err := a.Probe(ctx, "!!", 1); return err }, rendezvous.ErrBadRequest},
		{"probe a non-contact", func() error { _, err := a.Probe(ctx, "nobody-"+randomSuffix(), 1); return err }, chat.ErrNotAContact},
		{"probe size negative", func() error { _, err := a.Probe(ctx, s.bobName, -1); return err }, app.ErrInvalidArgument},
		{"revoke a bad device ID", func() error { return a.RevokeDevice(ctx, "laptop") }, rendezvous.ErrBadRequest},
		{"new password not UTF-8", func() error { return a.ChangePassword(ctx, s.password, "new \xff password") }, rendezvous.ErrBadRequest},
		{"change password, wrong old one", func() error { return a.ChangePassword(ctx, "wrong password!", "a new password") }, rendezvous.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err.Error() == "" {
				t.Errorf("the error has no text")
			}
		})
	}
}

func (s *suite) probe(t *testing.T) {
	ctx := caseContext(t)
	const size = 64 << 10
	bobPeer := mustStatus(t, ctx, s.bob).Peer
	res, err := s.alice.Probe(ctx, s.bobName, size)
	if err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if !res.Intact || res.Bytes != size || res.Device != bobPeer || res.Path == "" || res.Duration <= 0 {
		t.Errorf("Probe(%d): got %+v, want %d bytes intact to %s over a named path", size, res, size, bobPeer)
	}
}

func (s *suite) devices(t *testing.T) {
	ctx := caseContext(t)
	for name, c := range map[string]apitype.Client{"alice": s.alice, "bob": s.bob} {
		self := mustStatus(t, ctx, c).Peer
		devs, err := c.Devices(ctx)
		if err != nil {
			t.Fatalf("%s: Devices: %v", name, err)
		}
		var this []apitype.Device
		for _, d := range devs {
			if d.This {
				this = append(this, d)
			}
		}
		if len(devs) != 1 || len(this) != 1 || this[0].Peer != self || !this[0].Online || !this[0].Revoked.IsZero() || this[0].Enrolled.IsZero() {
			t.Errorf("%s: Devices: got %+v, want only this device (%s), online, enrolled, not revoked", name, devs, self)
		}
	}
}

// removeBlockDecline ends the contact and checks the other contact
// operations: remove (both told), block and unblock, decline.
func (s *suite) removeBlockDecline(t *testing.T) {
	ctx := caseContext(t)
	aw := watch(t, ctx, s.alice, mustStatus(t, ctx, s.alice).EventSeq)
	bw := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	book := func(c apitype.Client) apitype.ContactBook {
		t.Helper()
		b, err := c.Contacts(ctx)
		if err != nil {
			t.Fatalf("Contacts: %v", err)
		}
		return b
	}
	isRemoved := func(other string) func(apitype.Event) bool {
		return func(ev apitype.Event) bool {
			return ev.Kind == apitype.EventContact && ev.Username == other && ev.Change == "removed"
		}
	}

	if err := s.alice.RemoveContact(ctx, s.bobName); err != nil {
		t.Fatalf("RemoveContact: %v", err)
	}
	bw.until(ctx, "bob's contact event: removed", isRemoved(s.aliceName))
	aw.until(ctx, "alice's contact event: removed", isRemoved(s.bobName))
	for _, c := range []apitype.Client{s.alice, s.bob} {
		if b := book(c); len(b.Contacts)+len(b.Incoming)+len(b.Outgoing) != 0 {
			t.Errorf("after RemoveContact: got book %+v, want it empty", b)
		}
	}
	eventually(t, ctx, "alice's status drops bob", func() (bool, string) {
		st := mustStatus(t, ctx, s.alice)
		return len(st.Contacts) == 0, fmt.Sprintf("%+v", st.Contacts)
	})
	if _, err := s.alice.Send(ctx, s.bobName, "still there?"); !errors.Is(err, chat.ErrNotAContact) {
		t.Errorf("Send after RemoveContact: got %v, want chat.ErrNotAContact", err)
	}

	// Blocked, alice's request is answered like any other, and bob never
	// sees it.
	if err := s.bob.Block(ctx, s.aliceName); err != nil {
		t.Fatalf("Block: %v", err)
	}
	if b := book(s.bob); !slices.Equal(b.Blocked, []string{s.aliceName}) {
		t.Errorf("after Block: got blocked %v, want [%s]", b.Blocked, s.aliceName)
	}
	if res, err := s.alice.RequestContact(ctx, s.bobName); err != nil || res.Accepted {
		t.Errorf("RequestContact while blocked: got %+v, %v; want a pending request like any other", res, err)
	}
	if b := book(s.bob); slices.Contains(b.Incoming, s.aliceName) {
		t.Errorf("bob, who blocked alice, lists her request: %+v", b)
	}
	if err := s.bob.Unblock(ctx, s.aliceName); err != nil {
		t.Fatalf("Unblock: %v", err)
	}
	if b := book(s.bob); len(b.Blocked) != 0 {
		t.Errorf("after Unblock: got blocked %v, want none", b.Blocked)
	}
	if err := s.bob.Unblock(ctx, s.aliceName); !errors.Is(err, rendezvous.ErrNotFound) {
		t.Errorf("Unblock a user not blocked: got %v, want rendezvous.ErrNotFound", err)
	}

	// Declined, the request is gone on bob's side; alice is not told.
	if err := s.alice.RemoveContact(ctx, s.bobName); err != nil && !errors.Is(err, rendezvous.ErrNotFound) {
		t.Fatalf("withdraw the request made while blocked: %v", err)
	}
	if _, err := s.alice.RequestContact(ctx, s.bobName); err != nil {
		t.Fatalf("RequestContact: %v", err)
	}
	eventually(t, ctx, "bob lists alice as incoming", func() (bool, string) {
		b := book(s.bob)
		return slices.Contains(b.Incoming, s.aliceName), fmt.Sprintf("%+v", b)
	})
	if err := s.bob.DeclineContact(ctx, s.aliceName); err != nil {
		t.Fatalf("DeclineContact: %v", err)
	}
	if b := book(s.bob); len(b.Incoming)+len(b.Contacts) != 0 {
		t.Errorf("after DeclineContact: got bob's book %+v, want no request and no contact", b)
	}
	if st := mustStatus(t, ctx, s.bob); slices.Contains(st.Incoming, s.aliceName) {
		t.Errorf("after DeclineContact: bob's status still lists alice's request: %v", st.Incoming)
	}
}

func (s *suite) changePassword(t *testing.T) {
	ctx := caseContext(t)
	const newPassword = "a brand new password"
	if err := s.alice.ChangePassword(ctx, s.password, s.password); !errors.Is(err, rendezvous.ErrBadRequest) {
		t.Errorf("ChangePassword to the same password: got %v, want rendezvous.ErrBadRequest", err)
	}
	if err := s.alice.ChangePassword(ctx, s.password, newPassword); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	// (A wrong password is in the Errors case; more would hit the
	// server's limit on password attempts.)
	if st := mustStatus(t, ctx, s.alice); !st.LoggedIn {
		t.Errorf("after ChangePassword: logged out (%+v), want the device to stay logged in", st.Login)
	}
}

// deleteAccount deletes bob's account: his device stops logging in and
// says why, and the name is free again.
func (s *suite) deleteAccount(t *testing.T) {
	ctx := caseContext(t)
	if err := s.bob.DeleteAccount(ctx, "wrong password!"); !errors.Is(err, rendezvous.ErrBadCredentials) {
		t.Errorf("DeleteAccount with a wrong password: got %v, want rendezvous.ErrBadCredentials", err)
	}
	bw := watch(t, ctx, s.bob, mustStatus(t, ctx, s.bob).EventSeq)
	if err := s.bob.DeleteAccount(ctx, s.password); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	st := mustStatus(t, ctx, s.bob)
	if st.LoggedIn || st.Username != "" || st.Login == nil || st.Login.Reason != apitype.LoginAccountDeleted || !st.Login.Stopped {
		t.Errorf("after DeleteAccount: got LoggedIn=%v Username=%q Login=%+v, want stopped: account deleted", st.LoggedIn, st.Username, st.Login)
	}
	ev := bw.until(ctx, "bob's login_stopped event", func(ev apitype.Event) bool { return ev.Kind == apitype.EventLoginStopped })
	if ev.Login == nil || ev.Login.Reason != apitype.LoginAccountDeleted || ev.Login.Hint == "" {
		t.Errorf("login_stopped event: got %+v, want reason account_deleted with a hint", ev.Login)
	}
	if _, err := s.bob.Devices(ctx); err == nil {
		t.Errorf("Devices without an account: got no error")
	}
	if acct, err := s.bob.Register(ctx, s.bobName, s.password); err != nil || acct.Username != s.bobName {
		t.Errorf("Register the deleted account's name again: got %+v, %v; want it free", acct, err)
	}
}
