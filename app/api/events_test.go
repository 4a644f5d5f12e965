package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/parleynet/parley/app/apitype/apitypetest"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/testnet"
)

// contactsPair starts a loopback network with alice and bob signed in,
// contacts of each other and each seeing the other online.
func contactsPair(t *testing.T, ctx context.Context) (alice, bob *testnet.Client) {
	t.Helper()
	alice, bob = apitypetest.NewPair(t)
	for _, c := range []*testnet.Client{alice, bob} {
		if err := testnet.SignIn(ctx, c, c.Name+"-password"); err != nil {
			t.Fatal(err)
		}
	}
	if err := testnet.MakeContacts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}
	for _, p := range [][2]*testnet.Client{{alice, bob}, {bob, alice}} {
		if _, err := testnet.AwaitOnline(ctx, p[0], p[1].Name); err != nil {
			t.Fatal(err)
		}
	}
	return alice, bob
}

// connTracker hands the API client its connections and can break them.
type connTracker struct {
	mu    sync.Mutex
	conns []*trackedConn
	dials int
}

type trackedConn struct {
	net.Conn
	mu      sync.Mutex
	written strings.Builder // what the client sent: request lines and headers
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.written.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (tr *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c}
	tr.mu.Lock()
	tr.conns = append(tr.conns, tc)
	tr.dials++
	tr.mu.Unlock()
	return tc, nil
}

// breakAll closes every connection made so far, as a network failure
// would.
func (tr *connTracker) breakAll() {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, c := range tr.conns {
		c.Conn.Close()
	}
}

// sent is everything the client wrote on every connection.
func (tr *connTracker) sent() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var b strings.Builder
	for _, c := range tr.conns {
		c.mu.Lock()
		b.WriteString(c.written.String())
		c.mu.Unlock()
	}
	return b.String()
}

// TestWatchSurvivesDroppedConnections breaks the event stream's connection
// twice while bob's messages arrive, some of them while alice's client is
// disconnected: the client reconnects with Last-Event-ID and delivers
// every event once, in order.
func TestWatchSurvivesDroppedConnections(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice, bob := contactsPair(t, ctx)
	var tr connTracker
	c, err := api.Dial(alice.Dir, tr.dial)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := c.Watch(ctx, st.EventSeq)
	if err != nil {
		t.Fatal(err)
	}
	const n = 30
	var want, got []string
	send := func(from, to int) {
		for i := from; i < to; i++ {
			m, err := bob.Engine.Send(ctx, "alice", fmt.Sprintf("message %d", i))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, m.ID)
		}
	}
	last := st.EventSeq
	var lastSeen []uint64 // the Seq read just before each break
	readMessages := func(upto int) {
		t.Helper()
		for len(got) < upto {
			select {
			case ev, ok := <-evs:
				if !ok {
					t.Fatalf("the event stream closed after %d", last)
				}
				if ev.Seq != last+1 {
					t.Fatalf("event %s %d after %d: want %d, no gap and no repeat", ev.Kind, ev.Seq, last, last+1)
				}
				last = ev.Seq
				if ev.Kind == apitype.EventMessage {
					got = append(got, ev.Message.ID)
				}
			case <-ctx.Done():
				t.Fatalf("waiting for message event %d: %v", len(got)+1, ctx.Err())
			}
		}
	}
	send(0, 10)
	readMessages(4) // messages 5-10 are on the wire or in buffers
	lastSeen = append(lastSeen, last)
	tr.breakAll()
	send(10, 20) // published while the client waits to reconnect
	readMessages(15)
	lastSeen = append(lastSeen, last)
	tr.breakAll()
	send(20, n)
	readMessages(n)
	if !slices.Equal(got, want) {
		t.Errorf("message events: got %v, want %v, once each in order", got, want)
	}
	tr.mu.Lock()
	dials := tr.dials
	tr.mu.Unlock()
	if dials < 3 {
		t.Errorf("the client dialled %d times, want at least 3 (two reconnections)", dials)
	}
	// Each reconnection asked for what came after the last event the
	// client had received, which is at or after what the test had read.
	ids := regexp.MustCompile(`(?i)\r\nLast-Event-ID: (\d+)\r\n`).FindAllStringSubmatch(tr.sent(), -1)
	if len(ids) < 3 {
		t.Fatalf("got %d event requests with Last-Event-ID, want at least 3", len(ids))
	}
	for i, seen := range lastSeen {
		cursor, _ := strconv.ParseUint(ids[i+1][1], 10, 64)
		if cursor < seen {
			t.Errorf("reconnection %d: Last-Event-ID %d, want at least %d (events already delivered)", i+1, cursor, seen)
		}
	}

	// When the daemon's API is gone for good, the channel is closed.
	if err := alice.API.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case _, ok := <-evs:
			if !ok {
				return
			}
		case <-ctx.Done():
			t.Fatal("the event channel stays open after the API closed")
		}
	}
}

// sseEvent is one event as read off the wire.
type sseEvent struct {
	id, kind string
	data     []string
	ev       apitype.Event
}

// sseReader reads a raw server-sent event stream.
type sseReader struct {
	t        *testing.T
	comments []string
	lines    chan string
}

func newSSEReader(t *testing.T, resp *http.Response) *sseReader {
	r := &sseReader{t: t, lines: make(chan string)}
	sc := bufio.NewScanner(resp.Body)
	go func() {
		defer close(r.lines)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		resp.Body.Close()
		for range r.lines {
		}
	})
	return r
}

// line is the next line; ok is false at the end of the stream.
func (r *sseReader) line(ctx context.Context) (string, bool) {
	r.t.Helper()
	select {
	case l, ok := <-r.lines:
		return l, ok
	case <-ctx.Done():
		r.t.Fatalf("waiting for a line of the event stream: %v", ctx.Err())
		return "", false
	}
}

// next is the next event; comments before it are kept in r.comments. The
// fields must be id, event and data, in that order.
func (r *sseReader) next(ctx context.Context) sseEvent {
	r.t.Helper()
	var e sseEvent
	var fields []string
	for {
		l, ok := r.line(ctx)
		if !ok {
			r.t.Fatalf("the event stream ended; fields so far %v", fields)
		}
		switch {
		case strings.HasPrefix(l, ":"):
			r.comments = append(r.comments, l)
			continue
		case l == "":
			if len(fields) == 0 {
				continue
			}
			if !slices.Equal(fields, []string{"id", "event", "data"}) {
				r.t.Fatalf("event fields: got %v, want id, event, data", fields)
			}
			if err := json.Unmarshal([]byte(strings.Join(e.data, "\n")), &e.ev); err != nil {
				r.t.Fatalf("event data %q: %v", e.data, err)
			}
			if e.id != strconv.FormatUint(e.ev.Seq, 10) || e.kind != string(e.ev.Kind) {
				r.t.Fatalf("event id %q, event %q; data says seq %d, kind %q", e.id, e.kind, e.ev.Seq, e.ev.Kind)
			}
			return e
		}
		name, value, ok := strings.Cut(l, ": ")
		if !ok {
			r.t.Fatalf("event stream line %q is not \"field: value\"", l)
		}
		fields = append(fields, name)
		switch name {
		case "id":
			e.id = value
		case "event":
			e.kind = value
		case "data":
			e.data = append(e.data, value)
		default:
			r.t.Fatalf("unknown field in line %q", l)
		}
	}
}

// openEvents opens GET /api/events of c's daemon with net/http alone.
func openEvents(t *testing.T, ctx context.Context, c *testnet.Client, query string, header map[string]string) *http.Response {
	t.Helper()
	info := readInfo(t, c.Dir)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+info.Addr+"/api/events"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+info.Token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET /api/events%s: %s", query, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type: got %q, want text/event-stream", ct)
	}
	return resp
}

func readInfo(t *testing.T, dir string) api.Info {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, api.InfoFile))
	if err != nil {
		t.Fatal(err)
	}
	var info api.Info
	if err := json.Unmarshal(data, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

// TestEventStreamWire reads the event stream with net/http alone: its
// framing, the cursor in Last-Event-ID or ?since=, keepalive comments, and
// the end of the stream when the daemon's API closes.
func TestEventStreamWire(t *testing.T) {
	// Not parallel: the keepalive interval is a package variable read by
	// the servers this test starts.
	api.SetKeepaliveForTest(t, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice, bob := contactsPair(t, ctx)
	start := alice.Status().EventSeq
	var ids []string
	for i := range 3 {
		m, err := bob.Engine.Send(ctx, "alice", fmt.Sprintf("wire %d\nsecond line", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	// The events up to the last message, read from start.
	var all []sseEvent
	r := newSSEReader(t, openEvents(t, ctx, alice, "", map[string]string{"Last-Event-ID": strconv.FormatUint(start, 10)}))
	for seen := 0; seen < len(ids); {
		e := r.next(ctx)
		if e.ev.Seq != start+uint64(len(all))+1 {
			t.Fatalf("event %d after %d events from %d", e.ev.Seq, len(all), start)
		}
		all = append(all, e)
		if e.ev.Kind == apitype.EventMessage {
			if e.ev.Message.ID != ids[seen] || !strings.Contains(e.ev.Message.Body, "\n") {
				t.Errorf("message event: got %+v, want message %s with its line break", e.ev.Message, ids[seen])
			}
			seen++
		}
	}
	if len(r.comments) == 0 || r.comments[0] != ": parley events" {
		t.Errorf("the stream starts with comments %q, want \": parley events\"", r.comments)
	}
	for _, e := range all {
		if len(e.data) != 1 {
			t.Errorf("event %s: %d data lines, want 1 (a body's line breaks are escaped in the JSON)", e.id, len(e.data))
		}
	}
	// Idle, the stream carries keepalive comments.
	r.comments = nil
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Contains(r.comments, ": keepalive") {
		if time.Now().After(deadline) {
			t.Fatalf("no keepalive comment in 5s; comments %q", r.comments)
		}
		l, ok := r.line(ctx)
		if !ok {
			t.Fatal("the stream ended while idle")
		}
		if strings.HasPrefix(l, ":") {
			r.comments = append(r.comments, l)
		}
	}

	// The cursor: Last-Event-ID wins over ?since=, which works alone too.
	mid := all[1].ev.Seq
	for _, tt := range []struct {
		name   string
		query  string
		header map[string]string
		want   uint64
	}{
		{"Last-Event-ID", "", map[string]string{"Last-Event-ID": strconv.FormatUint(mid, 10)}, mid + 1},
		{"since", "?since=" + strconv.FormatUint(mid, 10), nil, mid + 1},
		{"Last-Event-ID over since", "?since=" + strconv.FormatUint(start, 10), map[string]string{"Last-Event-ID": strconv.FormatUint(mid, 10)}, mid + 1},
		{"zero", "?since=0", nil, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			r := newSSEReader(t, openEvents(t, ctx, alice, tt.query, tt.header))
			if e := r.next(ctx); e.ev.Seq != tt.want || e.ev.Kind == apitype.EventGap {
				t.Errorf("first event: got %s %d, want event %d", e.ev.Kind, e.ev.Seq, tt.want)
			}
		})
	}
	t.Run("future cursor", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r := newSSEReader(t, openEvents(t, ctx, alice, "?since=99999", nil))
		if e := r.next(ctx); e.ev.Kind != apitype.EventGap || e.kind != "gap" {
			t.Errorf("first event: got %s %s, want a gap", e.kind, e.id)
		}
	})
	t.Run("no cursor: from now on", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		r := newSSEReader(t, openEvents(t, ctx, alice, "", nil))
		// The stream is open once its first comment arrived.
		if l, _ := r.line(ctx); l != ": parley events" {
			t.Fatalf("first line %q, want the opening comment", l)
		}
		m, err := bob.Engine.Send(ctx, "alice", "now")
		if err != nil {
			t.Fatal(err)
		}
		for {
			e := r.next(ctx)
			if e.ev.Seq <= all[len(all)-1].ev.Seq {
				t.Fatalf("got old event %d, want only events after the stream opened", e.ev.Seq)
			}
			if e.ev.Kind == apitype.EventMessage {
				if e.ev.Message.ID != m.ID {
					t.Errorf("got message %s, want %s", e.ev.Message.ID, m.ID)
				}
				break
			}
		}
	})

	// Closing the API ends every stream.
	if err := alice.API.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := r.line(ctx); !ok {
			break
		}
	}
}
