package natlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ownerDir holds one file per lab, named by the lab's ID, with the PID and
// start time of the process that owns it. It is written before the lab
// makes anything and removed after everything is gone, so a lab without a
// live owner is a leftover.
const ownerDir = "/run/parley-natlab"

// labNamePattern matches the names of everything a lab makes: namespaces,
// interfaces and owner files. Submatch 1 is the lab ID.
var labNamePattern = regexp.MustCompile(`^(pl[0-9a-f]{6})(-|$)`)

// newLabID picks an ID no other lab on this machine uses and records this
// process as its owner.
func newLabID() (string, error) {
	if err := os.MkdirAll(ownerDir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", ownerDir, err)
	}
	start, err := processStart(os.Getpid())
	if err != nil {
		return "", err
	}
	for range 10 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("lab ID: %w", err)
		}
		id := "pl" + hex.EncodeToString(b[:])
		f, err := os.OpenFile(filepath.Join(ownerDir, id), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("record lab owner: %w", err)
		}
		_, werr := fmt.Fprintf(f, "%d %d\n", os.Getpid(), start)
		if err := errors.Join(werr, f.Close()); err != nil {
			os.Remove(f.Name())
			return "", fmt.Errorf("record lab owner: %w", err)
		}
		return id, nil
	}
	return "", errors.New("lab ID: no free ID after 10 tries")
}

// removeOwner forgets a lab whose resources are all gone.
func removeOwner(id string) error {
	if err := os.Remove(filepath.Join(ownerDir, id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove lab owner record: %w", err)
	}
	return nil
}

// processStart is a process's start time in clock ticks since boot, which
// tells a live owner from a new process that reuses its PID.
func processStart(pid int) (uint64, error) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may contain spaces, in parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(stat[i+1:]))
	// Field 22 of stat is starttime; fields[0] here is field 3 (state).
	if len(fields) < 20 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields))
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// ownerAlive reports whether the process recorded as the lab's owner still
// runs. A lab without a record is dead: New writes the record first.
func ownerAlive(id string) bool {
	b, err := os.ReadFile(filepath.Join(ownerDir, id))
	if err != nil {
		return false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(b), "%d %d", &pid, &start); err != nil {
		return false
	}
	got, err := processStart(pid)
	return err == nil && got == start && !zombie(pid)
}

// Sweep removes what labs whose owning process is gone left behind: it
// kills the processes in their namespaces, deletes the namespaces (and with
// them their interfaces and queues) and any of their interfaces in the root
// namespace, and forgets them. Labs of live processes are not touched. New
// calls Sweep.
func Sweep() error {
	leftovers := map[string][]string{} // lab ID → its namespaces
	if entries, err := os.ReadDir(netnsDir); err == nil {
		for _, e := range entries {
			if m := labNamePattern.FindStringSubmatch(e.Name()); m != nil {
				leftovers[m[1]] = append(leftovers[m[1]], e.Name())
			}
		}
	}
	if entries, err := os.ReadDir(ownerDir); err == nil {
		for _, e := range entries {
			if m := labNamePattern.FindStringSubmatch(e.Name()); m != nil && m[0] == e.Name() {
				if _, ok := leftovers[m[1]]; !ok {
					leftovers[m[1]] = nil
				}
			}
		}
	}
	rootLinks := map[string][]string{}
	if ifaces, err := net.Interfaces(); err == nil {
		for _, ifc := range ifaces {
			if m := labNamePattern.FindStringSubmatch(ifc.Name); m != nil {
				rootLinks[m[1]] = append(rootLinks[m[1]], ifc.Name)
				if _, ok := leftovers[m[1]]; !ok {
					leftovers[m[1]] = nil
				}
			}
		}
	}
	var errs []error
	for id, names := range leftovers {
		if ownerAlive(id) {
			continue
		}
		log.Infow("removing leftovers of a dead lab", "lab", id, "namespaces", names)
		for _, name := range names {
			errs = append(errs, newNetnsHandle(name).destroy())
		}
		errs = append(errs, deleteRootLinks(rootLinks[id]))
		errs = append(errs, removeOwner(id))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep leftover labs: %w", err)
	}
	return nil
}

// deleteRootLinks deletes interfaces in the root namespace (a lab never
// leaves any there, but a crash between creating and moving one could).
func deleteRootLinks(names []string) error {
	var errs []error
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, "ip", "link", "del", name).CombinedOutput()
		cancel()
		if err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			errs = append(errs, fmt.Errorf("ip link del %s: %w: %s", name, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}
