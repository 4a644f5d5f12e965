package procnet

import (
	"os"
	"testing"
	"time"
)

// TestProcUsageReadsThisProcess: the /proc readers see this process's
// CPU time grow while it spins and its peak RSS cover memory it touched.
func TestProcUsageReadsThisProcess(t *testing.T) {
	pid := os.Getpid()
	cpu0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	cpu1, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if d := cpu1 - cpu0; d < 50*time.Millisecond {
		t.Errorf("CPU time grew by %s while spinning for 300ms", d)
	}
	const size = 64 << 20
	buf := make([]byte, size)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	peak, err := procPeakRSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	if peak < size {
		t.Errorf("peak RSS %d bytes after touching %d", peak, size)
	}
	buf[len(buf)-1] = 1 // keeps buf alive until here
}
