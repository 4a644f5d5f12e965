package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/relay"
)

// SupernodeCheck tries a supernode candidate the way a client would use
// it, at the addresses it announced; an error keeps it out of the active
// set, and its text is logged and counted.
type SupernodeCheck func(ctx context.Context, sn peer.AddrInfo) error

// Checks of supernode candidates.
const (
	// checkTimeout bounds one check: a dead or tarpit address fails
	// within it.
	checkTimeout = 10 * time.Second
	// checkRetry is how long a candidate that failed waits before its
	// heartbeats get it checked again.
	checkRetry = time.Minute
	// checkWait is how long an announcement waits for its check before
	// it is answered.
	checkWait = 2 * time.Second
	// maxChecks bounds the checks running at once.
	maxChecks = 8
	// checkerUsername is the name in the checker's own certificate.
	checkerUsername = "rendezvous-check"
)

// reservationCheck is the default SupernodeCheck: from a host of its own
// (so that a check never disturbs the candidate's session with this
// server), it connects to the announced addresses, presents a membership
// certificate this server issued to that host on /parley/auth/1.0.0, and
// takes a circuit v2 reservation. It then disconnects, which ends the
// reservation on the supernode.
type reservationCheck struct {
	issue func(p peer.ID) ([]byte, error)

	once sync.Once
	h    host.Host
	err  error
}

func (r *reservationCheck) host() (host.Host, error) {
	r.once.Do(func() {
		r.h, r.err = libp2p.New(libp2p.NoListenAddrs, libp2p.DisableRelay())
		if r.err != nil {
			r.err = fmt.Errorf("start the supernode checker's host: %w", r.err)
		}
	})
	return r.h, r.err
}

func (r *reservationCheck) check(ctx context.Context, sn peer.AddrInfo) error {
	h, err := r.host()
	if err != nil {
		return err
	}
	defer h.Network().ClosePeer(sn.ID)
	raw, err := r.issue(h.ID())
	if err != nil {
		return fmt.Errorf("issue the checker's certificate: %w", err)
	}
	if err := h.Connect(ctx, sn); err != nil {
		return fmt.Errorf("dial the announced addresses: %w", err)
	}
	pass := relay.NewPassport(h, func() []byte { return raw })
	defer pass.Close()
	if _, err := pass.Present(ctx, sn); err != nil {
		return fmt.Errorf("admission: %w", err)
	}
	if _, err := client.Reserve(ctx, h, sn); err != nil {
		return fmt.Errorf("reservation: %w", err)
	}
	return nil
}

func (r *reservationCheck) Close() error {
	if r.h == nil {
		return nil
	}
	return r.h.Close()
}

// issueChecker issues the checker's own membership certificate.
func (s *Server) issueChecker(p peer.ID) ([]byte, error) {
	c, err := s.issuer.Issue(p, checkerUsername, time.Now(), checkTimeout+time.Minute)
	if err != nil {
		return nil, err
	}
	return c.Raw, nil
}

// checkSupernode runs the check of candidate p at addrs and records the
// outcome in the directory.
func (s *Server) checkSupernode(p peer.ID, addrs [][]byte) {
	info := peer.AddrInfo{ID: p}
	for _, b := range addrs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			info.Addrs = append(info.Addrs, a)
		}
	}
	select {
	case s.checks <- struct{}{}:
		defer func() { <-s.checks }()
	case <-s.ctx.Done():
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, checkTimeout)
	defer cancel()
	start := time.Now()
	err := s.cfg.SupernodeCheck(ctx, info)
	if s.ctx.Err() != nil {
		return
	}
	if errors.Is(err, context.DeadlineExceeded) || (err != nil && ctx.Err() != nil) {
		err = fmt.Errorf("no answer within %s: %w", checkTimeout, err)
	}
	result := "ok"
	if err != nil {
		result = "failed"
		log.Warnw("supernode candidate failed its check; it stays a standby", "peer", p, "addrs", info.Addrs, "err", err)
	} else {
		log.Infow("supernode candidate passed its check", "peer", p, "took", time.Since(start))
	}
	s.metrics.SupernodeChecked(result)
	s.dir.checked(p, addrs, err, time.Now())
	s.reportSupernodes()
}
