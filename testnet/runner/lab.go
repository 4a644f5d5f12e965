package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/testnet/labnet"
	"github.com/parleynet/parley/testnet/natlab"
	"github.com/parleynet/parley/testnet/scenario"
	"github.com/parleynet/parley/testnet/topology"
)

// Lab is a network of the real binaries in the NAT lab (package labnet):
// a parley daemon per client, behind a real Linux NAT of its own or on a
// public host.
type Lab struct {
	Net *labnet.Net
	// Clients are the clients by name.
	Clients map[string]*labnet.Client

	lab     *natlab.Lab
	top     topology.Topology
	peers   []*scenario.Peer
	stopped sync.WaitGroup // graceful supernode stops under way
}

// natTypes are the lab's NAT types by topology kind; a udp-blocked NAT
// is a cone NAT that then blocks UDP.
var natTypes = map[string]natlab.NATType{"cone": natlab.Cone, "symmetric": natlab.Symmetric, "udp-blocked": natlab.Cone, "upnp": natlab.UPnP}

// StartLab builds the lab network of a topology: the rendezvous server,
// the supernodes, and every client logged in and a contact of every
// other, with logs and data in dir (empty: a temporary directory, removed
// by Close). Close removes everything else.
func StartLab(ctx context.Context, top topology.Topology, dir string) (_ *Lab, err error) {
	if err := natlab.Available(); err != nil {
		return nil, err
	}
	cfg := natlab.Config{Dir: dir}
	if slices.ContainsFunc(top.Clients, func(c topology.Client) bool { return c.Kind == "upnp" }) {
		// miniupnpd maps nothing on the documentation ranges the lab
		// uses by default.
		cfg.Subnet = natlab.UPnPSubnet
	}
	nl, err := natlab.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	l := &Lab{lab: nl, top: top, Clients: map[string]*labnet.Client{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, l.Close())
		}
	}()
	if l.Net, err = labnet.New(ctx, nl, labnet.Config{Supernodes: top.Supernodes, Delay: top.Delay}); err != nil {
		return nil, err
	}
	var all []*labnet.Client
	for _, tc := range top.Clients {
		var c *labnet.Client
		if tc.Kind == "public" {
			c, err = l.Net.NewPublicClient(ctx, tc.Name)
		} else {
			c, err = l.Net.NewClient(ctx, tc.Name, natTypes[tc.Kind])
		}
		if err != nil {
			return nil, fmt.Errorf("start client %s: %w", tc.Name, err)
		}
		if tc.Kind == "udp-blocked" {
			if err := blockUDP(ctx, c); err != nil {
				return nil, err
			}
		}
		if d := tc.LinkDelay(top); d != top.Delay {
			if c.NAT != nil {
				err = c.NAT.SetDelay(d)
			} else {
				err = c.Host.SetDelay(d)
			}
			if err != nil {
				return nil, fmt.Errorf("delay of %s: %w", tc.Name, err)
			}
		}
		if p := tc.LinkLoss(top); p > 0 {
			if c.NAT != nil {
				err = c.NAT.SetLoss(p)
			} else {
				err = c.Host.SetLoss(p)
			}
			if err != nil {
				return nil, fmt.Errorf("loss of %s: %w", tc.Name, err)
			}
		}
		for _, other := range all {
			if err := labnet.Befriend(ctx, other, c); err != nil {
				return nil, err
			}
		}
		all = append(all, c)
		l.Clients[tc.Name] = c
		l.peers = append(l.peers, scenario.NewPeer(tc.Name, tc.Kind, c.API))
	}
	return l, nil
}

// blockUDP blocks UDP at c's NAT and restarts c, so that it starts
// without QUIC connections rather than lose them.
func blockUDP(ctx context.Context, c *labnet.Client) error {
	if err := c.NAT.BlockUDP(); err != nil {
		return err
	}
	if err := c.Restart(ctx); err != nil {
		return fmt.Errorf("restart %s behind its UDP block: %w", c.Name, err)
	}
	return c.AwaitRelays(ctx)
}

func (l *Lab) Mode() string {
	var own []string
	for _, c := range l.top.Clients {
		if c.Delay >= 0 || c.Loss >= 0 {
			own = append(own, fmt.Sprintf("%s %v, %g%% loss", c.Name, c.LinkDelay(l.top), 100*c.LinkLoss(l.top)))
		}
	}
	mode := fmt.Sprintf("natlab: parley daemons in network namespaces behind real Linux NATs, %d supernodes, %v per public link, %g%% loss per client link",
		l.top.Supernodes, l.top.Delay, 100*l.top.Loss)
	if len(own) > 0 {
		mode += " (" + strings.Join(own, "; ") + ")"
	}
	return mode
}

func (l *Lab) Peers() []*scenario.Peer { return l.peers }

func (l *Lab) Restart(ctx context.Context, p *scenario.Peer) error {
	c := l.Clients[p.Name]
	if err := c.Restart(ctx); err != nil {
		return fmt.Errorf("restart %s: %w", p.Name, err)
	}
	p.SetAPI(c.API)
	if c.NAT != nil {
		return c.AwaitRelays(ctx)
	}
	return tstest.Poll(ctx, func() error {
		s, err := c.Status(ctx)
		if err == nil && !s.LoggedIn {
			err = fmt.Errorf("%s is not logged in", p.Name)
		}
		return err
	})
}

// Forget deletes the conntrack entries each NAT holds towards the
// other's public address.
func (l *Lab) Forget(ctx context.Context, a, b *scenario.Peer) error {
	ca, cb := l.Clients[a.Name], l.Clients[b.Name]
	for _, pair := range [][2]*labnet.Client{{ca, cb}, {cb, ca}} {
		if pair[0].NAT == nil {
			continue
		}
		out, err := pair[0].NAT.Run(ctx, "conntrack", "-D", "-d", pair[1].Host.PublicIP.String())
		if err != nil && !strings.Contains(string(out), "0 flow entries") {
			return fmt.Errorf("forget %s's NAT mappings to %s: %v %s (install the conntrack package)", pair[0].Name, pair[1].Name, err, out)
		}
	}
	return nil
}

func (l *Lab) StopSupernode(_ context.Context, id string, kill bool) error {
	i := slices.IndexFunc(l.Net.Supernodes, func(s *labnet.Server) bool { return s.Peer == id })
	if i < 0 {
		return fmt.Errorf("no supernode %s", id)
	}
	s := l.Net.Supernodes[i]
	if kill {
		return s.Kill()
	}
	l.stopped.Go(func() { s.Stop(15 * time.Second) }) // exits with a status; the lab's Close reaps it
	return nil
}

func (l *Lab) Close() error {
	l.stopped.Wait()
	return l.lab.Close()
}
