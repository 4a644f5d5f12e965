// Package labnet runs a Parley network in the NAT lab (package
// testnet/natlab): the real binaries, built with the natlab build tag, in
// network namespaces behind real Linux NAT. A rendezvous server and
// supernodes run on public hosts; each client runs `parley daemon` on a
// host behind a NAT of its own, and tests drive it through its local API,
// as the CLI does.
//
// It needs root (see natlab.Available); tests skip without it.
//
//	n := labnet.Start(t, labnet.Config{Supernodes: 2, Delay: 20 * time.Millisecond})
//	alice := n.AddClient(t, "alice", natlab.Cone)
//	bob := n.AddClient(t, "bob", natlab.Symmetric)
//	n.MakeContacts(t, alice, bob)
//	m := alice.MustSend(t, "bob", "hi")
package labnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/testnet/natlab"
)

// Config configures a lab network. The zero value is valid.
type Config struct {
	// Supernodes is how many parley-relay supernodes to start. Zero
	// means 2.
	Supernodes int
	// Delay is the one-way delay of every public link (the rendezvous
	// server's, each supernode's and each client NAT's).
	Delay time.Duration
	// Env is added to every process's environment (GOLOG_LOG_LEVEL=...).
	Env []string
	// Subnet is the lab's public range (natlab.Config.Subnet); a lab with
	// a natlab.UPnP NAT needs natlab.UPnPSubnet.
	Subnet string
	// CloudSupernodes puts every supernode on a cloud-like machine: a
	// private interface address behind a one-to-one NAT, announcing the
	// NAT's public address (--announce).
	CloudSupernodes bool
}

// Net is a Parley network in a NAT lab.
type Net struct {
	Lab        *natlab.Lab
	Rendezvous *Server
	Supernodes []*Server
	cfg        Config
	bin        string
}

// Server is a rendezvous server or supernode on a public host.
type Server struct {
	Host *natlab.Host
	Proc *natlab.Process
	// Addr is its multiaddr with /p2p/<peer ID>, on the public address.
	Addr string
	// Peer is its peer ID.
	Peer string
	args []string
}

// Client is a client daemon on a host behind a NAT of its own.
type Client struct {
	Name string
	NAT  *natlab.NAT
	Host *natlab.Host
	Dir  string
	Proc *natlab.Process
	API  *api.Client
	net  *Net

	extra []string // daemon flags, kept across restarts
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// Binaries builds parley, parley-relay and parley-rendezvous with the
// natlab build tag once per test process and returns their directory.
// Call Cleanup from TestMain to remove it.
func Binaries() (string, error) {
	buildOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			buildErr = fmt.Errorf("find the module root: %w", err)
			return
		}
		root := strings.TrimSpace(string(out))
		if binDir, buildErr = os.MkdirTemp("", "parley-labnet-bin-"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-tags", "natlab", "-o", binDir+"/",
			"./cmd/parley", "./cmd/parley-relay", "./cmd/parley-rendezvous")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build the lab binaries: %v\n%s", err, out)
		}
	})
	return binDir, buildErr
}

// Cleanup removes the binaries Binaries built.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// Start builds a lab with a rendezvous server and cfg.Supernodes
// supernodes on public hosts, and waits until the directory lists them.
// Everything is stopped and removed when the test ends.
func Start(t testing.TB, cfg Config) *Net {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := New(ctx, natlab.NewForTest(t, natlab.Config{Subnet: cfg.Subnet}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// New is Start for programs: it starts the network in lab, which the
// caller made and closes (closing the lab stops every process).
func New(ctx context.Context, lab *natlab.Lab, cfg Config) (*Net, error) {
	n := &Net{Lab: lab, cfg: cfg}
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	n.bin = bin
	if cfg.Supernodes == 0 {
		cfg.Supernodes = 2
	}
	n.cfg = cfg

	h, err := n.Lab.AddPublicHost("rendezvous", cfg.Delay)
	if err != nil {
		return nil, err
	}
	n.Rendezvous = &Server{Host: h, args: []string{
		"--data", filepath.Join(n.Lab.Dir, "rendezvous"), "--local", "--admin", "",
		"--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/udp/4001/quic-v1",
	}}
	if err := n.start(ctx, n.Rendezvous, "parley-rendezvous"); err != nil {
		return nil, err
	}
	for i := range cfg.Supernodes {
		name := fmt.Sprintf("supernode%d", i+1)
		h, err := n.addSupernodeHost(name)
		if err != nil {
			return nil, err
		}
		s := &Server{Host: h, args: []string{
			"--identity", filepath.Join(n.Lab.Dir, name, "identity.key"), "--rendezvous", n.Rendezvous.Addr,
			"--listen", "/ip4/0.0.0.0/tcp/4002", "--listen", "/ip4/0.0.0.0/udp/4002/quic-v1", "--drain", "5s",
		}}
		if h.NAT != nil {
			s.args = append(s.args, "--announce", "/ip4/"+h.PublicIP.String()+"/tcp/4002",
				"--announce", "/ip4/"+h.PublicIP.String()+"/udp/4002/quic-v1")
		}
		if err := n.start(ctx, s, "parley-relay"); err != nil {
			return nil, err
		}
		n.Supernodes = append(n.Supernodes, s)
	}
	return n, nil
}

// addSupernodeHost adds a supernode's host: public, or behind a
// one-to-one NAT of its own (Config.CloudSupernodes).
func (n *Net) addSupernodeHost(name string) (*natlab.Host, error) {
	if !n.cfg.CloudSupernodes {
		return n.Lab.AddPublicHost(name, n.cfg.Delay)
	}
	nat, err := n.Lab.AddNAT(name+"-nat", natlab.Cone, n.cfg.Delay)
	if err != nil {
		return nil, err
	}
	h, err := nat.AddHost(name)
	if err != nil {
		return nil, err
	}
	return h, nat.OneToOne(h)
}

// start runs a server's binary and reads its public address from its
// output.
func (n *Net) start(ctx context.Context, s *Server, bin string) error {
	cmd := exec.Command(filepath.Join(n.bin, bin), s.args...)
	cmd.Env = append(os.Environ(), n.cfg.Env...)
	p, err := s.Host.StartCmd(bin, cmd)
	if err != nil {
		return err
	}
	s.Proc = p
	line := regexp.MustCompile(`(/ip4/` + regexp.QuoteMeta(s.Host.PublicIP.String()) + `/tcp/\d+/p2p/(\S+))\s*$`)
	m, err := p.WaitOutput(ctx, line)
	if err != nil {
		return fmt.Errorf("%s on %s did not print its address: %w", bin, s.Host.Name, err)
	}
	s.Addr, s.Peer = m[1], m[2]
	return nil
}

// Metrics reads a supernode's Prometheus series without labels (name →
// value) from its admin listener, at its default address in its host's
// namespace.
func (s *Server) Metrics(ctx context.Context) (map[string]float64, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: s.Host.DialContext}}
	defer client.CloseIdleConnections()
	m, err := tstest.Metrics(ctx, client, "http://127.0.0.1:9465/metrics")
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", s.Host.Name, err)
	}
	return m, nil
}

// Kill crashes the server (SIGKILL): its host stays, its sockets close.
func (s *Server) Kill() error { return s.Proc.Kill() }

// Stop stops the server gracefully (SIGTERM), waiting up to timeout.
func (s *Server) Stop(timeout time.Duration) error { return s.Proc.Stop(timeout) }

// AddClient starts a client daemon named name behind a new NAT of the
// given type, registers the account name (password name+"-password") and
// waits until it is logged in and holds its relay reservations.
func (n *Net) AddClient(t testing.TB, name string, typ natlab.NATType, extra ...string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := n.NewClient(ctx, name, typ, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewClient is AddClient for programs.
func (n *Net) NewClient(ctx context.Context, name string, typ natlab.NATType, extra ...string) (*Client, error) {
	nat, err := n.Lab.AddNAT(name+"-nat", typ, n.cfg.Delay)
	if err != nil {
		return nil, err
	}
	h, err := nat.AddHost(name)
	if err != nil {
		return nil, err
	}
	c := &Client{Name: name, NAT: nat, Host: h, Dir: filepath.Join(n.Lab.Dir, name), net: n}
	if err := c.start(ctx, extra...); err != nil {
		return nil, err
	}
	if _, err := c.API.Register(ctx, name, name+"-password"); err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	if err := c.AwaitRelays(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// AddPublicClient starts a client daemon named name on a public host (no
// NAT), registers it and waits until it is logged in.
func (n *Net) AddPublicClient(t testing.TB, name string, extra ...string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := n.NewPublicClient(ctx, name, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NewPublicClient is AddPublicClient for programs.
func (n *Net) NewPublicClient(ctx context.Context, name string, extra ...string) (*Client, error) {
	h, err := n.Lab.AddPublicHost(name, n.cfg.Delay)
	if err != nil {
		return nil, err
	}
	c := &Client{Name: name, Host: h, Dir: filepath.Join(n.Lab.Dir, name), net: n}
	if err := c.start(ctx, extra...); err != nil {
		return nil, err
	}
	if _, err := c.API.Register(ctx, name, name+"-password"); err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	return c, nil
}

func (c *Client) start(ctx context.Context, extra ...string) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return err
	}
	os.Remove(filepath.Join(c.Dir, api.InfoFile))
	if extra != nil {
		c.extra = extra
	}
	args := append([]string{"--data", c.Dir, "daemon", "--rendezvous", c.net.Rendezvous.Addr}, c.extra...)
	cmd := exec.Command(filepath.Join(c.net.bin, "parley"), args...)
	cmd.Env = append(os.Environ(), c.net.cfg.Env...)
	p, err := c.Host.StartCmd("parley", cmd)
	if err != nil {
		return err
	}
	c.Proc = p
	if _, err := p.WaitOutput(ctx, regexp.MustCompile(`^parley daemon: device \S+`)); err != nil {
		return fmt.Errorf("daemon of %s did not start: %w", c.Name, err)
	}
	if c.API, err = api.Dial(c.Dir, c.Host.DialContext); err != nil {
		return err
	}
	return nil
}

// Stop stops the daemon (SIGTERM); it logs out.
func (c *Client) Stop() error {
	if err := c.Proc.Stop(10 * time.Second); err != nil && !errors.Is(err, natlab.ErrClosed) {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			return err
		}
	}
	return nil
}

// Start starts a stopped daemon again on the same data; it logs in
// again by itself.
func (c *Client) Start(ctx context.Context) error { return c.start(ctx) }

// Restart stops the daemon and starts it again.
func (c *Client) Restart(ctx context.Context) error {
	if err := c.Stop(); err != nil {
		return err
	}
	return c.start(ctx)
}

// Status is the daemon's status.
func (c *Client) Status(ctx context.Context) (apitype.Status, error) { return c.API.Status(ctx) }

// AwaitRelays waits until the client is logged in and advertises circuit
// addresses through two supernodes (or all, if fewer).
func (c *Client) AwaitRelays(ctx context.Context) error {
	want := min(2, len(c.net.Supernodes))
	return tstest.Poll(ctx, func() error {
		s, err := c.Status(ctx)
		if err != nil {
			return fmt.Errorf("%s's status: %w", c.Name, err)
		}
		if !s.LoggedIn || len(s.Supernodes) < want {
			return fmt.Errorf("%s holds relay slots on %v (logged in %v), want %d", c.Name, s.Supernodes, s.LoggedIn, want)
		}
		return nil
	})
}

// Contact returns how c sees a contact.
func (c *Client) Contact(ctx context.Context, name string) (apitype.ContactStatus, bool) {
	s, err := c.Status(ctx)
	if err != nil {
		return apitype.ContactStatus{}, false
	}
	i := slices.IndexFunc(s.Contacts, func(cs apitype.ContactStatus) bool { return cs.Username == name })
	if i < 0 {
		return apitype.ContactStatus{}, false
	}
	return s.Contacts[i], true
}

// AwaitPath waits until c's connection to the contact satisfies ok and
// returns the path label.
func (c *Client) AwaitPath(ctx context.Context, contact string, ok func(path string) bool) (string, error) {
	var path string
	err := tstest.Poll(ctx, func() error {
		cs, found := c.Contact(ctx, contact)
		path = cs.Path
		if !found || !ok(path) {
			return fmt.Errorf("%s's path to %s stayed %q", c.Name, contact, path)
		}
		return nil
	})
	return path, err
}

// MakeContacts makes a and b contacts and waits until each sees the other
// online with circuit addresses, or with a direct address on its public IP
// (a client its router maps ports for needs no relay).
func (n *Net) MakeContacts(t testing.TB, a, b *Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := Befriend(ctx, a, b); err != nil {
		t.Fatal(err)
	}
}

// Befriend is MakeContacts for programs.
func Befriend(ctx context.Context, a, b *Client) error {
	if _, err := a.API.RequestContact(ctx, b.Name); err != nil {
		return fmt.Errorf("%s asks %s to be a contact: %w", a.Name, b.Name, err)
	}
	if err := tstest.Poll(ctx, func() error {
		s, err := b.Status(ctx)
		if err != nil {
			return fmt.Errorf("%s's status: %w", b.Name, err)
		}
		if !slices.Contains(s.Incoming, a.Name) {
			return fmt.Errorf("%s's incoming requests %v lack %s's", b.Name, s.Incoming, a.Name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("%s never saw %s's request: %w", b.Name, a.Name, err)
	}
	if err := b.API.AcceptContact(ctx, a.Name); err != nil {
		return fmt.Errorf("%s accepts %s: %w", b.Name, a.Name, err)
	}
	for _, pair := range [][2]*Client{{a, b}, {b, a}} {
		if err := tstest.Poll(ctx, func() error {
			cs, ok := pair[0].Contact(ctx, pair[1].Name)
			public := "/ip4/" + pair[1].Host.PublicIP.String() + "/"
			reachable := slices.ContainsFunc(cs.Addrs, func(s string) bool {
				return strings.Contains(s, "/p2p-circuit") || strings.HasPrefix(s, public)
			})
			if !ok || !cs.Online || !reachable {
				return fmt.Errorf("%s sees %s as %+v (found %v)", pair[0].Name, pair[1].Name, cs, ok)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("%s never saw %s online with circuit or public addresses: %w", pair[0].Name, pair[1].Name, err)
		}
	}
	return nil
}

// Send sends a chat message.
func (c *Client) Send(ctx context.Context, to, body string) (apitype.Message, error) {
	return c.API.Send(ctx, to, body)
}

// MustSend sends a message and fails the test unless it was delivered.
func (c *Client) MustSend(t testing.TB, to, body string) apitype.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := c.Send(ctx, to, body)
	if err != nil || m.State != apitype.MessageDelivered {
		t.Fatalf("%s sends %q to %s: %+v, %v", c.Name, body, to, m, err)
	}
	return m
}

// History is c's history with a contact.
func (c *Client) History(ctx context.Context, contact string) ([]apitype.Message, error) {
	return c.API.History(ctx, apitype.HistoryQuery{Contact: contact, Limit: apitype.MaxHistoryLimit})
}

// Probe streams size bytes to a contact.
func (c *Client) Probe(ctx context.Context, contact string, size int64) (apitype.ProbeResult, error) {
	return c.API.Probe(ctx, contact, size)
}

// Log is the end of the client daemon's log, for failure messages.
func (c *Client) Log() string {
	b, _ := os.ReadFile(c.Proc.LogPath())
	if i := len(b) - 8<<10; i > 0 {
		b = b[bytes.IndexByte(b[i:], '\n')+i+1:]
	}
	return string(b)
}
