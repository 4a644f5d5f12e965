package procnet

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Usage is what a process has used of the machine.
type Usage struct {
	// CPU is user plus system time.
	CPU time.Duration
	// PeakRSS is the highest resident set size in bytes (VmHWM, since the
	// start or the last ResetPeakRSS).
	PeakRSS int64
}

// userHZ is the unit of the times in /proc/PID/stat: USER_HZ, 100 on
// every Linux architecture Go supports.
const userHZ = 100

// Usage reads the process's CPU time and peak RSS: from /proc while it
// runs, from its rusage once it has exited.
func (p *Proc) Usage() (Usage, error) {
	select {
	case <-p.exited:
		return exitedUsage(p.cmd.ProcessState)
	default:
	}
	cpu, err := procCPU(p.PID())
	if err != nil {
		return Usage{}, fmt.Errorf("%s: %w", p.Name, err)
	}
	rss, err := procPeakRSS(p.PID())
	if err != nil {
		return Usage{}, fmt.Errorf("%s: %w", p.Name, err)
	}
	return Usage{CPU: cpu, PeakRSS: rss}, nil
}

// ResetPeakRSS starts the process's peak RSS over from its current RSS
// (Linux: "5" written to /proc/PID/clear_refs).
func (p *Proc) ResetPeakRSS() error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.PID()), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak RSS of %s: %w", p.Name, err)
	}
	return nil
}

func exitedUsage(st *os.ProcessState) (Usage, error) {
	ru, ok := st.SysUsage().(*syscall.Rusage)
	if !ok {
		return Usage{}, fmt.Errorf("no rusage for process %d", st.Pid())
	}
	return Usage{CPU: st.UserTime() + st.SystemTime(), PeakRSS: ru.Maxrss << 10}, nil // Maxrss is in KiB
}

// procCPU is utime+stime of a running process, from /proc/PID/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// count the fields after its closing one. utime and stime are
	// fields 14 and 15, so 12th and 13th after it.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("read CPU time: /proc/%d/stat has %d fields", pid, len(fields))
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read CPU time: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// procPeakRSS is VmHWM of a running process, in bytes.
func procPeakRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		v, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read peak RSS: /proc/%d/status: %q: %w", pid, line, err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("read peak RSS: no VmHWM in /proc/%d/status", pid)
}
