package relay

import (
	"runtime"
	"syscall"
	"time"
)

// cpuMeter measures the process's CPU use between two calls, as a share of
// the machine's cores.
type cpuMeter struct {
	lastCPU  time.Duration
	lastWall time.Time
}

// permille returns the CPU used since the previous call in per mille of
// all cores (0 on the first call, or if the system cannot tell).
func (m *cpuMeter) permille() uint32 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	now := time.Now()
	defer func() { m.lastCPU, m.lastWall = cpu, now }()
	if m.lastWall.IsZero() {
		return 0
	}
	wall := now.Sub(m.lastWall) * time.Duration(runtime.NumCPU())
	if wall <= 0 {
		return 0
	}
	return uint32(min(1000, 1000*(cpu-m.lastCPU)/wall))
}
