// Package labstate is the state file `parley-testnet natlab up` leaves
// while its lab runs, so that `parley-testnet natlab exec` in another
// shell finds each host's network namespace and data directory.
package labstate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/parleynet/parley/internal/atomicfile"
)

// DefaultPath is where natlab up writes the state and natlab exec reads
// it.
const DefaultPath = "/run/parley-testnet/natlab.json"

// State is a running lab.
type State struct {
	// PID is the process of natlab up that owns the lab.
	PID int `json:"pid"`
	// Lab is the lab's ID (the prefix of its namespaces) and Dir its
	// directory (logs and data).
	Lab string `json:"lab"`
	Dir string `json:"dir"`
	// OwnDir: Dir is temporary, to be removed with the lab.
	OwnDir bool `json:"own_dir"`
	// Bin holds the lab's parley binaries.
	Bin        string `json:"bin"`
	Rendezvous string `json:"rendezvous"` // its multiaddr
	Hosts      []Host `json:"hosts"`
}

// Host is one host of the lab.
type Host struct {
	Name      string `json:"name"`
	Role      string `json:"role"` // rendezvous, supernode, or the client's kind: cone, symmetric, public
	Namespace string `json:"namespace"`
	IP        string `json:"ip"`
	PublicIP  string `json:"public_ip"`
	// Data is a client's data directory (parley --data); empty for
	// servers.
	Data string `json:"data,omitempty"`
}

// Write writes s to path atomically.
func Write(path string, s State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create the lab state directory: %w", err)
	}
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(data, '\n')); err != nil {
		return fmt.Errorf("write the lab state: %w", err)
	}
	return nil
}

// ErrNoLab is Read's error when no lab runs.
var ErrNoLab = errors.New("no NAT lab is running (start one with: sudo parley-testnet natlab up)")

// Read reads the state at path, of a lab whose owner still runs. When
// the owner is gone, the error is ErrNoLab and the state is returned
// too, for RemoveLeftovers.
func Read(path string) (State, error) {
	var s State
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, ErrNoLab
	}
	if err != nil {
		return s, fmt.Errorf("read the lab state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("read the lab state %s: %w", path, err)
	}
	if !alive(s.PID) {
		return s, fmt.Errorf("%w: %s is left from process %d, which is gone", ErrNoLab, path, s.PID)
	}
	return s, nil
}

// RemoveLeftovers removes what the owner of s, which died, left outside
// the namespaces (natlab's Sweep removes those): its binaries, its
// temporary directory and the state file at path.
func RemoveLeftovers(path string, s State) error {
	var errs []error
	if s.Bin != "" {
		errs = append(errs, os.RemoveAll(s.Bin))
	}
	if s.OwnDir && s.Dir != "" {
		errs = append(errs, os.RemoveAll(s.Dir))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the leftovers of the lab of process %d: %w", s.PID, err)
	}
	return nil
}

// alive reports whether process pid exists and is not a zombie (killed,
// not yet reaped).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust the signal
	}
	i := bytes.LastIndex(stat, []byte(") ")) // the name may hold ") "
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// Host is the host named name.
func (s State) Host(name string) (Host, error) {
	i := slices.IndexFunc(s.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		names := make([]string, len(s.Hosts))
		for j, h := range s.Hosts {
			names[j] = h.Name
		}
		return Host{}, fmt.Errorf("no host %q in the lab: it has %s", name, strings.Join(names, ", "))
	}
	return s.Hosts[i], nil
}

// Command is the command line that runs args in h's namespace with `ip
// netns exec`. A command named parley runs the lab's own parley binary
// and, on a client, gets --data of the client unless args give one.
func (s State) Command(h Host, args []string) []string {
	out := []string{"ip", "netns", "exec", h.Namespace}
	if len(args) > 0 && args[0] == "parley" {
		rest := args[1:]
		args = []string{filepath.Join(s.Bin, "parley")}
		if h.Data != "" && !slices.ContainsFunc(rest, func(a string) bool { return a == "--data" || strings.HasPrefix(a, "--data=") }) {
			args = append(args, "--data", h.Data)
		}
		args = append(args, rest...)
	}
	return append(out, args...)
}
