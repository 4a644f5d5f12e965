package procnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is one running (or exited) process with its output in a log file.
type Proc struct {
	Name string
	// Log is the file the process's standard output and error go to.
	Log string

	cmd    *exec.Cmd
	lines  *lineWriter
	exited chan struct{} // closed once Wait returned
	err    error         // Wait's error, once exited is closed
}

// startProc starts bin with args; its output goes to logPath (appended,
// so a restarted process keeps the earlier run's log). The process is
// killed in tb's Cleanup.
func startProc(tb testing.TB, name, logPath, bin string, env []string, args ...string) (*Proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the log of %s: %w", name, err)
	}
	fmt.Fprintf(logFile, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p := &Proc{Name: name, Log: logPath, lines: newLineWriter(logFile), exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout = p.lines
	p.cmd.Stderr = logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait() // also ends the copying of standard output
		logFile.Close()
		close(p.exited)
	}()
	tb.Cleanup(func() { _ = p.Kill() })
	return p, nil
}

// PID is the process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Kill sends SIGKILL and waits until the process is gone. Killing an
// exited process does nothing.
func (p *Proc) Kill() error {
	select {
	case <-p.exited:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p.Name, err)
	}
	<-p.exited
	return nil
}

// Signal sends sig (SIGSTOP and SIGCONT pause and resume the process).
func (p *Proc) Signal(sig syscall.Signal) error {
	if err := p.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, p.Name, err)
	}
	return nil
}

// Wait waits until the process exits on its own or ctx ends, and returns
// how it exited.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("%s: %w", p.Name, p.err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for %s to exit: %w", p.Name, ctx.Err())
	}
}

// awaitLine waits until the process prints a line on standard output for
// which match returns true, and returns that line.
func (p *Proc) awaitLine(ctx context.Context, what string, match func(string) bool) (string, error) {
	for {
		select {
		case line := <-p.lines.ch:
			if match(line) {
				return line, nil
			}
		case <-p.exited:
			return "", fmt.Errorf("%s exited before it printed %s: %v (log: %s)\n%s", p.Name, what, p.err, p.Log, tail(p.Log, 20))
		case <-ctx.Done():
			return "", fmt.Errorf("waiting for %s to print %s: %w", p.Name, what, ctx.Err())
		}
	}
}

// lineWriter copies a process's standard output to its log and hands the
// lines to awaitLine; lines nobody waits for are dropped.
type lineWriter struct {
	log *os.File
	ch  chan string

	mu      sync.Mutex
	partial []byte
}

func newLineWriter(log *os.File) *lineWriter {
	return &lineWriter{log: log, ch: make(chan string, 64)}
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.log.Write(b)
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		select {
		case w.ch <- string(w.partial[:i]):
		default:
		}
		w.partial = w.partial[i+1:]
	}
}

// tail is the last n lines of the file at path.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
