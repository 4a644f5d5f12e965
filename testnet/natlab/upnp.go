package natlab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// UPnP is a Cone NAT whose router also runs miniupnpd: hosts on its LAN
// can ask for port mappings with UPnP IGD or NAT-PMP, in secure mode (a
// host maps ports to itself only, 1024-65535). A mapped port is reachable
// from anywhere on the internet. It needs miniupnpd (its nftables build,
// as Debian installs it where iptables is iptables-nft) and nft, and a lab
// Subnet outside the ranges miniupnpd calls reserved, which include the
// documentation ranges of DefaultSubnet: use UPnPSubnet.
//
// Its value lies apart from the NAT types of topology.go, so that types
// added there never collide with it.
const UPnP NATType = 64

// UPnPSubnet is a lab range miniupnpd accepts as public. The lab is made
// of namespaces with no link to the machine's network, so its packets
// never reach the real owners of these addresses.
const UPnPSubnet = "198.20.0.0/24"

// upnpTable is the nftables table, in the NAT's namespace, that holds
// miniupnpd's chains. Packets must pass every base chain of a hook, so its
// own base chains accept and leave filtering to the NAT's iptables rules,
// which accept forwarded packets that miniupnpd's DNAT rules translated.
const upnpTable = "miniupnpd"

// AvailableUPnP reports whether a lab with a UPnP NAT can run here: nil, or
// an error that says what is missing and how to get it.
func AvailableUPnP() error {
	if err := Available(); err != nil {
		return err
	}
	if _, err := miniupnpdPath(); err != nil {
		return err
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return errors.New("natlab's UPnP NAT needs nft: apt-get install -y nftables")
	}
	return nil
}

// miniupnpdPath finds miniupnpd, which lives in /usr/sbin, often not on a
// user's PATH.
func miniupnpdPath() (string, error) {
	if p, err := exec.LookPath("miniupnpd"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/miniupnpd"
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", errors.New("natlab's UPnP NAT needs miniupnpd: apt-get install -y miniupnpd")
}

// checkUPnPSubnet refuses a lab range miniupnpd would not map on.
func checkUPnPSubnet(p netip.Prefix) error {
	for _, r := range []string{"192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15", "100.64.0.0/10", "192.0.0.0/24"} {
		if netip.MustParsePrefix(r).Overlaps(p) {
			return fmt.Errorf("miniupnpd maps nothing on a reserved public address (lab subnet %s overlaps %s): build the lab with Config{Subnet: natlab.UPnPSubnet}", p, r)
		}
	}
	return nil
}

// upnpForward is the NAT's iptables rule that lets in what miniupnpd
// forwards: new connections from the internet that its DNAT rules
// translated (only the mappings it granted). Other NATs get none.
func upnpForward(typ NATType, wan, lan string) string {
	if typ != UPnP {
		return ""
	}
	return fmt.Sprintf("-A FORWARD -i %s -o %s -m conntrack --ctstate DNAT -j ACCEPT\n", wan, lan)
}

// upnpNftRules are miniupnpd's chains, in a table of their own.
const upnpNftRules = `table inet ` + upnpTable + ` {
	chain forward { type filter hook forward priority 0; policy accept; jump forward_upnp; }
	chain forward_upnp { }
	chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_upnp; }
	chain prerouting_upnp { }
	chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_upnp; }
	chain postrouting_upnp { }
}
`

// miniupnpdConf is miniupnpd's configuration for a NAT.
func miniupnpdConf(n *NAT, bridge, dir string) (string, error) {
	var uuid [16]byte
	if _, err := rand.Read(uuid[:]); err != nil {
		return "", fmt.Errorf("miniupnpd uuid: %w", err)
	}
	u := hex.EncodeToString(uuid[:])
	return fmt.Sprintf(`ext_ifname=%s
listening_ip=%s
port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=no
notify_interval=30
clean_ruleset_interval=600
lease_file=%s
uuid=%s-%s-%s-%s-%s
upnp_table_name=%[9]s
upnp_nat_table_name=%[9]s
upnp_forward_chain=forward_upnp
upnp_nat_chain=prerouting_upnp
upnp_nat_postrouting_chain=postrouting_upnp
allow 1024-65535 %[10]s 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
`, n.link.node, bridge, filepath.Join(dir, "leases"), u[:8], u[8:12], u[12:16], u[16:20], u[20:], upnpTable, n.LAN), nil
}

// startMiniUPnPd sets up miniupnpd's chains in the NAT's namespace and
// runs it there, in the foreground, with its configuration, lease file
// and PID file in <Lab.Dir>/<nat>-miniupnpd/. Lab.Close kills it with the
// lab's other processes; its chains go with the namespace.
func (n *NAT) startMiniUPnPd(ctx context.Context) error {
	l := n.lab
	bin, err := miniupnpdPath()
	if err != nil {
		return err
	}
	if err := checkUPnPSubnet(l.Subnet); err != nil {
		return err
	}
	dir := filepath.Join(l.Dir, n.Name+"-miniupnpd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("miniupnpd directory: %w", err)
	}
	conf, err := miniupnpdConf(n, l.ID+"-lan", dir)
	if err != nil {
		return err
	}
	confPath := filepath.Join(dir, "miniupnpd.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return fmt.Errorf("write miniupnpd config: %w", err)
	}
	nft := exec.CommandContext(ctx, "nft", "-f", "-")
	nft.Stdin = strings.NewReader(upnpNftRules)
	var out strings.Builder
	nft.Stdout, nft.Stderr = &out, &out
	if err := l.startIn(n.ns, nft); err != nil {
		return fmt.Errorf("miniupnpd chains: %w", err)
	}
	if err := nft.Wait(); err != nil {
		return fmt.Errorf("miniupnpd chains: %w: %s", err, out.String())
	}
	router := &Host{Name: n.Name, Namespace: n.Namespace, IP: n.LAN.Addr().Next(), PublicIP: n.PublicIP, lab: l, ns: n.ns}
	p, err := router.StartCmd("miniupnpd", exec.Command(bin, "-d", "-f", confPath, "-P", filepath.Join(dir, "miniupnpd.pid")))
	if err != nil {
		return err
	}
	n.upnp = &upnpd{proc: p, leases: filepath.Join(dir, "leases")}
	// Ready once it listens for NAT-PMP (UDP 5351) on the LAN.
	for {
		if strings.Contains(p.Tail(20), "Listening for NAT-PMP") {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("miniupnpd exited: %w; its log ends:\n%s", p.Wait(), p.Tail(20))
		case <-ctx.Done():
			return fmt.Errorf("miniupnpd not ready: %w; its log ends:\n%s", ctx.Err(), p.Tail(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// upnpd is a UPnP NAT's miniupnpd.
type upnpd struct {
	proc   *Process
	leases string // its lease file: the mappings it granted
}

// MiniUPnPd is the process of a UPnP NAT's miniupnpd; nil for other NATs.
func (n *NAT) MiniUPnPd() *Process {
	if n.upnp == nil {
		return nil
	}
	return n.upnp.proc
}

// UPnPMapping is a port mapping a UPnP NAT's miniupnpd granted.
type UPnPMapping struct {
	Protocol string         // "tcp" or "udp"
	External uint16         // the port on the NAT's public address
	Internal netip.AddrPort // the LAN host and port it leads to
	Expires  time.Time      // zero for a mapping without a lease time
	Desc     string         // what the client called it
}

// UPnPMappings lists the mappings miniupnpd holds now, from its lease file.
func (n *NAT) UPnPMappings() ([]UPnPMapping, error) {
	if n.upnp == nil {
		return nil, fmt.Errorf("NAT %s runs no miniupnpd (type %v)", n.Name, n.Type)
	}
	f, err := os.Open(n.upnp.leases)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("miniupnpd leases: %w", err)
	}
	defer f.Close()
	var out []UPnPMapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m, err := parseLease(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("miniupnpd leases of %s: %w", n.Name, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("miniupnpd leases: %w", err)
	}
	return out, nil
}

// parseLease reads a line of miniupnpd's lease file:
// PROTO:EXTPORT:INTADDR:INTPORT:EXPIRES:DESC (EXPIRES in Unix seconds, 0
// for none; DESC may contain colons).
func parseLease(line string) (UPnPMapping, error) {
	f := strings.SplitN(line, ":", 6)
	if len(f) != 6 {
		return UPnPMapping{}, fmt.Errorf("lease %q: want 6 fields", line)
	}
	ext, err1 := strconv.ParseUint(f[1], 10, 16)
	ip, err2 := netip.ParseAddr(f[2])
	in, err3 := strconv.ParseUint(f[3], 10, 16)
	exp, err4 := strconv.ParseInt(f[4], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return UPnPMapping{}, fmt.Errorf("lease %q: %w", line, err)
	}
	m := UPnPMapping{Protocol: strings.ToLower(f[0]), External: uint16(ext), Internal: netip.AddrPortFrom(ip, uint16(in)), Desc: f[5]}
	if exp > 0 {
		m.Expires = time.Unix(exp, 0)
	}
	return m, nil
}
