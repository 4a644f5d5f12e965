package relay

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"golang.org/x/sync/errgroup"

	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay/pb"
	"github.com/parleynet/parley/relay/splice"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
	rpb "github.com/parleynet/parley/rendezvous/pb"
)

// NoLimit, in a count or duration field of this package's configuration,
// means "none" (any negative value does); zero means the field's default.
// Rate fields spell it ratelimit.NoLimit.
const NoLimit = -1

// noLimitCount stands in for NoLimit where go-libp2p wants a number.
const noLimitCount = 1 << 30

// Limits are a supernode's resource and abuse limits. Each field left zero
// takes its DefaultLimits value.
type Limits struct {
	// MaxReservations is how many clients may hold a slot at once; it is
	// also the capacity announced to the directory, so it has no NoLimit.
	// Default 1024.
	MaxReservations int
	// ReservationsPerIP caps the slots held from one IP address (one
	// NAT's users share one). Default 64; NoLimit means none.
	ReservationsPerIP int
	// CircuitsPerPeer caps the relayed connections open at once to or from
	// one peer. Default 64; NoLimit means none.
	CircuitsPerPeer int
	// CircuitDuration and CircuitData limit one relayed connection (each
	// direction's data). Default NoLimit: admitted users relay real chat
	// and file streams, not only hole-punch coordination.
	CircuitDuration time.Duration
	CircuitData     int64
	// BufferSize is the copy buffer of each direction of a circuit.
	// Default 64 KiB (go-libp2p's 2 KiB caps throughput).
	BufferSize int
	// ReservationTTL is how long a reservation lasts before the client
	// renews it. Default 15 min.
	ReservationTTL time.Duration
	// AuthPerPeer and AuthPerIP limit certificate presentations.
	// Defaults: 10 at once then one every 6 s per peer; 200 at once then
	// 20 a second per IP address. ratelimit.NoLimit means none (load
	// tests).
	AuthPerPeer, AuthPerIP ratelimit.Rate
}

// DefaultLimits are the limits of a supernode.
func DefaultLimits() Limits {
	return Limits{
		MaxReservations:   1024,
		ReservationsPerIP: 64,
		CircuitsPerPeer:   64,
		CircuitDuration:   NoLimit,
		CircuitData:       NoLimit,
		BufferSize:        64 << 10,
		ReservationTTL:    15 * time.Minute,
		AuthPerPeer:       ratelimit.Rate{Burst: 10, Every: 6 * time.Second},
		AuthPerIP:         ratelimit.Rate{Burst: 200, Every: 50 * time.Millisecond},
	}
}

// orDefault is v, or d when v is zero.
func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	l.MaxReservations = orDefault(l.MaxReservations, d.MaxReservations)
	l.ReservationsPerIP = orDefault(l.ReservationsPerIP, d.ReservationsPerIP)
	l.CircuitsPerPeer = orDefault(l.CircuitsPerPeer, d.CircuitsPerPeer)
	l.CircuitDuration = orDefault(l.CircuitDuration, d.CircuitDuration)
	l.CircuitData = orDefault(l.CircuitData, d.CircuitData)
	l.BufferSize = orDefault(l.BufferSize, d.BufferSize)
	l.ReservationTTL = orDefault(l.ReservationTTL, d.ReservationTTL)
	l.AuthPerPeer = orDefault(l.AuthPerPeer, d.AuthPerPeer)
	l.AuthPerIP = orDefault(l.AuthPerIP, d.AuthPerIP)
	return l
}

func (l Limits) validate() error {
	switch {
	case l.MaxReservations < 0:
		return errors.New("the reservation limit is the announced capacity: it must be positive")
	case l.ReservationTTL < 0:
		return errors.New("the reservation lifetime must be positive")
	case l.BufferSize < 512 || l.BufferSize > 16<<20:
		return fmt.Errorf("relay buffer size %d outside 512 B to 16 MiB", l.BufferSize)
	}
	if err := l.AuthPerPeer.Validate(); err != nil {
		return fmt.Errorf("auth rate per peer: %w", err)
	}
	if err := l.AuthPerIP.Validate(); err != nil {
		return fmt.Errorf("auth rate per IP: %w", err)
	}
	return nil
}

// count is n for go-libp2p, where NoLimit becomes a count never reached.
func count(n int) int {
	if n < 0 {
		return noLimitCount
	}
	return n
}

func (l Limits) resources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = nil
	if l.CircuitDuration > 0 || l.CircuitData > 0 {
		r.Limit = &relayv2.RelayLimit{Duration: l.CircuitDuration, Data: l.CircuitData}
		if r.Limit.Duration <= 0 {
			r.Limit.Duration = 100 * 365 * 24 * time.Hour
		}
		if r.Limit.Data <= 0 {
			r.Limit.Data = 1 << 62
		}
	}
	r.ReservationTTL = l.ReservationTTL
	r.MaxReservations = l.MaxReservations
	r.MaxReservationsPerIP = count(l.ReservationsPerIP)
	r.MaxReservationsPerASN = count(l.ReservationsPerIP * 4)
	r.MaxCircuits = count(l.CircuitsPerPeer)
	r.BufferSize = l.BufferSize
	return r
}

// Config configures a Supernode. Verifier is required; the zero value of
// every other field is valid.
type Config struct {
	// Verifier checks the membership certificates clients present; only
	// admitted clients get reservations and circuits.
	Verifier *cert.Verifier
	// Limits are the relay's limits; zero fields take their DefaultLimits
	// value, field by field.
	Limits Limits
	// Directories are the rendezvous servers (replicas) to announce to.
	// None: the supernode serves whoever knows its address.
	Directories []*client.Client
	// Dedicated marks a headless relay (parley-relay), which the
	// directory prefers for its active set.
	Dedicated bool
	// Addrs returns the addresses to announce; nil means the host's,
	// without loopback ones unless it has no other.
	Addrs func() []ma.Multiaddr
	// AnnounceInterval is how often the supernode renews its directory
	// entry. Zero means a third of the lifetime the directory grants.
	AnnounceInterval time.Duration
	// RetryInterval is how long to wait after a failed announcement. Zero
	// means 5s.
	RetryInterval time.Duration
	// Metrics receives measurements; nil means none.
	Metrics MetricsTracer
	// Announcer, when set, is told when the supernode starts and stops
	// serving: the DHT announces it, so that clients find supernodes while
	// the rendezvous server is down (see dht.DHT.SetSupernode).
	Announcer Announcer
	// SpliceListen is the TCP address ("host:port") of the relay fast
	// path's listener (package relay/splice). Empty means the IP address
	// of the host's first TCP listen address with a port picked by the
	// system (none when the host has no TCP listener); SpliceOff turns
	// the fast path off, leaving circuits only.
	SpliceListen string
	// Announce are the host's public addresses when they are on no
	// interface of its (parley-relay --announce, behind a one-to-one NAT):
	// the relay fast path gives them, with its listener's port, to peers
	// on the internet.
	Announce []ma.Multiaddr
}

// SpliceOff, as Config.SpliceListen, turns the relay fast path off.
const SpliceOff = "off"

// Announcer publishes that this node serves as a supernode.
type Announcer interface {
	SetSupernode(on bool)
}

// Supernode is a running relay service that admits only certified peers
// and keeps itself announced to the rendezvous directories.
type Supernode struct {
	host   host.Host
	relay  *relayv2.Relay
	adm    *admission
	cfg    Config
	load   loadCounter
	splice *splice.Server // nil when off

	notifee   *network.NotifyBundle
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	active    atomic.Int32 // directories that hold this supernode active
}

// Start runs the relay service on h and keeps it announced to
// cfg.Directories until Shutdown or Close.
func Start(h host.Host, cfg Config) (_ *Supernode, err error) {
	if cfg.Verifier == nil {
		return nil, errors.New("supernode: a certificate verifier is required")
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if err := cfg.Limits.validate(); err != nil {
		return nil, fmt.Errorf("supernode: %w", err)
	}
	cfg.RetryInterval = orDefault(cfg.RetryInterval, 5*time.Second)
	if cfg.Addrs == nil {
		cfg.Addrs = func() []ma.Multiaddr { return node.Shareable(h.Addrs()) }
	}
	s := &Supernode{host: h, cfg: cfg}
	s.load.tracer = cfg.Metrics
	s.adm = newAdmission(cfg.Verifier, cfg.Limits, cfg.Metrics)
	res := cfg.Limits.resources()
	opts := []relayv2.Option{relayv2.WithResources(res), relayv2.WithMetricsTracer(&s.load), relayv2.WithACL(s.adm)}
	if res.Limit == nil {
		opts = append(opts, relayv2.WithInfiniteLimits())
	}
	h.SetStreamHandler(AuthProtocol, s.adm.handle)
	defer func() {
		if err != nil {
			h.RemoveStreamHandler(AuthProtocol)
		}
	}()
	if s.relay, err = relayv2.New(h, opts...); err != nil {
		return nil, fmt.Errorf("start relay service: %w", err)
	}
	if listen := spliceListen(h, cfg.SpliceListen); listen != "" {
		s.splice, err = splice.Start(h, splice.Config{Listen: listen, Admitted: s.adm.allowed, Tracer: &s.load, Announce: cfg.Announce})
		if err != nil {
			s.relay.Close()
			return nil, fmt.Errorf("start relay fast path: %w", err)
		}
	}
	s.notifee = &network.NotifyBundle{DisconnectedF: s.adm.disconnected}
	h.Network().Notify(s.notifee)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, d := range cfg.Directories {
		s.wg.Go(func() { s.announceLoop(ctx, d) })
	}
	s.wg.Go(func() { s.expireLoop(ctx) })
	if cfg.Announcer != nil {
		cfg.Announcer.SetSupernode(true)
	}
	log.Infow("supernode started", "peer", h.ID(), "addrs", cfg.Addrs(), "max_reservations", cfg.Limits.MaxReservations)
	return s, nil
}

// spliceListen is where the splice listener listens: listen, or next to
// the host's first TCP listen address; "" for none.
func spliceListen(h host.Host, listen string) string {
	switch listen {
	case SpliceOff:
		return ""
	case "":
	default:
		return listen
	}
	for _, a := range h.Network().ListenAddresses() {
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			continue
		}
		if ip, err := manet.ToIP(a); err == nil {
			return net.JoinHostPort(ip.String(), "0")
		}
	}
	log.Infow("no TCP listen address: no relay fast path")
	return ""
}

// SpliceAddr is the relay fast path's TCP listener, nil when off.
func (s *Supernode) SpliceAddr() *net.TCPAddr {
	if s.splice == nil {
		return nil
	}
	return s.splice.Addr()
}

// Spliced is how many spliced connections are open and how many bytes
// went through splices, both directions (zero when the fast path is off).
func (s *Supernode) Spliced() (open int64, bytes uint64) {
	return s.load.splices.Load(), s.load.spliced.Load()
}

// Load is the supernode's current load, as announced to the directory.
func (s *Supernode) Load() *rpb.SupernodeLoad {
	l := s.load.snapshot()
	l.MaxReservations = uint32(s.cfg.Limits.MaxReservations)
	l.Dedicated = s.cfg.Dedicated
	return l
}

// Active reports whether a directory holds this supernode in its active
// set (hands it out to clients).
func (s *Supernode) Active() bool { return s.active.Load() > 0 }

func (s *Supernode) announceLoop(ctx context.Context, d *client.Client) {
	var cpu cpuMeter
	active := false
	defer func() {
		if active {
			s.setActive(false)
		}
	}()
	for {
		wait := s.cfg.RetryInterval
		load := s.Load()
		load.CpuPermille = cpu.permille()
		a, err := d.AnnounceSupernode(ctx, s.cfg.Addrs(), load)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warnw("announce to rendezvous directory failed; retrying", "directory", d.Server(), "err", err, "in", wait)
		default:
			if a.Active != active {
				active = a.Active
				s.setActive(active)
				log.Infow("directory changed this supernode's role", "directory", d.Server(), "active", active)
			}
			switch {
			case s.cfg.AnnounceInterval > 0:
				wait = s.cfg.AnnounceInterval
			case a.TTL > 0:
				wait = a.TTL / 3
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func (s *Supernode) setActive(on bool) {
	delta := int32(-1)
	if on {
		delta = 1
	}
	n := s.active.Add(delta)
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.Active(n > 0)
	}
}

// expireLoop cuts off peers whose certificate expired without a renewal
// (a revoked device, say), so that they lose their slot.
func (s *Supernode) expireLoop(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, p := range s.adm.expire() {
			log.Infow("certificate expired; closing the peer's connections", "peer", p)
			_ = s.host.Network().ClosePeer(p)
		}
	}
}

// Shutdown leaves gracefully: it stops admitting and reserving, tells the
// directories to stop handing this supernode out, asks every client
// holding a slot to move (reserve elsewhere and publish its new
// addresses), waits until they all did or ctx ends, and then closes the
// relay service and the connections of the clients that were told. It
// does not close the host.
func (s *Supernode) Shutdown(ctx context.Context) error {
	reserved := s.adm.leave()
	s.stopAnnouncing()
	var g errgroup.Group
	for _, d := range s.cfg.Directories {
		g.Go(func() error {
			lctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
			defer cancel()
			if err := d.LeaveSupernode(lctx); err != nil {
				log.Warnw("could not tell the directory this supernode leaves", "directory", d.Server(), "err", err)
			}
			return nil
		})
	}
	_ = g.Wait()
	grace := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		grace = time.Until(dl)
	}
	log.Infow("supernode leaving; asking clients to move", "clients", len(reserved), "grace", grace)
	var moved atomic.Int32
	g.SetLimit(64)
	for _, p := range reserved {
		g.Go(func() error {
			if err := s.notifyLeaving(ctx, p, grace); err != nil {
				log.Debugw("leaving notice not acknowledged", "peer", p, "err", err)
				return nil
			}
			moved.Add(1)
			return nil
		})
	}
	_ = g.Wait()
	log.Infow("clients moved", "moved", moved.Load(), "of", len(reserved))
	err := s.Close()
	if s.cfg.Dedicated {
		// Cut the circuits that still run through us. A volunteer does not:
		// it is a user's device, whose connections to these peers may be
		// its own chats; the circuits end as their clients move.
		for _, p := range reserved {
			_ = s.host.Network().ClosePeer(p)
		}
	}
	return err
}

// notifyLeaving tells a client this supernode leaves and waits for its
// acknowledgement that it moved.
func (s *Supernode) notifyLeaving(ctx context.Context, p peer.ID, grace time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, grace+exchangeTimeout)
	defer cancel()
	st, err := s.host.NewStream(network.WithNoDial(ctx, "leaving notice"), p, NoticeProtocol)
	if err != nil {
		return fmt.Errorf("open notice stream: %w", err)
	}
	defer st.Close()
	dl, _ := ctx.Deadline()
	_ = st.SetDeadline(dl)
	notice := &pb.Notice{Kind: pb.Notice_KIND_LEAVING, GraceMs: uint32(grace.Milliseconds())}
	if err := wire.Write(st, notice, maxNoticeFrame); err != nil {
		st.Reset()
		return err
	}
	_ = st.CloseWrite()
	ack := new(pb.NoticeAck)
	if err := wire.NewReader(st, maxNoticeFrame).Read(ack); err != nil {
		st.Reset()
		return fmt.Errorf("read notice ack: %w", err)
	}
	if !ack.GetMoved() {
		return errors.New("client could not move")
	}
	return nil
}

// stopAnnouncing stops the directory announcements and the DHT's.
func (s *Supernode) stopAnnouncing() {
	s.cancel()
	s.wg.Wait()
	if s.cfg.Announcer != nil {
		s.cfg.Announcer.SetSupernode(false)
	}
}

// Close stops announcing and stops the relay service at once, without
// telling anyone (see Shutdown). Circuits already open keep running until
// their connections close.
func (s *Supernode) Close() error {
	s.closeOnce.Do(func() {
		s.stopAnnouncing()
		s.host.Network().StopNotify(s.notifee)
		s.host.RemoveStreamHandler(AuthProtocol)
		errs := []error{s.relay.Close()}
		if s.splice != nil {
			errs = append(errs, s.splice.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// loadCounter counts the relay's reservations, circuits, splices and
// bytes, and forwards them to the metrics tracer. It is the relay's
// MetricsTracer and the splice server's Tracer. The load announced to the
// directory counts splices among circuits and spliced bytes among bytes
// relayed: both are relayed connections, whatever the path.
type loadCounter struct {
	tracer       MetricsTracer
	reservations atomic.Int64
	circuits     atomic.Int64
	bytes        atomic.Uint64
	splices      atomic.Int64
	spliced      atomic.Uint64
}

var (
	_ relayv2.MetricsTracer = (*loadCounter)(nil)
	_ splice.Tracer         = (*loadCounter)(nil)
)

func (l *loadCounter) snapshot() *rpb.SupernodeLoad {
	return &rpb.SupernodeLoad{
		Reservations: uint32(max(0, l.reservations.Load())),
		Circuits:     uint32(max(0, l.circuits.Load()+l.splices.Load())),
		BytesRelayed: l.bytes.Load() + l.spliced.Load(),
	}
}

func (l *loadCounter) SpliceOpened() {
	l.splices.Add(1)
	if l.tracer != nil {
		l.tracer.SpliceOpened()
	}
}

func (l *loadCounter) SpliceClosed(d time.Duration) {
	l.splices.Add(-1)
	if l.tracer != nil {
		l.tracer.SpliceClosed(d)
	}
}

func (l *loadCounter) BytesSpliced(n int) {
	l.spliced.Add(uint64(n))
	if l.tracer != nil {
		l.tracer.BytesSpliced(n)
	}
}

func (l *loadCounter) Refused(reason string) {
	if l.tracer != nil {
		l.tracer.Refused(reason)
	}
}

func (l *loadCounter) RelayStatus(bool) {}

func (l *loadCounter) ConnectionOpened() {
	l.circuits.Add(1)
	if l.tracer != nil {
		l.tracer.CircuitOpened()
	}
}

func (l *loadCounter) ConnectionClosed(d time.Duration) {
	l.circuits.Add(-1)
	if l.tracer != nil {
		l.tracer.CircuitClosed(d)
	}
}

func (l *loadCounter) ConnectionRequestHandled(status pbv2.Status) {
	if l.tracer != nil && status == pbv2.Status_RESOURCE_LIMIT_EXCEEDED {
		l.tracer.Refused(ReasonResourceLimit)
	}
}

func (l *loadCounter) ReservationRequestHandled(status pbv2.Status) {
	if l.tracer != nil && (status == pbv2.Status_RESERVATION_REFUSED || status == pbv2.Status_RESOURCE_LIMIT_EXCEEDED) {
		l.tracer.Refused(ReasonResourceLimit)
	}
}

func (l *loadCounter) ReservationAllowed(renewal bool) {
	if renewal {
		return
	}
	l.reservations.Add(1)
	if l.tracer != nil {
		l.tracer.ReservationsChanged(1)
	}
}

func (l *loadCounter) ReservationClosed(n int) {
	l.reservations.Add(-int64(n))
	if l.tracer != nil && n > 0 {
		l.tracer.ReservationsChanged(-n)
	}
}

func (l *loadCounter) BytesTransferred(n int) {
	l.bytes.Add(uint64(n))
	if l.tracer != nil {
		l.tracer.BytesRelayed(n)
	}
}
