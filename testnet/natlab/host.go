package natlab

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
)

// Run runs a command to completion inside the host's namespace (the
// product's CLI, for instance) and returns its combined output. Ending ctx
// kills the command's process group. Close kills commands still running.
func (h *Host) Run(ctx context.Context, bin string, args ...string) ([]byte, error) {
	cmd, out := command(ctx, "", bin, args...)
	err := h.RunCmd(cmd)
	return out.Bytes(), err
}

// RunCmd runs cmd, as the caller set it up (environment, directory,
// standard streams), to completion inside the host's namespace, in a
// process group of its own (unless it asks for a session of its own).
func (h *Host) RunCmd(cmd *exec.Cmd) error {
	if err := h.lab.startIn(h.ns, cmd); err != nil {
		return fmt.Errorf("run %s on %s: %w", cmd.Path, h.Name, err)
	}
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("run %s on %s: %w", cmd.Path, h.Name, err)
	}
	return nil
}

// Do runs fn on an OS thread inside the host's namespace: the sockets fn
// opens (net.Listen, net.Dial, net.ListenConfig, a net.Dialer with a fixed
// local port…) live in that namespace and stay there. Only sockets fn
// opens itself do: not those of goroutines it starts, nor those a name
// lookup opens, so dial IP addresses.
func (h *Host) Do(fn func() error) error { return h.ns.do(fn) }

// DialContext connects to addr from inside the host's namespace, so that
// a test reaches what listens there, also on 127.0.0.1. It fits
// http.Transport.DialContext. A host name in addr is resolved outside the
// lab first (the lab has no DNS): "localhost" means 127.0.0.1.
func (h *Host) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, h.Name, err)
	}
	ip, err := resolve(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, h.Name, err)
	}
	var c net.Conn
	err = h.ns.do(func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, h.Name, err)
	}
	return c, nil
}

// resolve turns a host name into one address, IPv4 first.
func resolve(ctx context.Context, host string) (netip.Addr, error) {
	if host == "" || host == "localhost" {
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, ip := range ips {
		if ip.Unmap().Is4() {
			return ip.Unmap(), nil
		}
	}
	return ips[0], nil
}

// Listen listens on addr inside the host's namespace (address "" or
// ":port" is every address there).
func (h *Host) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := h.ns.do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", h.Name, err)
	}
	return ln, nil
}

// ListenPacket opens a packet socket on addr inside the host's namespace.
func (h *Host) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := h.ns.do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", h.Name, err)
	}
	return pc, nil
}
