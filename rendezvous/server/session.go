package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// sessionWriteTimeout bounds writing one push to a client.
const sessionWriteTimeout = 10 * time.Second

// session is one logged-in device holding a presence stream on this
// replica.
type session struct {
	user    User
	device  peer.ID
	started time.Time
	out     chan *pb.Response // pushes; full means the client is too slow
	final   chan *pb.Response // the last frame (GoAway, kicked); then the stream closes
	kill    func()            // resets the stream; safe to call more than once
}

// push queues a frame for the client. A client too slow to take its
// pushes loses its session (it logs in again and gets a fresh snapshot)
// rather than holding up everyone else's.
func (sess *session) push(m *pb.Response) {
	select {
	case sess.out <- m:
	default:
		log.Warnw("push queue full; closing session", "user", sess.user.Name, "device", sess.device)
		sess.kill()
	}
}

// finish sends m as the session's last frame and ends the session.
func (sess *session) finish(m *pb.Response) {
	select {
	case sess.final <- m:
	default: // already finishing
	}
}

func (sess *session) goAway(after time.Duration) {
	sess.finish(&pb.Response{
		Status:       pb.Status_STATUS_OK,
		RetryAfterMs: uint64(after.Milliseconds()),
		Body:         &pb.Response_GoAway{GoAway: &pb.GoAway{RetryAfterMs: uint64(after.Milliseconds())}},
	})
}

// serveSession runs a login session: it answers the login with a
// certificate and a presence snapshot, then pushes changes, renews the
// certificate and takes address updates and pings until the stream ends.
func (s *Server) serveSession(st network.Stream, r *wire.Reader, c caller, req *pb.LoginRequest) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	fail := func(err error) {
		resp := rendezvous.ErrorResponse(err)
		if resp.Status == pb.Status_STATUS_INTERNAL {
			log.Errorw("login failed", "peer", c.device, "err", err)
		}
		s.metrics.Request("login", resp.Status)
		s.reply(st, c.device, resp)
		_ = st.Close()
	}
	if err := allow("login", s.limits.loginDevice, string(c.device), s.limits.loginSource, c.source); err != nil {
		fail(err)
		return
	}
	user, err := s.owner(ctx, c.device)
	if err != nil {
		fail(err)
		return
	}
	addrs, err := checkAddrs(req.GetAddrs())
	if err != nil {
		fail(err)
		return
	}
	now := time.Now()
	certificate, err := s.issuer.Issue(c.device, user.Name, now, s.cfg.CertLifetime)
	if err != nil {
		fail(err)
		return
	}
	sess := &session{
		user:    user,
		device:  c.device,
		started: now,
		out:     make(chan *pb.Response, s.cfg.SessionQueue),
		final:   make(chan *pb.Response, 1),
		kill:    func() { st.Reset() },
	}
	// Register the session before reading the contacts: a change that
	// happens in between is then pushed (maybe twice, which is harmless)
	// instead of lost.
	if !s.addSession(sess) {
		fail(&rendezvous.StatusError{Status: pb.Status_STATUS_UNAVAILABLE, Message: rendezvous.ErrUnavailable.Error(), RetryAfter: s.cfg.GoAwaySpread})
		return
	}
	defer s.endSession(sess)
	rec := SessionRecord{Device: c.device, UserID: user.ID, Replica: s.cfg.Replica, Addrs: addrs, Started: now}
	if err := s.store.PutSession(ctx, rec); err != nil {
		fail(fmt.Errorf("store session: %w", err))
		return
	}
	book, err := s.store.ContactLists(ctx, user.ID)
	if err != nil {
		fail(fmt.Errorf("list contacts: %w", err))
		return
	}
	contacts, err := s.presenceOfAll(ctx, book.Accepted)
	if err != nil {
		fail(err)
		return
	}
	resp := okResponse()
	resp.Body = &pb.Response_Login{Login: &pb.LoginResponse{
		Username:    user.Name,
		Contacts:    contacts,
		Incoming:    names(book.Incoming),
		Certificate: certificate.Raw,
		KeepaliveMs: uint32(s.cfg.Keepalive.Milliseconds()),
		Server:      s.serverInfo(),
		PendingMail: s.pendingMail(ctx, c.device),
	}}
	if err := wire.Write(st, resp, rendezvous.MaxResponseSize); err != nil {
		log.Debugw("write login response", "peer", c.device, "err", err)
		st.Reset()
		return
	}
	s.metrics.Request("login", pb.Status_STATUS_OK)
	log.Infow("logged in", "user", user.Name, "device", c.device)
	s.publish(ctx, Event{Kind: EventPresence, UserID: user.ID})

	_ = st.SetDeadline(time.Time{})
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.writePushes(gctx, st, sess) })
	s.readUpdates(gctx, st, r, sess, rec)
	cancel()
	_ = g.Wait()
}

// writePushes writes queued pushes and renews the certificate at half its
// lifetime, until the session ends or its final frame is written.
func (s *Server) writePushes(ctx context.Context, st network.Stream, sess *session) error {
	renew := time.NewTicker(s.cfg.CertLifetime / 2)
	defer renew.Stop()
	write := func(m *pb.Response) error {
		_ = st.SetWriteDeadline(time.Now().Add(sessionWriteTimeout))
		if err := wire.Write(st, m, rendezvous.MaxResponseSize); err != nil {
			log.Debugw("push to session", "user", sess.user.Name, "err", err)
			sess.kill()
			return err
		}
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-sess.out:
			if err := write(m); err != nil {
				return err
			}
		case m := <-sess.final:
			err := write(m)
			// Let the client close its side; a client that does not is
			// cut off shortly.
			_ = st.CloseWrite()
			_ = st.SetReadDeadline(time.Now().Add(time.Second))
			return errors.Join(err, errSessionFinished)
		case <-renew.C:
			m, err := s.renewal(ctx, sess)
			if err != nil {
				sess.finish(rendezvous.ErrorResponse(err))
				continue
			}
			if err := write(m); err != nil {
				return err
			}
		}
	}
}

var errSessionFinished = errors.New("session finished")

// renewal issues a fresh certificate, after checking that the device is
// still enrolled: a revocation whose event was missed stops renewals.
func (s *Server) renewal(ctx context.Context, sess *session) (*pb.Response, error) {
	u, err := s.owner(ctx, sess.device)
	if err != nil {
		return nil, err
	}
	c, err := s.issuer.Issue(sess.device, u.Name, time.Now(), s.cfg.CertLifetime)
	if err != nil {
		return nil, err
	}
	return &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_Certificate{Certificate: c.Raw}}, nil
}

// readUpdates reads pings and address updates. A session that sends
// nothing for three keepalive intervals is closed: its client vanished.
func (s *Server) readUpdates(ctx context.Context, st network.Stream, r *wire.Reader, sess *session, rec SessionRecord) {
	for {
		_ = st.SetReadDeadline(time.Now().Add(3 * s.cfg.Keepalive))
		req := new(pb.Request)
		if err := r.Read(req); err != nil {
			if !isEOF(err) && ctx.Err() == nil {
				log.Debugw("session ended", "user", sess.user.Name, "device", sess.device, "err", err)
			}
			return
		}
		if err := checkRequestSize(req); err != nil {
			sess.finish(rendezvous.ErrorResponse(fmt.Errorf("%w: %v", rendezvous.ErrBadRequest, err)))
			continue
		}
		switch body := req.Body.(type) {
		case *pb.Request_Ping:
			sess.push(&pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_Pong{Pong: &pb.Pong{}}})
		case *pb.Request_UpdateAddrs:
			addrs, err := checkAddrs(body.UpdateAddrs.GetAddrs())
			if err != nil {
				log.Debugw("bad address update", "user", sess.user.Name, "err", err)
				sess.finish(rendezvous.ErrorResponse(err))
				continue
			}
			rec.Addrs = addrs
			if err := s.store.PutSession(ctx, rec); err != nil {
				log.Errorw("store session addresses", "user", sess.user.Name, "err", err)
				continue
			}
			s.publish(ctx, Event{Kind: EventPresence, UserID: sess.user.ID})
		default:
			sess.finish(rendezvous.ErrorResponse(fmt.Errorf("%w: only pings and address updates are valid in a session", rendezvous.ErrBadRequest)))
		}
	}
}

// addSession makes sess the live session of its device on this replica,
// closing an older one of the same device. It is false once the server
// is closing.
func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if old := s.byDevice[sess.device]; old != nil {
		old.kill()
	}
	s.byDevice[sess.device] = sess
	if s.byUser[sess.user.ID] == nil {
		s.byUser[sess.user.ID] = make(map[*session]struct{})
	}
	s.byUser[sess.user.ID][sess] = struct{}{}
	s.metrics.SessionsChanged(len(s.byDevice))
	return true
}

func (s *Server) endSession(sess *session) {
	sess.kill()
	s.mu.Lock()
	current := s.byDevice[sess.device] == sess
	if current {
		delete(s.byDevice, sess.device)
	}
	delete(s.byUser[sess.user.ID], sess)
	if len(s.byUser[sess.user.ID]) == 0 {
		delete(s.byUser, sess.user.ID)
	}
	s.metrics.SessionsChanged(len(s.byDevice))
	s.mu.Unlock()
	if !current {
		return // a newer login of the same device took over
	}
	// Use a fresh context: the session's is cancelled, but the last-seen
	// time and the offline push must still go out.
	ctx, cancel := context.WithTimeout(context.Background(), rendezvous.RequestTimeout)
	defer cancel()
	if err := s.store.DeleteSession(ctx, sess.device, s.cfg.Replica); err != nil {
		log.Errorw("delete session", "user", sess.user.Name, "err", err)
	}
	if err := s.store.SetLastSeen(ctx, sess.user.ID, time.Now()); err != nil && !errors.Is(err, rendezvous.ErrNotFound) {
		log.Errorw("record last seen", "user", sess.user.Name, "err", err)
	}
	log.Infow("logged out", "user", sess.user.Name, "device", sess.device)
	s.publish(ctx, Event{Kind: EventPresence, UserID: sess.user.ID})
}

// presenceOfAll is the presence of each user, from the live sessions of
// every replica.
func (s *Server) presenceOfAll(ctx context.Context, users []User) ([]*pb.Presence, error) {
	if len(users) == 0 {
		return nil, nil
	}
	ids := make([]int64, 0, len(users))
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	recs, err := s.store.Sessions(ctx, s.aliveSince(), ids...)
	if err != nil {
		return nil, fmt.Errorf("read sessions: %w", err)
	}
	byUser := make(map[int64][]SessionRecord, len(users))
	for _, r := range recs {
		byUser[r.UserID] = append(byUser[r.UserID], r)
	}
	out := make([]*pb.Presence, 0, len(users))
	for _, u := range users {
		out = append(out, presenceOf(u, byUser[u.ID]))
	}
	return out, nil
}

// presenceOf is u's presence given its live sessions, oldest first. The
// top-level peer and addresses are the most recent login's.
func presenceOf(u User, recs []SessionRecord) *pb.Presence {
	p := &pb.Presence{Username: u.Name}
	if len(recs) == 0 {
		if !u.LastSeen.IsZero() {
			p.LastSeenUnixMs = u.LastSeen.UnixMilli()
		}
		return p
	}
	p.Online = true
	for _, r := range recs {
		p.Devices = append(p.Devices, &pb.PeerInfo{PeerId: []byte(r.Device), Addrs: r.Addrs})
	}
	latest := recs[len(recs)-1]
	p.PeerId = []byte(latest.Device)
	p.Addrs = latest.Addrs
	return p
}
