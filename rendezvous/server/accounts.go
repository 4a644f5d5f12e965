package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

func accountResponse(name string) *pb.Response {
	resp := okResponse()
	resp.Body = &pb.Response_Account{Account: &pb.AccountResponse{Username: name}}
	return resp
}

func (s *Server) register(ctx context.Context, c caller, req *pb.RegisterRequest) (*pb.Response, error) {
	name, err := rendezvous.CanonicalUsername(req.GetUsername())
	if err != nil {
		return nil, err
	}
	if err := allow("password", s.limits.passwordAccount, name, s.limits.passwordSource, c.source); err != nil {
		return nil, err
	}
	if err := rendezvous.CheckPassword(req.GetPassword()); err != nil {
		return nil, err
	}
	hash, err := HashPassword(req.GetPassword(), s.cfg.Argon2)
	if err != nil {
		return nil, err
	}
	u, err := s.store.Register(ctx, name, hash, c.device)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	log.Infow("registered", "user", u.Name, "device", c.device)
	return accountResponse(u.Name), nil
}

// checkPassword verifies a user's password in constant time whether or
// not the user exists, after charging the password rate limits. Any
// failure is ErrBadCredentials, so that the answer does not reveal which
// usernames exist.
func (s *Server) checkPassword(ctx context.Context, c caller, username, password string) (User, error) {
	name, err := rendezvous.CanonicalUsername(username)
	if err != nil {
		return User{}, rendezvous.ErrBadCredentials
	}
	if err := allow("password", s.limits.passwordAccount, name, s.limits.passwordSource, c.source); err != nil {
		return User{}, err
	}
	u, err := s.store.UserByName(ctx, name)
	switch {
	case errors.Is(err, rendezvous.ErrNotFound):
		_, _ = VerifyPassword(password, s.dummyHash)
		return User{}, rendezvous.ErrBadCredentials
	case err != nil:
		return User{}, fmt.Errorf("look up %s: %w", name, err)
	}
	ok, err := VerifyPassword(password, u.PasswordHash)
	if err != nil {
		return User{}, fmt.Errorf("verify password of %s: %w", name, err)
	}
	if !ok {
		log.Infow("password refused", "user", name, "device", c.device)
		return User{}, rendezvous.ErrBadCredentials
	}
	return u, nil
}

func (s *Server) enrol(ctx context.Context, c caller, req *pb.EnrolRequest) (*pb.Response, error) {
	u, err := s.checkPassword(ctx, c, req.GetUsername(), req.GetPassword())
	if err != nil {
		return nil, err
	}
	if err := s.store.EnrolDevice(ctx, u.ID, c.device); err != nil {
		return nil, fmt.Errorf("enrol device of %s: %w", u.Name, err)
	}
	log.Infow("device enrolled", "user", u.Name, "device", c.device)
	return accountResponse(u.Name), nil
}

func (s *Server) changePassword(ctx context.Context, c caller, req *pb.ChangePasswordRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkPassword(ctx, c, me.Name, req.GetOldPassword()); err != nil {
		return nil, err
	}
	if err := rendezvous.CheckPassword(req.GetNewPassword()); err != nil {
		return nil, err
	}
	hash, err := HashPassword(req.GetNewPassword(), s.cfg.Argon2)
	if err != nil {
		return nil, err
	}
	if err := s.store.SetPasswordHash(ctx, me.ID, hash); err != nil {
		return nil, fmt.Errorf("set password of %s: %w", me.Name, err)
	}
	log.Infow("password changed", "user", me.Name, "device", c.device)
	return accountResponse(me.Name), nil
}

func (s *Server) deleteAccount(ctx context.Context, c caller, req *pb.DeleteAccountRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkPassword(ctx, c, me.Name, req.GetPassword()); err != nil {
		return nil, err
	}
	book, err := s.store.ContactLists(ctx, me.ID)
	if err != nil {
		return nil, fmt.Errorf("list contacts of %s: %w", me.Name, err)
	}
	if err := s.store.DeleteUser(ctx, me.ID); err != nil {
		return nil, fmt.Errorf("delete %s: %w", me.Name, err)
	}
	log.Infow("account deleted", "user", me.Name, "device", c.device)
	for _, u := range append(book.Accepted, book.Outgoing...) {
		s.publish(ctx, Event{Kind: EventContact, UserID: u.ID, Other: me.Name, Change: ContactRemoved})
	}
	s.publish(ctx, Event{Kind: EventKick, UserID: me.ID})
	return accountResponse(me.Name), nil
}

func (s *Server) listDevices(ctx context.Context, c caller) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	devices, err := s.store.Devices(ctx, me.ID)
	if err != nil {
		return nil, fmt.Errorf("list devices of %s: %w", me.Name, err)
	}
	live, err := s.store.Sessions(ctx, s.aliveSince(), me.ID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %s: %w", me.Name, err)
	}
	online := make(map[peer.ID]bool, len(live))
	for _, r := range live {
		online[r.Device] = true
	}
	list := &pb.DeviceList{}
	for _, d := range devices {
		info := &pb.DeviceInfo{PeerId: []byte(d.Peer), EnrolledUnixMs: d.Enrolled.UnixMilli(), Online: online[d.Peer]}
		if !d.Revoked.IsZero() {
			info.RevokedUnixMs = d.Revoked.UnixMilli()
		}
		list.Devices = append(list.Devices, info)
	}
	resp := okResponse()
	resp.Body = &pb.Response_Devices{Devices: list}
	return resp, nil
}

func (s *Server) revokeDevice(ctx context.Context, c caller, req *pb.RevokeDeviceRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	dev, err := peer.IDFromBytes(req.GetPeerId())
	if err != nil {
		return nil, fmt.Errorf("%w: invalid peer ID: %v", rendezvous.ErrBadRequest, err)
	}
	if err := s.store.RevokeDevice(ctx, me.ID, dev); err != nil {
		if errors.Is(err, rendezvous.ErrNotFound) {
			return nil, fmt.Errorf("%w: %s is not one of your devices", rendezvous.ErrNotFound, dev)
		}
		return nil, fmt.Errorf("revoke device of %s: %w", me.Name, err)
	}
	log.Infow("device revoked", "user", me.Name, "device", dev, "by", c.device)
	s.publish(ctx, Event{Kind: EventKick, UserID: me.ID, Device: dev})
	s.publish(ctx, Event{Kind: EventPresence, UserID: me.ID})
	return okResponse(), nil
}

// aliveSince is the oldest replica heartbeat that still counts as alive.
func (s *Server) aliveSince() time.Time {
	return time.Now().Add(-s.cfg.ReplicaTimeout)
}
