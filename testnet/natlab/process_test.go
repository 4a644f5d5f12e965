package natlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/internal/tstest"
)

// TestRun: a command runs to completion inside the host's namespace.
func TestRun(t *testing.T) {
	l := NewForTest(t, Config{})
	nat := must(l.AddNAT("nat", Cone, 0))(t)
	h := must(nat.AddHost("h"))(t)
	ctx := testContext(t, 10*time.Second)

	out, err := h.Run(ctx, "/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; ip -4 -o addr show")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"to-stdout", "to-stderr", " " + h.IP.String() + "/24 "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Only the host's own interfaces are there.
	if strings.Contains(string(out), "eth0") || strings.Contains(string(out), nat.PublicIP.String()) {
		t.Errorf("host sees interfaces that are not its own:\n%s", out)
	}

	out, err = h.Run(ctx, "/bin/sh", "-c", "echo failing; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || string(out) != "failing\n" {
		t.Errorf("failing command: got %q, %v; want its output and exit status 3", out, err)
	}

	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.Run(short, "/bin/sh", "-c", "sleep 30 & sleep 30; wait"); err == nil {
		t.Error("command outliving its context: got nil, want an error")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("cancelled command returned after %v", took)
	}
	if err := tstest.Poll(testContext(t, 2*time.Second), func() error {
		if pids := pidsOf(t, h); len(pids) != 0 {
			return fmt.Errorf("processes %v left on %s after the context ended", pids, h.Name)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	out, err = nat.Run(ctx, "iptables", "-w", "-t", "nat", "-S", "POSTROUTING")
	if err != nil || !strings.Contains(string(out), "MASQUERADE") {
		t.Errorf("NAT rules: %v:\n%s", err, out)
	}
}

// pidsOf lists the processes in h's namespace.
func pidsOf(t testing.TB, h *Host) []int {
	t.Helper()
	ino, err := h.ns.inode()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, pid := range pidsInNetns(ino) {
		if alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestProcess: a long-running process prints what a test waits for, stops
// on SIGTERM, is killed with its children, and logs to its file.
func TestProcess(t *testing.T) {
	l := NewForTest(t, Config{})
	h := must(l.AddPublicHost("h", 0))(t)
	ctx := testContext(t, 10*time.Second)

	t.Run("WaitOutput and Stop", func(t *testing.T) {
		p := must(h.Start(ctx, "daemon", "/bin/sh", "-c", `
			trap 'echo bye; exit 0' TERM
			echo starting >&2
			sleep 0.2
			echo "peer id=12D3KooWabc addr=/ip4/$(ip -4 -o addr show | awk '/scope global/ {print $4}')"
			while :; do sleep 0.05; done`))(t)
		m, err := p.WaitOutput(ctx, regexp.MustCompile(`id=(\S+) addr=(\S+)`))
		if err != nil {
			t.Fatal(err)
		}
		if m[1] != "12D3KooWabc" || m[2] != "/ip4/"+h.IP.String()+"/24" {
			t.Errorf("submatches %q, want the ID and /ip4/%s/24", m[1:], h.IP)
		}
		// A line printed long ago still matches.
		if _, err := p.WaitOutput(ctx, regexp.MustCompile(`^peer`)); err != nil {
			t.Error(err)
		}
		if err := p.Stop(5 * time.Second); err != nil {
			t.Errorf("Stop: %v", err)
		}
		log := readLog(t, p)
		for _, want := range []string{"starting", "peer id=", "bye"} {
			if !strings.Contains(log, want) {
				t.Errorf("log lacks %q:\n%s", want, log)
			}
		}
		if want := l.Dir + "/h-daemon.log"; p.LogPath() != want {
			t.Errorf("log path %s, want %s", p.LogPath(), want)
		}
	})

	t.Run("Stop kills what ignores SIGTERM", func(t *testing.T) {
		p := must(h.Start(ctx, "stubborn", "/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"))(t)
		if _, err := p.WaitOutput(ctx, regexp.MustCompile(`ready`)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := p.Stop(300 * time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("Stop: got %v, want an error saying it was killed", err)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("Stop took %v", took)
		}
	})

	t.Run("Kill takes the children", func(t *testing.T) {
		p := must(h.Start(ctx, "tree", "/bin/sh", "-c", "sleep 30 & sleep 30 & echo children $!; wait"))(t)
		m, err := p.WaitOutput(ctx, regexp.MustCompile(`children (\d+)`))
		if err != nil {
			t.Fatal(err)
		}
		child, _ := strconv.Atoi(m[1])
		if !alive(child) {
			t.Fatalf("child %d is not running", child)
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("Wait after Kill: got %v, want killed", err)
		}
		if err := tstest.Poll(testContext(t, 2*time.Second), func() error {
			if alive(child) {
				return fmt.Errorf("child %d survived Kill", child)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
		select {
		case <-p.Done():
		default:
			t.Error("Done is open after Kill")
		}
	})

	t.Run("WaitOutput fails when the process exits", func(t *testing.T) {
		p := must(h.Start(ctx, "quitter", "/bin/sh", "-c", "echo nothing useful; exit 2"))(t)
		_, err := p.WaitOutput(ctx, regexp.MustCompile(`never printed`))
		if err == nil || !strings.Contains(err.Error(), "exit status 2") || !strings.Contains(err.Error(), "nothing useful") {
			t.Errorf("got %v, want an error with the exit status and the log's end", err)
		}
		if got := p.Lines(); len(got) != 1 || got[0] != "nothing useful" {
			t.Errorf("Lines: got %q", got)
		}
		if err := p.Stop(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 2") {
			t.Errorf("Stop after exit: got %v, want its exit status", err)
		}
	})

	t.Run("WaitOutput honours its context", func(t *testing.T) {
		p := must(h.Start(ctx, "silent", "/bin/sh", "-c", "sleep 30"))(t)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := p.WaitOutput(short, regexp.MustCompile(`x`)); err == nil {
			t.Error("got nil, want a timeout")
		}
		// Left running: Close must kill it.
	})
}

func readLog(t testing.TB, p *Process) string {
	t.Helper()
	b, err := os.ReadFile(p.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestDialContext: an http.Client reaches a server that listens on
// 127.0.0.1 inside a host's namespace, which the root namespace cannot.
func TestDialContext(t *testing.T) {
	l := NewForTest(t, Config{})
	nat := must(l.AddNAT("nat", Symmetric, 0))(t)
	h := must(nat.AddHost("h"))(t)
	ln := must(h.Listen("tcp", "127.0.0.1:0"))(t)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", h.Name)
	})}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})

	tr := &http.Transport{DialContext: h.DialContext}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	port := ln.Addr().(*net.TCPAddr).Port
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get(fmt.Sprintf("http://%s:%d/", host, port))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "hello from h" {
			t.Errorf("via %s: got %q", host, body)
		}
	}

	// The listener is not in the root namespace.
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Errorf("reached 127.0.0.1:%d from the root namespace", port)
	}
}
