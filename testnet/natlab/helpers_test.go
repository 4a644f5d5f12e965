package natlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// must(f())(t) is f's value, or fails t with f's error.
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// udpObserver answers every datagram on h:port with the sender's address
// as the server saw it, followed by the payload: "ip:port payload".
func udpObserver(t testing.TB, h *Host, port int) netip.AddrPort {
	t.Helper()
	pc := must(h.ListenPacket("udp4", fmt.Sprintf(":%d", port)))(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			reply := append([]byte(from.String()+" "), buf[:n]...)
			pc.WriteTo(reply, from)
		}
	})
	t.Cleanup(func() { pc.Close(); wg.Wait() })
	return netip.AddrPortFrom(h.IP, uint16(port))
}

// tcpObserver accepts connections on h:port and writes the peer's address
// as the server saw it, "ip:port\n", then echoes what it reads.
func tcpObserver(t testing.TB, h *Host, port int) netip.AddrPort {
	t.Helper()
	ln := must(h.Listen("tcp4", fmt.Sprintf(":%d", port)))(t)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				fmt.Fprintf(c, "%s\n", c.RemoteAddr())
				io.Copy(c, c)
			})
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return netip.AddrPortFrom(h.IP, uint16(port))
}

// udpAsk sends payload from pc to an observer and returns the address the
// observer saw.
func udpAsk(t testing.TB, pc net.PacketConn, to netip.AddrPort, payload string) netip.AddrPort {
	t.Helper()
	if _, err := pc.WriteTo([]byte(payload), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
	pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no answer from %s: %v", to, err)
		}
		seen, got, ok := strings.Cut(string(buf[:n]), " ")
		if !ok || got != payload {
			continue // a late answer to an earlier question
		}
		return netip.MustParseAddrPort(seen)
	}
}

// tcpAsk reads the address the observer behind c saw, and checks the echo.
func tcpAsk(t testing.TB, c net.Conn) netip.AddrPort {
	t.Helper()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read observed address from %s: %v", c.RemoteAddr(), err)
	}
	fmt.Fprintf(c, "echo\n")
	if echo, err := r.ReadString('\n'); err != nil || echo != "echo\n" {
		t.Fatalf("echo from %s: got %q, %v", c.RemoteAddr(), echo, err)
	}
	return netip.MustParseAddrPort(strings.TrimSpace(line))
}

// dialFrom connects from h, bound to local port port (SO_REUSEADDR, so
// that several connections can share it), to to.
func dialFrom(t testing.TB, h *Host, port int, to netip.AddrPort) net.Conn {
	t.Helper()
	var c net.Conn
	err := h.Do(func() error {
		d := net.Dialer{
			Timeout:   3 * time.Second,
			LocalAddr: &net.TCPAddr{Port: port},
			Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
				})
				return errors.Join(err, serr)
			},
		}
		var err error
		c, err = d.Dial("tcp4", to.String())
		return err
	})
	if err != nil {
		t.Fatalf("dial %s from %s port %d: %v", to, h.Name, port, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// netnsList is `ip netns list`.
func netnsList(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	return string(out)
}

// rootLinks is `ip -o link` in the root namespace.
func rootLinks(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -o link: %v: %s", err, out)
	}
	return string(out)
}

// assertNoTrace checks that nothing named after lab id is left: no
// namespace, no root interface, no owner record.
func assertNoTrace(t testing.TB, id string) {
	t.Helper()
	if list := netnsList(t); strings.Contains(list, id) {
		t.Errorf("namespaces of lab %s left:\n%s", id, list)
	}
	if links := rootLinks(t); strings.Contains(links, id) {
		t.Errorf("interfaces of lab %s left in the root namespace:\n%s", id, links)
	}
	if _, err := os.Stat(ownerDir + "/" + id); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("owner record of lab %s: got %v, want it gone", id, err)
	}
}

// labInodes returns the namespace inodes of every namespace lab id has.
func labInodes(t testing.TB, id string) map[uint64]string {
	t.Helper()
	inodes := map[uint64]string{}
	for _, name := range strings.Fields(netnsList(t)) {
		if strings.HasPrefix(name, id+"-") {
			ino, err := newNetnsHandle(name).inode()
			if err != nil {
				t.Fatal(err)
			}
			inodes[ino] = name
		}
	}
	return inodes
}

// socketNamespaces returns the namespace inode of every socket this process
// has open.
func socketNamespaces(t testing.TB) map[uint64]bool {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[uint64]bool{}
	for _, e := range entries {
		fd, _ := strconv.Atoi(e.Name())
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		nsfd, err := unix.IoctlRetInt(fd, unix.SIOCGSKNS)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		if unix.Fstat(nsfd, &st) == nil {
			inodes[st.Ino] = true
		}
		unix.Close(nsfd)
	}
	return inodes
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool { return !zombie(pid) }

// testContext is a context for one test step.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
