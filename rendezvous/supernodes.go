package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous/pb"
)

// listSupernodes answers a directory listing. Slots handed to a logged-in
// device count as load until the supernodes report them, so a burst of
// clients spreads over the active set instead of piling onto the least
// loaded supernode.
func (s *Server) listSupernodes(c caller, req *pb.ListSupernodesRequest) (*pb.Response, error) {
	max := int(req.GetMax())
	if max == 0 || max > MaxSupernodes {
		max = MaxSupernodes
	}
	if len(req.GetRtts()) > MaxRTTHints {
		return nil, fmt.Errorf("%w: more than %d round-trip hints", ErrBadRequest, MaxRTTHints)
	}
	rtts := make(map[peer.ID]time.Duration, len(req.GetRtts()))
	for _, h := range req.GetRtts() {
		id, err := peer.IDFromBytes(h.GetPeerId())
		if err != nil {
			return nil, fmt.Errorf("%w: bad peer ID in a round-trip hint", ErrBadRequest)
		}
		rtts[id] = time.Duration(h.GetRttUs()) * time.Microsecond
	}
	s.mu.Lock()
	_, loggedIn := s.byDevice[c.device]
	s.mu.Unlock()
	resp := okResponse()
	resp.Body = &pb.Response_Supernodes{Supernodes: &pb.SupernodeList{
		Supernodes: s.dir.list(c.device, max, rtts, loggedIn, time.Now()),
	}}
	return resp, nil
}

// announceSupernode records a candidate's heartbeat, or its departure.
func (s *Server) announceSupernode(ctx context.Context, c caller, req *pb.AnnounceSupernodeRequest) (*pb.Response, error) {
	if err := s.mayAnnounce(ctx, c.device); err != nil {
		return nil, err
	}
	resp := okResponse()
	defer s.reportSupernodes()
	if req.GetLeaving() {
		s.dir.leave(c.device, time.Now())
		resp.Body = &pb.Response_Announce{Announce: &pb.AnnounceSupernodeResponse{}}
		return resp, nil
	}
	addrs, err := checkAddrs(req.GetAddrs())
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: a supernode must announce at least one address", ErrBadRequest)
	}
	active := s.dir.announce(c.device, addrs, req.GetLoad(), time.Now())
	resp.Body = &pb.Response_Announce{Announce: &pb.AnnounceSupernodeResponse{
		TtlMs:  uint32(s.cfg.SupernodeTTL.Milliseconds()),
		Active: active,
	}}
	return resp, nil
}

// mayAnnounce decides who may be a supernode: anyone in an open directory;
// otherwise the trusted relays and enrolled, unrevoked devices.
func (s *Server) mayAnnounce(ctx context.Context, p peer.ID) error {
	if s.cfg.TrustedSupernodes == nil || slices.Contains(s.cfg.TrustedSupernodes, p) {
		return nil
	}
	_, err := s.store.DeviceOwner(ctx, p)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrDeviceRevoked):
		return ErrNotTrusted
	default:
		return fmt.Errorf("check supernode candidate: %w", err)
	}
}

func (s *Server) reportSupernodes() {
	active, standby := 0, 0
	for _, e := range s.dir.entries(time.Now()) {
		if e.Active {
			active++
		} else {
			standby++
		}
	}
	s.metrics.Supernodes(active, standby)
}

// Supernodes lists the directory's candidates, active ones first.
func (s *Server) Supernodes() []DirectoryEntry { return s.dir.entries(time.Now()) }
