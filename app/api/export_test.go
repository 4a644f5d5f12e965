package api

import (
	"context"
	"testing"
	"time"
)

// SetKeepaliveForTest makes the event streams of servers started after it
// send keepalive comments every d, until the test ends. Tests that use it
// must not run in parallel with ones that start servers.
func SetKeepaliveForTest(t *testing.T, d time.Duration) {
	old := keepalive
	keepalive = d
	t.Cleanup(func() { keepalive = old })
}

// SetOpenFolderForTest replaces how s opens a folder on the desktop.
func SetOpenFolderForTest(s *Server, f func(ctx context.Context, dir string) error) {
	s.openFolder = f
}
