package web_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/testnet/procnet"
)

// TestBrowserLongConversation measures the UI on a conversation of 10,000
// messages (PARLEY_UI_MESSAGES to change it): the time to open it, to page
// back, the browser's frame times while it pages back 20 times
// (PARLEY_UI_PAGES to change it; PARLEY_UI_TRACE=1 adds a summary of a
// Chromium trace of the paging: where the main thread's time went), and the
// resident memory of bob's daemon before and with the UI open. It is a
// measurement of a few minutes, so it runs only with PARLEY_UI_FIGURES=1.
func TestBrowserLongConversation(t *testing.T) {
	if os.Getenv("PARLEY_UI_FIGURES") != "1" {
		t.Skip("a measurement of a few minutes: set PARLEY_UI_FIGURES=1 to run it")
	}
	browserTools(t)
	n := 10000
	if v := os.Getenv("PARLEY_UI_MESSAGES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("PARLEY_UI_MESSAGES=%q: want a number of messages", v)
		}
	}
	pages := "20"
	if v := os.Getenv("PARLEY_UI_PAGES"); v != "" {
		if p, err := strconv.Atoi(v); err != nil || p < 1 {
			t.Fatalf("PARLEY_UI_PAGES=%q: want a number of pages", v)
		}
		pages = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	net, err := procnet.Start(ctx, t, procnet.Config{})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := net.AddDaemon(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := net.AddDaemon(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*procnet.Daemon{alice, bob} {
		if err := d.SignIn(ctx, "correct horse battery staple"); err != nil {
			t.Fatal(err)
		}
	}
	if err := procnet.MakeContacts(ctx, alice, bob); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	sendAll(ctx, t, alice, bob.Name, n)
	for {
		convs, err := bob.API.Conversations(ctx)
		if err == nil && len(convs) == 1 && convs[0].Unread >= n {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("bob never had %d unread messages: %v %v", n, convs, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	t.Logf("%d messages sent and stored in %v", n, time.Since(start).Round(time.Millisecond))
	before := vmRSS(t, bob.Proc.PID())

	var figures map[string]any
	runScript(ctx, t, "long.mjs", []string{
		"PARLEY_BOB_URL=" + uiLink(ctx, t, net.Binaries().Parley, bob.Dir),
		"PARLEY_PAGES=" + pages,
	}, func(what string) error { return fmt.Errorf("no actions here") }, &figures)
	after := vmRSS(t, bob.Proc.PID())
	usage, err := bob.Proc.Usage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bob's daemon: RSS %d MiB before the UI, %d MiB after paging back with it (peak %d MiB); browser: %v",
		before>>20, after>>20, usage.PeakRSS>>20, figures)
}

// sendAll sends n messages from d to contact over 8 connections.
func sendAll(ctx context.Context, t *testing.T, d *procnet.Daemon, contact string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				if _, err := d.API.Send(ctx, contact, fmt.Sprintf("message %d of a long conversation", i)); err != nil {
					errs <- fmt.Errorf("send message %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// vmRSS is the resident set size of process pid, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
