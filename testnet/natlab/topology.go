package natlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"time"
)

// namePattern is what host and NAT names look like: they become part of
// namespace and log file names.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)

// NATType is how a NAT maps and filters.
type NATType int

const (
	// Cone is Linux MASQUERADE: endpoint-independent mapping that keeps the
	// host's source port when it is free (4001 → 4001, for every
	// destination), with address-and-port-dependent filtering (only the
	// destinations the host has sent to get in). Hole punching works.
	Cone NATType = iota + 1
	// Symmetric is MASQUERADE --random-fully: every new destination gets a
	// new random public port. Hole punching fails; relays work.
	Symmetric
)

func (t NATType) String() string {
	switch t {
	case Cone:
		return "cone"
	case Symmetric:
		return "symmetric"
	case UPnP:
		return "upnp"
	}
	return fmt.Sprintf("NATType(%d)", int(t))
}

// Host is a namespace with one address where processes run: a public host
// on the internet, or a host on a NAT's LAN.
type Host struct {
	// Name is the host's name in the lab.
	Name string
	// Namespace is its network namespace's name (`ip netns exec` it while
	// debugging).
	Namespace string
	// IP is its own address: public, or on its NAT's LAN.
	IP netip.Addr
	// PublicIP is the address the internet sees: IP for a public host, the
	// NAT's public address for a host behind a NAT.
	PublicIP netip.Addr
	// NAT is the NAT the host is behind; nil for a public host.
	NAT *NAT

	lab  *Lab
	ns   *netns
	link *link // the public link; nil behind a NAT
}

func (h *Host) String() string { return h.Name }

// NAT is a NAT router: a namespace with a public address on the internet
// and a LAN (a bridge) with its hosts behind it.
type NAT struct {
	// Name is the NAT's name in the lab.
	Name string
	// Namespace is its network namespace's name.
	Namespace string
	// Type is how it maps and filters.
	Type NATType
	// PublicIP is its address on the internet.
	PublicIP netip.Addr
	// LAN is its private network, 10.<n>.0.0/24 for the lab's nth NAT; the
	// NAT is the LAN's first address and its hosts' gateway.
	LAN netip.Prefix

	lab  *Lab
	ns   *netns
	link *link
	upnp *upnpd // its miniupnpd; nil unless Type is UPnP

	hosts int // guarded by lab.mu
}

func (n *NAT) String() string { return n.Name }

// AddPublicHost adds a host with the next public address, attached to the
// internet by a link that delays each packet by delay in each direction
// (zero for none).
func (l *Lab) AddPublicHost(name string, delay time.Duration) (_ *Host, err error) {
	if delay < 0 {
		return nil, fmt.Errorf("add public host %s: negative delay %v", name, delay)
	}
	ctx, cancel := opContext()
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.claimNameLocked(name); err != nil {
		return nil, fmt.Errorf("add public host: %w", err)
	}
	var ns *netns
	var peer ifaceRef
	defer func() {
		if err != nil {
			l.undoNodeLocked(ctx, name, ns, peer)
			err = fmt.Errorf("add public host %s: %w", name, err)
		}
	}()
	addr, err := l.allocAddrLocked()
	if err != nil {
		return nil, err
	}
	if ns, err = l.newNetnsLocked(ctx, name); err != nil {
		return nil, err
	}
	lk := l.newLinkLocked(name, addr)
	peer = ifaceRef{l.inet, lk.inet}
	if err := l.attachLocked(ctx, ns, lk); err != nil {
		return nil, err
	}
	l.links = append(l.links, lk)
	if err := l.step("public host attached"); err != nil {
		return nil, err
	}
	if err := l.setDelayLocked(ctx, lk, delay); err != nil {
		return nil, err
	}
	log.Debugw("public host", "lab", l.ID, "host", name, "ip", addr, "delay", delay)
	return &Host{Name: name, Namespace: ns.name, IP: addr, PublicIP: addr, lab: l, ns: ns, link: lk}, nil
}

// AddNAT adds a NAT router of type typ with the next public address; delay
// applies to its public link, in each direction. A UPnP NAT's miniupnpd is
// ready when AddNAT returns; if it fails to start, the NAT stays in the lab
// (Close removes it) and AddNAT returns the error.
func (l *Lab) AddNAT(name string, typ NATType, delay time.Duration) (*NAT, error) {
	if typ == UPnP {
		if err := AvailableUPnP(); err != nil {
			return nil, fmt.Errorf("add NAT %s: %w", name, err)
		}
		if err := checkUPnPSubnet(l.Subnet); err != nil {
			return nil, fmt.Errorf("add NAT %s: %w", name, err)
		}
	}
	n, err := l.addNAT(name, typ, delay)
	if err != nil || typ != UPnP {
		return n, err
	}
	ctx, cancel := opContext()
	defer cancel()
	if err := n.startMiniUPnPd(ctx); err != nil {
		return nil, fmt.Errorf("add NAT %s: %w", name, err)
	}
	return n, nil
}

func (l *Lab) addNAT(name string, typ NATType, delay time.Duration) (_ *NAT, err error) {
	if typ != Cone && typ != Symmetric && typ != UPnP {
		return nil, fmt.Errorf("add NAT %s: unknown NAT type %v", name, typ)
	}
	if delay < 0 {
		return nil, fmt.Errorf("add NAT %s: negative delay %v", name, delay)
	}
	ctx, cancel := opContext()
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.claimNameLocked(name); err != nil {
		return nil, fmt.Errorf("add NAT: %w", err)
	}
	var ns *netns
	var peer ifaceRef
	defer func() {
		if err != nil {
			l.undoNodeLocked(ctx, name, ns, peer)
			err = fmt.Errorf("add NAT %s: %w", name, err)
		}
	}()
	if l.nats >= 255 {
		return nil, errors.New("a lab has at most 255 NATs")
	}
	addr, err := l.allocAddrLocked()
	if err != nil {
		return nil, err
	}
	l.nats++
	lan := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(l.nats), 0, 0}), 24)
	if ns, err = l.newNetnsLocked(ctx, name); err != nil {
		return nil, err
	}
	if err := ns.sysctl("net/ipv4/ip_forward", "1", false); err != nil {
		return nil, err
	}
	// Were br_netfilter loaded, bridged LAN traffic would cross iptables.
	if err := ns.sysctl("net/bridge/bridge-nf-call-iptables", "0", true); err != nil {
		return nil, err
	}
	lk := l.newLinkLocked(name, addr)
	peer = ifaceRef{l.inet, lk.inet}
	if err := l.attachLocked(ctx, ns, lk); err != nil {
		return nil, err
	}
	l.links = append(l.links, lk)
	if err := l.step("NAT attached"); err != nil {
		return nil, err
	}
	bridge := l.ID + "-lan"
	if err := ns.ip(ctx, fmt.Sprintf("link add %[1]s type bridge\nlink set %[1]s up\naddr add %[2]s/24 dev %[1]s\n", bridge, lan.Addr().Next())); err != nil {
		return nil, fmt.Errorf("create LAN: %w", err)
	}
	if err := ns.iptablesRestore(ctx, natRules(typ, lk.node, bridge), false); err != nil {
		return nil, err
	}
	if err := l.step("NAT rules"); err != nil {
		return nil, err
	}
	if err := l.setDelayLocked(ctx, lk, delay); err != nil {
		return nil, err
	}
	log.Debugw("NAT", "lab", l.ID, "nat", name, "type", typ, "ip", addr, "lan", lan, "delay", delay)
	return &NAT{Name: name, Namespace: ns.name, Type: typ, PublicIP: addr, LAN: lan, lab: l, ns: ns, link: lk}, nil
}

// natRules is the NAT's iptables-restore input.
//
// Packets in conntrack state INVALID are dropped: conntrack does not NAT
// them, so they would leave with their private source address. Unsolicited
// packets from the internet, forwarded or to the NAT itself, are dropped
// silently as a home router does (no RST, no ICMP port unreachable).
func natRules(typ NATType, wan, lan string) string {
	masq := "-j MASQUERADE"
	if typ == Symmetric {
		masq += " --random-fully"
	}
	return fmt.Sprintf(`*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -o %[1]s %[3]s
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i %[1]s -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A INPUT -i %[1]s -j DROP
-A FORWARD -m conntrack --ctstate INVALID -j DROP
-A FORWARD -i %[2]s -o %[1]s -j ACCEPT
-A FORWARD -i %[1]s -o %[2]s -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
%[4]sCOMMIT
`, wan, lan, masq, upnpForward(typ, wan, lan))
}

// AddHost adds a host on the NAT's LAN, with the LAN's next address and
// the NAT as its default gateway.
func (n *NAT) AddHost(name string) (_ *Host, err error) {
	l := n.lab
	ctx, cancel := opContext()
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.claimNameLocked(name); err != nil {
		return nil, fmt.Errorf("add host behind %s: %w", n.Name, err)
	}
	var ns *netns
	var peer ifaceRef
	defer func() {
		if err != nil {
			l.undoNodeLocked(ctx, name, ns, peer)
			err = fmt.Errorf("add host %s behind %s: %w", name, n.Name, err)
		}
	}()
	if n.hosts >= 252 {
		return nil, errors.New("LAN is full")
	}
	n.hosts++
	gw := n.LAN.Addr().Next()
	addr := gw
	for range n.hosts {
		addr = addr.Next()
	}
	if ns, err = l.newNetnsLocked(ctx, name); err != nil {
		return nil, err
	}
	l.nextLink++
	hostEnd := fmt.Sprintf("%s-h%d", l.ID, l.nextLink)
	natEnd := fmt.Sprintf("%s-l%d", l.ID, l.nextLink)
	peer = ifaceRef{n.ns, natEnd}
	if err := addVeth(ctx, hostEnd, ns, natEnd, n.ns); err != nil {
		return nil, err
	}
	if err := n.ns.ip(ctx, fmt.Sprintf("link set %s master %s-lan\nlink set %[1]s up\n", natEnd, l.ID)); err != nil {
		return nil, fmt.Errorf("attach to LAN: %w", err)
	}
	if err := ns.ip(ctx, fmt.Sprintf("link set lo up\nlink set %[1]s up\naddr add %[2]s/24 dev %[1]s\nroute add default via %[3]s\n", hostEnd, addr, gw)); err != nil {
		return nil, fmt.Errorf("attach to LAN: %w", err)
	}
	if err := l.step("NAT host attached"); err != nil {
		return nil, err
	}
	log.Debugw("host behind NAT", "lab", l.ID, "host", name, "nat", n.Name, "ip", addr)
	return &Host{Name: name, Namespace: ns.name, IP: addr, PublicIP: n.PublicIP, NAT: n, lab: l, ns: ns}, nil
}

// ifaceRef names an interface in a namespace.
type ifaceRef struct {
	ns   *netns
	name string
}

// undoNodeLocked removes what a failed AddPublicHost, AddNAT or AddHost
// made: the far end of its link (peer, if it exists; deleting it deletes
// the pair at once, while a removed namespace's interfaces go away only
// when the kernel gets to it), its namespace, its delay rules and its name.
func (l *Lab) undoNodeLocked(ctx context.Context, name string, ns *netns, peer ifaceRef) {
	delete(l.names, name)
	if peer.ns != nil {
		if out, err := execCombined(ctx, "ip", "-n", peer.ns.name, "link", "del", peer.name); err != nil && !bytes.Contains(out, []byte("Cannot find device")) {
			log.Warnw("remove link of a failed node", "node", name, "link", peer.name, "err", err, "output", string(out))
		}
	}
	if ns == nil {
		return
	}
	l.dropNetnsLocked(ns)
	n := len(l.links)
	l.links = slices.DeleteFunc(l.links, func(lk *link) bool { return lk.owner == name })
	if len(l.links) != n && l.delay != nil {
		if err := l.applyDelaysLocked(ctx); err != nil {
			log.Warnw("remove delay rules of a failed node", "node", name, "err", err)
		}
	}
}

// SetDelay changes the delay of the host's public link, in each direction.
// Hosts behind a NAT have none: set the NAT's. Packets already held keep
// their release time, and later packets of their path wait for them; only
// when no link of a path is delayed any more can new packets overtake
// packets still held.
func (h *Host) SetDelay(d time.Duration) error {
	if h.link == nil {
		return fmt.Errorf("host %s is behind NAT %s: set the NAT's delay", h.Name, h.NAT.Name)
	}
	ctx, cancel := opContext()
	defer cancel()
	h.lab.mu.Lock()
	defer h.lab.mu.Unlock()
	return h.lab.setDelayLocked(ctx, h.link, d)
}

// SetDelay changes the delay of the NAT's public link, in each direction,
// as Host.SetDelay does.
func (n *NAT) SetDelay(d time.Duration) error {
	ctx, cancel := opContext()
	defer cancel()
	n.lab.mu.Lock()
	defer n.lab.mu.Unlock()
	return n.lab.setDelayLocked(ctx, n.link, d)
}

// Run runs a command to completion inside the NAT's namespace, for
// inspection (conntrack -L, iptables -L -v), and returns its combined
// output.
func (n *NAT) Run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	out, err := n.lab.runIn(ctx, n.ns, bin, args...)
	if err != nil {
		return out, fmt.Errorf("run %s on NAT %s: %w", bin, n.Name, err)
	}
	return out, nil
}

// RunInternet runs a command to completion inside the internet namespace,
// for inspection (iptables -L -v), and returns its combined output.
func (l *Lab) RunInternet(ctx context.Context, bin string, args ...string) ([]byte, error) {
	out, err := l.runIn(ctx, l.inet, bin, args...)
	if err != nil {
		return out, fmt.Errorf("run %s in the internet: %w", bin, err)
	}
	return out, nil
}
