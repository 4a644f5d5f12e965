package labstate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "natlab.json")
	s := State{PID: os.Getpid(), Lab: "pl123456", Bin: "/bin-dir", Hosts: []Host{
		{Name: "alice", Role: "cone", Namespace: "pl123456-alice", Data: "/lab/alice"},
		{Name: "rendezvous", Role: "rendezvous", Namespace: "pl123456-rendezvous"},
	}}
	if err := Write(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Lab != s.Lab || len(got.Hosts) != 2 {
		t.Errorf("read %+v", got)
	}
	alice, err := got.Host("alice")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ args, want []string }{
		{[]string{"parley", "status"}, []string{"ip", "netns", "exec", "pl123456-alice", "/bin-dir/parley", "--data", "/lab/alice", "status"}},
		{[]string{"parley", "--data=/x", "status"}, []string{"ip", "netns", "exec", "pl123456-alice", "/bin-dir/parley", "--data=/x", "status"}},
		{[]string{"ip", "addr"}, []string{"ip", "netns", "exec", "pl123456-alice", "ip", "addr"}},
	}
	for _, tt := range tests {
		if got := got.Command(alice, tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("Command(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
	if _, err := got.Host("mallory"); err == nil || !strings.Contains(err.Error(), "alice, rendezvous") {
		t.Errorf("unknown host: %v", err)
	}
}

func TestReadNoLab(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "none.json")); !errors.Is(err, ErrNoLab) {
		t.Errorf("missing file: %v, want ErrNoLab", err)
	}
	path := filepath.Join(dir, "stale.json")
	if err := Write(path, State{PID: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	stale, err := Read(path)
	if !errors.Is(err, ErrNoLab) {
		t.Errorf("dead owner: %v, want ErrNoLab", err)
	}
	stale.Bin, stale.Dir, stale.OwnDir = filepath.Join(dir, "bin"), filepath.Join(dir, "lab"), true
	for _, d := range []string{stale.Bin, stale.Dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemoveLeftovers(path, stale); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{stale.Bin, stale.Dir, path} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is left: %v", p, err)
		}
	}
	if err := Write(path, State{PID: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil || errors.Is(err, ErrNoLab) {
		t.Errorf("malformed: %v, want a parse error", err)
	}
}
