package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/command"
)

// TestPublishSendsAbsolutePaths: the daemon runs in another folder, so
// PATH and --dir are sent absolute.
func TestPublishSendsAbsolutePaths(t *testing.T) {
	f, _, dir := startFake(t)
	ctx := context.Background()
	want, err := filepath.Abs("slides.pdf")
	if err != nil {
		t.Fatal(err)
	}
	out := mustParley(t, ctx, "", "--data", dir, "publish", "slides.pdf")
	if got := f.lastPublish(); got != want {
		t.Errorf("published %q, want %q", got, want)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "published slides.pdf (40.0 MiB, CID "+fakeCID+")" || !strings.HasPrefix(lines[1], "parley://"+fakeCID+"?") {
		t.Errorf("got\n%s\nwant the name, size and CID, then the link", out)
	}

	wantDir, err := filepath.Abs("down")
	if err != nil {
		t.Fatal(err)
	}
	mustParley(t, ctx, "", "--data", dir, "get", "parley://"+fakeCID, "--dir", "down", "--no-seed", "--detach")
	if got := f.lastGet(); got != (apitype.GetRequest{Link: "parley://" + fakeCID, Dir: wantDir, NoSeed: true}) {
		t.Errorf("got %+v, want --dir %s and --no-seed", got, wantDir)
	}
	mustParley(t, ctx, "", "--data", dir, "get", "--detach", "parley://"+fakeCID)
	if got := f.lastGet(); got.Dir != "" || got.NoSeed {
		t.Errorf("got %+v, want the daemon's downloads folder, seeded", got)
	}
}

func TestTransfersText(t *testing.T) {
	_, _, dir := startFake(t)
	out := mustParley(t, context.Background(), "", "--data", dir, "transfers")
	for _, want := range []string{"ID", "PEERS", "t1", "slides.pdf", "running", "10.0 MiB of 40.0 MiB (25%)", "2.0 MiB/s", "3\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("got\n%s\nwant %q", out, want)
		}
	}
	out = mustParley(t, context.Background(), "", "--data", dir, "pause", "t1")
	if out != "paused t1; resume with: parley resume t1\n" {
		t.Errorf("pause: got %q", out)
	}
}

func transferEvent(seq uint64, t apitype.Transfer) apitype.Event {
	return apitype.Event{Seq: seq, Time: fakeTime, Kind: apitype.EventTransfer, Transfer: &t}
}

// TestGetFollows: get --json prints the transfer at each of its events
// (not those of other transfers) and exits 0 when done, 1 when failed, 0
// on Ctrl-C with the download going on.
func TestGetFollows(t *testing.T) {
	f, _, dir := startFake(t)
	link := "parley://" + fakeCID + "?name=slides.pdf"
	fetching := fakeTransfer()
	fetching.State, fetching.BytesDone, fetching.Rate, fetching.Peers = apitype.TransferRunning, 10<<20, 2<<20, 3
	other := fetching
	other.ID = "t2"
	done := fetching
	done.State, done.BytesDone, done.Path = apitype.TransferDone, 40<<20, "/home/alice/Downloads/slides.pdf"
	failed := fetching
	failed.State, failed.Error = apitype.TransferFailed, "no provider has it\x1b[2J"

	next := func(t *testing.T, w *running, want apitype.Transfer) {
		t.Helper()
		var got apitype.Transfer
		line := w.next(t)
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("got %q: %v", line, err)
		}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}

	// Done: exit 0.
	w := startParley(t, "--data", dir, "get", link, "--json")
	next(t, w, fakeTransfer())
	f.send(t, 0, transferEvent(42, other))
	f.send(t, 0, apitype.Event{Seq: 43, Time: fakeTime, Kind: apitype.EventLogin, Username: "alice"})
	f.send(t, 0, transferEvent(44, fetching))
	next(t, w, fetching)
	f.send(t, 0, transferEvent(45, done))
	next(t, w, done)
	if err := w.wait(t); err != nil {
		t.Errorf("done: got %v, want exit 0", err)
	}
	f.mu.Lock()
	since := f.since[0]
	f.mu.Unlock()
	if since != fakeEventSeq {
		t.Errorf("watched since %d, want Status.EventSeq %d", since, fakeEventSeq)
	}

	// Failed: exit 1 with the daemon's error, made safe.
	w = startParley(t, "get", link, "--data", dir) // not a terminal: JSON lines too
	next(t, w, fakeTransfer())
	f.send(t, 1, transferEvent(46, failed))
	next(t, w, failed)
	err := w.wait(t)
	if code := command.ExitCode(err); code != 1 || !strings.Contains(err.Error(), `no provider has it\x1b[2J; retry with: parley resume t1`) {
		t.Errorf("failed: got %v (exit %d), want exit 1 with the error", err, code)
	}

	// Lost events: the transfer is read again.
	w = startParley(t, "get", link, "--data", dir, "--json")
	next(t, w, fakeTransfer())
	f.send(t, 2, apitype.Event{Seq: 1, Time: fakeTime, Kind: apitype.EventGap})
	next(t, w, fetching) // from Transfers

	// Ctrl-C: the download goes on; exit 0.
	w.stop()
	if err := w.wait(t); err != nil {
		t.Errorf("Ctrl-C: got %v, want exit 0", err)
	}
}

func TestTransferOpsNotFound(t *testing.T) {
	_, _, dir := startFake(t)
	for _, op := range []string{"pause", "resume", "cancel"} {
		_, err := parley(t, context.Background(), "", "--data", dir, op, "unknown")
		if code := command.ExitCode(err); code != command.ExitNotFound || !strings.Contains(err.Error(), "no such transfer") {
			t.Errorf("%s unknown: got %v (exit %d), want exit 3", op, err, code)
		}
	}
}

// TestProgressBar renders the bar a terminal shows: its position and
// numbers are the daemon's.
func TestProgressBar(t *testing.T) {
	tr := fakeTransfer()
	var out bytes.Buffer
	b := newBar(&out, tr)
	tr.State, tr.BytesDone, tr.Rate, tr.Peers = apitype.TransferRunning, 10<<20, 2<<20, 3
	if err := b.update(tr); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{" 25% ", "slides.pdf: 10.0 MiB of 40.0 MiB (25%), 2.0 MiB/s, ETA 15s, 3 peers"} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	tr.State, tr.BytesDone, tr.Path = apitype.TransferDone, 40<<20, "/tmp/slides.pdf"
	if err := b.update(tr); err != nil {
		t.Fatal(err)
	}
	b.stop()
	if got := out.String(); !strings.Contains(got, "100%") || !strings.HasSuffix(got, "\n") {
		t.Errorf("done: got %q, want 100%% and the line ended", got)
	}
}

func TestBarText(t *testing.T) {
	tr := fakeTransfer()
	tr.Name = "a very long name of a file\x1b[2J.pdf"
	if got, want := barText(tr), `a very long name of a f…: finding providers, 0 B of 40.0 MiB (0%)`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestProgressText(t *testing.T) {
	base := fakeTransfer()
	tests := []struct {
		name string
		edit func(*apitype.Transfer)
		want string
	}{
		{"finding providers", func(*apitype.Transfer) {}, "finding providers, 0 B of 40.0 MiB (0%)"},
		{"running", func(t *apitype.Transfer) {
			t.State, t.BytesDone, t.Rate, t.Peers = apitype.TransferRunning, 30<<20, 1<<20, 1
		}, "30.0 MiB of 40.0 MiB (75%), 1.0 MiB/s, ETA 10s, 1 peer"},
		{"running, no rate yet", func(t *apitype.Transfer) { t.State = apitype.TransferRunning }, "0 B of 40.0 MiB (0%), -, 0 peers"},
		{"paused", func(t *apitype.Transfer) { t.State, t.BytesDone = apitype.TransferPaused, 4<<20 }, "paused, 4.0 MiB of 40.0 MiB (10%)"},
		{"failed", func(t *apitype.Transfer) { t.State, t.Error = apitype.TransferFailed, "bad\nchunk" }, `failed: bad\nchunk`},
		{"done", func(t *apitype.Transfer) { t.State, t.BytesDone = apitype.TransferDone, 40<<20 }, "done, 40.0 MiB"},
	}
	for _, tt := range tests {
		tr := base
		tt.edit(&tr)
		if got := progressText(tr); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestWatchTransfers: watch prints a transfer's state changes, and its
// progress at most every few seconds.
func TestWatchTransfers(t *testing.T) {
	tr := fakeTransfer()
	at := func(sec int, state apitype.TransferState, done int64) apitype.Event {
		tr := tr
		tr.State, tr.BytesDone, tr.Rate, tr.Peers = state, done, 1<<20, 2
		return apitype.Event{Kind: apitype.EventTransfer, Time: fakeTime.Add(time.Duration(sec) * time.Second), Transfer: &tr}
	}
	other := at(1, apitype.TransferRunning, 0)
	other.Transfer.ID = "t2"
	events := []struct {
		ev   apitype.Event
		show bool
	}{
		{at(0, apitype.TransferFindingProviders, 0), true},
		{at(1, apitype.TransferRunning, 1<<20), true}, // a state change
		{other, true}, // another transfer
		{at(2, apitype.TransferRunning, 2<<20), false},
		{at(5, apitype.TransferRunning, 5<<20), false},
		{at(6, apitype.TransferRunning, 6<<20), true}, // 5 s after the last line
		{at(7, apitype.TransferPaused, 6<<20), true},
		{at(8, apitype.TransferRunning, 6<<20), true},
		{at(9, apitype.TransferDone, 40<<20), true},
		{apitype.Event{Kind: apitype.EventLogin, Username: "alice"}, true},
	}
	var p transferThrottle
	for i, e := range events {
		if got := p.show(e.ev); got != e.show {
			t.Errorf("event %d (%s at %s): got show %v, want %v", i, e.ev.Kind, e.ev.Time.Format(time.TimeOnly), got, e.show)
		}
	}
	if len(p.last) != 1 {
		t.Errorf("got %d transfers remembered, want only the unfinished t2", len(p.last))
	}
}
