// Package procnet runs a Parley network of real processes on loopback, for
// tests and benchmarks that need what an in-process network hides: a
// daemon killed with SIGKILL, its peak memory and CPU time, the speed of
// the binaries users run.
//
// Build compiles parley, parley-rendezvous and parley-relay once per test
// binary; Start runs a rendezvous server (embedded SQLite) and, if asked,
// a parley-relay supernode; AddDaemon runs parley daemon processes, each
// with its own data directory, driven through the daemon's HTTP API
// (app/api.Client). Everything listens on 127.0.0.1 only. Every process is
// killed and every directory removed in the test's Cleanup; a failed
// test prints the tail of each process's log.
//
// A package whose tests use procnet calls RemoveBuilds from its TestMain
// after m.Run, so the compiled binaries do not outlive the test binary.
package procnet

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Binaries are the paths of the compiled commands.
type Binaries struct {
	Parley     string
	Rendezvous string
	Relay      string
}

var build struct {
	once sync.Once
	dir  string
	bins Binaries
	err  error
}

// Build compiles the commands once per process (without -race, whatever
// the test binary was built with: the processes are what is measured, and
// a race-instrumented daemon is several times slower) and returns their
// paths. It fails tb if they cannot be built.
func Build(tb testing.TB) Binaries {
	tb.Helper()
	build.once.Do(func() { build.bins, build.err = compile() })
	if build.err != nil {
		tb.Fatalf("procnet: %v", build.err)
	}
	return build.bins
}

// RemoveBuilds deletes the binaries Build compiled. Call it from TestMain
// after m.Run.
func RemoveBuilds() error {
	if build.dir == "" {
		return nil
	}
	return os.RemoveAll(build.dir)
}

// compile runs go build for the three commands into a new temporary
// directory.
func compile() (Binaries, error) {
	root, err := moduleRoot()
	if err != nil {
		return Binaries{}, err
	}
	if build.dir, err = os.MkdirTemp("", "parley-procnet-bin-"); err != nil {
		return Binaries{}, fmt.Errorf("create the build directory: %w", err)
	}
	cmd := exec.Command("go", "build", "-o", build.dir+string(filepath.Separator),
		"./cmd/parley", "./cmd/parley-rendezvous", "./cmd/parley-relay")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOFLAGS=") // no -race or other flags of the caller's
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build the parley commands: %w\n%s", err, out)
	}
	return Binaries{
		Parley:     filepath.Join(build.dir, "parley"),
		Rendezvous: filepath.Join(build.dir, "parley-rendezvous"),
		Relay:      filepath.Join(build.dir, "parley-relay"),
	}, nil
}

// moduleRoot is the directory of the go.mod of the working directory's
// module (the package directory, under go test).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := string(bytes.TrimSpace(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the parley module (go env GOMOD is %q)", gomod)
	}
	if strings.HasSuffix(gomod, "go.mod") {
		return filepath.Dir(gomod), nil
	}
	return "", fmt.Errorf("go env GOMOD is %q, not a go.mod", gomod)
}
