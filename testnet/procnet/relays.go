package procnet

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parleynet/parley/internal/tstest"
)

// Relay is a parley-relay supernode added with AddRelay, with its admin
// listener on, so that its metrics can be read.
type Relay struct {
	Name string
	Proc *Proc
	// Addr is its TCP multiaddr ending in /p2p/<peer ID>.
	Addr string
	// Peer is its peer ID.
	Peer string
	// Admin is the host:port of its admin listener (/metrics).
	Admin string
	// Splice is the host:port of its relay fast path, "" when off.
	Splice string
}

// AddRelay starts one more parley-relay supernode announced to the
// network's rendezvous server, listening on loopback, with its admin
// listener on a free loopback port and the extra flags given
// (--splice-listen off…). Flags with a --listen replace the default
// listen addresses (TCP and QUIC). It is killed in the test's Cleanup.
func (n *Network) AddRelay(ctx context.Context, name string, flags ...string) (*Relay, error) {
	args := []string{"--identity", filepath.Join(n.Dir, name, "identity.key"), "--rendezvous", n.RendezvousAddr,
		"--admin", "127.0.0.1:0", "--drain", "0s"}
	if !slices.Contains(flags, "--listen") {
		args = append(args, loopback...)
	}
	p, err := startProc(n.tb, name, n.logPath(name), n.bins.Relay, nil, append(args, flags...)...)
	if err != nil {
		return nil, err
	}
	r := &Relay{Name: name, Proc: p}
	if r.Addr, err = awaitTCPAddr(ctx, p, "  listening on "); err != nil {
		return nil, err
	}
	r.Peer = r.Addr[strings.LastIndex(r.Addr, "/")+1:]
	// The splice line, when there is one, comes before the admin line.
	line, err := p.awaitLine(ctx, "its admin address", func(l string) bool {
		if s, ok := strings.CutPrefix(l, "  splice: "); ok {
			r.Splice = s
		}
		return strings.HasPrefix(l, "  admin: http://")
	})
	if err != nil {
		return nil, err
	}
	r.Admin, _, _ = strings.Cut(strings.TrimPrefix(line, "  admin: http://"), "/")
	return r, nil
}

// Metrics reads the relay's Prometheus series without labels (name →
// value).
func (r *Relay) Metrics(ctx context.Context) (map[string]float64, error) {
	m, err := tstest.Metrics(ctx, http.DefaultClient, "http://"+r.Admin+"/metrics")
	if err != nil {
		return nil, fmt.Errorf("metrics of %s: %w", r.Name, err)
	}
	return m, nil
}

// Relay metric names.
const (
	MetricCircuitBytes = "parley_relay_bytes_relayed_total"
	MetricSplicedBytes = "parley_relay_spliced_bytes_total"
	MetricSplices      = "parley_relay_splices"
	MetricSplicesTotal = "parley_relay_splices_total"
)

// LoopbackTCP are listen flags for TCP on 127.0.0.1 only.
var LoopbackTCP = []string{"--listen", "/ip4/127.0.0.1/tcp/0"}

// AddDaemonListen is AddDaemon with the listen flags given (LoopbackTCP,
// say) instead of TCP and QUIC.
func (n *Network) AddDaemonListen(ctx context.Context, name string, listen []string, flags ...string) (*Daemon, error) {
	d := &Daemon{Name: name, Dir: filepath.Join(n.Dir, name), n: n}
	d.args = append([]string{"--data", d.Dir, "daemon", "--json", "--rendezvous", n.RendezvousAddr, "--supernode", "never"}, listen...)
	d.args = append(d.args, flags...)
	return d, d.start(ctx)
}
