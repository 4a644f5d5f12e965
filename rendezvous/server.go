package rendezvous

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous/pb"
)

var log = logging.Logger("parley/rendezvous")

// Config configures a Server. The zero value is valid and means
// DefaultConfig.
type Config struct {
	// SupernodeTTL is how long a supernode stays listed after its last
	// announcement. Zero means 60s.
	SupernodeTTL time.Duration
	// Argon2 is the cost of new password hashes. Zero means DefaultArgon2.
	Argon2 Argon2Params
	// SessionQueue is how many presence updates may wait for one slow
	// client before its session is closed (the client logs in again).
	// Zero means 256.
	SessionQueue int
}

// DefaultConfig is for production servers.
func DefaultConfig() Config {
	return Config{SupernodeTTL: 60 * time.Second, Argon2: DefaultArgon2, SessionQueue: 256}
}

// LocalConfig is for tests and the local testnet: cheap password hashes
// and short supernode expiry.
func LocalConfig() Config {
	return Config{SupernodeTTL: 10 * time.Second, Argon2: LocalArgon2, SessionQueue: 256}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.SupernodeTTL == 0 {
		c.SupernodeTTL = d.SupernodeTTL
	}
	if c.Argon2 == (Argon2Params{}) {
		c.Argon2 = d.Argon2
	}
	if c.SessionQueue == 0 {
		c.SessionQueue = d.SessionQueue
	}
	return c
}

// Server is the rendezvous service on a libp2p host. It does not own the
// host or the store; Close stops the service only.
type Server struct {
	host  host.Host
	store Store
	cfg   Config
	dir   *directory
	// dummyHash is verified against when a username does not exist, so
	// that a wrong username costs as much time as a wrong password. It uses
	// the configured cost for that reason.
	dummyHash []byte
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup

	mu       sync.Mutex // guards the following
	closed   bool
	sessions map[int64]map[*session]struct{} // live sessions by user ID
}

// New starts serving ProtocolID on h.
func New(h host.Host, store Store, cfg Config) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	cfg = cfg.withDefaults()
	dummy, err := HashPassword("parley-dummy-password", cfg.Argon2)
	if err != nil {
		panic(fmt.Sprintf("rendezvous: cannot hash the dummy password: %v", err)) // crypto/rand failed
	}
	s := &Server{
		dummyHash: dummy,
		host:      h,
		store:     store,
		cfg:       cfg,
		dir:       newDirectory(cfg.SupernodeTTL),
		ctx:       ctx,
		cancel:    cancel,
		sessions:  make(map[int64]map[*session]struct{}),
	}
	h.SetStreamHandler(ProtocolID, s.handleStream)
	return s
}

// Close stops accepting streams, ends every session and waits for the
// handlers to return.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.host.RemoveStreamHandler(ProtocolID)
	s.cancel()
	s.wg.Wait()
	return nil
}

// enter registers a handler goroutine, unless the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) handleStream(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	stop := context.AfterFunc(s.ctx, func() { st.Reset() })
	defer stop()

	remote := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(RequestTimeout))
	r := wire.NewReader(st, MaxRequestSize)
	req := new(pb.Request)
	if err := r.Read(req); err != nil {
		log.Debugw("bad request", "peer", remote, "err", err)
		if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrMalformed) {
			s.reply(st, remote, errorResponse(fmt.Errorf("%w: %v", ErrBadRequest, err)))
			_ = st.Close()
		} else {
			st.Reset()
		}
		return
	}
	if login := req.GetLogin(); login != nil {
		s.serveSession(st, r, remote, login)
		return
	}
	resp, err := s.handleRequest(s.ctx, remote, req)
	if err != nil {
		resp = errorResponse(err)
		if resp.Status == pb.Status_STATUS_INTERNAL {
			log.Errorw("request failed", "peer", remote, "err", err)
		}
	}
	s.reply(st, remote, resp)
	_ = st.Close()
}

func (s *Server) reply(st network.Stream, remote peer.ID, resp *pb.Response) {
	if err := wire.Write(st, resp, MaxResponseSize); err != nil {
		log.Debugw("write response", "peer", remote, "err", err)
		st.Reset()
	}
}

func errorResponse(err error) *pb.Response {
	status, msg := statusOf(err)
	return &pb.Response{Status: status, Message: msg}
}

func okResponse() *pb.Response { return &pb.Response{Status: pb.Status_STATUS_OK} }

func (s *Server) handleRequest(ctx context.Context, remote peer.ID, req *pb.Request) (*pb.Response, error) {
	switch body := req.Body.(type) {
	case *pb.Request_Register:
		return s.register(ctx, remote, body.Register)
	case *pb.Request_Enrol:
		return s.enrol(ctx, remote, body.Enrol)
	case *pb.Request_AddContact:
		return s.addContact(ctx, remote, body.AddContact)
	case *pb.Request_ListSupernodes:
		max := int(body.ListSupernodes.GetMax())
		if max == 0 || max > MaxSupernodes {
			max = MaxSupernodes
		}
		resp := okResponse()
		resp.Body = &pb.Response_Supernodes{Supernodes: &pb.SupernodeList{Supernodes: s.dir.list(max, time.Now())}}
		return resp, nil
	case *pb.Request_AnnounceSupernode:
		addrs, err := checkAddrs(body.AnnounceSupernode.GetAddrs())
		if err != nil {
			return nil, err
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("%w: a supernode must announce at least one address", ErrBadRequest)
		}
		s.dir.announce(remote, addrs, body.AnnounceSupernode.GetLoad(), time.Now())
		resp := okResponse()
		resp.Body = &pb.Response_Announce{Announce: &pb.AnnounceSupernodeResponse{TtlMs: uint32(s.cfg.SupernodeTTL.Milliseconds())}}
		return resp, nil
	case *pb.Request_UpdateAddrs:
		return nil, fmt.Errorf("%w: update-addrs is only valid in a session", ErrBadRequest)
	default:
		return nil, fmt.Errorf("%w: empty or unknown request", ErrBadRequest)
	}
}

func (s *Server) register(ctx context.Context, device peer.ID, req *pb.RegisterRequest) (*pb.Response, error) {
	name, err := CanonicalUsername(req.GetUsername())
	if err != nil {
		return nil, err
	}
	if err := CheckPassword(req.GetPassword()); err != nil {
		return nil, err
	}
	hash, err := HashPassword(req.GetPassword(), s.cfg.Argon2)
	if err != nil {
		return nil, err
	}
	u, err := s.store.Register(ctx, name, hash, device)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", name, err)
	}
	log.Infow("registered", "user", u.Name, "device", device)
	resp := okResponse()
	resp.Body = &pb.Response_Account{Account: &pb.AccountResponse{Username: u.Name}}
	return resp, nil
}

func (s *Server) enrol(ctx context.Context, device peer.ID, req *pb.EnrolRequest) (*pb.Response, error) {
	name, err := CanonicalUsername(req.GetUsername())
	if err != nil {
		return nil, ErrBadCredentials
	}
	u, err := s.store.UserByName(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		_, _ = VerifyPassword(req.GetPassword(), s.dummyHash)
		return nil, ErrBadCredentials
	case err != nil:
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	ok, err := VerifyPassword(req.GetPassword(), u.PasswordHash)
	if err != nil {
		return nil, fmt.Errorf("verify password of %s: %w", name, err)
	}
	if !ok {
		log.Infow("enrolment refused", "user", name, "device", device, "reason", "wrong password")
		return nil, ErrBadCredentials
	}
	if err := s.store.EnrolDevice(ctx, u.ID, device); err != nil {
		return nil, fmt.Errorf("enrol device of %s: %w", name, err)
	}
	log.Infow("device enrolled", "user", name, "device", device)
	resp := okResponse()
	resp.Body = &pb.Response_Account{Account: &pb.AccountResponse{Username: u.Name}}
	return resp, nil
}

// owner returns the user the calling device is enrolled to.
func (s *Server) owner(ctx context.Context, device peer.ID) (User, error) {
	u, err := s.store.DeviceOwner(ctx, device)
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrDeviceNotEnrolled
	}
	if err != nil {
		return User{}, fmt.Errorf("look up device: %w", err)
	}
	return u, nil
}

func (s *Server) addContact(ctx context.Context, device peer.ID, req *pb.AddContactRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, device)
	if err != nil {
		return nil, err
	}
	name, err := CanonicalUsername(req.GetUsername())
	if err != nil {
		return nil, err
	}
	other, err := s.store.UserByName(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("look up contact %s: %w", name, err)
	}
	accepted, err := s.store.AddContact(ctx, me.ID, other.ID)
	if err != nil {
		return nil, fmt.Errorf("add contact: %w", err)
	}
	if accepted {
		log.Infow("contacts accepted", "a", me.Name, "b", other.Name)
		// Each side now sees the other: push current presence both ways.
		s.pushPresenceTo(me, other)
		s.pushPresenceTo(other, me)
	}
	resp := okResponse()
	resp.Body = &pb.Response_AddContact{AddContact: &pb.AddContactResponse{Accepted: accepted}}
	return resp, nil
}

// checkAddrs validates binary multiaddrs from a client.
func checkAddrs(addrs [][]byte) ([][]byte, error) {
	if len(addrs) > MaxAddrs {
		return nil, fmt.Errorf("%w: at most %d addresses", ErrBadRequest, MaxAddrs)
	}
	for _, a := range addrs {
		if len(a) > MaxAddrLen {
			return nil, fmt.Errorf("%w: address longer than %d bytes", ErrBadRequest, MaxAddrLen)
		}
		if _, err := ma.NewMultiaddrBytes(a); err != nil {
			return nil, fmt.Errorf("%w: invalid multiaddr: %v", ErrBadRequest, err)
		}
	}
	return addrs, nil
}

// isEOF reports whether err is how a peer ends a session.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, network.ErrReset)
}
