package procnet

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// crocInstall is how to get the croc the benchmarks compare with.
const crocInstall = "GOFLAGS= go install github.com/schollz/croc/v10@v10.7.0"

var crocMissing sync.Once

// crocBinary is croc's path; it skips b when croc is not on PATH.
func crocBinary(b *testing.B) string {
	b.Helper()
	bin, err := exec.LookPath("croc")
	if err != nil {
		// go test prints no skip message of a benchmark: say it once.
		crocMissing.Do(func() { fmt.Fprintf(os.Stderr, "procnet: croc is not on PATH; install it with: %s\n", crocInstall) })
		b.Skipf("croc is not on PATH; install it with: %s", crocInstall)
	}
	return bin
}

// crocRelay is a croc relay on loopback.
type crocRelay struct {
	bin  string
	dir  string
	addr string // the relay's first port, as the clients' --relay
	proc *Proc
	sent int // sends so far, numbering their logs
}

// startCrocRelay starts croc relay on 127.0.0.1 with five free ports and
// waits until it accepts connections.
func startCrocRelay(ctx context.Context, b *testing.B, bin string) *crocRelay {
	b.Helper()
	ports, err := freePorts(5)
	if err != nil {
		b.Fatal(err)
	}
	list := make([]string, len(ports))
	for i, p := range ports {
		list[i] = strconv.Itoa(p)
	}
	r := &crocRelay{bin: bin, dir: b.TempDir(), addr: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	if r.proc, err = startProc(b, "croc-relay", filepath.Join(r.dir, "croc-relay.log"), bin, nil,
		"relay", "--host", "127.0.0.1", "--ports", strings.Join(list, ",")); err != nil {
		b.Fatal(err)
	}
	for {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err == nil {
			c.Close()
			return r
		}
		select {
		case <-ctx.Done():
			b.Fatalf("croc relay does not accept connections on %s: %v", r.addr, ctx.Err())
		case <-r.proc.Exited():
			b.Fatalf("croc relay exited: %v\n%s", r.proc.err, tail(r.proc.Log, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freePorts are n TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// send has croc send src (a file or folder) through the relay to a croc
// receiving into out. The run is measured from the receiver's start to
// its exit (croc has verified the data then), as parley get is measured
// on content already published; prep is the sender's time from its start
// to "Code is:" (it hashes what it sends first). Both processes get the same
// secret in CROC_SECRET, as croc v10 wants on Linux.
func (r *crocRelay) send(ctx context.Context, b *testing.B, src, out string, size int64) run {
	b.Helper()
	secret := "parley-bench-" + rand.Text()[:12]
	r.sent++ // a log of its own per send: awaitInLog must not see an earlier one
	env := []string{"CROC_SECRET=" + secret}
	prepared := time.Now()
	sender, err := startProc(b, "croc-send", filepath.Join(r.dir, fmt.Sprintf("croc-send-%d.log", r.sent)), r.bin, env,
		"--relay", r.addr, "--no-compress", "--yes", "send", "--no-local", "--code", secret, src)
	if err != nil {
		b.Fatal(err)
	}
	if err := awaitInLog(ctx, sender, "Code is:"); err != nil {
		b.Fatal(err)
	}
	// The sender joins the relay's room right after; a receiver that came
	// first would take the sender's place.
	time.Sleep(500 * time.Millisecond)
	prep := time.Since(prepared) - 500*time.Millisecond
	b.Logf("croc sender ready in %s (its hashing)", prep.Round(time.Millisecond))
	relayBefore, err := r.proc.Usage()
	if err != nil {
		b.Fatal(err)
	}
	senderBefore, err := sender.Usage()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	receiver, err := startProc(b, "croc-receive", filepath.Join(r.dir, fmt.Sprintf("croc-receive-%d.log", r.sent)), r.bin, env,
		"--relay", r.addr, "--yes", "--overwrite", "--out", out)
	if err != nil {
		b.Fatal(err)
	}
	if err := receiver.Wait(ctx); err != nil {
		b.Fatalf("croc receive: %v\n%s", err, tail(receiver.Log, 20))
	}
	elapsed := time.Since(start)
	if err := sender.Wait(ctx); err != nil {
		b.Fatalf("croc send: %v\n%s", err, tail(sender.Log, 20))
	}
	relayAfter, err := r.proc.Usage()
	if err != nil {
		b.Fatal(err)
	}
	su, _ := sender.Usage()
	ru, _ := receiver.Usage()
	return run{bytes: size, elapsed: elapsed, prep: prep, cpu: su.CPU - senderBefore.CPU + ru.CPU, relayCPU: relayAfter.CPU - relayBefore.CPU,
		senderRSS: su.PeakRSS, receiverRSS: ru.PeakRSS}
}

// awaitInLog waits until p's log holds s.
func awaitInLog(ctx context.Context, p *Proc, s string) error {
	for {
		data, err := os.ReadFile(p.Log)
		if err != nil {
			return fmt.Errorf("read the log of %s: %w", p.Name, err)
		}
		if strings.Contains(string(data), s) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to print %q: %w", p.Name, s, ctx.Err())
		case <-p.Exited():
			return fmt.Errorf("%s exited before it printed %q: %v\n%s", p.Name, s, p.err, tail(p.Log, 20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
