package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/apitype"
)

// TestStatusShowsQUICBuffers: parley status says when the UDP buffer
// limits hold QUIC back, with the command, and nothing when they do not.
func TestStatusShowsQUICBuffers(t *testing.T) {
	var out bytes.Buffer
	c := &cli{out: &out}
	advice := "UDP socket buffers are capped below the 7 MiB QUIC wants (net.core.rmem_max=212992); to raise them: sudo sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000"
	c.printStatus(apitype.Status{Peer: "12D3KooWMe", QUICBuffers: advice})
	if want := "quic          " + advice + "\n"; !strings.Contains(out.String(), want) {
		t.Errorf("got\n%s\nwant it to contain %q", out.String(), want)
	}
	out.Reset()
	c.printStatus(apitype.Status{Peer: "12D3KooWMe"})
	if strings.Contains(out.String(), "quic ") {
		t.Errorf("buffers fine: got\n%s\nwant no quic line", out.String())
	}
}
