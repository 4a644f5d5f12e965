package datadir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// helperEnv tells the test binary, re-executed, to act as a daemon that
// holds the directory the variable names (see TestHelperProcess).
const helperEnv = "PARLEY_DATADIR_HELPER_DIR"

// TestHelperProcess is not a test: run by startHolder in a child process,
// it opens the directory, says so on standard output, and holds it until
// its standard input closes or it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperEnv)
	if dir == "" {
		t.Skip("helper process for the lock tests")
	}
	d, err := Open(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("holding")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes it
	d.Close()
	os.Exit(0)
}

// startHolder starts a second process that opens dir, and returns once it
// holds it.
func startHolder(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "holding" {
		t.Fatalf("helper process: got %q, %v; want holding", line, err)
	}
	return cmd
}

func TestSecondProcessIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	holder := startHolder(t, dir)
	pid := holder.Process.Pid
	// What the first daemon's API server wrote: a refused second daemon
	// must not touch it.
	info := filepath.Join(dir, APIInfoFile)
	if err := os.WriteFile(info, []byte(`{"addr":"127.0.0.1:1","token":"t"}`), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := Open(dir)
	inUse, ok := errors.AsType[*InUseError](err)
	if !ok {
		t.Fatalf("second Open: got %v, want *InUseError", err)
	}
	if inUse.PID != pid {
		t.Errorf("InUseError.PID: got %d, want the holder's %d", inUse.PID, pid)
	}
	want := fmt.Sprintf("another parley daemon (PID %d) is using %s; stop it (kill %d) or use another --data directory", pid, dir, pid)
	if err.Error() != want {
		t.Errorf("error:\n got %q\nwant %q", err, want)
	}
	if _, err := os.Stat(info); err != nil {
		t.Errorf("%s after the refused Open: %v", APIInfoFile, err)
	}
	if got := readPID(filepath.Join(dir, LockFile)); got != pid {
		t.Errorf("lock file after the refused Open: got PID %d, want the holder's %d", got, pid)
	}
}

func TestLockOfKilledDaemonIsTakenOver(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	holder := startHolder(t, dir)
	if err := holder.Process.Kill(); err != nil { // SIGKILL: no Close, no clean-up
		t.Fatal(err)
	}
	holder.Wait()
	if got := readPID(filepath.Join(dir, LockFile)); got != holder.Process.Pid {
		t.Fatalf("lock file after SIGKILL: got PID %d, want the dead holder's %d", got, holder.Process.Pid)
	}

	d, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	defer d.Close()
	if got := readPID(filepath.Join(dir, LockFile)); got != os.Getpid() {
		t.Errorf("lock file: got PID %d, want ours %d", got, os.Getpid())
	}
}

func TestCloseReleases(t *testing.T) {
	dir := t.TempDir()
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The lock belongs to an open file, not a process: a second Open in
	// this process is refused too.
	if _, err := Open(dir); !isInUse(err) {
		t.Fatalf("second Open in the same process: got %v, want *InUseError", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := readPID(filepath.Join(dir, LockFile)); got != 0 {
		t.Errorf("lock file after Close: got PID %d, want none", got)
	}
	d, err = Open(dir)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	d.Close()
}

func TestInUseErrorWithoutPID(t *testing.T) {
	err := &InUseError{Dir: "/home/bob/my data"}
	if got := err.Error(); !strings.Contains(got, "'/home/bob/my data'") || strings.Contains(got, "PID 0") {
		t.Errorf("got %q, want the quoted directory and no PID", got)
	}
}

func isInUse(err error) bool {
	_, ok := errors.AsType[*InUseError](err)
	return ok
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/bob/.parley": "/home/bob/.parley",
		"./bob":             "./bob",
		"my data":           "'my data'",
		"bob's":             `'bob'\''s'`,
		"":                  "''",
		"$HOME/x":           "'$HOME/x'",
		"~/x":               "'~/x'",
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q): got %s, want %s", in, got, want)
		}
	}
}
