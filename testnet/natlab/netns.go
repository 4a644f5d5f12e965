package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` keeps its named namespaces.
const netnsDir = "/run/netns"

// netns is one named network namespace of a lab.
type netns struct {
	name string // as `ip netns list` shows it
	path string // its nsfs file, netnsDir/name
}

func newNetnsHandle(name string) *netns {
	return &netns{name: name, path: filepath.Join(netnsDir, name)}
}

// createNetns creates a named namespace with `ip netns add`, which also sets
// up the shared mount of netnsDir that keeps named namespaces visible to
// every mount namespace.
func createNetns(ctx context.Context, name string) (*netns, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return newNetnsHandle(name), nil
}

// do runs fn on an OS thread whose network namespace is n, so that sockets
// fn creates, processes it starts and /proc/sys/net files it opens belong
// to n. fn must create its sockets itself, not in goroutines it starts.
//
// The thread returns to the caller's namespace afterwards; if it cannot,
// it stays locked and exits with its goroutine rather than carry n into
// unrelated goroutines.
func (n *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(n.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", n.name, err)
			return
		}
		err = unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", n.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime ends this thread with the goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", n.name, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// start starts cmd inside n in its own process group, killed if the lab's
// process dies (Pdeathsig).
//
// Pdeathsig fires when the thread that forked the child exits, not the
// process; do returns its thread to the pool, where the runtime keeps it
// for the life of the process.
func (n *netns) start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	// A session leader (Setsid) already leads its own group.
	cmd.SysProcAttr.Setpgid = !cmd.SysProcAttr.Setsid
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	return n.do(cmd.Start)
}

// command prepares a command to run to completion, with its combined
// output in out; stdin, when not empty, is its standard input. Ending ctx
// kills its process group.
func command(ctx context.Context, stdin string, bin string, args ...string) (cmd *exec.Cmd, out *bytes.Buffer) {
	cmd = exec.CommandContext(ctx, bin, args...)
	out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	return cmd, out
}

// run runs a command to completion inside n and returns its combined
// output. It is for the lab's own commands; users' go through Lab.startIn.
func (n *netns) run(ctx context.Context, stdin string, bin string, args ...string) ([]byte, error) {
	cmd, out := command(ctx, stdin, bin, args...)
	if err := n.start(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// ip runs `ip -n <n> -batch -` with one command per line of batch.
func (n *netns) ip(ctx context.Context, batch string) error {
	cmd := exec.CommandContext(ctx, "ip", "-n", n.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -n %s: %w: %s\nbatch:\n%s", n.name, err, bytes.TrimSpace(out), batch)
	}
	return nil
}

// iptablesRestore loads rules (iptables-restore format) into n; noflush
// keeps the tables' other rules (a chain declared in rules is still
// emptied first).
func (n *netns) iptablesRestore(ctx context.Context, rules string, noflush bool) error {
	args := []string{"-w"}
	if noflush {
		args = append(args, "--noflush")
	}
	if out, err := n.run(ctx, rules, "iptables-restore", args...); err != nil {
		return fmt.Errorf("iptables-restore in %s: %w: %s\nrules:\n%s", n.name, err, bytes.TrimSpace(out), rules)
	}
	return nil
}

// sysctl writes value to /proc/sys/<key> (key as a path: net/ipv4/ip_forward)
// from inside n; missing keys are an error unless optional.
func (n *netns) sysctl(key, value string, optional bool) error {
	return n.do(func() error {
		err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0)
		if err != nil && optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, n.name, err)
		}
		return nil
	})
}

// inode identifies n's namespace; os.ErrNotExist once it is deleted.
func (n *netns) inode() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(n.path, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: n.path, Err: err}
	}
	return st.Ino, nil
}

// pidsInNetns lists the processes whose network namespace has inode ino,
// never this process.
func pidsInNetns(ino uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := "net:[" + strconv.FormatUint(ino, 10) + "]"
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if link, err := os.Readlink("/proc/" + e.Name() + "/ns/net"); err == nil && link == want {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killAll sends SIGKILL to every process in n until none is left (a process
// may fork while it is being killed) or two seconds have passed. It reports
// how many processes it killed.
func (n *netns) killAll() (int, error) {
	ino, err := n.inode()
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	killed := map[int]bool{}
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids := pidsInNetns(ino)
		alive := 0
		for _, pid := range pids {
			if zombie(pid) {
				continue
			}
			alive++
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed[pid] = true
			}
		}
		if alive == 0 {
			return len(killed), nil
		}
		if time.Now().After(deadline) {
			return len(killed), fmt.Errorf("processes %v in namespace %s survive SIGKILL", pids, n.name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zombie reports whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // gone
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}

// remove deletes the namespace's name as `ip netns del` does (detach the
// bind mount, remove the file); the namespace itself, with its interfaces,
// goes away once no process or socket uses it. A namespace that is already
// gone is not an error.
func (n *netns) remove() error {
	if err := unix.Unmount(n.path, unix.MNT_DETACH); err != nil && err != unix.ENOENT && err != unix.EINVAL {
		return fmt.Errorf("unmount %s: %w", n.path, err)
	}
	if err := os.Remove(n.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove namespace %s: %w", n.name, err)
	}
	return nil
}

// destroy kills every process in n and removes it.
func (n *netns) destroy() error {
	killed, kerr := n.killAll()
	if killed > 0 {
		log.Debugw("killed processes left in namespace", "netns", n.name, "count", killed)
	}
	return errors.Join(kerr, n.remove())
}

// execCombined runs a command in the root namespace and returns its
// trimmed combined output.
func execCombined(ctx context.Context, bin string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	return bytes.TrimSpace(out), err
}
