package node

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	ma "github.com/multiformats/go-multiaddr"
)

// quicBufferWant is the UDP socket buffer quic-go asks for, receive and
// send. Linux doubles what a socket is given, up to twice
// net.core.rmem_max (wmem_max); quic-go is content with twice the limit
// when that reaches quicBufferWant. Root (CAP_NET_ADMIN) may exceed the
// limits, and quic-go does.
const quicBufferWant = 7 << 20

// udpLimitsDir is where Linux shows the limits.
var udpLimitsDir = "/proc/sys/net/core"

// UDPBufferAdvice says what to run when the UDP socket buffers QUIC gets
// are smaller than quic-go wants (its throughput then suffers from drops
// at high rates), or "" when they are not, or not knowable (not Linux).
func UDPBufferAdvice() string {
	if os.Geteuid() == 0 {
		return "" // quic-go forces its buffers past the limits
	}
	var low []string
	for _, name := range []string{"rmem_max", "wmem_max"} {
		data, err := os.ReadFile(udpLimitsDir + "/" + name)
		if err != nil {
			return ""
		}
		v, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			return ""
		}
		if 2*v < quicBufferWant {
			low = append(low, fmt.Sprintf("net.core.%s=%d", name, v))
		}
	}
	if len(low) == 0 {
		return ""
	}
	return fmt.Sprintf("UDP socket buffers are capped below the %d MiB QUIC wants (%s); to raise them: sudo sysctl -w net.core.rmem_max=7500000 net.core.wmem_max=7500000 (and in /etc/sysctl.d to keep them)",
		quicBufferWant>>20, strings.Join(low, ", "))
}

// QUICBufferAdvice is UDPBufferAdvice as it was when the node started
// listening on QUIC (the sockets keep the buffers they got then), or "".
func (n *Node) QUICBufferAdvice() string { return n.quicAdvice }

// listensQUIC reports whether one of addrs is a QUIC address.
func listensQUIC(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if TransportOf(a) == TransportQUIC {
			return true
		}
	}
	return false
}
