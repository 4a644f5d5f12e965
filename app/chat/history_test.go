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
