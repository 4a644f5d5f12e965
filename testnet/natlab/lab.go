package natlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Config configures a lab. The zero value is valid.
type Config struct {
	// Subnet is the public internet's IPv4 range. Empty means
	// "203.0.113.0/24" (TEST-NET-3). Its first address is the internet
	// namespace's own; hosts and NATs get the next ones in order. It must
	// leave room for a few addresses (at most a /29) and must not overlap
	// 10.0.0.0/8, where the NATs' LANs live.
	Subnet string
	// Dir receives the processes' logs, <host>-<name>.log. Empty means a
	// new temporary directory, removed by Close.
	Dir string
	// LossSeed seeds the random drops of lossy links (Host.SetLoss), so
	// that a test sees the same drops each run; zero means a random seed.
	LossSeed uint64
}

// DefaultSubnet is the public range of a lab whose Config.Subnet is empty.
const DefaultSubnet = "203.0.113.0/24"

// opTimeout bounds each topology change (the ip and iptables commands it
// runs); those methods take no context.
const opTimeout = 30 * time.Second

// Lab is a small internet of network namespaces: see the package doc.
// Its methods may be called from several goroutines.
type Lab struct {
	// ID prefixes every namespace and interface the lab makes (pl + 6 hex
	// digits).
	ID string
	// Dir holds the processes' logs.
	Dir string
	// Subnet is the public internet's range.
	Subnet netip.Prefix
	// Gateway is the internet namespace's address, every public host's and
	// NAT's default gateway.
	Gateway netip.Addr
	// Internet is the name of the internet namespace (for `ip netns exec`
	// while debugging).
	Internet string

	inet      *netns
	ownDir    bool
	lossSeed  uint64
	lastAddr  netip.Addr // the subnet's last usable address
	closeOnce sync.Once
	closeErr  error

	mu         sync.Mutex // serializes topology changes and guards the following
	closed     bool
	names      map[string]bool // hosts and NATs
	nextAddr   netip.Addr
	nextLink   int
	nats       int
	namespaces []*netns // every namespace the lab made, the internet first
	links      []*link  // public links, in the internet namespace
	delay      *delayer // nil until a link has a delay
	procs      []*Process
}

// ErrClosed is returned by the methods of a closed lab.
var ErrClosed = errors.New("lab is closed")

// testHookStep, when set by this package's tests, runs after each step of
// building the lab or a node; an error fails that step.
var testHookStep func(l *Lab, step string) error

func (l *Lab) step(name string) error {
	if testHookStep != nil {
		if err := testHookStep(l, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// New builds an empty lab: the internet namespace, with no hosts yet. It
// first removes leftovers of labs whose process died (Sweep). ctx bounds
// the construction only. On error nothing of the lab remains.
func New(ctx context.Context, cfg Config) (_ *Lab, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	subnet, err := parseSubnet(cfg.Subnet)
	if err != nil {
		return nil, err
	}
	if err := Sweep(); err != nil {
		log.Warnw("sweep leftover labs", "err", err)
	}
	id, err := newLabID()
	if err != nil {
		return nil, err
	}
	l := &Lab{
		ID:       id,
		Dir:      cfg.Dir,
		lossSeed: cfg.LossSeed,
		Subnet:   subnet,
		Gateway:  subnet.Addr().Next(),
		Internet: id + "-inet",
		lastAddr: lastAddr(subnet).Prev(),
		names:    map[string]bool{},
	}
	l.nextAddr = l.Gateway.Next()
	defer func() {
		if err != nil {
			if cerr := l.Close(); cerr != nil {
				log.Errorw("remove half-built lab", "lab", id, "err", cerr)
			}
		}
	}()
	if l.Dir == "" {
		if l.Dir, err = os.MkdirTemp("", "parley-natlab-"); err != nil {
			return nil, fmt.Errorf("create lab directory: %w", err)
		}
		l.ownDir = true
	} else if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create lab directory: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inet, err = l.newNetnsLocked(ctx, "inet"); err != nil {
		return nil, err
	}
	if err := l.step("internet namespace"); err != nil {
		return nil, err
	}
	if err := l.inet.sysctl("net/ipv4/ip_forward", "1", false); err != nil {
		return nil, err
	}
	if err := l.inet.ip(ctx, fmt.Sprintf("link set lo up\naddr add %s/32 dev lo\n", l.Gateway)); err != nil {
		return nil, fmt.Errorf("configure internet: %w", err)
	}
	// Only the lab's public addresses cross the internet: a private source
	// means a NAT leaked a packet. Delayed links' packets go to the queue.
	rules := fmt.Sprintf("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:%[1]s - [0:0]\n"+
		"-A FORWARD ! -s %[2]s -j DROP\n-A FORWARD -j %[1]s\nCOMMIT\n", delayChain, l.Subnet)
	if err := l.inet.iptablesRestore(ctx, rules, false); err != nil {
		return nil, fmt.Errorf("configure internet: %w", err)
	}
	if err := l.step("internet configured"); err != nil {
		return nil, err
	}
	log.Debugw("lab ready", "lab", l.ID, "subnet", l.Subnet, "dir", l.Dir)
	return l, nil
}

func parseSubnet(s string) (netip.Prefix, error) {
	if s == "" {
		s = DefaultSubnet
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("lab subnet: %w", err)
	}
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 29 {
		return netip.Prefix{}, fmt.Errorf("lab subnet %s: want an IPv4 range of at least 8 addresses (/29)", s)
	}
	if p.Overlaps(netip.MustParsePrefix("10.0.0.0/8")) {
		return netip.Prefix{}, fmt.Errorf("lab subnet %s overlaps 10.0.0.0/8, which the NATs' LANs use", s)
	}
	return p, nil
}

// lastAddr is p's broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// opContext bounds one topology change.
func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// newNetnsLocked creates the lab's namespace <ID>-<suffix>. New interfaces
// in it get no IPv6 (no link-local addresses, router solicitations or DAD
// on the lab's links); loopback keeps ::1.
func (l *Lab) newNetnsLocked(ctx context.Context, suffix string) (*netns, error) {
	if l.closed {
		return nil, ErrClosed
	}
	ns, err := createNetns(ctx, l.ID+"-"+suffix)
	if err != nil {
		return nil, err
	}
	l.namespaces = append(l.namespaces, ns)
	if err := ns.sysctl("net/ipv6/conf/default/disable_ipv6", "1", true); err != nil {
		return nil, err
	}
	return ns, nil
}

// dropNetnsLocked removes a namespace of a node that failed to build.
func (l *Lab) dropNetnsLocked(ns *netns) {
	if err := ns.destroy(); err != nil {
		log.Warnw("remove namespace of a failed node", "netns", ns.name, "err", err)
	}
	l.namespaces = slices.DeleteFunc(l.namespaces, func(n *netns) bool { return n == ns })
}

// claimNameLocked reserves a host or NAT name.
func (l *Lab) claimNameLocked(name string) error {
	if l.closed {
		return ErrClosed
	}
	if !namePattern.MatchString(name) || name == "inet" {
		return fmt.Errorf("bad name %q: want 1-32 of [A-Za-z0-9_.-], starting with a letter or digit, not \"inet\"", name)
	}
	if l.names[name] {
		return fmt.Errorf("name %q is taken", name)
	}
	l.names[name] = true
	return nil
}

// allocAddrLocked hands out the next public address.
func (l *Lab) allocAddrLocked() (netip.Addr, error) {
	a := l.nextAddr
	if l.lastAddr.Less(a) {
		return netip.Addr{}, fmt.Errorf("lab subnet %s is full", l.Subnet)
	}
	l.nextAddr = a.Next()
	return a, nil
}

// link is a public host's or NAT's veth pair to the internet namespace.
type link struct {
	owner string     // the host's or NAT's name
	inet  string     // interface name in the internet namespace
	index uint32     // its index there
	node  string     // interface name on the host or NAT
	addr  netip.Addr // the node's public address

	delay time.Duration // guarded by Lab.mu
	loss  float64       // drop probability, guarded by Lab.mu
}

// newLinkLocked names the next public link of owner, with address addr.
func (l *Lab) newLinkLocked(owner string, addr netip.Addr) *link {
	l.nextLink++
	return &link{
		owner: owner,
		inet:  fmt.Sprintf("%s-i%d", l.ID, l.nextLink),
		node:  fmt.Sprintf("%s-p%d", l.ID, l.nextLink),
		addr:  addr,
	}
}

// attachLocked connects ns to the internet with the veth pair lk and gives
// ns lk's public address, a /32 route in the internet and a default route
// via the gateway. The pair is created directly in the two namespaces:
// nothing appears in the root namespace.
func (l *Lab) attachLocked(ctx context.Context, ns *netns, lk *link) error {
	if err := addVeth(ctx, lk.node, ns, lk.inet, l.inet); err != nil {
		return err
	}
	if err := l.inet.ip(ctx, fmt.Sprintf("link set %s up\nroute add %s/32 dev %s\n", lk.inet, lk.addr, lk.inet)); err != nil {
		return fmt.Errorf("attach to the internet: %w", err)
	}
	if err := l.inet.do(func() error {
		ifc, err := net.InterfaceByName(lk.inet)
		if err != nil {
			return err
		}
		lk.index = uint32(ifc.Index)
		return nil
	}); err != nil {
		return fmt.Errorf("attach to the internet: %w", err)
	}
	// With noprefixroute the node has no on-link route to the rest of the
	// subnet: every packet, also to a neighbour's address, goes to the
	// gateway and is forwarded by the internet namespace.
	if err := ns.ip(ctx, fmt.Sprintf("link set lo up\nlink set %[1]s up\naddr add %[2]s/%[3]d dev %[1]s noprefixroute\nroute add default via %[4]s dev %[1]s onlink\n",
		lk.node, lk.addr, l.Subnet.Bits(), l.Gateway)); err != nil {
		return fmt.Errorf("attach to the internet: %w", err)
	}
	return nil
}

// addVeth creates a veth pair with one end in each namespace.
func addVeth(ctx context.Context, name string, ns *netns, peer string, peerNS *netns) error {
	out, err := execCombined(ctx, "ip", "link", "add", name, "netns", ns.name, "type", "veth", "peer", "name", peer, "netns", peerNS.name)
	if err != nil {
		return fmt.Errorf("create veth %s-%s: %w: %s", name, peer, err, out)
	}
	return nil
}

// setDelayLocked changes a public link's delay.
func (l *Lab) setDelayLocked(ctx context.Context, lk *link, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("negative delay %v", d)
	}
	if l.closed {
		return ErrClosed
	}
	old := lk.delay
	lk.delay = d
	if err := l.applyDelaysLocked(ctx); err != nil {
		lk.delay = old
		return fmt.Errorf("set delay of %s to %v: %w", lk.owner, d, err)
	}
	if d != old {
		log.Debugw("link delay", "lab", l.ID, "link", lk.owner, "delay", d)
	}
	return nil
}

// applyDelaysLocked makes the delay queue and the internet's delay chain
// match the links' delays and losses. The queue learns new delays and
// losses before the rules send packets to it; a packet queued for a link
// whose delay is zero is accepted at once, unless it is dropped.
func (l *Lab) applyDelaysLocked(ctx context.Context) error {
	delays := map[uint32]time.Duration{}
	losses := map[uint32]float64{}
	var names []string
	for _, lk := range l.links {
		if lk.delay > 0 {
			delays[lk.index] = lk.delay
		}
		if lk.loss > 0 {
			losses[lk.index] = lk.loss
		}
		if lk.delay > 0 || lk.loss > 0 {
			names = append(names, lk.inet)
		}
	}
	if l.delay == nil {
		if len(names) == 0 {
			return nil
		}
		d, err := newDelayer(l.inet, l.lossSeed)
		if err != nil {
			return err
		}
		l.delay = d
	}
	l.delay.setDelays(delays)
	l.delay.setLosses(losses)
	return l.inet.iptablesRestore(ctx, delayRules(names), true)
}

// startIn starts cmd in ns unless the lab is closed, so that Close, which
// kills what runs in the lab's namespaces, cannot miss it.
func (l *Lab) startIn(ns *netns, cmd *exec.Cmd) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return ns.start(cmd)
}

// runIn runs a user's command to completion in ns and returns its combined
// output.
func (l *Lab) runIn(ctx context.Context, ns *netns, bin string, args ...string) ([]byte, error) {
	cmd, out := command(ctx, "", bin, args...)
	if err := l.startIn(ns, cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return out.Bytes(), err
}

// Close kills every process the lab runs, removes its namespaces (with
// their interfaces, routes, rules and queues) and, unless Config.Dir was
// given, its directory. It is safe to call more than once, and on a lab
// that failed halfway through construction.
//
// Sockets that Host.Listen, ListenPacket, DialContext or Do made keep their
// namespace alive, unnamed and disconnected, until they are closed.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.close() })
	return l.closeErr
}

func (l *Lab) close() error {
	l.mu.Lock()
	l.closed = true
	procs := slices.Clone(l.procs)
	namespaces := slices.Clone(l.namespaces)
	d := l.delay
	l.delay = nil
	l.mu.Unlock()

	var errs []error
	for _, p := range procs {
		p.signal(syscall.SIGKILL)
	}
	// Also whatever escaped the process groups, and Run's commands.
	for _, ns := range namespaces {
		if _, err := ns.killAll(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range procs {
		if err := p.awaitOutput(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if d != nil {
		errs = append(errs, d.close())
	}
	for _, ns := range slices.Backward(namespaces) {
		errs = append(errs, ns.remove())
	}
	// The lab makes nothing in the root namespace; make sure of it.
	if ifaces, err := net.Interfaces(); err == nil {
		var stray []string
		for _, ifc := range ifaces {
			if m := labNamePattern.FindStringSubmatch(ifc.Name); m != nil && m[1] == l.ID {
				stray = append(stray, ifc.Name)
			}
		}
		if len(stray) > 0 {
			errs = append(errs, fmt.Errorf("interfaces %v in the root namespace", stray), deleteRootLinks(stray))
		}
	}
	errs = append(errs, removeOwner(l.ID))
	if l.ownDir {
		errs = append(errs, os.RemoveAll(l.Dir))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close lab %s: %w", l.ID, err)
	}
	log.Debugw("lab closed", "lab", l.ID)
	return nil
}
