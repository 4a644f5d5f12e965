package natlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/tstest"
)

// TestCloseRemovesEverything: Close kills every process, also those that
// left their process group, removes every namespace (and with them links
// and queues), leaves no socket of this process in the lab and no
// goroutine, and can be called again.
func TestCloseRemovesEverything(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	goroutines := runtime.NumGoroutine()
	dir := t.TempDir()
	l, err := New(testContext(t, time.Minute), Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			l.Close()
		}
	}()
	a := must(l.AddPublicHost("a", 10*time.Millisecond))(t) // starts the delay queue
	nat := must(l.AddNAT("nat", Cone, 5*time.Millisecond))(t)
	h := must(nat.AddHost("h"))(t)
	ctx := testContext(t, 10*time.Second)

	p := must(h.Start(ctx, "daemon", "/bin/sh", "-c", "echo up; sleep 30"))(t)
	if _, err := p.WaitOutput(ctx, regexp.MustCompile(`up`)); err != nil {
		t.Fatal(err)
	}
	// A process that escaped its group and session, as daemons do.
	out, err := a.Run(ctx, "/bin/sh", "-c", "setsid sleep 30 >/dev/null 2>&1 < /dev/null & echo $!")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	escaped, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	// Sockets of this process in the lab.
	ln := must(h.Listen("tcp", "127.0.0.1:0"))(t)
	defer ln.Close()
	apc := must(a.ListenPacket("udp4", ":7000"))(t)
	defer apc.Close()
	pc := must(h.ListenPacket("udp4", ":0"))(t)
	defer pc.Close()
	pingPong(t, pc, apc, netip.AddrPortFrom(a.IP, 7000))

	inodes := labInodes(t, l.ID)
	if len(inodes) != 4 {
		t.Fatalf("lab namespaces: got %v, want inet, a, nat and h", inodes)
	}
	if !alive(escaped) {
		t.Fatalf("escaped process %d is not running", escaped)
	}
	// The test's own sockets are the test's to close.
	ln.Close()
	pc.Close()
	apc.Close()

	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	closed = true
	assertNoTrace(t, l.ID)
	if alive(p.Pid()) || alive(escaped) {
		t.Errorf("processes survived Close: daemon %v, escaped %v", alive(p.Pid()), alive(escaped))
	}
	for ino := range socketNamespaces(t) {
		if name, ok := inodes[ino]; ok {
			t.Errorf("this process still has a socket in %s", name)
		}
	}
	if _, err := os.Stat(p.LogPath()); err != nil {
		t.Errorf("log of a lab with its own Dir: %v", err)
	}
	if err := tstest.Poll(testContext(t, 2*time.Second), func() error {
		if n := runtime.NumGoroutine(); n > goroutines {
			return fmt.Errorf("goroutines: %d before the lab, %d after Close", goroutines, n)
		}
		return nil
	}); err != nil {
		buf := make([]byte, 1<<20)
		t.Errorf("%v:\n%s", err, buf[:runtime.Stack(buf, true)])
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := l.AddPublicHost("late", 0); !errors.Is(err, ErrClosed) {
		t.Errorf("AddPublicHost after Close: got %v, want ErrClosed", err)
	}
	if _, err := h.Start(ctx, "late", "/bin/true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: got %v, want ErrClosed", err)
	}
	if _, err := h.Run(ctx, "/bin/true"); !errors.Is(err, ErrClosed) {
		t.Errorf("Run after Close: got %v, want ErrClosed", err)
	}
}

// TestFailedConstructionLeavesNothing: a lab, or a node, whose
// construction fails halfway is removed.
func TestFailedConstructionLeavesNothing(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { testHookStep = nil })

	for _, step := range []string{"internet namespace", "internet configured"} {
		var id string
		testHookStep = func(l *Lab, s string) error {
			id = l.ID
			if s == step {
				return errors.New("injected failure")
			}
			return nil
		}
		_, err := New(testContext(t, time.Minute), Config{})
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("New failing at %q: got %v", step, err)
		}
		if id == "" {
			t.Fatalf("step %q was never reached", step)
		}
		assertNoTrace(t, id)
	}

	// A node failing halfway leaves the lab as it was, name free again.
	testHookStep = nil
	l := NewForTest(t, Config{})
	a := must(l.AddPublicHost("a", 0))(t)
	udp := udpObserver(t, a, 7000)
	for _, step := range []string{"public host attached", "NAT attached", "NAT rules"} {
		testHookStep = func(_ *Lab, s string) error {
			if s == step {
				return errors.New("injected failure")
			}
			return nil
		}
		var err error
		if step == "public host attached" {
			_, err = l.AddPublicHost("b", 20*time.Millisecond)
		} else {
			_, err = l.AddNAT("b", Symmetric, 20*time.Millisecond)
		}
		testHookStep = nil
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("failing at %q: got %v", step, err)
		}
		if list := netnsList(t); strings.Contains(list, l.ID+"-b") {
			t.Errorf("after failing at %q, namespace left:\n%s", step, list)
		}
		out := must(l.RunInternet(testContext(t, 5*time.Second), "ip", "-o", "link"))(t)
		if n := strings.Count(string(out), l.ID+"-i"); n != 1 {
			t.Errorf("after failing at %q, internet has %d links, want a's only:\n%s", step, n, out)
		}
		out = must(l.RunInternet(testContext(t, 5*time.Second), "iptables", "-w", "-S", delayChain))(t)
		if strings.Contains(string(out), "NFQUEUE") {
			t.Errorf("after failing at %q, delay rules left:\n%s", step, out)
		}
	}
	nat := must(l.AddNAT("b", Cone, 0))(t)
	h := must(nat.AddHost("h"))(t)
	pc := must(h.ListenPacket("udp4", ":0"))(t)
	defer pc.Close()
	if got := udpAsk(t, pc, udp, "still works"); got.Addr() != nat.PublicIP {
		t.Errorf("a saw %s, want the NAT's %s", got, nat.PublicIP)
	}
}

// deadLabEnv makes the test binary, run by TestSweepRemovesDeadLab, build a
// lab, report it on stdout and wait to be killed.
const deadLabEnv = "NATLAB_TEST_DEAD_LAB_DIR"

// TestSweepRemovesDeadLab: the leftovers of a lab whose process was killed
// (namespaces, and a process in them that outlived its parent) are
// removed by Sweep.
func TestSweepRemovesDeadLab(t *testing.T) {
	if dir := os.Getenv(deadLabEnv); dir != "" {
		buildDeadLab(dir)
		return
	}
	if err := Available(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepRemovesDeadLab$", "-test.count=1")
	cmd.Env = append(os.Environ(), deadLabEnv+"="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var id string
	var orphan int
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	timeout := time.After(30 * time.Second)
	for id == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("helper exited: %v", cmd.Wait())
			}
			fmt.Sscanf(line, "DEADLAB %s %d", &id, &orphan)
		case <-timeout:
			t.Fatal("helper did not report its lab")
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	for range lines {
	}

	if !strings.Contains(netnsList(t), id+"-") {
		t.Fatalf("the dead lab %s left no namespace to sweep", id)
	}
	if !alive(orphan) {
		t.Fatalf("the dead lab's orphan %d is not running", orphan)
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	assertNoTrace(t, id)
	if err := tstest.Poll(testContext(t, 2*time.Second), func() error {
		if alive(orphan) {
			return fmt.Errorf("orphan %d of the dead lab survived Sweep", orphan)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// buildDeadLab is the helper process: a lab with a delayed link, a NAT
// and a process whose child will outlive it.
func buildDeadLab(dir string) {
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "dead lab helper:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	l, err := New(ctx, Config{Dir: dir})
	if err != nil {
		fail(err)
	}
	if _, err := l.AddPublicHost("a", 10*time.Millisecond); err != nil {
		fail(err)
	}
	nat, err := l.AddNAT("nat", Symmetric, 0)
	if err != nil {
		fail(err)
	}
	h, err := nat.AddHost("h")
	if err != nil {
		fail(err)
	}
	// sh dies with this process (Pdeathsig); its child does not.
	p, err := h.Start(ctx, "parent", "/bin/sh", "-c", "sleep 30 & echo orphan $!; wait")
	if err != nil {
		fail(err)
	}
	m, err := p.WaitOutput(ctx, regexp.MustCompile(`orphan (\d+)`))
	if err != nil {
		fail(err)
	}
	fmt.Printf("DEADLAB %s %s\n", l.ID, m[1])
	time.Sleep(time.Hour) // until the test kills this process
}

// pingPong sends a datagram from pc to to, where peer answers it, and
// waits for the answer.
func pingPong(t testing.TB, pc, peer net.PacketConn, to netip.AddrPort) {
	t.Helper()
	if _, err := pc.WriteTo([]byte("ping"), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	peer.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, from, err := peer.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ping to %s: %v", to, err)
	}
	if _, err := peer.WriteTo([]byte("pong"), from); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := pc.ReadFrom(buf); err != nil {
		t.Fatalf("pong from %s: %v", to, err)
	}
}
