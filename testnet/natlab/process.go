package natlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxLines is how many lines of a process's standard output WaitOutput and
// Lines see; later lines still go to the log.
const maxLines = 100_000

// Process is a long-running process on a host, started by Start or
// StartCmd. Its standard output and error go to its log file; its standard
// output lines are also kept for WaitOutput. Its methods may be called
// from several goroutines.
type Process struct {
	// Name is the process's name on its host, as given to Start.
	Name string
	// Host is where it runs.
	Host *Host

	cmd        *exec.Cmd
	logPath    string
	exited     chan struct{} // closed once the process has exited
	outputDone chan struct{} // closed once its standard output is drained
	done       chan struct{} // closed once exited and drained (or a second later)
	err        error         // how it exited; set before exited is closed

	mu      sync.Mutex // guards the following
	lines   []string
	changed chan struct{} // closed and replaced when a line comes
}

func (p *Process) String() string { return p.Name + " on " + p.Host.Name }

// Start starts a long-running process inside the host's namespace, in a
// process group of its own, with this process's environment. Its standard
// output and error go to <Lab.Dir>/<host>-<name>.log (appended to). ctx
// bounds the start only: the process runs until Stop, Kill or Lab.Close.
func (h *Host) Start(ctx context.Context, name, bin string, args ...string) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s on %s: %w", name, h.Name, err)
	}
	return h.StartCmd(name, exec.Command(bin, args...))
}

// StartCmd is Start for a command the caller set up (environment,
// directory, standard input). Its Stdout and Stderr must be nil; its
// SysProcAttr gets Pdeathsig (SIGKILL) and, unless it asks for Setsid,
// Setpgid set.
func (h *Host) StartCmd(name string, cmd *exec.Cmd) (_ *Process, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("start %s on %s: %w", name, h.Name, err)
		}
	}()
	if !namePattern.MatchString(name) {
		return nil, fmt.Errorf("bad process name %q: want 1-32 of [A-Za-z0-9_.-]", name)
	}
	if cmd.Stdout != nil || cmd.Stderr != nil {
		return nil, errors.New("command has its own Stdout or Stderr")
	}
	p := &Process{
		Name:       name,
		Host:       h,
		cmd:        cmd,
		logPath:    filepath.Join(h.lab.Dir, h.Name+"-"+name+".log"),
		exited:     make(chan struct{}),
		outputDone: make(chan struct{}),
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
	}
	logFile, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = w, logFile

	h.lab.mu.Lock()
	if h.lab.closed {
		err = ErrClosed
	} else {
		err = h.ns.start(cmd)
	}
	if err == nil {
		h.lab.procs = append(h.lab.procs, p)
	}
	h.lab.mu.Unlock()
	w.Close()
	if err != nil {
		r.Close()
		logFile.Close()
		return nil, err
	}
	log.Debugw("process started", "host", h.Name, "process", name, "pid", cmd.Process.Pid, "log", p.logPath)
	go p.readOutput(r, logFile)
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-p.outputDone:
		case <-t.C: // a child still holds its standard output
		}
		close(p.done)
	}()
	return p, nil
}

// readOutput copies the process's standard output to its log, line by
// line, keeping the lines for WaitOutput. It owns r and logFile.
func (p *Process) readOutput(r io.ReadCloser, logFile *os.File) {
	defer close(p.outputDone)
	defer logFile.Close()
	defer r.Close()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if !strings.HasSuffix(line, "\n") {
				line += "\n"
			}
			logFile.WriteString(line)
			p.mu.Lock()
			if len(p.lines) < maxLines {
				p.lines = append(p.lines, strings.TrimRight(line, "\r\n"))
				close(p.changed)
				p.changed = make(chan struct{})
			}
			p.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// Pid is the process's ID (in the root PID namespace).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// LogPath is the file its standard output and error go to.
func (p *Process) LogPath() string { return p.logPath }

// Lines returns the lines it has printed on standard output so far.
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// WaitOutput waits until a line the process printed on standard output,
// before or after the call, matches re, and returns the first such line's
// submatches (re.FindStringSubmatch). It fails when ctx ends or the
// process closes its output first.
func (p *Process) WaitOutput(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	for i := 0; ; {
		p.mu.Lock()
		for ; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				p.mu.Unlock()
				return m, nil
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.outputDone:
			// Lines that came just before the end are already in p.lines.
			p.mu.Lock()
			n := len(p.lines)
			p.mu.Unlock()
			if i < n {
				continue
			}
			status := "still running"
			select {
			case <-p.exited:
				status = exitStatus(p.err)
			case <-time.After(100 * time.Millisecond):
			}
			return nil, fmt.Errorf("%s closed its output (%s) without a line matching %q; log %s ends:\n%s", p, status, re, p.logPath, p.Tail(20))
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for %s to print a line matching %q: %w; log %s ends:\n%s", p, re, ctx.Err(), p.logPath, p.Tail(20))
		}
	}
}

// Wait waits until the process has exited and returns how it exited (nil
// for status 0).
func (p *Process) Wait() error {
	<-p.done
	if p.err != nil {
		return fmt.Errorf("%s: %w", p, p.err)
	}
	return nil
}

// Stop sends SIGTERM to the process's group and waits up to timeout for
// the process to exit, then kills the group. It returns nil if the process
// exited within timeout with status 0 or by the SIGTERM, and otherwise
// says how it ended (also if it had ended before Stop).
func (p *Process) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.Wait()
	default:
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.exited:
		<-p.done
		if signaled(p.err, syscall.SIGTERM) {
			return nil
		}
		return p.Wait()
	case <-t.C:
		p.signal(syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("stop %s: still running %v after SIGTERM; killed", p, timeout)
	}
}

// Kill kills the process's group at once, as a crash would, and waits
// until the process has exited.
func (p *Process) Kill() error {
	p.signal(syscall.SIGKILL)
	<-p.done
	return nil
}

// signal sends sig to the process's group while its leader runs (after
// that the group's ID may be reused; Close kills stragglers by namespace).
func (p *Process) signal(sig syscall.Signal) {
	select {
	case <-p.exited:
	default:
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// awaitOutput waits, after Close killed everything, until the process has
// exited and its output is drained.
func (p *Process) awaitOutput(timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, c := range []chan struct{}{p.done, p.outputDone} {
		select {
		case <-c:
		case <-t.C:
			return fmt.Errorf("%s: output still open %v after SIGKILL", p, timeout)
		}
	}
	return nil
}

// Tail returns the last n lines of the process's log.
func (p *Process) Tail(n int) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	defer f.Close()
	const max = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// signaled reports whether err says the process died of sig.
func signaled(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

func exitStatus(err error) string {
	if err == nil {
		return "exited with status 0"
	}
	return err.Error()
}
