package relay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/relay/pb"
	"github.com/parleynet/parley/rendezvous/cert"
)

// Refusal reasons, the values of the refusals metric's reason label.
const (
	ReasonNoCertificate = "no_certificate" // reserve or connect without a valid admission
	ReasonInvalid       = "invalid_certificate"
	ReasonExpired       = "expired_certificate"
	ReasonBadRequest    = "bad_request"
	ReasonRateLimited   = "rate_limited"
	ReasonLeaving       = "leaving"        // the supernode is shutting down
	ReasonResourceLimit = "resource_limit" // the relay's own caps (per IP, slots, circuits)
)

// admission admits peers that presented a valid membership certificate on
// AuthProtocol, and is the relay service's ACL: reservations and circuits
// are granted only to admitted peers, until their certificate expires.
type admission struct {
	verifier *cert.Verifier
	perPeer  *ratelimit.Limiter
	perIP    *ratelimit.Limiter
	tracer   MetricsTracer
	now      func() time.Time

	mu       sync.Mutex // guards the following
	admitted map[peer.ID]admit
	reserved map[peer.ID]struct{} // peers allowed a reservation, until they disconnect
	leaving  bool
}

type admit struct {
	username string
	until    time.Time
}

var _ relayv2.ACLFilter = (*admission)(nil)

func newAdmission(v *cert.Verifier, limits Limits, tracer MetricsTracer) *admission {
	return &admission{
		verifier: v,
		perPeer:  ratelimit.New(limits.AuthPerPeer),
		perIP:    ratelimit.New(limits.AuthPerIP),
		tracer:   tracer,
		now:      time.Now,
		admitted: make(map[peer.ID]admit),
		reserved: make(map[peer.ID]struct{}),
	}
}

// handle serves one AuthRequest.
func (a *admission) handle(s network.Stream) {
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(exchangeTimeout))
	remote := s.Conn().RemotePeer()
	resp := a.authenticate(s, remote, sourceOf(s.Conn().RemoteMultiaddr()))
	if resp.Status != pb.AuthResponse_STATUS_OK {
		log.Infow("admission refused", "peer", remote, "status", resp.Status, "reason", resp.Message)
	}
	if err := wire.Write(s, resp, maxAuthFrame); err != nil {
		log.Debugw("write auth response", "peer", remote, "err", err)
		s.Reset()
	}
}

// authenticate reads one AuthRequest from r, sent by remote from the IP
// address source, and decides.
func (a *admission) authenticate(r io.Reader, remote peer.ID, source string) *pb.AuthResponse {
	now := a.now()
	for _, l := range []struct {
		lim *ratelimit.Limiter
		key string
	}{{a.perPeer, string(remote)}, {a.perIP, source}} {
		if ok, wait := l.lim.Allow(l.key, now); !ok {
			a.refused(ReasonRateLimited)
			return &pb.AuthResponse{
				Status:       pb.AuthResponse_STATUS_RATE_LIMITED,
				Message:      fmt.Sprintf("too many certificate presentations; retry in %s", roundUp(wait)),
				RetryAfterMs: uint64(wait.Milliseconds()) + 1,
			}
		}
	}
	req := new(pb.AuthRequest)
	if err := wire.NewReader(r, maxAuthFrame).Read(req); err != nil {
		a.refused(ReasonBadRequest)
		return &pb.AuthResponse{Status: pb.AuthResponse_STATUS_BAD_REQUEST, Message: "bad auth request: " + err.Error()}
	}
	if len(req.GetCertificate()) == 0 {
		a.refused(ReasonBadRequest)
		return &pb.AuthResponse{Status: pb.AuthResponse_STATUS_BAD_REQUEST, Message: "no certificate; log in to the rendezvous server first"}
	}
	c, err := a.verifier.VerifyFor(req.GetCertificate(), remote, now)
	switch {
	case errors.Is(err, cert.ErrExpired), errors.Is(err, cert.ErrNotYetValid):
		a.refused(ReasonExpired)
		return &pb.AuthResponse{Status: pb.AuthResponse_STATUS_EXPIRED, Message: err.Error() + "; log in again for a fresh certificate"}
	case err != nil:
		a.refused(ReasonInvalid)
		return &pb.AuthResponse{Status: pb.AuthResponse_STATUS_INVALID, Message: err.Error()}
	}
	a.mu.Lock()
	leaving := a.leaving
	if !leaving {
		if old, ok := a.admitted[remote]; !ok || c.Expires.After(old.until) {
			a.admitted[remote] = admit{username: c.Username, until: c.Expires}
		}
	}
	a.mu.Unlock()
	if leaving {
		a.refused(ReasonLeaving)
		return &pb.AuthResponse{Status: pb.AuthResponse_STATUS_UNAVAILABLE, Message: "this supernode is shutting down; use another one"}
	}
	if a.tracer != nil {
		a.tracer.Admitted()
	}
	log.Debugw("peer admitted", "peer", remote, "user", c.Username, "until", c.Expires)
	return &pb.AuthResponse{Status: pb.AuthResponse_STATUS_OK, AdmittedUntilUnixMs: c.Expires.UnixMilli()}
}

func (a *admission) refused(reason string) {
	if a.tracer != nil {
		a.tracer.Refused(reason)
	}
}

// allowed reports whether p holds a live admission, and the refusal reason
// when it does not.
func (a *admission) allowedLocked(p peer.ID) (bool, string) {
	ad, ok := a.admitted[p]
	switch {
	case a.leaving:
		return false, ReasonLeaving
	case !ok:
		return false, ReasonNoCertificate
	case !a.now().Before(ad.until):
		return false, ReasonExpired
	}
	return true, ""
}

// allowed reports whether p holds a live admission (the splice server's
// check).
func (a *admission) allowed(p peer.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ok, _ := a.allowedLocked(p)
	return ok
}

// AllowReserve implements relayv2.ACLFilter.
func (a *admission) AllowReserve(p peer.ID, addr ma.Multiaddr) bool {
	a.mu.Lock()
	ok, reason := a.allowedLocked(p)
	if ok {
		a.reserved[p] = struct{}{}
	}
	a.mu.Unlock()
	if !ok {
		log.Debugw("reservation refused", "peer", p, "reason", reason)
		a.refused(reason)
	}
	return ok
}

// AllowConnect implements relayv2.ACLFilter. The destination holds a
// reservation, so it was admitted; the source must be admitted too.
func (a *admission) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	a.mu.Lock()
	ok, reason := a.allowedLocked(src)
	a.mu.Unlock()
	if !ok {
		log.Debugw("circuit refused", "src", src, "dest", dest, "reason", reason)
		a.refused(reason)
	}
	return ok
}

// disconnected forgets a peer's reservation once it has no connection left
// (the relay drops the reservation then too).
func (a *admission) disconnected(nw network.Network, c network.Conn) {
	p := c.RemotePeer()
	if nw.Connectedness(p) == network.Connected {
		return
	}
	a.mu.Lock()
	delete(a.reserved, p)
	a.mu.Unlock()
}

// expire forgets admissions whose certificate expired and returns the
// peers among them that hold a reservation, so the caller can cut them
// off: a revoked device's certificate is not renewed, and it must not
// keep its slot.
func (a *admission) expire() []peer.ID {
	now := a.now()
	var cut []peer.ID
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, ad := range a.admitted {
		if now.Before(ad.until) {
			continue
		}
		delete(a.admitted, p)
		if _, ok := a.reserved[p]; ok {
			delete(a.reserved, p)
			cut = append(cut, p)
		}
	}
	return cut
}

// leave refuses every new admission, reservation and circuit, and returns
// the peers holding reservations.
func (a *admission) leave() []peer.ID {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.leaving = true
	ids := make([]peer.ID, 0, len(a.reserved))
	for p := range a.reserved {
		ids = append(ids, p)
	}
	return ids
}

// sourceOf is the IP address a connection comes from, the key of per-IP
// limits (an IPv6 host counts as its /64).
func sourceOf(a ma.Multiaddr) string {
	ip, err := manet.ToIP(a)
	if err != nil {
		return a.String()
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String()
	}
	return ip.String()
}

// roundUp rounds a wait up for people: to the second above a second, to
// the 10 ms below (never "0s").
func roundUp(d time.Duration) time.Duration {
	unit := time.Second
	if d < time.Second {
		unit = 10 * time.Millisecond
	}
	return (d + unit - 1).Truncate(unit)
}
