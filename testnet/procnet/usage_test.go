package procnet

import (
	"os"
	"testing"
	"time"
)

// TestProcUsageReadsThisProcess: the /proc readers see this process's
// CPU time grow while it spins, and its peak RSS cover memory it touched.
func TestProcUsageReadsThisProcess(t *testing.T) {
	pid := os.Getpid()
	cpu0, err := procCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the reader sees 100 ms more CPU time; on a loaded
	// machine that may take longer than 100 ms of wall time, not 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		for end := time.Now().Add(10 * time.Millisecond); time.Now().Before(end); {
		}
		cpu, err := procCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		if cpu-cpu0 >= 100*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time grew by %s in 10 s of spinning", cpu-cpu0)
		}
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
