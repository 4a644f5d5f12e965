package procnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
)

// loopback are the listen addresses of every process: TCP and QUIC on
// 127.0.0.1, ports chosen by the kernel.
var loopback = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Config configures a network.
type Config struct {
	// Relay starts a parley-relay supernode, so that daemons started with
	// --nat-imitation or --private reach each other through it.
	Relay bool
}

// Network is a rendezvous server, maybe a supernode, and the daemons
// added to it, each a process of its own.
type Network struct {
	// Dir holds every process's data and log.
	Dir string
	// Rendezvous is the parley-rendezvous process, reached at
	// RendezvousAddr (a TCP multiaddr ending in /p2p/<peer ID>).
	Rendezvous     *Proc
	RendezvousAddr string
	// Relay is the parley-relay process, reached at RelayAddr; nil
	// without Config.Relay.
	Relay     *Proc
	RelayAddr string

	tb   testing.TB
	bins Binaries
}

// Start builds the commands (once per process) and starts the rendezvous
// server and, with cfg.Relay, a supernode. They are killed, and Dir
// removed, in tb's Cleanup.
func Start(ctx context.Context, tb testing.TB, cfg Config) (*Network, error) {
	tb.Helper()
	n := &Network{Dir: tb.TempDir(), tb: tb, bins: Build(tb)}
	// Registered before any process starts, so it runs after every
	// process is killed (Cleanup runs last-registered first).
	tb.Cleanup(n.printLogsIfFailed)
	var err error
	n.Rendezvous, err = startProc(tb, "rendezvous", n.logPath("rendezvous"), n.bins.Rendezvous, nil,
		append([]string{"--local", "--data", filepath.Join(n.Dir, "rendezvous"), "--admin", ""}, loopback...)...)
	if err != nil {
		return nil, err
	}
	if n.RendezvousAddr, err = awaitTCPAddr(ctx, n.Rendezvous, "  "); err != nil {
		return nil, err
	}
	if !cfg.Relay {
		return n, nil
	}
	n.Relay, err = startProc(tb, "relay", n.logPath("relay"), n.bins.Relay, nil,
		append([]string{"--identity", filepath.Join(n.Dir, "relay", "identity.key"), "--rendezvous", n.RendezvousAddr,
			"--admin", "", "--drain", "0s"}, loopback...)...)
	if err != nil {
		return nil, err
	}
	if n.RelayAddr, err = awaitTCPAddr(ctx, n.Relay, "  listening on "); err != nil {
		return nil, err
	}
	return n, nil
}

// Binaries are the commands the network runs.
func (n *Network) Binaries() Binaries { return n.bins }

func (n *Network) logPath(name string) string { return filepath.Join(n.Dir, name+".log") }

// printLogsIfFailed prints the tail of every process's log when the test
// failed.
func (n *Network) printLogsIfFailed() {
	if !n.tb.Failed() {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(n.Dir, "*.log"))
	for _, l := range logs {
		n.tb.Logf("last lines of %s:\n%s", l, tail(l, 40))
	}
}

// awaitTCPAddr waits for the line prefix+"/ip4/127.0.0.1/tcp/…/p2p/…"
// that parley-rendezvous and parley-relay print, and returns its address.
func awaitTCPAddr(ctx context.Context, p *Proc, prefix string) (string, error) {
	line, err := p.awaitLine(ctx, "its TCP address", func(l string) bool {
		return strings.HasPrefix(l, prefix+"/ip4/127.0.0.1/tcp/") && strings.Contains(l, "/p2p/")
	})
	return strings.TrimPrefix(line, prefix), err
}

// Daemon is a parley daemon process and the client of its API.
type Daemon struct {
	Name string
	// Dir is the daemon's data directory (--data).
	Dir string
	// Peer is the device's peer ID.
	Peer string
	Proc *Proc
	API  *api.Client

	n    *Network
	args []string
}

// AddDaemon starts parley daemon for a new data directory Dir/name,
// listening on loopback, never serving as a supernode, with the extra
// daemon flags given (--nat-imitation, --private…), and waits until its
// API answers.
func (n *Network) AddDaemon(ctx context.Context, name string, flags ...string) (*Daemon, error) {
	return n.AddDaemonListen(ctx, name, loopback, flags...)
}

// start runs the daemon process and dials its API.
func (d *Daemon) start(ctx context.Context) error {
	p, err := startProc(d.n.tb, d.Name, d.n.logPath(d.Name), d.n.bins.Parley, nil, d.args...)
	if err != nil {
		return err
	}
	line, err := p.awaitLine(ctx, "its start-up line", func(l string) bool { return strings.HasPrefix(l, "{") })
	if err != nil {
		return errors.Join(err, p.Kill())
	}
	var started struct {
		Peer string `json:"peer"`
		API  string `json:"api"`
	}
	if err := json.Unmarshal([]byte(line), &started); err != nil {
		return errors.Join(fmt.Errorf("%s's start-up line %q: %w", d.Name, line, err), p.Kill())
	}
	// The line comes after api.json is written: Dial reads this run's.
	c, err := api.Dial(d.Dir)
	if err != nil {
		return errors.Join(fmt.Errorf("dial %s's API: %w", d.Name, err), p.Kill())
	}
	d.Proc, d.API, d.Peer = p, c, started.Peer
	return nil
}

// Kill ends the daemon with SIGKILL, as a crash or the OOM killer would:
// nothing is flushed or closed. Its data directory stays.
func (d *Daemon) Kill() error { return d.Proc.Kill() }

// Restart starts the daemon again on the same data directory with the
// same flags, after Kill or when it exited.
func (d *Daemon) Restart(ctx context.Context) error {
	select {
	case <-d.Proc.Exited():
	default:
		return fmt.Errorf("restart %s: it is still running", d.Name)
	}
	// The killed run's api.json names a dead address; the new run writes
	// its own before it prints the start-up line start waits for.
	if err := os.Remove(filepath.Join(d.Dir, api.InfoFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restart %s: %w", d.Name, err)
	}
	return d.start(ctx)
}

// Status is the daemon's status.
func (d *Daemon) Status(ctx context.Context) (apitype.Status, error) {
	s, err := d.API.Status(ctx)
	if err != nil {
		return s, fmt.Errorf("status of %s: %w", d.Name, err)
	}
	return s, nil
}

// SignIn registers an account named after the daemon and waits until the
// daemon is logged in.
func (d *Daemon) SignIn(ctx context.Context, password string) error {
	if _, err := d.API.Register(ctx, d.Name, password); err != nil {
		return fmt.Errorf("register %s: %w", d.Name, err)
	}
	return d.await(ctx, "is logged in", func(s apitype.Status) bool { return s.LoggedIn })
}

// AwaitRelay waits until the daemon holds a relay reservation on a
// supernode and advertises a circuit address (a daemon with
// --nat-imitation or --private is reachable only so).
func (d *Daemon) AwaitRelay(ctx context.Context) error {
	return d.await(ctx, "holds a relay reservation", func(s apitype.Status) bool {
		return len(s.Supernodes) > 0 && slices.ContainsFunc(s.Addrs, func(a string) bool { return strings.Contains(a, "/p2p-circuit") })
	})
}

// MakeContacts makes a and b contacts the way users do (a asks, b sees
// the request and accepts) and waits until each sees the other online.
func MakeContacts(ctx context.Context, a, b *Daemon) error {
	if _, err := a.API.RequestContact(ctx, b.Name); err != nil {
		return fmt.Errorf("%s asks %s to be a contact: %w", a.Name, b.Name, err)
	}
	if err := b.await(ctx, "sees "+a.Name+"'s request", func(s apitype.Status) bool { return slices.Contains(s.Incoming, a.Name) }); err != nil {
		return err
	}
	if err := b.API.AcceptContact(ctx, a.Name); err != nil {
		return fmt.Errorf("%s accepts %s: %w", b.Name, a.Name, err)
	}
	if err := a.AwaitOnline(ctx, b.Name); err != nil {
		return err
	}
	return b.AwaitOnline(ctx, a.Name)
}

// AwaitOnline waits until the daemon sees contact online.
func (d *Daemon) AwaitOnline(ctx context.Context, contact string) error {
	return d.await(ctx, "sees "+contact+" online", func(s apitype.Status) bool {
		return slices.ContainsFunc(s.Contacts, func(c apitype.ContactStatus) bool { return c.Username == contact && c.Online })
	})
}

// await polls the daemon's status every 50 ms until ok holds or ctx ends.
func (d *Daemon) await(ctx context.Context, what string, ok func(apitype.Status) bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		s, err := d.API.Status(ctx)
		if err == nil && ok(s) {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting until %s %s: %w (last status error: %v)", d.Name, what, ctx.Err(), last)
		case <-d.Proc.Exited():
			return fmt.Errorf("waiting until %s %s: the daemon exited: %v", d.Name, what, d.Proc.err)
		case <-t.C:
		}
	}
}
