package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// listSupernodes answers a directory listing. Slots handed to a logged-in
// device count as load until the supernodes report them, so a burst of
// clients spreads over the active set instead of piling onto the least
// loaded supernode.
func (s *Server) listSupernodes(c caller, req *pb.ListSupernodesRequest) (*pb.Response, error) {
	max := int(req.GetMax())
	if max == 0 || max > rendezvous.MaxSupernodes {
		max = rendezvous.MaxSupernodes
	}
	if len(req.GetRtts()) > rendezvous.MaxRTTHints {
		return nil, fmt.Errorf("%w: more than %d round-trip hints", rendezvous.ErrBadRequest, rendezvous.MaxRTTHints)
	}
	rtts := make(map[peer.ID]time.Duration, len(req.GetRtts()))
	for _, h := range req.GetRtts() {
		id, err := peer.IDFromBytes(h.GetPeerId())
		if err != nil {
			return nil, fmt.Errorf("%w: bad peer ID in a round-trip hint", rendezvous.ErrBadRequest)
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
	if err := allow("supernode announcement", s.limits.announcePeer, string(c.device), s.limits.announceSource, c.source); err != nil {
		return nil, err
	}
	trusted, err := s.mayAnnounce(ctx, c.device)
	if err != nil {
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
		return nil, fmt.Errorf("%w: a supernode must announce at least one address", rendezvous.ErrBadRequest)
	}
	active, check, err := s.dir.announce(c.device, addrs, s.believable(req.GetLoad(), trusted), time.Now())
	if err != nil {
		return nil, err
	}
	if check {
		// Answer with the outcome when the check is quick (a working
		// supernode nearby); a slow one goes on and seats the candidate
		// at a later heartbeat.
		done := make(chan struct{})
		s.loops.Go(func() {
			defer close(done)
			s.checkSupernode(c.device, addrs)
		})
		select {
		case <-done:
			active = s.dir.isActive(c.device)
		case <-time.After(checkWait):
		case <-ctx.Done():
		}
	}
	resp.Body = &pb.Response_Announce{Announce: &pb.AnnounceSupernodeResponse{
		TtlMs:  uint32(s.cfg.SupernodeTTL.Milliseconds()),
		Active: active,
	}}
	return resp, nil
}

// mayAnnounce decides who may be a supernode, and whether it is trusted:
// the trusted relays (and anyone, in an open directory) are; enrolled,
// unrevoked devices may volunteer; nobody else may.
func (s *Server) mayAnnounce(ctx context.Context, p peer.ID) (trusted bool, err error) {
	if s.cfg.OpenDirectory || slices.Contains(s.cfg.TrustedSupernodes, p) {
		return true, nil
	}
	_, err = s.store.DeviceOwner(ctx, p)
	switch {
	case err == nil:
		return false, nil
	case errors.Is(err, rendezvous.ErrNotFound), errors.Is(err, rendezvous.ErrDeviceRevoked):
		return false, rendezvous.ErrNotTrusted
	default:
		return false, fmt.Errorf("check supernode candidate: %w", err)
	}
}

// believable is the load the directory goes by: a volunteer is never a
// dedicated relay, and its capacity and reservations are capped at the
// default capacity, so that one cannot claim a huge capacity to draw
// every client, or a huge load to have every standby promoted.
func (s *Server) believable(load *pb.SupernodeLoad, trusted bool) *pb.SupernodeLoad {
	if load == nil {
		load = &pb.SupernodeLoad{}
	}
	if trusted {
		return load
	}
	limit := uint32(s.dir.cfg.DefaultCapacity)
	l := proto.Clone(load).(*pb.SupernodeLoad)
	l.Dedicated = false
	if l.MaxReservations == 0 || l.MaxReservations > limit {
		l.MaxReservations = limit
	}
	l.Reservations = min(l.Reservations, l.MaxReservations)
	l.Circuits = min(l.Circuits, 4*l.MaxReservations)
	return l
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
