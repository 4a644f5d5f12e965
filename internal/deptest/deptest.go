// Package deptest checks in tests what a package links, with go list
// -deps, so that a binary or a client library does not grow a dependency
// it must not have (the desktop client, the rendezvous server, argon2).
package deptest

import (
	"os/exec"
	"strings"
	"testing"
)

// RendezvousServer are the packages only the rendezvous server may link:
// the service, its storage and its password hashing.
var RendezvousServer = []string{
	"github.com/parleynet/parley/rendezvous/server/...",
	"github.com/parleynet/parley/rendezvous/store/...",
	"golang.org/x/crypto/argon2",
}

// Check fails t if pkg (a pattern for go list, "." for the package under
// test) depends on a banned package: an import path, or one ending in
// "/..." for that package and every package below it (as go list reads
// patterns). It
// fails as broken if the dependencies do not include mustHave, so a
// check that lists nothing cannot pass.
func Check(t *testing.T, pkg, mustHave string, banned ...string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatalf("go list -deps %s lists nothing; the check is broken", pkg)
	}
	name := deps[len(deps)-1] // the package itself comes last
	found := false
	for _, dep := range deps {
		found = found || dep == mustHave
		for _, b := range banned {
			root, tree := strings.CutSuffix(b, "/...")
			if dep == root || tree && strings.HasPrefix(dep, root+"/") {
				t.Errorf("%s depends on %s", name, dep)
			}
		}
	}
	if !found {
		t.Fatalf("go list -deps %s does not list %s; the check is broken", pkg, mustHave)
	}
}
