package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/pb"
)

var log = logging.Logger("parley/rendezvous")

// Config configures a Server. CertKey is required; every other field left
// zero takes its DefaultConfig value, field by field (also inside
// Election, Argon2 and Limits).
type Config struct {
	// CertKey signs membership certificates (Ed25519). Replicas sharing a
	// database must share it.
	CertKey crypto.PrivKey
	// CertLifetime is how long a certificate is valid. Sessions get a
	// fresh one at half its lifetime. Default 1h.
	CertLifetime time.Duration
	// SupernodeTTL is how long a supernode stays listed after its last
	// announcement. Default 60s.
	SupernodeTTL time.Duration
	// Election tunes the supernode directory's active set. Zero fields
	// take their DefaultElection value.
	Election ElectionConfig
	// TrustedSupernodes are the headless relays (parley-relay) allowed to
	// announce themselves as supernodes, besides enrolled devices that
	// volunteer; the directory believes what they report of themselves
	// (dedicated, capacity).
	TrustedSupernodes []peer.ID
	// OpenDirectory lets any peer announce itself as a supernode and be
	// believed, as if trusted: for local and test networks only.
	OpenDirectory bool
	// Argon2 is the cost of new password hashes. Zero fields take their
	// DefaultArgon2 value.
	Argon2 Argon2Params
	// SessionQueue is how many pushes may wait for one slow client before
	// its session is closed (the client logs in again). Default 256.
	SessionQueue int
	// Keepalive is how often clients ping; a session silent for three
	// keepalives is closed and the device shown offline. Default 10s.
	Keepalive time.Duration
	// Replica names this server among replicas sharing one database.
	// Default: random.
	Replica string
	// ReplicaTimeout is how long a replica may miss heartbeats before the
	// others count its sessions as gone. Default 30s.
	ReplicaTimeout time.Duration
	// GoAwaySpread is the window over which clients of a server shutting
	// down are told to come back, so they do not return at once.
	// Default 5s.
	GoAwaySpread time.Duration
	// Limits are the abuse limits. Zero rates take their DefaultLimits
	// value; ratelimit.NoLimit means none (NoLimits turns all off).
	Limits Limits
	// Mailbox configures the offline mailbox. Zero fields take their
	// DefaultMailbox value.
	Mailbox MailboxConfig
	// Metrics receives measurements; nil means none.
	Metrics MetricsTracer
	// SupernodeCheck tries each supernode candidate at its announced
	// addresses before the directory seats it (and again when they
	// change); nil means the real check: dial, present a certificate this
	// server issues to its checker, take a circuit v2 reservation. A test
	// whose supernodes are only announcements passes one that returns nil.
	SupernodeCheck SupernodeCheck
}

// DefaultConfig is for production servers (CertKey still to be set).
func DefaultConfig() Config {
	return Config{
		CertLifetime:   time.Hour,
		SupernodeTTL:   60 * time.Second,
		Argon2:         DefaultArgon2,
		SessionQueue:   256,
		Keepalive:      10 * time.Second,
		ReplicaTimeout: 30 * time.Second,
		GoAwaySpread:   5 * time.Second,
		Limits:         DefaultLimits(),
		Mailbox:        DefaultMailbox,
	}
}

// LocalConfig is for tests and the local testnet: cheap password hashes,
// short supernode expiry and quick keepalives.
func LocalConfig(certKey crypto.PrivKey) Config {
	c := DefaultConfig()
	c.CertKey = certKey
	c.SupernodeTTL = 10 * time.Second
	c.Argon2 = LocalArgon2
	c.Keepalive = 2 * time.Second
	c.ReplicaTimeout = 6 * time.Second
	c.GoAwaySpread = 500 * time.Millisecond
	c.OpenDirectory = true
	return c
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	def := func(v *time.Duration, dv time.Duration) {
		if *v == 0 {
			*v = dv
		}
	}
	def(&c.CertLifetime, d.CertLifetime)
	def(&c.SupernodeTTL, d.SupernodeTTL)
	def(&c.Keepalive, d.Keepalive)
	def(&c.ReplicaTimeout, d.ReplicaTimeout)
	def(&c.GoAwaySpread, d.GoAwaySpread)
	if c.Argon2.Time == 0 {
		c.Argon2.Time = d.Argon2.Time
	}
	if c.Argon2.Memory == 0 {
		c.Argon2.Memory = d.Argon2.Memory
	}
	if c.Argon2.Threads == 0 {
		c.Argon2.Threads = d.Argon2.Threads
	}
	if c.SessionQueue == 0 {
		c.SessionQueue = d.SessionQueue
	}
	c.Election = c.Election.withDefaults()
	c.Limits = c.Limits.withDefaults()
	c.Mailbox = c.Mailbox.withDefaults()
	if c.Replica == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.Replica = hex.EncodeToString(b[:])
	}
	return c
}

// Server is the rendezvous service on a libp2p host. It does not own the
// host or the store; Close stops the service only.
type Server struct {
	host    host.Host
	store   Store
	cfg     Config
	dir     *directory
	issuer  *cert.Issuer
	limits  *limiters
	metrics MetricsTracer
	// dummyHash is verified against when a username does not exist, so
	// that a wrong username costs as much time as a wrong password. It uses
	// the configured cost for that reason.
	dummyHash []byte
	ctx       context.Context
	cancel    context.CancelFunc
	handlers  sync.WaitGroup // stream handlers
	loops     sync.WaitGroup // event workers and the replica heartbeat
	fanout    []chan Event   // event workers, sharded by user
	checks    chan struct{}  // a slot per supernode check under way
	checker   *reservationCheck

	mu       sync.Mutex // guards the following
	closed   bool
	byUser   map[int64]map[*session]struct{} // live local sessions
	byDevice map[peer.ID]*session
}

// New starts serving ProtocolID on h. It records this replica in the
// store and subscribes to the store's events before it returns.
func New(ctx context.Context, h host.Host, store Store, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	if cfg.CertKey == nil {
		return nil, errors.New("rendezvous: a certificate key is required")
	}
	if err := cfg.Limits.validate(); err != nil {
		return nil, fmt.Errorf("rendezvous: %w", err)
	}
	issuer, err := cert.NewIssuer(cfg.CertKey)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: %w", err)
	}
	dummy, err := HashPassword("parley-dummy-password", cfg.Argon2)
	if err != nil {
		return nil, fmt.Errorf("rendezvous: hash the dummy password: %w", err)
	}
	if err := store.HeartbeatReplica(ctx, cfg.Replica, time.Now()); err != nil {
		return nil, fmt.Errorf("rendezvous: record replica: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	events, err := store.Subscribe(sctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("rendezvous: subscribe to events: %w", err)
	}
	s := &Server{
		host:      h,
		store:     store,
		cfg:       cfg,
		dir:       newDirectory(cfg.SupernodeTTL, cfg.Election),
		issuer:    issuer,
		limits:    newLimiters(cfg.Limits),
		metrics:   cfg.Metrics,
		dummyHash: dummy,
		ctx:       sctx,
		cancel:    cancel,
		byUser:    make(map[int64]map[*session]struct{}),
		byDevice:  make(map[peer.ID]*session),
		checks:    make(chan struct{}, maxChecks),
	}
	if s.cfg.SupernodeCheck == nil {
		s.checker = &reservationCheck{issue: s.issueChecker}
		s.cfg.SupernodeCheck = s.checker.check
	}
	if s.metrics == nil {
		s.metrics = nopMetrics{}
	}
	s.startFanout(events)
	s.loops.Go(s.heartbeatLoop)
	s.loops.Go(s.sweepMail)
	h.SetStreamHandler(rendezvous.ProtocolID, s.handleStream)
	log.Infow("rendezvous server started", "replica", cfg.Replica, "peer", h.ID())
	return s, nil
}

// CertPublicKey is the key that verifies this server's certificates.
func (s *Server) CertPublicKey() crypto.PubKey { return s.issuer.PublicKey() }

// Replica is this server's replica ID.
func (s *Server) Replica() string { return s.cfg.Replica }

// Shutdown stops the server gracefully: it refuses new streams, tells
// every session to log in again after a spread-out delay (GoAway), waits
// for the sessions to end until ctx is done, and then removes this
// replica's sessions from the store so that other replicas show the
// devices that did not move as offline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.byDevice))
	for _, sess := range s.byDevice {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	s.host.RemoveStreamHandler(rendezvous.ProtocolID)
	for i, sess := range sessions {
		// Spread evenly: client i comes back at i/n of the window.
		after := s.cfg.GoAwaySpread * time.Duration(i) / time.Duration(len(sessions))
		sess.goAway(after)
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.cancel() // ends whatever is left
	s.handlers.Wait()
	s.loops.Wait()
	if s.checker != nil {
		if err := s.checker.Close(); err != nil {
			log.Warnw("close the supernode checker's host", "err", err)
		}
	}

	cctx, ccancel := context.WithTimeout(context.Background(), rendezvous.RequestTimeout)
	defer ccancel()
	users, err := s.store.DeleteReplica(cctx, s.cfg.Replica)
	if err != nil {
		return fmt.Errorf("rendezvous: remove replica: %w", err)
	}
	for _, u := range users {
		s.publish(cctx, Event{Kind: EventPresence, UserID: u})
	}
	log.Infow("rendezvous server stopped", "replica", s.cfg.Replica, "sessions", len(sessions))
	return nil
}

// Close shuts down, giving sessions a moment to receive their GoAway.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// enter registers a handler goroutine, unless the server is closing.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.handlers.Add(1)
	return true
}

func (s *Server) handleStream(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.handlers.Done()
	stop := context.AfterFunc(s.ctx, func() { st.Reset() })
	defer stop()

	remote := st.Conn().RemotePeer()
	_ = st.SetDeadline(time.Now().Add(rendezvous.RequestTimeout))
	// A deposit may be up to MaxDepositSize; any other request is held
	// to MaxRequestSize once decoded.
	r := wire.NewReader(st, rendezvous.MaxDepositSize)
	req := new(pb.Request)
	err := r.Read(req)
	if err == nil {
		err = checkRequestSize(req)
	}
	if err != nil {
		log.Debugw("bad request", "peer", remote, "err", err)
		if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrMalformed) {
			s.metrics.Request("other", pb.Status_STATUS_BAD_REQUEST)
			s.reply(st, remote, rendezvous.ErrorResponse(fmt.Errorf("%w: %v", rendezvous.ErrBadRequest, err)))
			_ = st.Close()
		} else {
			st.Reset()
		}
		return
	}
	c := caller{device: remote, source: sourceOf(st.Conn().RemoteMultiaddr())}
	if login := req.GetLogin(); login != nil {
		s.serveSession(st, r, c, login)
		return
	}
	kind := requestKind(req)
	resp, err := s.handleRequest(s.ctx, c, req)
	if err != nil {
		resp = rendezvous.ErrorResponse(err)
		if resp.Status == pb.Status_STATUS_INTERNAL {
			log.Errorw("request failed", "kind", kind, "peer", remote, "err", err)
		}
	}
	s.metrics.Request(kind, resp.Status)
	s.reply(st, remote, resp)
	_ = st.Close()
}

// checkRequestSize holds every request but a deposit to MaxRequestSize
// (rendezvous.RequestLimit).
func checkRequestSize(req *pb.Request) error {
	if n, limit := proto.Size(req), rendezvous.RequestLimit(req); n > limit {
		return fmt.Errorf("%w: %d bytes, limit %d", wire.ErrTooLarge, n, limit)
	}
	return nil
}

// caller is who sent a request: the device the secure channel
// authenticated and the address it came from (for rate limits).
type caller struct {
	device peer.ID
	source string
}

func (s *Server) reply(st network.Stream, remote peer.ID, resp *pb.Response) {
	if err := wire.Write(st, resp, rendezvous.MaxResponseSize); err != nil {
		log.Debugw("write response", "peer", remote, "err", err)
		st.Reset()
	}
}

func okResponse() *pb.Response { return &pb.Response{Status: pb.Status_STATUS_OK} }

func (s *Server) handleRequest(ctx context.Context, c caller, req *pb.Request) (*pb.Response, error) {
	switch body := req.Body.(type) {
	case *pb.Request_Register:
		return s.register(ctx, c, body.Register)
	case *pb.Request_Enrol:
		return s.enrol(ctx, c, body.Enrol)
	case *pb.Request_ChangePassword:
		return s.changePassword(ctx, c, body.ChangePassword)
	case *pb.Request_DeleteAccount:
		return s.deleteAccount(ctx, c, body.DeleteAccount)
	case *pb.Request_ListDevices:
		return s.listDevices(ctx, c)
	case *pb.Request_RevokeDevice:
		return s.revokeDevice(ctx, c, body.RevokeDevice)
	case *pb.Request_RequestContact:
		return s.requestContact(ctx, c, body.RequestContact)
	case *pb.Request_AcceptContact:
		return s.acceptContact(ctx, c, body.AcceptContact)
	case *pb.Request_DeclineContact:
		return s.declineContact(ctx, c, body.DeclineContact)
	case *pb.Request_RemoveContact:
		return s.removeContact(ctx, c, body.RemoveContact)
	case *pb.Request_Block:
		return s.block(ctx, c, body.Block)
	case *pb.Request_Unblock:
		return s.unblock(ctx, c, body.Unblock)
	case *pb.Request_ListContacts:
		return s.listContacts(ctx, c)
	case *pb.Request_ServerInfo:
		resp := okResponse()
		resp.Body = &pb.Response_ServerInfo{ServerInfo: s.serverInfo()}
		return resp, nil
	case *pb.Request_ListSupernodes:
		return s.listSupernodes(c, body.ListSupernodes)
	case *pb.Request_AnnounceSupernode:
		return s.announceSupernode(ctx, c, body.AnnounceSupernode)
	case *pb.Request_PublishDeviceKey:
		return s.publishDeviceKey(ctx, c, body.PublishDeviceKey)
	case *pb.Request_DeviceKeys:
		return s.deviceKeys(ctx, c, body.DeviceKeys)
	case *pb.Request_Deposit:
		return s.deposit(ctx, c, body.Deposit)
	case *pb.Request_FetchMail:
		return s.fetchMail(ctx, c, body.FetchMail)
	case *pb.Request_AckMail:
		return s.ackMail(ctx, c, body.AckMail)
	case *pb.Request_UpdateAddrs, *pb.Request_Ping:
		return nil, fmt.Errorf("%w: this request is only valid in a session", rendezvous.ErrBadRequest)
	default:
		return nil, fmt.Errorf("%w: empty or unknown request", rendezvous.ErrBadRequest)
	}
}

// requestKind names a request for metrics and logs.
func requestKind(req *pb.Request) string {
	fd := req.ProtoReflect().WhichOneof(req.ProtoReflect().Descriptor().Oneofs().ByName("body"))
	if fd == nil {
		return "other"
	}
	return string(fd.Name())
}

func (s *Server) serverInfo() *pb.ServerInfo {
	raw, err := crypto.MarshalPublicKey(s.issuer.PublicKey())
	if err != nil {
		panic(fmt.Sprintf("rendezvous: marshal an Ed25519 public key: %v", err)) // cannot fail for Ed25519
	}
	return &pb.ServerInfo{CertPublicKey: raw, CertLifetimeMs: uint32(s.cfg.CertLifetime.Milliseconds())}
}

// owner returns the user the calling device is enrolled to.
func (s *Server) owner(ctx context.Context, device peer.ID) (User, error) {
	u, err := s.store.DeviceOwner(ctx, device)
	switch {
	case errors.Is(err, rendezvous.ErrDeviceRevoked):
		return User{}, rendezvous.ErrDeviceRevoked
	case errors.Is(err, rendezvous.ErrNotFound):
		return User{}, rendezvous.ErrDeviceNotEnrolled
	case err != nil:
		return User{}, fmt.Errorf("look up device: %w", err)
	}
	return u, nil
}

// publish sends an event to every replica, this one included. A failure
// is logged: state is in the store, so the next change repairs the view.
func (s *Server) publish(ctx context.Context, ev Event) {
	ev.At = time.Now().UnixMicro()
	if err := s.store.Publish(ctx, ev); err != nil {
		log.Errorw("publish event", "kind", ev.Kind, "user", ev.UserID, "err", err)
	}
}

// checkAddrs validates binary multiaddrs from a client.
func checkAddrs(addrs [][]byte) ([][]byte, error) {
	if len(addrs) > rendezvous.MaxAddrs {
		return nil, fmt.Errorf("%w: at most %d addresses", rendezvous.ErrBadRequest, rendezvous.MaxAddrs)
	}
	for _, a := range addrs {
		if len(a) > rendezvous.MaxAddrLen {
			return nil, fmt.Errorf("%w: address longer than %d bytes", rendezvous.ErrBadRequest, rendezvous.MaxAddrLen)
		}
		if _, err := ma.NewMultiaddrBytes(a); err != nil {
			return nil, fmt.Errorf("%w: invalid multiaddr: %v", rendezvous.ErrBadRequest, err)
		}
	}
	return addrs, nil
}

// isEOF reports whether err is how a peer ends a session.
func isEOF(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, network.ErrReset)
}

type nopMetrics struct{}

func (nopMetrics) SessionsChanged(int)       {}
func (nopMetrics) Request(string, pb.Status) {}
func (nopMetrics) FanOut(time.Duration, int) {}
func (nopMetrics) Supernodes(int, int)       {}
func (nopMetrics) SupernodeChecked(string)   {}
