package datadir

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// The modes Open gives the directory and the files in it.
const (
	dirMode  fs.FileMode = 0o700
	fileMode fs.FileMode = 0o600
)

// makePrivate makes dir 0700 and the regular files directly in it 0600.
func makePrivate(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("make data directory private: %w", err)
	}
	if fi.Mode().Perm() != dirMode {
		if err := os.Chmod(dir, dirMode); err != nil {
			return fmt.Errorf("make data directory private: %w; fix it with: chmod 700 %s", err, Quote(dir))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("make data directory private: %w", err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() { // symbolic links are not followed
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(path)
		if err != nil {
			return fmt.Errorf("make %s private: %w", path, err)
		}
		if fi.Mode().Perm() == fileMode {
			continue
		}
		if err := checkOwner(path, "file"); err != nil {
			return err
		}
		if err := os.Chmod(path, fileMode); err != nil {
			return fmt.Errorf("make %s private: %w; fix it with: chmod 600 %s", path, err, Quote(path))
		}
	}
	return nil
}

// checkOwner refuses a path that belongs to another user: this process
// could not make it private, and files it created there would not be the
// owner's.
func checkOwner(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check owner of %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) == os.Geteuid() {
		return nil
	}
	return fmt.Errorf("%s %s belongs to %s, not to you (%s); %s",
		what, path, userName(int(st.Uid)), userName(os.Geteuid()), chownHint(path))
}

// chownHint is the command that gives path, and everything in it, to this
// process's user.
func chownHint(path string) string {
	return fmt.Sprintf("take it over with: sudo chown -R %s %s", Quote(userName(os.Geteuid())), Quote(path))
}

// userName is uid's user name, or the number if it has none.
func userName(uid int) string {
	id := strconv.Itoa(uid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}
