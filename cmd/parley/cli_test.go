package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/testnet"
)

// parley runs the CLI with the given standard input and returns its output.
func parley(t *testing.T, ctx context.Context, stdin string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runCLI(ctx, args, strings.NewReader(stdin), &out)
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
	mustParley(t, ctx, "bob-password\n", "--data", bob.Dir, "register", "bob")
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "add-contact", "bob"); !strings.Contains(out, "when bob adds you too") {
		t.Errorf("first add-contact: got %q", out)
	}
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "add-contact", "alice"); !strings.Contains(out, "alice is now a contact") {
		t.Errorf("second add-contact: got %q", out)
	}
	if _, err := testnet.AwaitOnline(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := testnet.AwaitOnline(ctx, alice, "bob"); err != nil {
		t.Fatal(err)
	}

	via := "relayed via " + n.Supernodes[0].Node.ID().String()
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "send", "bob", "hello", "from", "the", "CLI"); !strings.Contains(out, "delivered to bob ("+via+")") {
		t.Errorf("send: got %q, want delivered %s", out, via)
	}
	if out := mustParley(t, ctx, "", "--data", bob.Dir, "history", "alice"); !strings.Contains(out, "alice:") || !strings.Contains(out, "hello from the CLI") {
		t.Errorf("history: got %q", out)
	}
	out := mustParley(t, ctx, "", "--data", alice.Dir, "status", "--json")
	var st app.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not JSON: %v\n%s", err, out)
	}
	if st.Username != "alice" || len(st.Contacts) != 1 || !st.Contacts[0].Online || st.Contacts[0].Path != via {
		t.Errorf("status: got %+v", st)
	}
	if out := mustParley(t, ctx, "", "--data", alice.Dir, "status"); !strings.Contains(out, "bob") || !strings.Contains(out, via) {
		t.Errorf("human status: got %q", out)
	}

	errs := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no daemon", "", []string{"--data", t.TempDir(), "status"}, "no parley daemon is running"},
		{"unknown command", "", []string{"--data", alice.Dir, "frobnicate"}, `unknown command "frobnicate"`},
		{"missing message", "", []string{"--data", alice.Dir, "send", "bob"}, "send needs USER MESSAGE"},
		{"not a contact", "", []string{"--data", alice.Dir, "send", "carol", "hi"}, "not a contact"},
		{"wrong password", "nope-nope-nope\n", []string{"--data", bob.Dir, "enrol", "alice"}, "wrong username or password"},
		{"no password", "", []string{"--data", bob.Dir, "enrol", "alice"}, "no password on standard input"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parley(t, ctx, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
