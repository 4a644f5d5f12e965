package natlab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Available reports whether a lab can run on this machine: nil, or an error
// that says what is missing and how to get it.
func Available() error { return available() }

var available = sync.OnceValue(func() error {
	if os.Geteuid() != 0 {
		return errors.New("natlab needs root (network namespaces, veth pairs, iptables): run as root, e.g. sudo -E go test ./testnet/natlab/")
	}
	for _, tool := range []struct{ bin, pkg string }{
		{"ip", "iproute2"},
		{"iptables", "iptables"},
		{"iptables-restore", "iptables"},
	} {
		if _, err := exec.LookPath(tool.bin); err != nil {
			return fmt.Errorf("natlab needs %s: apt-get install -y %s", tool.bin, tool.pkg)
		}
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return fmt.Errorf("natlab needs network namespaces, which this kernel lacks (CONFIG_NET_NS): %w", err)
	}
	if err := tryNewNetns(); err != nil {
		return fmt.Errorf("natlab cannot create a network namespace (a container without CAP_SYS_ADMIN?): %w", err)
	}
	return nil
})

// tryNewNetns creates a network namespace on a throwaway thread and drops it.
func tryNewNetns() error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, now in the new namespace, exits with
		// this goroutine.
		runtime.LockOSThread()
		errc <- unix.Unshare(unix.CLONE_NEWNET)
	}()
	return <-errc
}
