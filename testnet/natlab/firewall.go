package natlab

import "fmt"

// BlockUDP makes the NAT also a firewall that drops every UDP packet it
// would forward, in both directions, as some corporate and public networks
// do: QUIC and UDP hole punching fail behind it, TCP goes through. Flows
// already under way are cut too.
func (n *NAT) BlockUDP() error {
	if err := n.insertRules("*filter\n-I FORWARD 1 -p udp -j DROP\nCOMMIT\n"); err != nil {
		return fmt.Errorf("block UDP at %s: %w", n.Name, err)
	}
	return nil
}

// OneToOne makes the NAT forward everything that reaches its public
// address to h, one of its hosts, as a cloud provider's NAT does in front
// of a machine whose interface has a private address: h is reached on
// any port at the NAT's public address, and what it sends leaves from
// there with its ports kept.
func (n *NAT) OneToOne(h *Host) error {
	if h.NAT != n {
		return fmt.Errorf("one-to-one NAT %s: host %s is not behind it", n.Name, h.Name)
	}
	rules := fmt.Sprintf("*nat\n-I PREROUTING 1 -d %[1]s -j DNAT --to-destination %[2]s\nCOMMIT\n"+
		"*filter\n-I FORWARD 1 -d %[2]s -m conntrack --ctstate DNAT -j ACCEPT\nCOMMIT\n", n.PublicIP, h.IP)
	if err := n.insertRules(rules); err != nil {
		return fmt.Errorf("one-to-one NAT %s for %s: %w", n.Name, h.Name, err)
	}
	return nil
}

// insertRules adds iptables-restore input to the NAT's rules, keeping
// those it has.
func (n *NAT) insertRules(rules string) error {
	ctx, cancel := opContext()
	defer cancel()
	l := n.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return n.ns.iptablesRestore(ctx, rules, true)
}
