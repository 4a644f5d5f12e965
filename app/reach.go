package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/internal/atomicfile"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/cert"
)

// supernodesFile keeps the last supernode list the directory handed out,
// so that the device finds relays while the rendezvous server is down.
const supernodesFile = datadir.SupernodesFile

// admissionMargin is how long a supernode's admission must still last for
// a dial through it to skip presenting the certificate again.
const admissionMargin = time.Minute

// supernodes lists supernodes for the reserver: from the directory,
// ranked for this device; while the directory cannot be reached, those
// announced in the DHT (they are up now), then the last list the
// directory handed out.
func (e *Engine) supernodes(ctx context.Context, rtts map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
	list, err := e.rdv.Supernodes(ctx, 0, rtts)
	if err == nil {
		e.rememberSupernodes(list)
		return list, nil
	}
	found, ferr := e.dhtSupernodes(ctx)
	cached := e.lastSupernodes()
	if len(found) == 0 && len(cached) == 0 {
		return nil, errors.Join(err, ferr)
	}
	log.Infow("rendezvous directory unreachable; using the supernodes announced in the DHT and the last known ones",
		"err", err, "dht", len(found), "dht_err", ferr, "cached", len(cached))
	e.rememberSupernodes(found) // they are up now: the next start bootstraps from them
	return mergeInfos(found, cached), nil
}

// directorySupernodes lists the directory's supernodes, or the last list
// known while it cannot be reached. It is where the DHT bootstraps from.
func (e *Engine) directorySupernodes(ctx context.Context) ([]peer.AddrInfo, error) {
	list, err := e.rdv.Supernodes(ctx, 0, nil)
	if err == nil {
		return list, nil
	}
	if cached := e.lastSupernodes(); len(cached) > 0 {
		return cached, nil
	}
	return nil, err
}

// rememberSupernodes keeps a non-empty list of supernodes for when
// neither the directory nor the DHT can be asked.
func (e *Engine) rememberSupernodes(list []peer.AddrInfo) {
	if len(list) == 0 {
		return
	}
	if err := saveSupernodes(filepath.Join(e.cfg.DataDir, supernodesFile), list); err != nil {
		log.Warnw("remember supernodes", "err", err)
	}
}

// lastSupernodes is the list rememberSupernodes kept last (none if it
// cannot be read).
func (e *Engine) lastSupernodes() []peer.AddrInfo {
	list, err := loadSupernodes(filepath.Join(e.cfg.DataDir, supernodesFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warnw("read the last known supernodes", "err", err)
	}
	return list
}

type savedPeer struct {
	ID    string   `json:"id"`
	Addrs []string `json:"addrs"`
}

func saveSupernodes(path string, list []peer.AddrInfo) error {
	return writeJSON(path, savePeers(list))
}

func savePeers(list []peer.AddrInfo) []savedPeer {
	saved := make([]savedPeer, 0, len(list))
	for _, info := range list {
		s := savedPeer{ID: info.ID.String()}
		for _, a := range info.Addrs {
			s.Addrs = append(s.Addrs, a.String())
		}
		saved = append(saved, s)
	}
	return saved
}

// writeJSON writes v to path atomically, readable by the owner only.
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, b)
}

func loadSupernodes(path string) ([]peer.AddrInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var saved []savedPeer
	if err := json.Unmarshal(b, &saved); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return loadPeers(saved), nil
}

func loadPeers(saved []savedPeer) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, s := range saved {
		id, err := peer.Decode(s.ID)
		if err != nil {
			continue
		}
		info := peer.AddrInfo{ID: id}
		for _, a := range s.Addrs {
			if m, err := ma.NewMultiaddr(a); err == nil {
				info.Addrs = append(info.Addrs, m)
			}
		}
		out = append(out, info)
	}
	return out
}

// reach prepares a connection to a contact's device before a stream is
// opened to it. With a connection open there is nothing to do. Otherwise,
// while the rendezvous server cannot say where the device is, its
// addresses come from its signed record in the DHT; then the device is
// dialled at its direct addresses first and through the
// supernodes in its circuit addresses after (go-libp2p's dial ranking
// delays relay addresses behind direct ones); a supernode relays only for
// admitted peers, so the certificate is presented to each of those
// supernodes first. Once a relayed connection stands, DCUtR tries to
// upgrade it to a direct one (see package node); streams opened later use
// the direct connection.
func (e *Engine) reach(ctx context.Context, p peer.ID) error {
	if e.node.Network().Connectedness(p) == network.Connected {
		return nil
	}
	e.locator.locate(ctx, p)
	addrs := e.node.Peerstore().Addrs(p)
	relays := relaysOf(addrs)
	if len(relays) == 0 {
		return nil
	}
	direct := slices.ContainsFunc(addrs, func(a ma.Multiaddr) bool { return !node.IsCircuit(a) })
	// The first supernode that admits us is enough to go on; the others
	// finish in the background (a dead one can take seconds to fail).
	results := make(chan error, len(relays))
	for _, r := range relays {
		go func() { results <- e.passport.Ensure(ctx, r, admissionMargin) }()
	}
	var errs []error
	for range relays {
		err := <-results
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	err := fmt.Errorf("no supernode of %s admits this device: %w", p, errors.Join(errs...))
	if direct {
		// Its direct addresses may still work (a LAN, an open NAT).
		log.Debugw("dialling only the direct addresses", "peer", p, "err", err)
		return nil
	}
	return err
}

// relaysOf returns the supernodes named in circuit addresses, with the
// addresses they are reached at.
func relaysOf(addrs []ma.Multiaddr) []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, a := range addrs {
		if !node.IsCircuit(a) {
			continue
		}
		relayAddr, _ := ma.SplitFunc(a, func(c ma.Component) bool { return c.Protocol().Code == ma.P_CIRCUIT })
		info, err := peer.AddrInfoFromP2pAddr(relayAddr)
		if err != nil {
			continue
		}
		if i := slices.IndexFunc(out, func(o peer.AddrInfo) bool { return o.ID == info.ID }); i >= 0 {
			out[i].Addrs = append(out[i].Addrs, info.Addrs...)
			continue
		}
		out = append(out, *info)
	}
	return out
}

// certVerifier trusts the rendezvous server's certificate key: the one
// the session announced, or the server's answer when logged out.
func (e *Engine) certVerifier(ctx context.Context) (*cert.Verifier, error) {
	sess := e.sess.current()
	if sess != nil && sess.Server.CertKey != nil {
		return cert.NewVerifier(sess.Server.CertKey)
	}
	info, err := e.rdv.ServerInfo(ctx)
	if err != nil {
		return nil, err
	}
	return cert.NewVerifier(info.CertKey)
}
