package testnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"golang.org/x/sync/errgroup"

	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous/cert"
)

// RelayLoadConfig configures RelayLoad. The zero value is valid.
type RelayLoadConfig struct {
	// Reservations is how many clients reserve a slot. Zero means 1000.
	Reservations int
	// Binary is the parley-relay executable; empty means go build it
	// into Dir (the working directory must be inside the Parley module).
	Binary string
	// Dir holds the binary, the supernode's key and its log. Empty means
	// a temporary directory, removed at the end.
	Dir string
	// Concurrency is how many clients reserve at once. Zero means 64.
	Concurrency int
	// Progress, if not nil, receives a line per phase.
	Progress io.Writer
}

// RelayLoadReport is what RelayLoad measured of the supernode process.
type RelayLoadReport struct {
	Reservations int           `json:"reservations"`
	Took         time.Duration `json:"took_ns"` // for all the reservations
	Idle         ServerStats   `json:"idle"`    // before the reservations
	Loaded       ServerStats   `json:"loaded"`  // with the reservations held
}

// PerReservation is the supernode's memory per reservation: the growth
// of its resident set, and of its Go heap and stacks, divided by the
// reservations held.
func (r RelayLoadReport) PerReservation() (rss, heap float64) {
	if r.Reservations == 0 {
		return 0, 0
	}
	n := float64(r.Reservations)
	return (r.Loaded.RSS - r.Idle.RSS) / n, (r.Loaded.HeapInuse + r.Loaded.StackInuse - r.Idle.HeapInuse - r.Idle.StackInuse) / n
}

func (r RelayLoadReport) String() string {
	rss, heap := r.PerReservation()
	var b strings.Builder
	fmt.Fprintf(&b, "reservations held            %d (in %s, %.0f/s)\n", r.Reservations, r.Took.Round(time.Millisecond), float64(r.Reservations)/r.Took.Seconds())
	fmt.Fprintf(&b, "supernode RSS                %s idle, %s loaded\n", mib(r.Idle.RSS), mib(r.Loaded.RSS))
	fmt.Fprintf(&b, "supernode Go heap+stacks     %s idle, %s loaded\n", mib(r.Idle.HeapInuse+r.Idle.StackInuse), mib(r.Loaded.HeapInuse+r.Loaded.StackInuse))
	fmt.Fprintf(&b, "goroutines                   %.0f idle, %.0f loaded\n", r.Idle.Goroutines, r.Loaded.Goroutines)
	fmt.Fprintf(&b, "memory per reservation       %s RSS, %s Go heap+stacks\n", kib(rss), kib(heap))
	return b.String()
}

// RelayLoad measures a supernode's memory per reservation: it starts a
// parley-relay process on 127.0.0.1 trusting a certificate key of its
// own, then from this process has cfg.Reservations clients (each its own
// libp2p host and key, over TCP) present a certificate and reserve a
// slot, and reads the supernode's /metrics idle and with every slot held.
func RelayLoad(ctx context.Context, cfg RelayLoadConfig) (rep RelayLoadReport, err error) {
	if cfg.Reservations == 0 {
		cfg.Reservations = 1000
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 64
	}
	say := func(format string, args ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", args...)
		}
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "parley-relay-load-"); err != nil {
			return rep, err
		}
		defer os.RemoveAll(dir)
	}
	bin := cfg.Binary
	if bin == "" {
		say("building parley-relay")
		if bin, err = buildCommand(ctx, dir, "parley-relay"); err != nil {
			return rep, err
		}
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return rep, err
	}
	issuer, err := cert.NewIssuer(key)
	if err != nil {
		return rep, err
	}
	pub, err := cert.EncodePublicKey(issuer.PublicKey())
	if err != nil {
		return rep, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "relay.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return rep, err
	}
	capacity := strconv.Itoa(cfg.Reservations + 100)
	srv, err := startServerProcess(ctx, "parley-relay", bin, []string{
		"--identity", filepath.Join(dir, "identity.key"),
		"--cert-key", pub,
		"--listen", "/ip4/127.0.0.1/tcp/0",
		"--admin", "127.0.0.1:0",
		"--max-reservations", capacity, "--reservations-per-ip", capacity, "--no-auth-limits",
	}, logFile)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, srv.stop()) }()
	say("supernode %s on %s, metrics %s, log %s", srv.info.ID, srv.info.Addrs[0], srv.metricsURL, srv.logPath)
	settle(ctx, time.Second)
	if rep.Idle, err = srv.scrapeMin(ctx, 500*time.Millisecond); err != nil {
		return rep, err
	}

	var mu sync.Mutex
	var hosts []host.Host
	defer func() {
		for _, h := range hosts {
			h.Close()
		}
	}()
	start := time.Now()
	var done atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	for range cfg.Reservations {
		g.Go(func() error {
			h, err := newLoadHost()
			if err != nil {
				return err
			}
			mu.Lock()
			hosts = append(hosts, h)
			mu.Unlock()
			c, err := issuer.Issue(h.ID(), "load", time.Now(), time.Hour)
			if err != nil {
				return err
			}
			p := relay.NewPassport(h, func() []byte { return c.Raw })
			defer p.Close()
			if _, err := p.Present(gctx, srv.info); err != nil {
				return err
			}
			if _, err := circuit.Reserve(gctx, h, srv.info); err != nil {
				return fmt.Errorf("reserve: %w", err)
			}
			if n := done.Add(1); n%250 == 0 {
				say("%d reservations", n)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return rep, err
	}
	rep.Took = time.Since(start)
	rep.Reservations = cfg.Reservations
	settle(ctx, 2*time.Second)
	if rep.Loaded, err = srv.scrapeMin(ctx, 500*time.Millisecond); err != nil {
		return rep, err
	}
	if int(rep.Loaded.Relayed) != cfg.Reservations {
		return rep, fmt.Errorf("the supernode counts %.0f reservations, want %d", rep.Loaded.Relayed, cfg.Reservations)
	}
	return rep, nil
}
