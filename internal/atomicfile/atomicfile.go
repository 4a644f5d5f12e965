// Package atomicfile writes small files that readers see whole or not at
// all: a key's sequence number, a list of supernodes, the local API's
// address.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces the file at path with data, readable by the owner only
// (mode 0600): through a temporary file in the same directory, synced
// and renamed over path, so that a crash leaves the old file or the new
// one.
func Write(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
