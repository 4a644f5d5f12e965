package chat

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestHistoryFilesArePrivate checks that the history and SQLite's files
// beside it are 0600 under a umask that lets SQLite's default (0644)
// through, for a new file and for one an older build left 0644.
func TestHistoryFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		existing bool
	}{
		{"new", false},
		{"existing 0644", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.db")
			if tc.existing {
				if err := os.WriteFile(path, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			h, err := OpenHistory(path)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			m := Message{ID: "m1", From: "alice", To: "bob", Sent: time.Now(), Body: "private", State: Queued}
			if _, err := h.Add(ctx, m); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != 0o600 {
					t.Errorf("%s: got mode %v, want 0600", filepath.Base(p), got)
				}
			}
		})
	}
}

// TestHistoryOnServer: a queued message marked on the server shows as
// OnServer, stays in the outbox, leaves Undeposited, and still settles
// Delivered when the recipient acknowledges it.
func TestHistoryOnServer(t *testing.T) {
	ctx := context.Background()
	h, err := OpenHistory(filepath.Join(t.TempDir(), "history.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, id := range []string{"m1", "m2"} {
		if _, err := h.Add(ctx, Message{ID: id, From: "alice", To: "bob", Sent: time.Now(), Body: id, State: Queued}); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := h.MarkOnServer(ctx, "m1"); err != nil || !ok {
		t.Fatalf("mark m1: %v, %v", ok, err)
	}
	if ok, err := h.MarkOnServer(ctx, "m1"); err != nil || ok {
		t.Fatalf("mark m1 again: %v, %v; want false", ok, err)
	}
	und, err := h.Undeposited(ctx, "bob")
	if err != nil || len(und) != 1 || und[0].ID != "m2" {
		t.Fatalf("undeposited: %+v, %v; want m2", und, err)
	}
	out, err := h.Outbox(ctx, "bob")
	if err != nil || len(out) != 2 || out[0].State != Sent || out[1].State != Queued {
		t.Fatalf("outbox: %+v, %v; want m1 sent, m2 queued", out, err)
	}
	if err := h.settle(ctx, "m1", Delivered, "direct", ""); err != nil {
		t.Fatal(err)
	}
	if ok, err := h.FailQueued(ctx, "m2", "gone"); err != nil || !ok {
		t.Fatalf("fail m2: %v, %v", ok, err)
	}
	all, err := h.With(ctx, "bob", 10, "")
	if err != nil || len(all) != 2 || all[0].State != Delivered || all[1].State != Failed || all[1].Error != "gone" {
		t.Fatalf("history: %+v, %v; want m1 delivered, m2 failed", all, err)
	}
	if ok, err := h.MarkOnServer(ctx, "m1"); err != nil || ok {
		t.Fatalf("mark delivered m1: %v, %v; want false", ok, err)
	}
}
