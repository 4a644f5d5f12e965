package testnet

import (
	"bytes"
	"context"
	"github.com/parleynet/parley/app/apitype"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestUp runs the README's main-job walkthrough twice on one directory
// and checks what it tells the user: the second run reuses the accounts,
// the contacts, the messages and the ports of the first, so the commands
// the first printed still work.
func TestUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, firstCmds := runUp(t, dir)
	for _, want := range []string{
		"logged in as alice",
		"logged in as bob",
		"asked bob to be a contact",
		"sees bob online",
		"/p2p-circuit",
		"go run ./cmd/parley --data",
	} {
		if !strings.Contains(first, want) {
			t.Errorf("first run: output lacks %q:\n%s", want, first)
		}
	}

	second, secondCmds := runUp(t, dir)
	for _, want := range []string{
		"logged in again (account from an earlier run) as alice",
		"logged in again (account from an earlier run) as bob",
		"has bob as a contact since an earlier run",
		"sent in an earlier run, delivered",
		"sees bob online",
	} {
		if !strings.Contains(second, want) {
			t.Errorf("second run: output lacks %q:\n%s", want, second)
		}
	}
	if strings.Contains(second, "asked bob to be a contact") {
		t.Errorf("second run asked for the contact again:\n%s", second)
	}
	if !slices.Equal(firstCmds, secondCmds) {
		t.Errorf("the printed commands changed between runs:\nfirst:\n%s\nsecond:\n%s", strings.Join(firstCmds, "\n"), strings.Join(secondCmds, "\n"))
	}
}

// runUp runs Up on dir, checks the first-run facts that hold on every
// run, and returns its output and the commands it printed; the network
// is closed again.
func runUp(t *testing.T, dir string) (string, []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	n, err := Up(ctx, Config{Dir: dir}, &out)
	if err != nil {
		t.Fatalf("%v\noutput so far:\n%s", err, &out)
	}
	defer func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	text := out.String()
	via := "relayed via " + n.Supernodes[0].Node.ID().String()
	if got := strings.Count(text, "delivered"); got != 2 {
		t.Errorf("got %d delivered messages, want 2:\n%s", got, text)
	}
	if got := strings.Count(text, via); got != 2 {
		t.Errorf("got %d messages %s, want 2:\n%s", got, via, text)
	}
	if !strings.Contains(text, "reserved a relay slot on supernode "+n.Supernodes[0].Node.ID().String()) {
		t.Errorf("output lacks the supernode:\n%s", text)
	}
	if strings.Contains(text, "WARN") || strings.Contains(text, "ERROR") {
		t.Errorf("log lines in the narrative:\n%s", text)
	}
	// Each client's web UI link signs a browser in: a session cookie and
	// a redirect to the UI, without the token.
	links := regexp.MustCompile(`http://127\.0\.0\.1:[0-9]+/ui/login\?token=[0-9a-f]+`).FindAllString(text, -1)
	if len(links) != len(n.clients) {
		t.Errorf("got %d web UI links, want one per client:\n%s", len(links), text)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, link := range links {
		resp, err := noRedirect.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" || len(resp.Cookies()) == 0 {
			t.Errorf("GET %s: %s to %q with %d cookies, want 303 to / with the session cookie", link, resp.Status, resp.Header.Get("Location"), len(resp.Cookies()))
		}
	}
	// The demo messages are in the history once, whatever the run.
	for _, c := range n.clients {
		other := "bob"
		if c.Name == "bob" {
			other = "alice"
		}
		hist, err := c.Engine.History(ctx, apitype.HistoryQuery{Contact: other, Limit: apitype.MaxHistoryLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 {
			t.Errorf("%s's history with %s: %d messages, want 2", c.Name, other, len(hist))
		}
	}
	return text, regexp.MustCompile(`(?m)^  go run .*$`).FindAllString(text, -1)
}

// TestStartLocksDir: a second network on a directory in use fails at once
// (its listeners would share the first one's ports).
func TestStartLocksDir(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	n, err := Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if n2, err := Start(ctx, Config{Dir: dir}); err == nil || !strings.Contains(err.Error(), "another network is running on "+dir) {
		if n2 != nil {
			n2.Close()
		}
		t.Errorf("second network on the same directory: got %v, want a refusal", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	n, err = Start(ctx, Config{Dir: dir})
	if err != nil {
		t.Fatalf("start again after Close: %v", err)
	}
	n.Close()
}
