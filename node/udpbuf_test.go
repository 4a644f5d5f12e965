package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUDPBufferAdvice(t *testing.T) {
	if os.Geteuid() == 0 {
		if got := UDPBufferAdvice(); got != "" {
			t.Errorf("as root: %q, want no advice (quic-go forces its buffers)", got)
		}
		t.Skip("root exceeds the limits; the rest needs another user")
	}
	dir := t.TempDir()
	old := udpLimitsDir
	udpLimitsDir = dir
	t.Cleanup(func() { udpLimitsDir = old })
	write := func(r, w string) {
		os.WriteFile(filepath.Join(dir, "rmem_max"), []byte(r+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "wmem_max"), []byte(w+"\n"), 0o644)
	}
	write("212992", "4194304")
	if got := UDPBufferAdvice(); !strings.Contains(got, "net.core.rmem_max=212992") || strings.Contains(got, "wmem_max=4194304") || !strings.Contains(got, "sysctl -w") {
		t.Errorf("rmem_max low: %q", got)
	}
	write("4194304", "4194304")
	if got := UDPBufferAdvice(); got != "" {
		t.Errorf("4 MiB limits (8 MiB buffers): %q, want none", got)
	}
}
