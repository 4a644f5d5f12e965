package server

import (
	"context"
	"errors"
	"time"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// fanoutWorkers is how many events a replica handles at once. Events are
// sharded by user, so the events of one user are handled in order.
const fanoutWorkers = 8

// startFanout handles the store's events until the server's context ends
// (which closes the events channel).
func (s *Server) startFanout(events <-chan Event) {
	s.fanout = make([]chan Event, fanoutWorkers)
	for i := range s.fanout {
		ch := make(chan Event, 1024)
		s.fanout[i] = ch
		s.loops.Go(func() {
			for ev := range ch {
				s.handleEvent(ev)
			}
		})
	}
	s.loops.Go(func() {
		defer func() {
			for _, ch := range s.fanout {
				close(ch)
			}
		}()
		for ev := range events {
			s.fanout[uint64(ev.UserID)%fanoutWorkers] <- ev
		}
	})
}

func (s *Server) handleEvent(ev Event) {
	ctx, cancel := context.WithTimeout(s.ctx, rendezvous.RequestTimeout)
	defer cancel()
	switch ev.Kind {
	case EventPresence:
		s.fanOutPresence(ctx, ev)
	case EventContact:
		kind := map[ContactChange]pb.ContactEvent_Kind{
			ContactRequested: pb.ContactEvent_KIND_REQUESTED,
			ContactAccepted:  pb.ContactEvent_KIND_ACCEPTED,
			ContactRemoved:   pb.ContactEvent_KIND_REMOVED,
		}[ev.Change]
		m := &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_ContactEvent{
			ContactEvent: &pb.ContactEvent{Kind: kind, Username: ev.Other}}}
		for _, sess := range s.localSessions(ev.UserID) {
			sess.push(m)
		}
	case EventKick:
		for _, sess := range s.localSessions(ev.UserID) {
			if ev.Device != "" && sess.device != ev.Device {
				continue
			}
			err := rendezvous.ErrDeviceRevoked
			if ev.Device == "" {
				err = rendezvous.ErrAccountDeleted
			}
			log.Infow("closing session", "user", sess.user.Name, "device", sess.device, "reason", err)
			sess.finish(rendezvous.ErrorResponse(err))
		}
	case EventMail:
		m := &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_MailWaiting{MailWaiting: &pb.MailWaiting{}}}
		for _, sess := range s.localSessions(ev.UserID) {
			if sess.device == ev.Device {
				sess.push(m)
			}
		}
	case EventKeys:
		s.fanOutKeys(ctx, ev)
	default:
		log.Warnw("unknown event", "kind", ev.Kind)
	}
}

// fanOutKeys tells the sessions of a user and of its contacts that the
// user's device keys changed.
func (s *Server) fanOutKeys(ctx context.Context, ev Event) {
	targets := s.localSessions(ev.UserID)
	contacts, err := s.store.Contacts(ctx, ev.UserID)
	if err != nil {
		log.Errorw("device keys fan-out: list contacts", "user", ev.UserID, "err", err)
	}
	for _, c := range contacts {
		targets = append(targets, s.localSessions(c.ID)...)
	}
	m := &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_DeviceKeysChanged{
		DeviceKeysChanged: &pb.DeviceKeysChanged{Username: ev.Other}}}
	for _, sess := range targets {
		sess.push(m)
	}
}

// fanOutPresence pushes a user's current presence to that user's
// contacts that have sessions on this replica.
func (s *Server) fanOutPresence(ctx context.Context, ev Event) {
	s.mu.Lock()
	idle := len(s.byUser) == 0
	s.mu.Unlock()
	if idle {
		return
	}
	contacts, err := s.store.Contacts(ctx, ev.UserID)
	if err != nil {
		log.Errorw("presence fan-out: list contacts", "user", ev.UserID, "err", err)
		return
	}
	var targets []*session
	for _, c := range contacts {
		targets = append(targets, s.localSessions(c.ID)...)
	}
	if len(targets) == 0 {
		return
	}
	u, err := s.store.UserByID(ctx, ev.UserID)
	if errors.Is(err, rendezvous.ErrNotFound) {
		return // deleted meanwhile; its contacts were told
	}
	if err != nil {
		log.Errorw("presence fan-out: read user", "user", ev.UserID, "err", err)
		return
	}
	p, err := s.presenceOfAll(ctx, []User{u})
	if err != nil {
		log.Errorw("presence fan-out", "user", u.Name, "err", err)
		return
	}
	m := &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_Presence{Presence: p[0]}}
	for _, sess := range targets {
		sess.push(m)
	}
	if ev.At != 0 {
		s.metrics.FanOut(time.Since(time.UnixMicro(ev.At)), len(targets))
	}
}

func (s *Server) localSessions(userID int64) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.byUser[userID]))
	for sess := range s.byUser[userID] {
		out = append(out, sess)
	}
	return out
}

// heartbeatLoop keeps this replica alive in the store and retires the
// sessions of replicas that stopped, telling their users' contacts.
func (s *Server) heartbeatLoop() {
	t := time.NewTicker(s.cfg.ReplicaTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, rendezvous.RequestTimeout)
		now := time.Now()
		if err := s.store.HeartbeatReplica(ctx, s.cfg.Replica, now); err != nil {
			log.Errorw("replica heartbeat", "err", err)
		}
		users, err := s.store.ReapReplicas(ctx, now.Add(-s.cfg.ReplicaTimeout))
		if err != nil {
			log.Errorw("reap replicas", "err", err)
		}
		if len(users) > 0 {
			log.Infow("retired the sessions of a stopped replica", "users", len(users))
		}
		for _, u := range users {
			s.publish(ctx, Event{Kind: EventPresence, UserID: u})
		}
		cancel()
	}
}
