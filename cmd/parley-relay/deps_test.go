package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the headless supernode small: it must not pull in the
// desktop client.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/parleynet/parley/app" || strings.HasPrefix(dep, "github.com/parleynet/parley/app/") {
			t.Errorf("parley-relay depends on %s", dep)
		}
	}
	if !strings.Contains(string(out), "github.com/parleynet/parley/relay") {
		t.Fatal("go list output does not contain the relay package; the check is broken")
	}
}
