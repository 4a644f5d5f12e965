package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/command"
)

// commandPaths are the commands of the tree, "" for parley itself, with
// cobra's completion commands.
func commandPaths(t *testing.T) []string {
	t.Helper()
	root := (&cli{out: io.Discard, errOut: io.Discard, in: strings.NewReader("")}).root()
	root.InitDefaultCompletionCmd()
	var paths []string
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		paths = append(paths, strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), "parley"), " "))
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if len(paths) < 20 {
		t.Fatalf("got %d commands: %q", len(paths), paths)
	}
	return paths
}

// TestHelp: --help, -h and help CMD exit 0 and show a description, the
// usage and an example, for every command.
func TestHelp(t *testing.T) {
	ctx := context.Background()
	for _, path := range append(commandPaths(t), "add-contact") {
		words := strings.Fields(path)
		for _, args := range [][]string{
			append(append([]string{}, words...), "--help"),
			append(append([]string{}, words...), "-h"),
			append([]string{"help"}, words...),
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				out, err := parley(t, ctx, "", args...)
				if err != nil {
					t.Fatalf("got %v (exit %d), want exit 0", err, command.ExitCode(err))
				}
				for _, want := range []string{"Usage:", "Examples:\n  ", "parley "} {
					if !strings.Contains(out, want) {
						t.Errorf("got\n%s\nwant it to contain %q", out, want)
					}
				}
				if first := strings.SplitN(out, "\n", 2)[0]; len(first) < 20 {
					t.Errorf("got a description of %q, want a sentence", first)
				}
			})
		}
	}
	out, _ := parley(t, ctx, "", "send", "--help")
	for _, want := range []string{"--json", "--data", "send USER MESSAGE..."} {
		if !strings.Contains(out, want) {
			t.Errorf("send --help: got\n%s\nwant %q", out, want)
		}
	}
}

// TestUsageErrors: mistakes on the command line exit 2 and ask nothing
// of the daemon.
func TestUsageErrors(t *testing.T) {
	f, _, dir := startFake(t)
	ctx := context.Background()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"only flags", []string{"--data", dir}, "missing command"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown help topic", []string{"help", "frobnicate"}, `unknown help topic "frobnicate"`},
		{"unknown flag", []string{"status", "--frob"}, "unknown flag: --frob"},
		{"unknown flag after argument", []string{"history", "bob", "--frob"}, "unknown flag: --frob"},
		{"stray argument", []string{"status", "bob"}, `status takes no arguments; unexpected "bob"`},
		{"stray argument after one", []string{"history", "bob", "carol"}, `history takes USER; unexpected "carol"`},
		{"stray argument to watch", []string{"watch", "bob"}, `unexpected "bob"`},
		{"missing link", []string{"get", "--detach"}, "get needs LINK"},
		{"missing transfer", []string{"pause"}, "pause needs ID"},
		{"two paths", []string{"publish", "a", "b"}, `publish takes PATH; unexpected "b"`},
		{"stray argument to daemon", []string{"daemon", "--rendezvous", "/ip4/127.0.0.1/tcp/1", "now"}, `unexpected "now"`},
		{"missing argument", []string{"accept"}, "accept needs USER"},
		{"missing message", []string{"send", "bob"}, "send needs USER MESSAGE..."},
		{"bad limit", []string{"history", "bob", "--limit", "many"}, `invalid argument "many" for "--limit"`},
		{"limit out of range", []string{"history", "bob", "--limit", "0"}, "--limit 0: want 1 to 1000"},
		{"bad size", []string{"probe", "bob", "--size", "12XB"}, `invalid argument "12XB" for "--size"`},
		{"size too big", []string{"probe", "bob", "--size", "2GiB"}, "a probe sends at most 1GiB"},
		{"bad since", []string{"watch", "--since", "-1"}, `invalid argument "-1" for "--since"`},
		{"flag without value", []string{"history", "bob", "--limit"}, "flag needs an argument: --limit"},
		{"bad supernode mode", []string{"daemon", "--rendezvous", "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWBob", "--supernode", "sometimes"}, "--supernode"},
		{"bad rendezvous", []string{"daemon", "--rendezvous", "nowhere"}, "rendezvous"},
		{"bad upload limit", []string{"daemon", "--upload-limit", "fast"}, `invalid argument "fast" for "--upload-limit"`},
		{"upload limit too low", []string{"daemon", "--upload-limit", "64KiB"}, "at least 128KiB, or 0 for no limit"},
		{"completion for no shell", []string{"completion", "tcsh"}, `unknown command "tcsh"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if len(args) > 0 && args[0] != "--data" {
				args = append([]string{"--data", dir}, args...)
			}
			_, err := parley(t, ctx, "", args...)
			if code := command.ExitCode(err); code != command.ExitUsage || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v (exit %d), want exit 2 with %q", err, code, tt.want)
			}
			if e, _ := errors.AsType[*command.ExitError](err); e == nil || !strings.Contains(e.Hint, "--help") {
				t.Errorf("got %q, want a hint pointing at --help", err)
			}
		})
	}
	if n := f.numCalls(); n != 0 {
		t.Errorf("usage errors made %d calls to the daemon, want 0", n)
	}
}

// TestExitCodes: not found exits 3, other failures 1.
func TestExitCodes(t *testing.T) {
	_, _, dir := startFake(t)
	ctx := context.Background()
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"accept unknown user", []string{"accept", "nobody"}, command.ExitNotFound},
		{"request unknown user", []string{"request-contact", "nobody"}, command.ExitNotFound},
		{"send to a non-contact", []string{"send", "carol", "hi"}, command.ExitNotFound},
		{"probe a non-contact", []string{"probe", "carol"}, command.ExitNotFound},
		{"history of a stranger", []string{"history", "carol"}, command.ExitNotFound},
		{"revoke an unknown device", []string{"revoke", "12D3KooWUnknown"}, command.ExitNotFound},
		{"daemon fails", []string{"block", "boom"}, 1},
		{"pause an unknown transfer", []string{"pause", "unknown"}, command.ExitNotFound},
		{"get a bad link", []string{"get", "parley://bad"}, 1},
		{"publish what is not there", []string{"publish", "/nope"}, 1},
		{"unpublish a bad CID", []string{"unpublish", "bafk"}, 1},
		{"the daemon's error is shown safely", []string{"block", "evil"}, command.ExitNotFound},
		{"history of a pending request", []string{"history", "dave"}, 0},
		{"no daemon", []string{"--data", t.TempDir(), "status"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parley(t, ctx, "", append([]string{"--data", dir}, tt.args...)...)
			if code := command.ExitCode(err); code != tt.code {
				t.Fatalf("got %v (exit %d), want exit %d", err, code, tt.code)
			}
			if err != nil && strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Errorf("got %q, want the error on one line, escaped", err)
			}
		})
	}
}

// TestJSON: --json prints the API's types with their field names, for
// every command that prints something (watch and daemon have their own
// tests).
func TestJSON(t *testing.T) {
	_, _, dir := startFake(t)
	ctx := context.Background()
	tests := []struct {
		args  []string
		stdin string
		into  any
		want  any
	}{
		{[]string{"register", "alice"}, "pw\n", &apitype.Account{}, &apitype.Account{Username: "alice"}},
		{[]string{"enrol", "alice"}, "pw\n", &apitype.Account{}, &apitype.Account{Username: "alice"}},
		{[]string{"request-contact", "bob"}, "", &apitype.ContactRequestResult{}, &apitype.ContactRequestResult{}},
		{[]string{"add-contact", "bob"}, "", &apitype.ContactRequestResult{}, &apitype.ContactRequestResult{}},
		{[]string{"accept", "bob"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"decline", "bob"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"remove", "bob"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"block", "bob"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"unblock", "bob"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"revoke", "12D3KooWLaptop"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"change-password"}, "old\nnew\n", &map[string]any{}, &map[string]any{}},
		{[]string{"delete-account"}, "pw\n", &map[string]any{}, &map[string]any{}},
		{[]string{"contacts"}, "", &apitype.ContactBook{}, nil},
		{[]string{"status"}, "", &apitype.Status{}, nil},
		{[]string{"devices"}, "", &[]apitype.Device{}, nil},
		{[]string{"send", "bob", "hi", "there"}, "", &apitype.Message{}, nil},
		{[]string{"history", "bob"}, "", &[]apitype.Message{}, nil},
		{[]string{"history", "dave"}, "", &[]apitype.Message{}, &[]apitype.Message{}},
		{[]string{"probe", "bob"}, "", &apitype.ProbeResult{}, nil},
		{[]string{"publish", "/home/alice/slides.pdf"}, "", &apitype.Published{}, ptr(fakePublished("/home/alice/slides.pdf"))},
		{[]string{"published"}, "", &[]apitype.Published{}, &[]apitype.Published{fakePublished("/home/alice/slides.pdf")}},
		{[]string{"unpublish", fakeCID}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"get", "parley://" + fakeCID, "--detach"}, "", &apitype.Transfer{}, ptr(fakeTransfer())},
		{[]string{"transfers"}, "", &[]apitype.Transfer{}, nil},
		{[]string{"pause", "t1"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"resume", "t1"}, "", &map[string]any{}, &map[string]any{}},
		{[]string{"cancel", "t1"}, "", &map[string]any{}, &map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustParley(t, ctx, tt.stdin, append(append([]string{"--data", dir}, tt.args...), "--json")...)
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.into); err != nil {
				t.Fatalf("not the API's JSON: %v\n%s", err, out)
			}
			if dec.More() {
				t.Fatalf("more than one JSON value:\n%s", out)
			}
			if tt.want != nil && !reflect.DeepEqual(tt.into, tt.want) {
				t.Errorf("got %s, want %+v", out, tt.want)
			}
		})
	}
	// The names scripts read.
	out := mustParley(t, ctx, "", "--data", dir, "probe", "bob", "--json")
	for _, name := range []string{`"mb_per_s"`, `"bytes"`, `"duration_ns"`, `"path"`, `"intact"`} {
		if !strings.Contains(out, name) {
			t.Errorf("probe --json: got %s, want the field %s", out, name)
		}
	}
}

// TestFlagsAnywhere: flags before and after the positional arguments, and
// --data anywhere on the line (issue 11: flags after the argument were
// dropped).
func TestFlagsAnywhere(t *testing.T) {
	f, _, dir := startFake(t)
	ctx := context.Background()
	for _, args := range [][]string{
		{"--data", dir, "history", "bob", "--limit", "1"},
		{"--data", dir, "history", "--limit", "1", "bob"},
		{"history", "bob", "--limit=1", "--data", dir},
		{"history", "--data=" + dir, "bob", "--limit", "1"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out := mustParley(t, ctx, "", args...)
			// The message, and how to page back to the older one.
			if n := strings.Count(out, "\n"); n != 2 || !strings.Contains(out, "--limit 1 --before m2") {
				t.Errorf("got %d lines, want 2 (the message, the hint):\n%s", n, out)
			}
			if q := f.lastHistory(); q.Limit != 2 {
				t.Errorf("asked for %d, want 2 (one more than shown)", q.Limit)
			}
		})
	}
	for _, args := range [][]string{
		{"--data", dir, "probe", "bob", "--size", "64MiB"},
		{"--data", dir, "probe", "--size", "64MiB", "bob"},
	} {
		out := mustParley(t, ctx, "", args...)
		if size := f.lastProbe(); size != 64<<20 || !strings.Contains(out, "sent 64MiB to bob") {
			t.Errorf("%q: got size %d and %q, want 64MiB", args, size, out)
		}
	}
	// -- ends the flags: a message may start with a dash.
	out := mustParley(t, ctx, "", "--data", dir, "send", "bob", "--json", "--", "-1", "--is", "fine")
	var m apitype.Message
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Body != "-1 --is fine" {
		t.Errorf("got %v %q, want the body -1 --is fine", err, m.Body)
	}
}

// nasty is a message body that tries to fake a second line, clear the
// screen and reverse what follows it.
const nasty = "ok\n2026-12-06 14:25:31  bob:  I agree\x1b[2J\u202eevil"

// TestHistoryRendersNetworkTextSafely: a message body stays on its line.
func TestHistoryRendersNetworkTextSafely(t *testing.T) {
	f, _, dir := startFake(t)
	f.mu.Lock()
	f.body = nasty
	f.mu.Unlock()
	out := mustParley(t, context.Background(), "", "--data", dir, "history", "bob", "--limit", "2")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), out)
	}
	want := `bob → you (relayed via 12D3KooWSuper): ok\n2026-12-06 14:25:31  bob:  I agree\x1b[2J\u202eevil`
	if !strings.HasSuffix(lines[0], want) || strings.ContainsAny(out, "\x1b\u202e\r") {
		t.Errorf("got %q, want it to end with %q", lines[0], want)
	}
	if !strings.HasSuffix(lines[1], "you → bob (queued): hi") {
		t.Errorf("got %q, want you → bob (queued): hi", lines[1])
	}
}

// running is a long-running parley command (watch, daemon) that
// startParley runs until stop (Ctrl-C); it hands its output lines over.
type running struct {
	lines <-chan string
	done  <-chan error
	stop  context.CancelFunc
}

func startParley(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	lines := make(chan string, 16)
	done := make(chan error, 1)
	go func() {
		err := runCLI(ctx, args, strings.NewReader(""), pw, io.Discard)
		pw.Close()
		done <- err
	}()
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(cancel)
	return &running{lines: lines, done: done, stop: cancel}
}

func (w *running) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-w.lines:
		if !ok {
			t.Fatalf("watch ended: %v", <-w.done)
		}
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line from watch")
	}
	return ""
}

func (w *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-w.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("watch did not end")
	}
	return nil
}

// send hands ev to the n-th Watch (from 0) of the fake, once it runs.
func (f *fakeClient) send(t *testing.T, n int, ev apitype.Event) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		var events chan apitype.Event
		if len(f.watches) > n {
			events = f.watches[n]
		}
		f.mu.Unlock()
		if events != nil {
			select {
			case events <- ev:
				return
			case <-deadline:
				t.Fatal("watch does not read")
			}
		}
		select {
		case <-deadline:
			t.Fatalf("no watch #%d", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestWatch(t *testing.T) {
	f, srv, dir := startFake(t)
	msg := &apitype.Message{ID: "m7", From: "bob", To: "alice", Sent: fakeTime, Body: nasty, Incoming: true, State: apitype.MessageReceived, Path: "direct"}

	// Human lines, from Status.EventSeq on, until Ctrl-C (exit 0).
	w := startParley(t, "--data", dir, "watch")
	f.send(t, 0, apitype.Event{Seq: 42, Time: fakeTime, Kind: apitype.EventMessage, Message: msg})
	want := `14:25:31  message  bob → you (direct): ok\n2026-12-06 14:25:31  bob:  I agree\x1b[2J\u202eevil`
	if got := w.next(t); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	f.send(t, 0, apitype.Event{Seq: 43, Time: fakeTime, Kind: apitype.EventContact, Username: "dave", Change: "requested"})
	if got := w.next(t); got != "14:25:31  contact  dave asks to be your contact: parley accept dave" {
		t.Errorf("got %q", got)
	}
	w.stop()
	if err := w.wait(t); err != nil {
		t.Errorf("Ctrl-C: got %v, want exit 0", err)
	}

	// JSON lines, from --since on, until the daemon goes away (exit 1).
	w = startParley(t, "watch", "--json", "--since", "7", "--data", dir)
	ev := apitype.Event{Seq: 8, Time: fakeTime.UTC(), Kind: apitype.EventMessage, Message: msg}
	f.send(t, 1, ev)
	var got apitype.Event
	if err := json.Unmarshal([]byte(w.next(t)), &got); err != nil {
		t.Fatal(err)
	}
	if got.Seq != ev.Seq || got.Kind != ev.Kind || !got.Time.Equal(ev.Time) || got.Message == nil || got.Message.ID != msg.ID || got.Message.Body != msg.Body {
		t.Errorf("got %+v, want %+v", got, ev)
	}
	f.mu.Lock()
	since := f.since
	f.mu.Unlock()
	if !reflect.DeepEqual(since, []uint64{fakeEventSeq, 7}) {
		t.Errorf("watched since %v, want [%d 7]", since, fakeEventSeq)
	}
	srv.Close()
	err := w.wait(t)
	if code := command.ExitCode(err); code != 1 || !strings.Contains(err.Error(), "the daemon went away; resume with: parley watch --since 8") {
		t.Errorf("daemon gone: got %v (exit %d), want exit 1 and how to resume", err, code)
	}
}

func TestSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hello, world", "hello, world"},
		{"émoji 👋🏽 and 日本語 and عربى", "émoji 👋🏽 and 日本語 and عربى"},
		{"two\nlines\r\n", `two\nlines\r\n`},
		{"tab\there", `tab\there`},
		{"\x1b[2Jclear", `\x1b[2Jclear`},
		{"bell\x07 del\x7f nul\x00", `bell\x07 del\x7f nul\x00`},
		{"c1 csi \u009b2J", `c1 csi \u009b2J`},
		{"rlo \u202e lre \u202a pdf \u202c", `rlo \u202e lre \u202a pdf \u202c`},
		{"isolates \u2066\u2067\u2068\u2069", `isolates \u2066\u2067\u2068\u2069`},
		{"marks \u200e\u200f\u061c", `marks \u200e\u200f\u061c`},
		{"separators \u2028\u2029", `separators \u2028\u2029`},
		{"bad utf-8 \xff\xfe", `bad utf-8 \xff\xfe`},
		{"zero-width joiner 👩\u200d💻", "zero-width joiner 👩\u200d💻"},
	}
	for _, tt := range tests {
		if got := safe(tt.in); got != tt.want {
			t.Errorf("safe(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestEventLines: each kind of event is one line, and network text in it
// is escaped.
func TestEventLines(t *testing.T) {
	evil := "bob\n14:25:31  message  alice"
	tests := []struct {
		ev   apitype.Event
		want string
	}{
		{apitype.Event{Kind: apitype.EventGap}, "gap  events were missed; parley status shows where things stand"},
		{apitype.Event{Kind: apitype.EventLogin, Username: "alice"}, "login  logged in as alice"},
		{apitype.Event{Kind: apitype.EventLogout, Login: &apitype.LoginProblem{Error: "server\x1b[31m gone", Hint: "retrying"}}, `logout  logged out: server\x1b[31m gone; retrying`},
		{apitype.Event{Kind: apitype.EventLoginStopped, Login: &apitype.LoginProblem{Error: "revoked", Hint: "enrol again", Stopped: true}}, "login_stopped  stopped logging in: revoked; enrol again"},
		{apitype.Event{Kind: apitype.EventPresence, Contact: &apitype.ContactStatus{Username: "bob", Online: true, Path: "direct"}}, "presence  bob online (direct)"},
		{apitype.Event{Kind: apitype.EventPresence, Contact: &apitype.ContactStatus{Username: evil}}, `presence  bob\n14:25:31  message  alice offline`},
		{apitype.Event{Kind: apitype.EventPath, Contact: &apitype.ContactStatus{Username: "bob", Online: true, Path: "holepunched"}}, "path  bob online (holepunched)"},
		{apitype.Event{Kind: apitype.EventPath, Contact: &apitype.ContactStatus{Username: "bob", Online: true, Path: "holepunched", Transport: "quic"}}, "path  bob online (holepunched/quic)"},
		{apitype.Event{Kind: apitype.EventPath, Contact: &apitype.ContactStatus{Username: "bob", Online: true, Path: "relayed via 12D3KooWSuper", Transport: "tcp"}}, "path  bob online (relayed/tcp via 12D3KooWSuper)"},
		{apitype.Event{Kind: apitype.EventContact, Username: "bob", Change: "accepted"}, "contact  bob is now a contact"},
		{apitype.Event{Kind: apitype.EventContact, Username: "bob", Change: "removed"}, "contact  bob is no longer a contact or request"},
		{apitype.Event{Kind: apitype.EventMessageState, Message: &apitype.Message{ID: "m1", From: "alice", To: "bob", Body: "hi", State: apitype.MessageDelivered, Path: "direct"}}, "message_state  you → bob (direct): hi (id m1)"},
		{apitype.Event{Kind: apitype.EventMessageState, Message: &apitype.Message{ID: "m1", From: "alice", To: "bob", Body: "hi", State: apitype.MessageDelivered, Path: "direct", Transport: "quic"}}, "message_state  you → bob (direct/quic): hi (id m1)"},
		{apitype.Event{Kind: apitype.EventMessageState, Message: &apitype.Message{ID: "m1", To: "bob", Body: "hi", State: apitype.MessageFailed, Error: "refused\u202e"}}, `message_state  you → bob (not delivered: refused\u202e): hi (id m1)`},
		{apitype.Event{Kind: apitype.EventMessageState, Message: &apitype.Message{ID: "m1", From: "alice", To: "bob", Body: "hi", State: apitype.MessageRead, Path: "mailbox"}}, "message_state  you → bob (mailbox, read): hi (id m1)"},
		{apitype.Event{Kind: apitype.EventMessageState, Message: &apitype.Message{ID: "m1", From: "alice", To: "bob", Body: "hi", State: apitype.MessageSent}}, "message_state  you → bob (sent, not delivered yet): hi (id m1)"},
		{apitype.Event{Kind: apitype.EventUnread, Unread: &apitype.Unread{Contact: "bob\x1b[2J", Count: 3}}, `unread  3 unread from bob\x1b[2J`},
		{apitype.Event{Kind: apitype.EventSupernodes, Supernodes: []string{"12D3KooWA", "12D3KooWB"}}, "supernodes  relay slots at 12D3KooWA, 12D3KooWB"},
		{apitype.Event{Kind: apitype.EventTransfer, Transfer: &apitype.Transfer{ID: "t1", Name: "slides\x1b[2J.pdf", State: apitype.TransferRunning, BytesDone: 10 << 20, BytesTotal: 40 << 20, Rate: 2 << 20, Peers: 3}},
			`transfer  slides\x1b[2J.pdf (id t1): 10.0 MiB of 40.0 MiB (25%), 2.0 MiB/s, ETA 15s, 3 peers`},
		{apitype.Event{Kind: apitype.EventTransfer, Transfer: &apitype.Transfer{ID: "t1", Name: "slides.pdf", State: apitype.TransferDone, BytesDone: 40 << 20, Path: "/tmp/slides.pdf"}},
			"transfer  slides.pdf (id t1): done, 40.0 MiB at /tmp/slides.pdf"},
		{apitype.Event{Kind: "something_new"}, "something_new  (see parley watch --json)"},
	}
	for _, tt := range tests {
		tt.ev.Time = fakeTime
		got := eventLine(tt.ev)
		if want := "14:25:31  " + tt.want; got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	}
}

// TestCompletion: USER and DEVICE arguments complete from the daemon.
func TestCompletion(t *testing.T) {
	_, _, dir := startFake(t)
	ctx := context.Background()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"accept", ""}, []string{"bob", "dave"}},
		{[]string{"history", "b"}, []string{"bob"}},
		{[]string{"send", "bob", ""}, nil},
		{[]string{"revoke", ""}, []string{"12D3KooWThis"}},
		{[]string{"status", ""}, nil},
		{[]string{"pause", ""}, []string{"t1"}},
		{[]string{"unpublish", "bafk"}, []string{fakeCID}},
		{[]string{"hist"}, []string{"history\tShow the messages exchanged with a contact, and mark them read"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out := mustParley(t, ctx, "", append([]string{"__complete", "--data", dir}, tt.args...)...)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			got := lines[:len(lines)-1] // the last line is the directive
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
