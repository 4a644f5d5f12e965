package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/parleynet/parley/app/api"
)

func (c *cli) uiCmd() *cobra.Command {
	var printOnly bool
	cmd := c.jsonFlag(&cobra.Command{
		Use:   "ui",
		Short: "Open the web UI of the running daemon in a browser",
		Long: `UI prints the running daemon's sign-in link for its web UI and opens it
in the desktop's browser (xdg-open, or open on macOS) when there is a
desktop. The link carries the daemon's API token: whoever has it can use
the daemon until it restarts, so do not share it. Opening it sets a
session cookie in that browser and leaves the UI at the daemon's address
without the token. It works when pasted into a browser on this machine too.`,
		Example: `  parley ui
  parley ui --print-only
  parley --data /tmp/alice ui --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.call(cmd.Context(), func(ctx context.Context, cl *api.Client) error {
				// A stale api.json names a dead address: check it answers.
				if _, err := cl.Status(ctx); err != nil {
					return fmt.Errorf("reach the daemon: %w", err)
				}
				url := cl.UILoginURL()
				if c.json {
					return c.printJSON(struct {
						URL string `json:"url"`
					}{url})
				}
				fmt.Fprintln(c.out, url)
				if printOnly {
					return nil
				}
				opener := browserOpener()
				if opener == "" {
					fmt.Fprintln(c.errOut, "no desktop browser found: open the link above in a browser on this machine")
					return nil
				}
				if err := startDetached(opener, url); err != nil {
					fmt.Fprintf(c.errOut, "could not open a browser (%v): open the link above in a browser on this machine\n", err)
				}
				return nil
			})
		},
	})
	cmd.Flags().BoolVar(&printOnly, "print-only", false, "print the link without opening a browser")
	return cmd
}

// browserOpener is the program that opens a URL in the desktop's browser,
// or "" where there is none (no desktop session, or no such program).
func browserOpener() string {
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "linux", "freebsd", "openbsd", "netbsd":
		if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
			return ""
		}
	default:
		return ""
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return path
}

// startDetached starts opener on url without waiting for it: some openers
// stay until the browser window closes.
func startDetached(opener, url string) error {
	cmd := exec.Command(opener, url)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", opener, err)
	}
	return cmd.Process.Release()
}
