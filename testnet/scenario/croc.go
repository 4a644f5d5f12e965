package scenario

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/parleynet/parley/testnet/report"
)

// crocPorts is how many ports a croc relay listens on: its base port and
// the transfer ports.
const crocPorts = 4

// crocTransfer sends a file of size random bytes with croc (the binary
// bin) through a croc relay of its own on 127.0.0.1; the sender runs with
// --no-local, so that the data goes through that relay, as parley's
// relayed downloads go through a supernode. It measures the receiver,
// from its start (croc's key exchange included, as a parley download
// includes finding the publisher) to its exit, and compares the file.
func crocTransfer(ctx context.Context, bin, dir string, size int64, timeout time.Duration) report.CrocTransfer {
	t := report.CrocTransfer{Installed: true}
	fail := func(step string, err error) report.CrocTransfer {
		t.Error = fmt.Sprintf("%s: %v", step, err)
		return t
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ports, err := freePorts(crocPorts)
	if err != nil {
		return fail("find ports for the croc relay", err)
	}
	relayAddr := net.JoinHostPort("127.0.0.1", ports[0])
	relay := crocCommand(ctx, bin, dir, "", "relay", "--host", "127.0.0.1", "--ports", strings.Join(ports, ","))
	if err := relay.Start(); err != nil {
		return fail("start the croc relay", err)
	}
	defer relay.Wait()
	defer relay.Process.Kill()
	if !poll(ctx, func() bool {
		c, err := net.Dial("tcp", relayAddr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		return fail("croc relay", fmt.Errorf("not listening on %s", relayAddr))
	}

	data := make([]byte, size)
	rand.Read(data)
	src := filepath.Join(dir, "croc.bin")
	out := filepath.Join(dir, "croc-out")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		return fail("write the file", err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fail("create the download folder", err)
	}
	secret := rand.Text()
	send := crocCommand(ctx, bin, dir, secret, "--yes", "--relay", relayAddr, "send", "--no-local", src)
	if err := send.Start(); err != nil {
		return fail("start croc send", err)
	}
	defer send.Wait()
	defer send.Process.Kill()
	recv := crocCommand(ctx, bin, out, secret, "--yes", "--relay", relayAddr, "--out", out)
	var recvOut bytes.Buffer
	recv.Stdout, recv.Stderr = &recvOut, &recvOut
	start := time.Now()
	if err := recv.Run(); err != nil {
		return fail("croc receive", fmt.Errorf("%w: %s", err, lastLine(recvOut.String())))
	}
	took := time.Since(start)
	t.TookNS, t.MBPerSecond = took.Nanoseconds(), float64(size)/took.Seconds()/1e6
	got, err := os.ReadFile(filepath.Join(out, filepath.Base(src)))
	if err != nil {
		return fail("read the download", err)
	}
	t.Intact = bytes.Equal(got, data)
	return t
}

// crocCommand is croc with args, run in dir, with the transfer's secret
// (croc v10 reads it from CROC_SECRET) and killed when ctx ends.
func crocCommand(ctx context.Context, bin, dir, secret string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CROC_SECRET="+secret)
	return cmd
}

// freePorts finds n TCP ports on 127.0.0.1 that nothing listens on.
func freePorts(n int) ([]string, error) {
	var ports []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	return ports, nil
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
