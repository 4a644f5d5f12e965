//go:build unix

package testnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// lockDir takes the network's directory for this process, so that a
// second network on it fails at once instead of sharing its ports (the
// listeners set SO_REUSEPORT) and its databases. The lock goes with the
// process; the returned function releases it earlier.
func lockDir(dir string) (unlock func() error, err error) {
	f, err := os.OpenFile(filepath.Join(dir, "testnet.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the testnet directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another network is running on %s: stop it first, or give another directory", dir)
		}
		return nil, fmt.Errorf("lock the testnet directory: %w", err)
	}
	return f.Close, nil
}
