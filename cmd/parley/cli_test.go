package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/testnet"
)

// parley runs the CLI with the given standard input and returns its output.
func parley(t *testing.T, ctx context.Context, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCLI(ctx, args, strings.NewReader(stdin), &out, &errOut)
	return out.String(), err
}

func mustParley(t *testing.T, ctx context.Context, stdin string, args ...string) string {
	t.Helper()
	out, err := parley(t, ctx, stdin, args...)
	if err != nil {
		t.Fatalf("parley %v: %v\n%s", args, err, out)
	}
	return out
}

// TestCLIAgainstLiveNetwork drives two daemons of a loopback network the
// way a user would, through the parley command.
func TestCLIAgainstLiveNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := testnet.Start(ctx, testnet.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	alice, err := n.AddClient(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := n.AddClient(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}

	if out := mustParley(t, ctx, "alice-password\n", "--data", alice.Dir, "register", "Alice"); !strings.Contains(out, "logged in as alice") {
		t.Errorf("register: got %q", out)
	}
	var acct apitype.Account
	if err := json.Unmarshal([]byte(mustParley(t, ctx, "bob-password\n", "--data", bob.Dir, "register", "bob", "--json")), &acct); err != nil || acct.Username != "bob" {
		t.Fatalf("register --json: got %+v, %v", acct, err)
	}
	for _, c := range []*testnet.Client{alice, bob} {
		if err := c.AwaitRelay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// add-contact is the older name of request-contact.
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "add-contact", "bob"); !strings.Contains(out, "asked bob; you become contacts when bob accepts") {
		t.Errorf("add-contact: got %q", out)
	}
	if err := testnet.AwaitIncoming(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	var pending apitype.Status
	if err := json.Unmarshal([]byte(mustParley(t, ctx, "", "--data", bob.Dir, "status", "--json")), &pending); err != nil {
		t.Fatal(err)
	}
	if len(pending.Incoming) != 1 || pending.Incoming[0] != "alice" {
		t.Errorf("bob's status --json: got incoming %q, want [alice]", pending.Incoming)
	}
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "contacts"); !strings.Contains(out, "alice asks to be your contact: parley accept alice") {
		t.Errorf("bob's contacts: got %q", out)
	}
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "contacts"); !strings.Contains(out, "waiting for an answer from: bob") {
		t.Errorf("alice's contacts: got %q", out)
	}
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "accept", "alice"); !strings.Contains(out, "alice is now a contact") {
		t.Errorf("accept: got %q", out)
	}
	if _, err := testnet.AwaitOnline(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := testnet.AwaitOnline(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}

	// bob watches from his status on, so the message cannot slip by.
	var before apitype.Status
	if err := json.Unmarshal([]byte(mustParley(t, ctx, "", "--data", bob.Dir, "status", "--json")), &before); err != nil {
		t.Fatal(err)
	}
	w := startParley(t, "watch", "--data", bob.Dir, "--json", "--since", strconv.FormatUint(before.EventSeq, 10))

	via := `relayed/(tcp|quic) via ` + n.Supernodes[0].Node.ID().String()
	isVia := regexp.MustCompile("^" + via + "$").MatchString
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "send", "bob", "hello", "from", "the", "CLI"); !regexp.MustCompile(`delivered to bob \(` + via + `\)`).MatchString(out) {
		t.Errorf("send: got %q, want delivered %s", out, via)
	}
	for {
		var ev apitype.Event
		line := w.next(t)
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("watch --json: %v: %q", err, line)
		}
		if ev.Seq <= before.EventSeq {
			t.Errorf("watch --since %d: got event %d", before.EventSeq, ev.Seq)
		}
		if ev.Kind == apitype.EventMessage {
			if ev.Message == nil || ev.Message.From != "alice" || ev.Message.Body != "hello from the CLI" {
				t.Errorf("watch --json: got %s, want alice's message", line)
			}
			break
		}
	}
	w.stop()
	if err := w.wait(t); err != nil {
		t.Errorf("watch after Ctrl-C: got %v, want exit 0", err)
	}
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "history", "alice"); !strings.Contains(out, "alice → you (") || !strings.Contains(out, "hello from the CLI") {
		t.Errorf("history: got %q", out)
	}
	// Issue 11: flags after the argument count.
	mustParley(t, ctx, "", "--data", alice.Dir, "send", "bob", "second")
	out := mustParley(t, ctx, "", "--data", bob.Dir, "history", "alice", "--limit", "1")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || !regexp.MustCompile(`alice → you \(`+via+`\): second`).MatchString(lines[0]) || !strings.HasPrefix(lines[1], "older messages: parley --data ") {
		t.Fatalf("history alice --limit 1: got %q, want the last message and how to see older ones", out)
	}
	// The hint works when pasted: it shows the message before.
	hint := strings.Fields(strings.TrimPrefix(lines[1], "older messages: parley "))
	if out := mustParley(t, ctx, "", hint...); !strings.Contains(out, "hello from the CLI") || strings.Contains(out, "second") {
		t.Errorf("the pasted hint %q: got %q, want the message before", lines[1], out)
	}
	// Showing the history marked alice's messages read; chats says so.
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "chats"); !strings.Contains(out, "alice    0 ") && !strings.Contains(out, "alice  0 ") {
		t.Errorf("chats after reading: got %q, want alice with 0 unread", out)
	}
	var res apitype.ProbeResult
	if err := json.Unmarshal([]byte(mustParley(t, ctx, "", "--data", alice.Dir, "probe", "bob", "--size", "64KiB", "--json")), &res); err != nil {
		t.Fatal(err)
	}
	if res.Bytes != 64<<10 || !res.Intact || res.MBPerSecond <= 0 || !isVia(apitype.PathLabel(res.Path, res.Transport)) {
		t.Errorf("probe bob --size 64KiB: got %+v", res)
	}
	out = mustParley(t, ctx, "", "--data", alice.Dir, "status", "--json")
	var st apitype.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if st.Username != "alice" || len(st.Contacts) != 1 || !st.Contacts[0].Online || !isVia(apitype.PathLabel(st.Contacts[0].Path, st.Contacts[0].Transport)) {
		t.Errorf("status: got %+v", st)
	}
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "status"); !strings.Contains(out, "bob") || !regexp.MustCompile(via).MatchString(out) {
		t.Errorf("human status: got %q", out)
	}

	var book apitype.ContactBook
	if err := json.Unmarshal([]byte(mustParley(t, ctx, "", "--data", alice.Dir, "contacts", "--json")), &book); err != nil {
		t.Fatal(err)
	}
	if len(book.Contacts) != 1 || book.Contacts[0].Username != "bob" || !book.Contacts[0].Online || len(book.Incoming)+len(book.Outgoing) != 0 {
		t.Errorf("contacts --json: got %+v, want bob online and no requests", book)
	}
	devOut := mustParley(t, ctx, "", "--data", alice.Dir, "devices")
	if !strings.Contains(devOut, alice.Engine.Node().ID().String()) || !strings.Contains(devOut, "online") || !strings.Contains(devOut, "(this device)") {
		t.Errorf("devices: got %q", devOut)
	}
	if out := mustParley(t, ctx, "alice-password\nalice-new-password\n", "--data", alice.Dir, "change-password"); !strings.Contains(out, "password changed") {
		t.Errorf("change-password: got %q", out)
	}

	errs := []struct {
		name  string
		stdin string
		args  []string
		want  string
		code  int // the exit status
	}{
		{"no daemon", "", []string{"--data", t.TempDir(), "status"}, "no parley daemon is running", 1},
		{"unknown command", "", []string{"--data", alice.Dir, "frobnicate"}, `unknown command "frobnicate"`, 2},
		{"missing message", "", []string{"--data", alice.Dir, "send", "bob"}, "send needs USER MESSAGE...", 2},
		{"not a contact", "", []string{"--data", alice.Dir, "send", "carol", "hi"}, "not a contact", 3},
		{"wrong password", "nope-nope-nope\n", []string{"--data", bob.Dir, "enrol", "alice"}, "wrong username or password", 1},
		{"no password", "", []string{"--data", bob.Dir, "enrol", "alice"}, "no password on standard input", 1},
		{"old password after change", "alice-password\nwhatever-else\n", []string{"--data", alice.Dir, "change-password"}, "wrong password: the current password is not right", 1},
		{"no new password", "alice-new-password\n", []string{"--data", alice.Dir, "change-password"}, "read new password: no password on standard input", 1},
		{"history of a stranger", "", []string{"--data", alice.Dir, "history", "carol"}, "carol, who is not a contact", 3},
		{"probe a stranger", "", []string{"--data", alice.Dir, "probe", "carol"}, "not a contact", 3},
		{"accept without request", "", []string{"--data", alice.Dir, "accept", "bob"}, "bob has not asked to be your contact", 3},
		{"decline unknown user", "", []string{"--data", alice.Dir, "decline", "carol"}, `no user "carol"`, 3},
		{"revoke not a device", "", []string{"--data", alice.Dir, "revoke", "laptop"}, `"laptop" is not a device ID`, 1},
		{"revoke someone else's device", "", []string{"--data", alice.Dir, "revoke", bob.Engine.Node().ID().String()}, "is not one of your devices", 3},
		{"delete with wrong password", "alice-password\n", []string{"--data", bob.Dir, "delete-account"}, "wrong password: the account was not deleted", 1},
		{"bad username", "", []string{"--data", alice.Dir, "block", "!!"}, "a username has 3 to 32 letters", 1},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parley(t, ctx, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || command.ExitCode(err) != tt.code {
				t.Fatalf("got %v (exit %d), want exit %d with an error containing %q", err, command.ExitCode(err), tt.code, tt.want)
			}
		})
	}

	// bob blocks alice: she loses him, and he lists her as blocked.
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "block", "alice"); !strings.Contains(out, "blocked alice") {
		t.Errorf("block: got %q", out)
	}
	if err := testnet.AwaitNotContact(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "contacts"); !strings.Contains(out, "blocked: alice") {
		t.Errorf("contacts after block: got %q", out)
	}
	mustParley(t, ctx, "", "--data", bob.Dir, "unblock", "alice")

	// bob deletes his account (password checks are rate limited per
	// account, and alice's are used up): the device stops and says why.
	if out := mustParley(t, ctx, "bob-password\n", "--data", bob.Dir, "delete-account"); !strings.Contains(out, "deleted the account bob") {
		t.Errorf("delete-account: got %q", out)
	}
	out = mustParley(t, ctx, "", "--data", bob.Dir, "status")
	if !strings.Contains(out, "stopped: the account was deleted") || !strings.Contains(out, "parley register USER") {
		t.Errorf("status after delete-account: got %q", out)
	}
}
