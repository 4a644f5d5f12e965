package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"

	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
)

// Config configures a Supernode. The zero value is valid.
type Config struct {
	// Resources are the relay service's limits. Zero means
	// DefaultResources().
	Resources relayv2.Resources
	// AnnounceInterval is how often the supernode renews its directory
	// entry. Zero means a third of the lifetime the server grants.
	AnnounceInterval time.Duration
	// RetryInterval is how long to wait after a failed announcement. Zero
	// means 5s.
	RetryInterval time.Duration
}

// DefaultResources are go-libp2p's relay defaults without the per-circuit
// limit, with 64 KiB copy buffers and room for 1,024 reservations.
func DefaultResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = nil
	r.BufferSize = 64 << 10
	r.MaxReservations = 1024
	return r
}

// Supernode is a running relay service announced to a rendezvous directory.
type Supernode struct {
	host      host.Host
	relay     *relayv2.Relay
	directory *client.Client
	cfg       Config
	load      loadCounter

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// Start runs the relay service on h and, if directory is not nil, keeps it
// announced there until Close.
func Start(h host.Host, directory *client.Client, cfg Config) (*Supernode, error) {
	if cfg.Resources == (relayv2.Resources{}) {
		cfg.Resources = DefaultResources()
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	s := &Supernode{host: h, directory: directory, cfg: cfg}
	opts := []relayv2.Option{relayv2.WithResources(cfg.Resources), relayv2.WithMetricsTracer(&s.load)}
	if cfg.Resources.Limit == nil {
		opts = append(opts, relayv2.WithInfiniteLimits())
	}
	r, err := relayv2.New(h, opts...)
	if err != nil {
		return nil, fmt.Errorf("start relay service: %w", err)
	}
	s.relay = r
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if directory != nil {
		s.wg.Add(1)
		go s.announceLoop(ctx)
	}
	log.Infow("supernode started", "peer", h.ID(), "addrs", h.Addrs())
	return s, nil
}

// Load is the supernode's current load, as announced to the directory.
func (s *Supernode) Load() *pb.SupernodeLoad { return s.load.snapshot() }

func (s *Supernode) announceLoop(ctx context.Context) {
	defer s.wg.Done()
	for {
		wait := s.cfg.RetryInterval
		ttl, err := s.directory.AnnounceSupernode(ctx, s.host.Addrs(), s.Load())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			log.Warnw("announce to rendezvous directory failed; retrying", "err", err, "in", wait)
		case s.cfg.AnnounceInterval > 0:
			wait = s.cfg.AnnounceInterval
		case ttl > 0:
			wait = ttl / 3
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Close stops announcing and stops accepting reservations and circuits.
// Circuits already open keep running until the host closes.
func (s *Supernode) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.relay.Close()
	})
	return s.closeErr
}

// loadCounter counts the relay's reservations, circuits and bytes. It is
// the relay's MetricsTracer.
type loadCounter struct {
	reservations atomic.Int64
	circuits     atomic.Int64
	bytes        atomic.Uint64
}

var _ relayv2.MetricsTracer = (*loadCounter)(nil)

func (l *loadCounter) snapshot() *pb.SupernodeLoad {
	return &pb.SupernodeLoad{
		Reservations: uint32(max(0, l.reservations.Load())),
		Circuits:     uint32(max(0, l.circuits.Load())),
		BytesRelayed: l.bytes.Load(),
	}
}

func (l *loadCounter) RelayStatus(bool)                      {}
func (l *loadCounter) ConnectionOpened()                     { l.circuits.Add(1) }
func (l *loadCounter) ConnectionClosed(time.Duration)        { l.circuits.Add(-1) }
func (l *loadCounter) ConnectionRequestHandled(pbv2.Status)  {}
func (l *loadCounter) ReservationRequestHandled(pbv2.Status) {}
func (l *loadCounter) ReservationClosed(n int)               { l.reservations.Add(-int64(n)) }
func (l *loadCounter) BytesTransferred(n int)                { l.bytes.Add(uint64(n)) }
func (l *loadCounter) ReservationAllowed(renewal bool) {
	if !renewal {
		l.reservations.Add(1)
	}
}
