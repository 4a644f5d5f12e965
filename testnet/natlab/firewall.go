package natlab

import "fmt"

// BlockUDP makes the NAT also a firewall that drops every UDP packet it
// would forward, in both directions, as some corporate and public networks
// do: QUIC and UDP hole punching fail behind it, TCP goes through. Flows
// already under way are cut too.
func (n *NAT) BlockUDP() error {
	ctx, cancel := opContext()
	defer cancel()
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := n.ns.iptablesRestore(ctx, "*filter\n-I FORWARD 1 -p udp -j DROP\nCOMMIT\n", true); err != nil {
		return fmt.Errorf("block UDP at %s: %w", n.Name, err)
	}
	return nil
}
