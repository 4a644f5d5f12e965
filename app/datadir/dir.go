package datadir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Dir is a data directory held by this process: while it is open, no
// other daemon can open it.
type Dir struct {
	path string
	lock *os.File

	closeOnce sync.Once
	closeErr  error
}

// InUseError is Open's error when another daemon holds the directory.
type InUseError struct {
	Dir string
	PID int // the holder's PID; 0 if it has not written it yet
}

func (e *InUseError) Error() string {
	dir := Quote(e.Dir)
	if e.PID == 0 {
		return fmt.Sprintf("another parley daemon is using %s (it is starting and has not written its PID to %s yet); stop it or use another --data directory",
			dir, LockFile)
	}
	return fmt.Sprintf("another parley daemon (PID %d) is using %s; stop it (kill %d) or use another --data directory", e.PID, dir, e.PID)
}

// Open creates the directory at path if needed, locks it for this process
// and makes it private (see the package documentation). It fails with an
// *InUseError if another daemon holds it. Close releases it.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", path, err)
	}
	if err := checkOwner(path, "data directory"); err != nil {
		return nil, err
	}
	lock, err := lockDir(path)
	if err != nil {
		return nil, err
	}
	d := &Dir{path: path, lock: lock}
	if err := makePrivate(path); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// lockDir takes the directory's lock and writes this process's PID into
// the lock file.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("open lock file: %w; %s", err, chownHint(dir))
		}
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &InUseError{Dir: dir, PID: readPID(path)}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write PID to %s: %w", path, err)
	}
	if _, err := f.WriteAt(pid, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write PID to %s: %w", path, err)
	}
	return f, nil
}

// readPID reads the PID the lock's holder wrote, or 0.
func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Path is the directory's path, as given to Open.
func (d *Dir) Path() string { return d.path }

// Close releases the directory. It leaves the lock file in place, empty.
func (d *Dir) Close() error {
	d.closeOnce.Do(func() {
		// Emptied while still locked, so that no one reads a PID that
		// is not running; the next holder writes its own.
		err := d.lock.Truncate(0)
		d.closeErr = errors.Join(err, d.lock.Close()) // closing drops the flock
	})
	return d.closeErr
}

// Quote writes s as one word of a POSIX shell command, for the commands
// that errors tell the user to run.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
