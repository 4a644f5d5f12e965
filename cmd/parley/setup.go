package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/node"
)

// daemonSetup is a daemon started on a data directory that names no
// rendezvous server: the API and the UI run, the engine waits until the
// network is chosen (api.Setup, POST /api/network).
type daemonSetup struct {
	cfg      app.Config // every setting but the rendezvous server (settingsConfig)
	dir      *datadir.Dir
	settings datadir.Settings // the merged settings, without Rendezvous
	peer     peer.ID

	mu     sync.Mutex // guards the following
	engine *app.Engine
}

// Status is the device with what the setup suggests.
func (d *daemonSetup) Status(context.Context) (apitype.Status, error) {
	sug, from := suggestRendezvous()
	return apitype.Status{
		Peer:         d.peer.String(),
		Reachability: "unknown",
		NAT:          apitype.NATStatus{TCP: apitype.NATUnknown, UDP: apitype.NATUnknown},
		Setup:        &apitype.NetworkSetup{Suggested: sug, SuggestedFrom: from},
	}, nil
}

// joinTimeout bounds the wait for the server to answer a new network.
const joinTimeout = 10 * time.Second

// Join checks the address, starts the engine on it, checks the server
// answers, and remembers the address in the data directory as
// --rendezvous would be.
func (d *daemonSetup) Join(ctx context.Context, rendezvous string) (apitype.Client, error) {
	ai, err := parseRendezvous(rendezvous)
	if err != nil {
		return nil, err
	}
	s := d.settings
	s.Rendezvous = strings.TrimSpace(rendezvous)
	cfg := d.cfg
	cfg.Rendezvous = ai
	e, err := app.Start(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	if err := e.Node().Connect(ctx, ai); err != nil {
		e.Close()
		// The dial's own error (every address tried, backoffs) is for
		// logs; the person is told what to check.
		return nil, fmt.Errorf("%w: nothing answers at %s: is the rendezvous server running, and is the address right?", app.ErrServerUnreachable, s.Rendezvous)
	}
	if err := d.dir.SaveSettings(s); err != nil {
		e.Close()
		return nil, err
	}
	d.mu.Lock()
	d.engine = e
	d.mu.Unlock()
	return e, nil
}

// close closes the engine, if the network was chosen.
func (d *daemonSetup) close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.engine == nil {
		return nil
	}
	return d.engine.Close()
}

// parseRendezvous checks a rendezvous address a person typed, with an
// error that says what is wrong with it (wrapping app.ErrInvalidArgument).
func parseRendezvous(s string) (peer.AddrInfo, error) {
	s = strings.TrimSpace(s)
	const want = "want the server's multiaddr ending in /p2p/<peer ID>, such as /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW…"
	if s == "" {
		return peer.AddrInfo{}, fmt.Errorf("%w: no rendezvous address given: %s", app.ErrInvalidArgument, want)
	}
	m, err := ma.NewMultiaddr(s)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q is not a multiaddr (%v): %s", app.ErrInvalidArgument, s, err, want)
	}
	if _, err := m.ValueForProtocol(ma.P_P2P); err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q does not name the server: it must end in /p2p/<the server's peer ID>, as parley-rendezvous prints it", app.ErrInvalidArgument, s)
	}
	ai, err := peer.AddrInfoFromP2pAddr(m)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q: %v: %s", app.ErrInvalidArgument, s, err, want)
	}
	if len(ai.Addrs) == 0 {
		return peer.AddrInfo{}, fmt.Errorf("%w: %q has a peer ID but no address to reach it at: %s", app.ErrInvalidArgument, s, want)
	}
	return *ai, nil
}

// suggestRendezvous is the rendezvous address the first-run screen
// offers, and where it comes from: $PARLEY_RENDEZVOUS when set, else the
// rendezvous server of a local testnet (parley-testnet up), found in
// $PARLEY_TESTNET_DIR or in the temporary directories that testnet up
// makes (TMPDIR/parley-testnet-*), a running one first, the newest first.
// "" when there is none.
func suggestRendezvous() (addr, from string) {
	if env := strings.TrimSpace(os.Getenv("PARLEY_RENDEZVOUS")); env != "" {
		if _, err := parseRendezvous(env); err == nil {
			return env, "the daemon's PARLEY_RENDEZVOUS setting"
		}
	}
	dirs := []string{os.Getenv("PARLEY_TESTNET_DIR")}
	if dirs[0] == "" {
		dirs, _ = filepath.Glob(filepath.Join(os.TempDir(), "parley-testnet-*"))
	}
	type found struct {
		addr, dir string
		running   bool
		mod       time.Time
	}
	var all []found
	for _, dir := range dirs {
		addr, mod, err := testnetRendezvous(dir)
		if err != nil {
			continue
		}
		all = append(all, found{addr, dir, listening(addr), mod})
	}
	if len(all) == 0 {
		return "", ""
	}
	slices.SortFunc(all, func(a, b found) int {
		if a.running != b.running {
			if a.running {
				return -1
			}
			return 1
		}
		return b.mod.Compare(a.mod)
	})
	f := all[0]
	state := "running"
	if !f.running {
		state = "not running now"
	}
	return f.addr, fmt.Sprintf("the local testnet in %s (%s)", f.dir, state)
}

// testnetRendezvous reads a testnet directory's rendezvous address: its
// TCP listen address from ports.json and its peer ID from
// rendezvous/identity.key (read, never created).
func testnetRendezvous(dir string) (string, time.Time, error) {
	portsPath := filepath.Join(dir, "ports.json")
	fi, err := os.Stat(portsPath)
	if err != nil {
		return "", time.Time{}, err
	}
	data, err := os.ReadFile(portsPath)
	if err != nil {
		return "", time.Time{}, err
	}
	var ports struct {
		Rendezvous []string `json:"rendezvous"`
	}
	if err := json.Unmarshal(data, &ports); err != nil {
		return "", time.Time{}, err
	}
	key, err := node.LoadIdentity(filepath.Join(dir, "rendezvous", "identity.key"))
	if err != nil {
		return "", time.Time{}, err
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return "", time.Time{}, err
	}
	for _, a := range ports.Rendezvous {
		if strings.Contains(a, "/tcp/") {
			return a + "/p2p/" + id.String(), fi.ModTime(), nil
		}
	}
	if len(ports.Rendezvous) > 0 {
		return ports.Rendezvous[0] + "/p2p/" + id.String(), fi.ModTime(), nil
	}
	return "", time.Time{}, errors.New("no rendezvous address")
}

// listening reports whether something accepts TCP connections at the
// address (a quick look, for the suggestion only).
func listening(addr string) bool {
	m, err := ma.NewMultiaddr(addr)
	if err != nil {
		return false
	}
	transport, _ := peer.SplitAddr(m)
	if transport == nil {
		return false
	}
	na, err := manet.ToNetAddr(transport)
	if _, tcp := na.(*net.TCPAddr); err != nil || !tcp {
		return false
	}
	c, err := net.DialTimeout("tcp", na.String(), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
