package datadir_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/datadir"
)

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// TestOpenMakesPrivate starts from what a user had: a data directory
// made 0755 with the chat history and its -wal file left 0644.
func TestOpenMakesPrivate(t *testing.T) {
	old := syscall.Umask(0o022) // a usual umask, which lets 0644 through
	t.Cleanup(func() { syscall.Umask(old) })
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{datadir.HistoryFile + "-wal", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("chat text"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symbolic link to a file outside: Open must not chmod the target.
	outside := filepath.Join(t.TempDir(), "shared.txt")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	d, err := datadir.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("directory: got %v, want 0700", got)
	}
	for _, name := range []string{datadir.HistoryFile + "-wal", "notes.txt", datadir.LockFile} {
		if got := mode(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("%s: got %v, want 0600", name, got)
		}
	}
	if got := mode(t, outside); got != 0o644 {
		t.Errorf("target of a symbolic link: got %v, want it left 0644", got)
	}

	// Files the daemon creates after Open are private too.
	os.Remove(filepath.Join(dir, datadir.HistoryFile+"-wal"))
	path := filepath.Join(dir, datadir.HistoryFile)
	h, err := chat.OpenHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	m := chat.Message{ID: "m1", From: "alice", To: "bob", Sent: time.Now(), Body: "secret", State: chat.Queued}
	if _, err := h.Add(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := d.SaveSettings(datadir.Settings{Rendezvous: "/ip4/127.0.0.1/tcp/1"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{datadir.HistoryFile, datadir.HistoryFile + "-wal", datadir.HistoryFile + "-shm", datadir.SettingsFile} {
		if got := mode(t, filepath.Join(dir, name)); got != 0o600 {
			t.Errorf("%s created after Open: got %v, want 0600", name, got)
		}
	}
}

// TestOpenRefusesWhatItCannotFix needs root, to give the directory or a
// file in it to another user.
func TestOpenRefusesWhatItCannotFix(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	const nobody = 65534
	t.Run("directory of another user", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		_, err := datadir.Open(dir)
		if err == nil || !strings.Contains(err.Error(), "sudo chown -R root "+dir) {
			t.Fatalf("got %v, want a refusal with the chown command", err)
		}
		if _, err := os.Stat(filepath.Join(dir, datadir.LockFile)); !os.IsNotExist(err) {
			t.Errorf("lock file created in a refused directory: %v", err)
		}
	})
	t.Run("file of another user", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, datadir.IdentityFile)
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(file, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		_, err := datadir.Open(dir)
		if err == nil || !strings.Contains(err.Error(), "sudo chown -R root "+file) {
			t.Fatalf("got %v, want a refusal with the chown command", err)
		}
		// Once fixed, Open succeeds: the refusal released the lock.
		if err := os.Chown(file, 0, 0); err != nil {
			t.Fatal(err)
		}
		d, err := datadir.Open(dir)
		if err != nil {
			t.Fatalf("Open after the fix: %v", err)
		}
		d.Close()
		if got := mode(t, file); got != 0o600 {
			t.Errorf("file after the fix: got %v, want 0600", got)
		}
	})
}
