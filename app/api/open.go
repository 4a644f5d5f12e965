package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/xfer"
)

// POST /api/transfers/open {id} shows the folder of a finished download in
// the desktop's file manager (xdg-open on Linux and the BSDs, open on
// macOS, explorer on Windows), run by the daemon as the user. The folder
// is the transfer's, as the daemon knows it: the downloaded folder, or the
// folder holding the downloaded file. No path comes from the request, so
// a page cannot make the daemon open anything else. It answers
// apitype.OpenedFolder, 404 no_such_transfer, 409 transfer_not_done
// (not finished yet), 404 no_such_file (moved or deleted since), or 501
// no_file_manager when the daemon has no desktop to show it on (no
// DISPLAY or WAYLAND_DISPLAY, or no opener program): the UI still shows
// the path to copy.

var (
	// ErrNotDone: the transfer has not finished.
	ErrNotDone = errors.New("the transfer has not finished")
	// ErrNoFileManager: the daemon cannot open a folder on a desktop.
	ErrNoFileManager = errors.New("no file manager to open the folder with")
)

// openTransferFolder opens the folder of c's finished transfer id.
func (s *Server) openTransferFolder(ctx context.Context, c apitype.Client, id string) (apitype.OpenedFolder, error) {
	ts, err := c.Transfers(ctx)
	if err != nil {
		return apitype.OpenedFolder{}, err
	}
	for _, t := range ts {
		if t.ID != id {
			continue
		}
		if t.State != apitype.TransferDone || t.Path == "" {
			return apitype.OpenedFolder{}, fmt.Errorf("%w: %s is %s", ErrNotDone, id, t.State)
		}
		dir := t.Path
		fi, err := os.Stat(dir)
		if err != nil {
			return apitype.OpenedFolder{}, fmt.Errorf("the download at %s: %w", dir, err)
		}
		if !fi.IsDir() {
			dir = filepath.Dir(dir)
		}
		return apitype.OpenedFolder{Path: dir}, s.openFolder(ctx, dir)
	}
	return apitype.OpenedFolder{}, fmt.Errorf("%w: %q", xfer.ErrNoSuchTransfer, id)
}

// fileManager is the program that opens a folder on this desktop, or an
// ErrNoFileManager error that says why there is none.
func fileManager() (string, error) {
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name = "explorer"
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return "", fmt.Errorf("%w: the daemon runs without a desktop session (no DISPLAY or WAYLAND_DISPLAY)", ErrNoFileManager)
		}
	default:
		return "", fmt.Errorf("%w: no file manager is known on %s", ErrNoFileManager, runtime.GOOS)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %s is not installed", ErrNoFileManager, name)
	}
	return path, nil
}

// openerWait is how long openInFileManager waits to see an opener fail.
const openerWait = 3 * time.Second

// openInFileManager runs the desktop's opener on dir (an absolute path,
// so never taken for an option). An opener that fails at once (xdg-open
// finding no file manager) is an error; one still running after
// openerWait is left to finish, and reaped.
func openInFileManager(ctx context.Context, dir string) error {
	opener, err := fileManager()
	if err != nil {
		return fmt.Errorf("%w; the folder is %s", err, dir)
	}
	cmd := exec.Command(opener, dir)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%w: start %s: %v", ErrNoFileManager, filepath.Base(opener), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		// explorer exits 1 even when it opened the window.
		if err != nil && runtime.GOOS != "windows" {
			return fmt.Errorf("%w: %s %s: %v", ErrNoFileManager, filepath.Base(opener), dir, err)
		}
		return nil
	case <-time.After(openerWait):
		return nil
	case <-ctx.Done():
		return nil // the opener goes on; its goroutine reaps it
	}
}
