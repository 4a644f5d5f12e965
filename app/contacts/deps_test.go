package contacts

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the book pure state: it must not link a libp2p host, the
// node or anything of the engine's.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/libp2p/go-libp2p",
			strings.HasPrefix(dep, "github.com/libp2p/go-libp2p/p2p/"),
			dep == "github.com/parleynet/parley/node",
			dep == "github.com/parleynet/parley/app":
			t.Errorf("package contacts depends on %s", dep)
		}
	}
	if !strings.Contains(string(out), "github.com/parleynet/parley/rendezvous/client") {
		t.Fatal("go list output does not contain the rendezvous client; the check is broken")
	}
}
