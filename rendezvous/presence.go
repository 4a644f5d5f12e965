package rendezvous

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous/pb"
)

// sessionWriteTimeout bounds writing one push to a client.
const sessionWriteTimeout = 10 * time.Second

// session is one logged-in device holding a presence stream.
type session struct {
	user    User
	device  peer.ID
	started time.Time
	out     chan *pb.Response // pushes; full means the client is too slow
	kill    func()            // resets the stream; safe to call more than once

	addrs [][]byte // guarded by Server.mu
}

// serveSession runs a presence session: it answers the login, pushes
// contacts' presence until the stream ends, and takes address updates.
func (s *Server) serveSession(st network.Stream, r *wire.Reader, device peer.ID, req *pb.LoginRequest) {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	fail := func(err error) {
		resp := errorResponse(err)
		if resp.Status == pb.Status_STATUS_INTERNAL {
			log.Errorw("login failed", "peer", device, "err", err)
		}
		s.reply(st, device, resp)
		_ = st.Close()
	}
	user, err := s.owner(ctx, device)
	if err != nil {
		fail(err)
		return
	}
	addrs, err := checkAddrs(req.GetAddrs())
	if err != nil {
		fail(err)
		return
	}
	sess := &session{
		user:    user,
		device:  device,
		started: time.Now(),
		out:     make(chan *pb.Response, s.cfg.SessionQueue),
		kill:    func() { st.Reset() },
		addrs:   addrs,
	}

	// Register the session before reading the contacts: a change that
	// happens in between is then pushed (maybe twice, which is harmless)
	// instead of lost.
	s.mu.Lock()
	if s.sessions[user.ID] == nil {
		s.sessions[user.ID] = make(map[*session]struct{})
	}
	s.sessions[user.ID][sess] = struct{}{}
	s.mu.Unlock()
	defer s.endSession(sess)
	contacts, err := s.store.Contacts(ctx, user.ID)
	if err != nil {
		fail(err)
		return
	}
	s.mu.Lock()
	snapshot := make([]*pb.Presence, 0, len(contacts))
	for _, c := range contacts {
		snapshot = append(snapshot, s.presenceLocked(c))
	}
	s.mu.Unlock()

	resp := okResponse()
	resp.Body = &pb.Response_Login{Login: &pb.LoginResponse{Username: user.Name, Contacts: snapshot}}
	if err := wire.Write(st, resp, MaxResponseSize); err != nil {
		log.Debugw("write login response", "peer", device, "err", err)
		st.Reset()
		return
	}
	log.Infow("logged in", "user", user.Name, "device", device)
	s.publish(ctx, user)

	_ = st.SetDeadline(time.Time{}) // a session lives as long as the client wants
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.writePushes(gctx, st, sess) })
	s.readUpdates(ctx, r, sess)
	cancel()
	_ = g.Wait()
}

func (s *Server) writePushes(ctx context.Context, st network.Stream, sess *session) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-sess.out:
			_ = st.SetWriteDeadline(time.Now().Add(sessionWriteTimeout))
			if err := wire.Write(st, m, MaxResponseSize); err != nil {
				log.Debugw("push presence", "user", sess.user.Name, "err", err)
				sess.kill()
				return err
			}
		}
	}
}

func (s *Server) readUpdates(ctx context.Context, r *wire.Reader, sess *session) {
	for {
		req := new(pb.Request)
		if err := r.Read(req); err != nil {
			if !isEOF(err) && ctx.Err() == nil {
				log.Debugw("session ended", "user", sess.user.Name, "err", err)
			}
			return
		}
		upd := req.GetUpdateAddrs()
		if upd == nil {
			log.Debugw("unexpected request in session", "user", sess.user.Name)
			sess.kill()
			return
		}
		addrs, err := checkAddrs(upd.GetAddrs())
		if err != nil {
			log.Debugw("bad address update", "user", sess.user.Name, "err", err)
			sess.kill()
			return
		}
		s.mu.Lock()
		sess.addrs = addrs
		s.mu.Unlock()
		s.publish(ctx, sess.user)
	}
}

func (s *Server) endSession(sess *session) {
	sess.kill()
	s.mu.Lock()
	delete(s.sessions[sess.user.ID], sess)
	if len(s.sessions[sess.user.ID]) == 0 {
		delete(s.sessions, sess.user.ID)
	}
	s.mu.Unlock()
	// Use a fresh context: the session's is cancelled, but the last-seen
	// time and the offline push must still go out.
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	if err := s.store.SetLastSeen(ctx, sess.user.ID, time.Now()); err != nil {
		log.Errorw("record last seen", "user", sess.user.Name, "err", err)
	}
	log.Infow("logged out", "user", sess.user.Name, "device", sess.device)
	s.publish(ctx, sess.user)
}

// presenceLocked is u's presence as contacts see it. Call with s.mu held.
// With several devices online, the most recent login is shown.
func (s *Server) presenceLocked(u User) *pb.Presence {
	var latest *session
	for sess := range s.sessions[u.ID] {
		if latest == nil || sess.started.After(latest.started) {
			latest = sess
		}
	}
	p := &pb.Presence{Username: u.Name}
	if latest == nil {
		if !u.LastSeen.IsZero() {
			p.LastSeenUnixMs = u.LastSeen.UnixMilli()
		}
		return p
	}
	p.Online = true
	p.PeerId = []byte(latest.device)
	p.Addrs = latest.addrs
	return p
}

// publish pushes u's current presence to every online contact of u.
func (s *Server) publish(ctx context.Context, u User) {
	contacts, err := s.store.Contacts(ctx, u.ID)
	if err != nil {
		log.Errorw("presence fan-out: list contacts", "user", u.Name, "err", err)
		return
	}
	if fresh, err := s.store.UserByName(ctx, u.Name); err == nil {
		u = fresh // for an up-to-date last-seen time
	}
	for _, c := range contacts {
		s.pushPresenceTo(c, u)
	}
}

// pushPresenceTo sends about's presence to every session of to. A session
// whose queue is full is closed rather than allowed to block the others.
func (s *Server) pushPresenceTo(to, about User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sessions := s.sessions[to.ID]
	if len(sessions) == 0 {
		return
	}
	p := s.presenceLocked(about)
	for sess := range sessions {
		select {
		case sess.out <- &pb.Response{Status: pb.Status_STATUS_OK, Body: &pb.Response_Presence{Presence: p}}:
		default:
			log.Warnw("presence queue full; closing session", "user", to.Name)
			sess.kill()
		}
	}
}
