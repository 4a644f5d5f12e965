package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appfiles "github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/testnet/procnet"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := procnet.RemoveBuilds(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// e2eResult is the last line the script prints.
type e2eResult struct {
	OfferCID     string            `json:"offer_cid"`
	ReceivedCID  string            `json:"received_cid"`
	PublishedCID string            `json:"published_cid"`
	FetchedCID   string            `json:"fetched_cid"`
	Figures      map[string]string `json:"figures"`
}

// TestBrowser runs the web UI in Debian's chromium against a network of
// real processes: a rendezvous server, a supernode, and daemons for alice,
// bob and bob's second device behind imitated NATs (so they reach each
// other through the supernode). The Node script e2e/ui.mjs does what a
// person would: register both in their own browsers, make them contacts,
// decline and block a third user's requests (carol, who then deletes her
// account), chat both ways (delivered, read, unread counts, desktop
// notifications), send a file, pause, resume and cancel a download, publish
// and fetch by link, look at the network page and probe, change a
// password, choose the network on a device started without one (wrong
// addresses refused), enrol it as a second device that shows the
// conversation and revoke it, see the NAT type on the network page, ask
// for the folder of a download (refused: no desktop), and, with the
// rendezvous server stopped (the script asks for it on its standard
// output), see the server-down state while chat goes on, then log out; it
// checks that hostile message bodies render as text, runs axe-core on every
// screen, and takes screenshots in light and dark. They go to
// $PARLEY_UI_ARTIFACTS, else the test's artifact directory (go test
// -artifacts keeps it).
func TestBrowser(t *testing.T) {
	browserTools(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	net, err := procnet.Start(ctx, t, procnet.Config{Relay: true})
	if err != nil {
		t.Fatal(err)
	}
	// The daemons run without a desktop: "Open folder" must say so.
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	// alice sends slowly enough that bob can pause a download from her.
	alice, err := net.AddDaemon(ctx, "alice", "--nat-imitation", "--upload-limit", "512KiB")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := net.AddDaemon(ctx, "bob", "--nat-imitation")
	if err != nil {
		t.Fatal(err)
	}
	// bob's second device starts as on a fresh machine without
	// --rendezvous (the empty flag overrides the one procnet gives): the
	// UI's first-run screen asks for the network, and suggests
	// $PARLEY_RENDEZVOUS, which the daemon reads.
	t.Setenv("PARLEY_RENDEZVOUS", net.RendezvousAddr)
	bob2, err := net.AddDaemon(ctx, "bob2", "--nat-imitation", "--rendezvous=")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := net.AddDaemon(ctx, "carol", "--nat-imitation")
	if err != nil {
		t.Fatal(err)
	}
	artifacts := os.Getenv("PARLEY_UI_ARTIFACTS")
	if artifacts == "" {
		artifacts = t.ArtifactDir()
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	// What alice sends and publishes: random, so the content IDs are new.
	files := t.TempDir()
	shared, published := filepath.Join(files, "report.bin"), filepath.Join(files, "photo.bin")
	for path, size := range map[string]int{shared: 3 << 20, published: 256 << 10} {
		if err := os.WriteFile(path, randomBytes(size), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// parley ui --print-only is what a person runs: its link must work.
	start := time.Now()
	aliceURL := uiLink(ctx, t, net.Binaries().Parley, alice.Dir)
	uiCommand := time.Since(start)
	bobURL := uiLink(ctx, t, net.Binaries().Parley, bob.Dir)
	bob2URL := uiLink(ctx, t, net.Binaries().Parley, bob2.Dir)
	carolURL := uiLink(ctx, t, net.Binaries().Parley, carol.Dir)

	var res e2eResult
	runScript(ctx, t, "ui.mjs", []string{
		"PARLEY_ALICE_URL=" + aliceURL,
		"PARLEY_BOB_URL=" + bobURL,
		"PARLEY_BOB2_URL=" + bob2URL,
		"PARLEY_CAROL_URL=" + carolURL,
		"PARLEY_ARTIFACTS=" + artifacts,
		"PARLEY_SHARE_FILE=" + shared,
		"PARLEY_PUBLISH_FILE=" + published,
	}, func(action string) error {
		if action != "stop-rendezvous" {
			return fmt.Errorf("unknown action %q", action)
		}
		// The script asks for the rendezvous server to go down, to see
		// the UI work from the last session.
		return net.Rendezvous.Kill()
	}, &res)

	// What the browser saw agrees with the daemons.
	if res.OfferCID == "" || res.ReceivedCID != res.OfferCID {
		t.Errorf("bob's download has content ID %q, alice offered %q", res.ReceivedCID, res.OfferCID)
	}
	// The file went by the picker, through an upload: the offer names the
	// content of the file picked.
	m, err := appfiles.Build(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	if want := appfiles.CIDOf(m.Encode()).String(); res.OfferCID != want {
		t.Errorf("alice offered content ID %q, the picked file's is %q", res.OfferCID, want)
	}
	if res.PublishedCID == "" || res.FetchedCID != res.PublishedCID {
		t.Errorf("the download by link has content ID %q, the link names %q", res.FetchedCID, res.PublishedCID)
	}
	ts, err := bob.API.Transfers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{res.OfferCID: shared, res.PublishedCID: published}
	for _, tr := range ts {
		src, ok := want[tr.CID]
		if !ok || tr.State != "done" {
			continue
		}
		got, err := os.ReadFile(tr.Path)
		if err != nil {
			t.Fatal(err)
		}
		orig, _ := os.ReadFile(src)
		if !bytes.Equal(got, orig) {
			t.Errorf("%s arrived different from what alice sent", tr.Path)
		}
		delete(want, tr.CID)
	}
	if len(want) != 0 {
		t.Errorf("bob's daemon has no finished download of %v: %+v", want, ts)
	}
	t.Logf("figures: parley ui %v; %v", uiCommand.Round(time.Millisecond), res.Figures)
	t.Logf("screenshots in %s", artifacts)
}

// uiLink runs parley ui --print-only for the daemon of dataDir.
func uiLink(ctx context.Context, t *testing.T, parley, dataDir string) string {
	t.Helper()
	out, err := exec.CommandContext(ctx, parley, "--data", dataDir, "ui", "--print-only").Output()
	if err != nil {
		t.Fatalf("parley ui: %v", err)
	}
	link := strings.TrimSpace(string(out))
	if !strings.HasPrefix(link, "http://127.0.0.1:") || !strings.Contains(link, "/ui/login?token=") {
		t.Fatalf("parley ui printed %q, want a sign-in link", link)
	}
	return link
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
