package testnet

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/parleynet/parley/internal/atomicfile"
	"github.com/parleynet/parley/node"
)

// portsFile, in a network's directory, keeps the listen addresses its
// nodes chose on the first run, so that a run on the same directory
// listens on the same ports and the commands printed before (which name
// the rendezvous server's and the supernodes' addresses) keep working.
const portsFile = "ports.json"

// ports are the listen addresses of a network's nodes.
type ports struct {
	Rendezvous []string            `json:"rendezvous,omitempty"`
	Supernodes [][]string          `json:"supernodes,omitempty"` // by index
	Clients    map[string][]string `json:"clients,omitempty"`    // by name
}

// loadPorts reads the ports of an earlier run; none is not an error.
func loadPorts(dir string) (ports, error) {
	var p ports
	data, err := os.ReadFile(filepath.Join(dir, portsFile))
	if errors.Is(err, os.ErrNotExist) {
		return p, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &p)
	}
	if err != nil {
		return p, fmt.Errorf("read the ports of the earlier run (remove %s to choose new ones): %w", portsFile, err)
	}
	return p, nil
}

// listenAddrs are saved addresses, or loopback ones on ports to be
// chosen.
func listenAddrs(saved []string) []string {
	if len(saved) > 0 {
		return slices.Clone(saved)
	}
	return node.LoopbackListenAddrs
}

// boundAddrs are the IP addresses n listens on, with the ports chosen
// (not the relay transport's /p2p-circuit), sorted.
func boundAddrs(n *node.Node) []string {
	var out []string
	for _, a := range n.Network().ListenAddresses() {
		if s := a.String(); strings.HasPrefix(s, "/ip4/") || strings.HasPrefix(s, "/ip6/") {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// savePortsLocked writes the network's ports to its directory. Call it
// with n.mu held.
func (n *Network) savePortsLocked() error {
	data, err := json.MarshalIndent(n.ports, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(n.Dir, portsFile), append(data, '\n')); err != nil {
		return fmt.Errorf("save the ports: %w", err)
	}
	return nil
}

// keepPorts records the addresses a node listens on under set and saves
// them.
func (n *Network) keepPorts(set func(*ports)) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	set(&n.ports)
	return n.savePortsLocked()
}
