package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the lookup CLI small: it must not pull in the desktop
// client or the relay service.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/parleynet/parley/app", "github.com/parleynet/parley/relay"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") {
				t.Errorf("parley-dht depends on %s", dep)
			}
		}
	}
	if !strings.Contains(string(out), "github.com/parleynet/parley/dht") {
		t.Fatal("go list output does not contain the dht package; the check is broken")
	}
}
