package testnet

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/sync/errgroup"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// LoadConfig configures Load. The zero value is valid: a small run on
// SQLite.
type LoadConfig struct {
	// Sessions is how many users to create and hold logged in, each with
	// one device (its own libp2p host and key) and one session. Zero
	// means 1000.
	Sessions int
	// Contacts is the group size: users are arranged in cliques of this
	// many, so each has Contacts-1 contacts. Zero means 5; 1 means none.
	Contacts int
	// DB is the server's --db: a postgres:// URL, or empty for a SQLite
	// file in Dir.
	DB string
	// ServerBinary is the parley-rendezvous executable. Empty means build
	// it with `go build` into Dir (the working directory must be inside
	// the Parley module).
	ServerBinary string
	// FanoutEvents is how many users the spaced fan-out phase takes
	// offline and back online, one at a time. Zero means 200; negative
	// means none.
	FanoutEvents int
	// FanoutInterval is the pause between two spaced fan-out events.
	// Zero means 20ms.
	FanoutInterval time.Duration
	// BurstSize is how many users (no two of them contacts) the burst
	// phase takes offline at once and then back online at once, twice.
	// Zero means Sessions/20 capped by the number of groups; negative
	// means no burst phase.
	BurstSize int
	// Concurrency bounds the requests in flight while registering,
	// making contacts and logging in. Zero means 64.
	Concurrency int
	// Hold is how long all sessions are held idle to measure the cost of
	// keepalives. Zero means 5s; negative means no idle phase.
	Hold time.Duration
	// ProductionEnrolments, when positive, first runs a separate server
	// with production argon2 (no --local) and registers this many users
	// on it, ProductionConcurrency at a time (zero means 4).
	ProductionEnrolments  int
	ProductionConcurrency int
	// Dir holds the binary, the SQLite file and the server's log
	// (server.log). Empty means a temporary directory removed at the end.
	Dir string
	// Progress receives a line per phase as the run goes; nil means
	// quiet.
	Progress io.Writer
}

func (c LoadConfig) withDefaults() LoadConfig {
	if c.Sessions <= 0 {
		c.Sessions = 1000
	}
	if c.Contacts <= 0 {
		c.Contacts = 5
	}
	if c.FanoutEvents == 0 {
		c.FanoutEvents = 200
	}
	if c.FanoutInterval <= 0 {
		c.FanoutInterval = 20 * time.Millisecond
	}
	groups := (c.Sessions + c.Contacts - 1) / c.Contacts
	if c.BurstSize == 0 {
		c.BurstSize = max(1, c.Sessions/20)
	}
	c.BurstSize = min(c.BurstSize, groups)
	if c.Contacts == 1 {
		c.BurstSize, c.FanoutEvents = -1, -1 // no contacts, no fan-out
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Hold == 0 {
		c.Hold = 5 * time.Second
	}
	if c.ProductionConcurrency <= 0 {
		c.ProductionConcurrency = 4
	}
	return c
}

// LoadReport is what a load run measured. Durations of phases are wall
// clock; CPU figures are CPU time spent in the phase by the server process
// and by the generator (this process), so that 2 cores for 1s is 2s.
type LoadReport struct {
	Sessions int    `json:"sessions"` // sessions asked for
	Contacts int    `json:"contacts"` // contacts per user (group size - 1)
	Backend  string `json:"backend"`  // "sqlite" or "postgres"
	Cores    int    `json:"cores"`    // CPUs of the machine, shared by server and generator

	Hosts    Phase `json:"hosts"`    // creating the generator's libp2p hosts
	Register Phase `json:"register"` // accounts with their first device (enrolments)
	Contact  Phase `json:"contact"`  // contact requests and accepts (two ops per pair)
	Login    Phase `json:"login"`    // logins on fresh connections (TCP, Noise, yamux, identify, login)
	// Dial is the connection setup part of each login (TCP, Noise and
	// yamux; identify and the login exchange follow).
	Dial Latency `json:"dial"`
	// Converged is how long after the last login every session saw all
	// its contacts online.
	Converged time.Duration `json:"converged_ns"`

	Held    int   `json:"held"`    // the server's sessions gauge with everyone logged in
	Dropped int64 `json:"dropped"` // sessions the server or the network ended, whole run
	// DropReason is the first dropped session's error.
	DropReason string `json:"drop_reason,omitempty"`
	// HeldAtEnd is the sessions gauge after the fan-out phases.
	HeldAtEnd int `json:"held_at_end"`

	ServerIdle         ServerStats `json:"server_idle"`          // just after start, on an empty database
	ServerBeforeLogins ServerStats `json:"server_before_logins"` // restarted after registering, no connections
	ServerWithSessions ServerStats `json:"server_with_sessions"` // every session held (lowest heap of 3 scrapes)
	// RSSPerSession and HeapPerSession are the server's growth per
	// session from before the logins: resident memory, and Go heap plus
	// goroutine stacks.
	RSSPerSession  float64 `json:"rss_per_session_bytes"`
	HeapPerSession float64 `json:"heap_per_session_bytes"`
	// Generator memory with every session held: resident, and Go heap
	// plus stacks, per session.
	GeneratorRSSPerSession  float64 `json:"generator_rss_per_session_bytes"`
	GeneratorHeapPerSession float64 `json:"generator_heap_per_session_bytes"`
	GeneratorGoroutines     int     `json:"generator_goroutines"`

	// Idle is the sessions held with nothing happening but keepalives.
	Idle Phase `json:"idle"`

	Spaced FanoutResult `json:"spaced"` // one user at a time
	Burst  FanoutResult `json:"burst"`  // BurstSize users at once

	// Shutdown is how long the server took to stop gracefully (GoAway to
	// every session) with the sessions held.
	Shutdown time.Duration `json:"shutdown_ns"`

	// ProductionRegister is registration with production argon2, when
	// LoadConfig.ProductionEnrolments asked for it.
	ProductionRegister Phase `json:"production_register"`
}

// Phase is one timed phase of a load run.
type Phase struct {
	Ops          int           `json:"ops"`
	Errors       int           `json:"errors"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	P50          time.Duration `json:"p50_ns"` // per-operation latency, when measured
	P99          time.Duration `json:"p99_ns"`
	ServerCPU    time.Duration `json:"server_cpu_ns"`
	GeneratorCPU time.Duration `json:"generator_cpu_ns"`
	// OtherCPU is what the rest of the machine used meanwhile (Linux
	// only): other processes competing for the same cores, PostgreSQL
	// among them.
	OtherCPU time.Duration `json:"other_cpu_ns"`
	// FirstError is the first failed attempt's error, when Errors > 0.
	FirstError string `json:"first_error,omitempty"`
}

// Rate is operations per second.
func (p Phase) Rate() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Ops) / p.Elapsed.Seconds()
}

// FanoutResult is the presence fan-out latency: from the start of a
// user's action (closing its session, or logging in) to the matching push
// arriving at each of its online contacts.
type FanoutResult struct {
	Events  int     `json:"events"` // offline+online actions
	Offline Latency `json:"offline"`
	Online  Latency `json:"online"`
	All     Latency `json:"all"` // both directions
	// CloseCall and LoginCall are how long the actions themselves took
	// at the client: Session.Close (until the server ended the stream)
	// and Client.Login (until the login response).
	CloseCall    Latency       `json:"close_call"`
	LoginCall    Latency       `json:"login_call"`
	ServerMean   time.Duration `json:"server_mean_ns"` // the server's own publish→queued mean (presence_fanout_seconds)
	ServerCPU    time.Duration `json:"server_cpu_ns"`
	GeneratorCPU time.Duration `json:"generator_cpu_ns"`
	OtherCPU     time.Duration `json:"other_cpu_ns"` // see Phase.OtherCPU
	Elapsed      time.Duration `json:"elapsed_ns"`
}

// Latency summarises samples.
type Latency struct {
	Samples int           `json:"samples"`
	Missed  int           `json:"missed"` // expected pushes that did not arrive within 10s
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Max     time.Duration `json:"max_ns"`
}

func summarize(d []time.Duration, missed int) Latency {
	l := Latency{Samples: len(d), Missed: missed}
	if len(d) == 0 {
		return l
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[max(0, int(math.Ceil(p*float64(len(s))))-1)] }
	l.P50, l.P99, l.Max = q(0.50), q(0.99), s[len(s)-1]
	return l
}

// ServerStats are figures read from the server's /metrics.
type ServerStats struct {
	RSS        float64 `json:"rss_bytes"`         // process_resident_memory_bytes
	HeapInuse  float64 `json:"heap_inuse_bytes"`  // go_memstats_heap_inuse_bytes
	StackInuse float64 `json:"stack_inuse_bytes"` // go_memstats_stack_inuse_bytes
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"open_fds"`
	CPU        float64 `json:"cpu_seconds"`        // process_cpu_seconds_total
	Sessions   float64 `json:"sessions"`           // parley_rendezvous_sessions
	Relayed    float64 `json:"relay_reservations"` // parley_relay_reservations
	FanoutSum  float64 `json:"fanout_seconds_sum"` // parley_rendezvous_presence_fanout_seconds_sum
	FanoutN    float64 `json:"fanout_count"`       // ..._count
}

// fanoutTimeout is how long a push may take before it counts as missed.
const fanoutTimeout = 10 * time.Second

// Load runs a load test against a parley-rendezvous process of its own:
// it registers cfg.Sessions users from as many libp2p hosts (each with its
// own Ed25519 key, dialling over TCP on loopback), makes them contacts in
// groups, restarts the server, logs everyone in on fresh connections and
// holds the sessions, then measures presence fan-out as users go offline
// and online. The server runs with --local (cheap argon2, 2s keepalives)
// and --no-limits. The report is filled as far as the run got, also when
// it returns an error.
func Load(ctx context.Context, cfg LoadConfig) (rep LoadReport, err error) {
	cfg = cfg.withDefaults()
	rep = LoadReport{Sessions: cfg.Sessions, Contacts: cfg.Contacts - 1, Backend: "sqlite", Cores: runtime.NumCPU()}
	if isPostgres(cfg.DB) {
		rep.Backend = "postgres"
	}
	dir := cfg.Dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "parley-load-"); err != nil {
			return rep, fmt.Errorf("create load directory: %w", err)
		}
		defer os.RemoveAll(dir)
	}
	bin := cfg.ServerBinary
	if bin == "" {
		if bin, err = BuildRendezvous(ctx, dir); err != nil {
			return rep, err
		}
	}
	g := &loadGen{cfg: cfg, progress: cfg.Progress, prefix: runPrefix()}
	if g.progress == nil {
		g.progress = io.Discard
	}

	if cfg.ProductionEnrolments > 0 {
		db := cfg.DB
		if db == "" {
			db = filepath.Join(dir, "production-argon2.db")
		}
		rep.ProductionRegister, err = g.productionEnrolments(ctx, bin, filepath.Join(dir, "production"), db)
		if err != nil {
			return rep, err
		}
		g.say("production argon2: %d enrolments in %s (%.1f/s)", rep.ProductionRegister.Ops,
			rep.ProductionRegister.Elapsed.Round(time.Millisecond), rep.ProductionRegister.Rate())
	}

	db := cfg.DB
	if db == "" {
		db = filepath.Join(dir, "rendezvous.db")
	}
	dataDir := filepath.Join(dir, "server")
	srv, err := startLoadServer(ctx, bin, dataDir, db, true)
	if err != nil {
		return rep, err
	}
	g.srv = srv
	defer func() {
		if shutdown, serr := g.teardown(); err == nil {
			rep.Shutdown, err = shutdown, serr
		}
	}()
	if rep.ServerIdle, err = srv.scrape(ctx); err != nil {
		return rep, err
	}
	g.say("server %s on %s, metrics %s, log %s", srv.info.ID, srv.info.Addrs[0], srv.metricsURL, srv.logPath)

	if rep.Hosts, err = g.measure(ctx, g.createHosts); err != nil {
		return rep, err
	}
	g.say("created %d hosts in %s", cfg.Sessions, rep.Hosts.Elapsed.Round(time.Millisecond))
	if rep.Register, err = g.measure(ctx, g.register); err != nil {
		return rep, err
	}
	g.say("registered %d users in %s (%.0f/s)", rep.Register.Ops, rep.Register.Elapsed.Round(time.Millisecond), rep.Register.Rate())
	if rep.Contact, err = g.measure(ctx, g.makeContacts); err != nil {
		return rep, err
	}
	g.say("%d contact ops in %s (%.0f/s)", rep.Contact.Ops, rep.Contact.Elapsed.Round(time.Millisecond), rep.Contact.Rate())

	// Restart the server, so that its memory before the logins holds
	// nothing of the registrations (argon2's buffers, garbage), and every
	// login comes with its connection, as after a server restart.
	if err := srv.stop(); err != nil {
		return rep, err
	}
	if srv, err = startLoadServer(ctx, bin, dataDir, db, true); err != nil {
		return rep, err
	}
	g.srv = srv
	for _, u := range g.users {
		u.host.Peerstore().ClearAddrs(srv.info.ID)
		u.client = client.New(u.host, srv.info)
	}
	g.say("restarted the server on %s", srv.info.Addrs[0])
	settle(ctx, g.pause())
	if rep.ServerBeforeLogins, err = srv.scrapeMin(ctx, g.pause()); err != nil {
		return rep, err
	}
	if rep.Login, err = g.measure(ctx, g.loginAll); err != nil {
		return rep, err
	}
	rep.Dial = g.dials
	g.say("logged in %d sessions in %s (%.0f/s)", rep.Login.Ops, rep.Login.Elapsed.Round(time.Millisecond), rep.Login.Rate())
	start := time.Now()
	if err := g.awaitConverged(ctx, time.Minute); err != nil {
		return rep, err
	}
	rep.Converged = time.Since(start)
	g.say("every session saw its contacts online %s after the last login", rep.Converged.Round(time.Millisecond))

	settle(ctx, g.pause())
	if rep.ServerWithSessions, err = srv.scrapeMin(ctx, g.pause()); err != nil {
		return rep, err
	}
	rep.Held = int(rep.ServerWithSessions.Sessions)
	n := float64(cfg.Sessions)
	before, with := rep.ServerBeforeLogins, rep.ServerWithSessions
	rep.RSSPerSession = (with.RSS - before.RSS) / n
	rep.HeapPerSession = (with.HeapInuse + with.StackInuse - before.HeapInuse - before.StackInuse) / n
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rep.GeneratorHeapPerSession = float64(ms.HeapInuse+ms.StackInuse) / n
	rep.GeneratorRSSPerSession = float64(selfRSS()) / n
	rep.GeneratorGoroutines = runtime.NumGoroutine()
	g.say("server holds %d sessions: RSS %s (%s/session), heap+stacks %s (%s/session), %d goroutines",
		rep.Held, mib(with.RSS), kib(rep.RSSPerSession), mib(with.HeapInuse+with.StackInuse), kib(rep.HeapPerSession), int(with.Goroutines))

	if cfg.Hold > 0 {
		rep.Idle, err = g.measure(ctx, func(ctx context.Context, p *Phase) error {
			settle(ctx, cfg.Hold)
			return ctx.Err()
		})
		if err != nil {
			return rep, err
		}
		g.say("idle for %s: server %.2f cores, generator %.2f cores", cfg.Hold,
			rep.Idle.ServerCPU.Seconds()/rep.Idle.Elapsed.Seconds(), rep.Idle.GeneratorCPU.Seconds()/rep.Idle.Elapsed.Seconds())
	}

	if cfg.FanoutEvents > 0 {
		if rep.Spaced, err = g.fanout(ctx, g.spaced); err != nil {
			return rep, err
		}
		g.say("spaced fan-out: %d events, p50 %s p99 %s max %s, %d missed", rep.Spaced.Events,
			rep.Spaced.All.P50, rep.Spaced.All.P99, rep.Spaced.All.Max, rep.Spaced.All.Missed)
	}
	if cfg.BurstSize > 0 {
		if rep.Burst, err = g.fanout(ctx, g.burst); err != nil {
			return rep, err
		}
		g.say("burst fan-out: %d events, p50 %s p99 %s max %s, %d missed", rep.Burst.Events,
			rep.Burst.All.P50, rep.Burst.All.P99, rep.Burst.All.Max, rep.Burst.All.Missed)
	}
	rep.Dropped = g.dropped.Load()
	if rep.Dropped == 0 {
		// Dropped sessions leave their contacts offline for good.
		if err := g.awaitConverged(ctx, time.Minute); err != nil {
			return rep, fmt.Errorf("after fan-out: %w", err)
		}
	}
	end, err := srv.scrape(ctx)
	if err != nil {
		return rep, err
	}
	rep.HeldAtEnd = int(end.Sessions)
	rep.Dropped = g.dropped.Load()
	if r, ok := g.dropErr.Load().(string); ok {
		rep.DropReason = r
	}
	return rep, nil
}

// BuildRendezvous builds cmd/parley-rendezvous into dir and returns the
// executable's path. It runs `go build`, so the working directory must be
// inside the Parley module.
func BuildRendezvous(ctx context.Context, dir string) (string, error) {
	return buildCommand(ctx, dir, "parley-rendezvous")
}

// buildCommand builds cmd/<name> into dir and returns the executable's
// path.
func buildCommand(ctx context.Context, dir, name string) (string, error) {
	out := filepath.Join(dir, name)
	if runtime.GOOS == "windows" {
		out += ".exe"
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/parleynet/parley/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, b)
	}
	return out, nil
}

func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// runPrefix keeps usernames of different runs on one database apart.
func runPrefix() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("l%x", b)
}

const loadPassword = "load-test-password"

// loadGen is the generator side of a load run.
type loadGen struct {
	cfg      LoadConfig
	srv      *loadServer
	progress io.Writer
	prefix   string
	users    []*loadUser
	byName   map[string]int // username → index in users
	tracker  fanoutTracker
	readers  sync.WaitGroup // one reader per session
	missing  atomic.Int64   // contact slots that a session sees offline
	dropped  atomic.Int64
	dropErr  atomic.Value // the first drop's error
	dials    Latency      // set by loginAll
	addrs    []ma.Multiaddr
}

// loadUser is one user with one device.
type loadUser struct {
	idx    int
	name   string
	host   host.Host
	client *client.Client

	mu       sync.Mutex // guards the following
	contacts []int      // indices of accepted contacts
	view     []bool     // whether contacts[i] is online, as the session sees it
	sess     *loadSession
}

type loadSession struct {
	*client.Session
	closing atomic.Bool // closed by the generator, not dropped
}

func (g *loadGen) say(format string, args ...any) {
	fmt.Fprintf(g.progress, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// measure runs a phase and records its wall time and both processes' CPU
// time.
func (g *loadGen) measure(ctx context.Context, f func(context.Context, *Phase) error) (Phase, error) {
	var p Phase
	s0, err := g.srv.scrape(ctx)
	if err != nil {
		return p, err
	}
	c0, m0 := selfCPU(), machineCPU()
	start := time.Now()
	err = f(ctx, &p)
	p.Elapsed = time.Since(start)
	p.GeneratorCPU = selfCPU() - c0
	if s1, serr := g.srv.scrape(ctx); serr == nil {
		p.ServerCPU = time.Duration((s1.CPU - s0.CPU) * float64(time.Second))
	} else if err == nil {
		err = serr
	}
	p.OtherCPU = max(0, machineCPU()-m0-p.GeneratorCPU-p.ServerCPU)
	return p, err
}

// ops runs op for i in [0, n) with cfg.Concurrency in flight, retrying
// each up to three times. It records per-operation latency and failed
// attempts in p, and fails if an operation fails every attempt.
func (g *loadGen) ops(ctx context.Context, p *Phase, n int, op func(ctx context.Context, i, attempt int) error) error {
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var firstErr atomic.Value
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(g.cfg.Concurrency)
	for i := range n {
		eg.Go(func() error {
			var err error
			for attempt := range 3 {
				if attempt > 0 {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					settle(ctx, time.Duration(attempt)*time.Second)
				}
				// A retry must not wait out the swarm's dial backoff.
				actx := network.WithForceDirectDial(ctx, "load test retry")
				if attempt == 0 {
					actx = ctx
				}
				start := time.Now()
				if err = op(actx, i, attempt); err == nil {
					lat[i] = time.Since(start)
					return nil
				}
				if ctx.Err() != nil {
					return err
				}
			}
			errs.Add(1)
			return err
		})
	}
	err := eg.Wait()
	p.Ops, p.Errors = n, int(errs.Load())
	if e, ok := firstErr.Load().(string); ok {
		p.FirstError = e
	}
	l := summarize(lat, 0)
	p.P50, p.P99 = l.P50, l.P99
	return err
}

func (g *loadGen) createHosts(ctx context.Context, p *Phase) error {
	n := g.cfg.Sessions
	g.users = make([]*loadUser, n)
	g.byName = make(map[string]int, n)
	for i := range n {
		name := fmt.Sprintf("%s-%06d", g.prefix, i)
		g.users[i] = &loadUser{idx: i, name: name}
		g.byName[name] = i
	}
	// Advertise what a real client would: a direct and a relayed address.
	relayed, err := ma.NewMultiaddr(fmt.Sprintf("/ip4/198.51.100.7/tcp/4001/p2p/%s/p2p-circuit", g.srv.info.ID))
	if err != nil {
		return err
	}
	g.addrs = []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.10/tcp/4001"), relayed}
	return g.ops(ctx, p, n, func(ctx context.Context, i, _ int) error {
		h, err := newLoadHost()
		if err != nil {
			return err
		}
		g.users[i].host = h
		g.users[i].client = client.New(h, g.srv.info)
		return nil
	})
}

// newLoadHost is a bare client host: its own Ed25519 key, TCP with Noise
// and yamux, no listening, no relay, AutoNAT, hole punching, metrics or
// resource accounting.
func newLoadHost() (host.Host, error) {
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(key),
		libp2p.NoListenAddrs,
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ResourceManager(&network.NullResourceManager{}),
		libp2p.ConnectionManager(connmgr.NullConnMgr{}),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		libp2p.DisableIdentifyAddressDiscovery(),
		libp2p.ForceReachabilityPrivate(),
	)
	if err != nil {
		return nil, fmt.Errorf("create load host: %w", err)
	}
	return h, nil
}

func (g *loadGen) register(ctx context.Context, p *Phase) error {
	return g.ops(ctx, p, len(g.users), func(ctx context.Context, i, attempt int) error {
		_, err := g.users[i].client.Register(ctx, g.users[i].name, loadPassword)
		if attempt > 0 && errors.Is(err, rendezvous.ErrUsernameTaken) {
			return nil // an earlier attempt got through
		}
		return err
	})
}

// makeContacts makes every two users of a group contacts: one asks, the
// other accepts.
func (g *loadGen) makeContacts(ctx context.Context, p *Phase) error {
	k := g.cfg.Contacts
	var pairs [][2]int
	for lo := 0; lo < len(g.users); lo += k {
		hi := min(lo+k, len(g.users))
		for a := lo; a < hi; a++ {
			for b := a + 1; b < hi; b++ {
				pairs = append(pairs, [2]int{a, b})
			}
		}
	}
	err := g.ops(ctx, p, len(pairs), func(ctx context.Context, i, _ int) error {
		a, b := g.users[pairs[i][0]], g.users[pairs[i][1]]
		accepted, err := a.client.RequestContact(ctx, b.name)
		if err != nil {
			return err
		}
		if !accepted {
			if err := b.client.AcceptContact(ctx, a.name); err != nil {
				return err
			}
		}
		return nil
	})
	p.Ops *= 2
	if err != nil {
		return err
	}
	for _, pr := range pairs {
		a, b := g.users[pr[0]], g.users[pr[1]]
		a.contacts = append(a.contacts, b.idx)
		b.contacts = append(b.contacts, a.idx)
	}
	total := 0
	for _, u := range g.users {
		u.view = make([]bool, len(u.contacts))
		total += len(u.contacts)
	}
	g.missing.Store(int64(total))
	return nil
}

func (g *loadGen) loginAll(ctx context.Context, p *Phase) error {
	dials := make([]time.Duration, len(g.users))
	err := g.ops(ctx, p, len(g.users), func(ctx context.Context, i, _ int) error {
		start := time.Now()
		if err := g.users[i].host.Connect(ctx, g.srv.info); err != nil {
			return fmt.Errorf("connect to the server: %w", err)
		}
		dials[i] = time.Since(start)
		return g.login(ctx, g.users[i])
	})
	g.dials = summarize(dials, 0)
	return err
}

// login opens u's session, takes its contacts' presence from the snapshot
// and starts reading its pushes.
func (g *loadGen) login(ctx context.Context, u *loadUser) error {
	s, err := u.client.Login(ctx, g.addrs)
	if err != nil {
		return err
	}
	ls := &loadSession{Session: s}
	online := make(map[string]bool, len(s.Contacts))
	for _, c := range s.Contacts {
		online[c.Username] = c.Online
	}
	u.mu.Lock()
	u.sess = ls
	for i, c := range u.contacts {
		g.setViewLocked(u, i, online[g.users[c].name])
	}
	u.mu.Unlock()
	g.readers.Add(1)
	go g.read(u, ls)
	return nil
}

func (g *loadGen) setViewLocked(u *loadUser, i int, online bool) {
	if u.view[i] == online {
		return
	}
	u.view[i] = online
	if online {
		g.missing.Add(-1)
	} else {
		g.missing.Add(1)
	}
}

// read consumes a session's pushes until it ends.
func (g *loadGen) read(u *loadUser, s *loadSession) {
	defer g.readers.Done()
	for up := range s.Updates() {
		if p := up.Presence; p != nil {
			g.observe(u, p, time.Now())
		}
	}
	if !s.closing.Load() {
		g.dropped.Add(1)
		g.dropErr.CompareAndSwap(nil, fmt.Sprintf("%s: %v", u.name, s.Err()))
	}
}

func (g *loadGen) observe(u *loadUser, p *client.Presence, at time.Time) {
	subject, ok := g.byName[p.Username]
	if !ok {
		return
	}
	u.mu.Lock()
	for i, c := range u.contacts {
		if c == subject {
			g.setViewLocked(u, i, p.Online)
		}
	}
	u.mu.Unlock()
	g.tracker.observe(u.idx, subject, p.Online, at)
}

// awaitConverged waits until every session sees all its contacts online.
func (g *loadGen) awaitConverged(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for g.missing.Load() != 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting until every session sees its contacts online (%d contact views still offline, %d sessions dropped: %v): %w",
				g.missing.Load(), g.dropped.Load(), g.dropErr.Load(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// fanoutTracker matches presence pushes to the actions that caused them.
type fanoutTracker struct {
	mu      sync.Mutex // guards watches
	watches map[watchKey]*watch
}

type watchKey struct{ receiver, subject int }

type watch struct {
	online bool
	start  time.Time
	got    chan time.Duration // buffered 1
}

func (t *fanoutTracker) expect(receiver, subject int, online bool, start time.Time) *watch {
	w := &watch{online: online, start: start, got: make(chan time.Duration, 1)}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watches == nil {
		t.watches = make(map[watchKey]*watch)
	}
	t.watches[watchKey{receiver, subject}] = w
	return w
}

func (t *fanoutTracker) observe(receiver, subject int, online bool, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := watchKey{receiver, subject}
	if w := t.watches[k]; w != nil && w.online == online {
		delete(t.watches, k)
		w.got <- at.Sub(w.start)
	}
}

func (t *fanoutTracker) forget(receiver, subject int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.watches, watchKey{receiver, subject})
}

// fanoutSamples collects latencies from concurrent toggles.
type fanoutSamples struct {
	mu                  sync.Mutex // guards the following
	offline, online     []time.Duration
	closeCalls, logins  []time.Duration
	missedOff, missedOn int
	events              int
}

func (g *loadGen) fanout(ctx context.Context, run func(context.Context, *fanoutSamples) error) (FanoutResult, error) {
	var fs fanoutSamples
	var r FanoutResult
	s0, err := g.srv.scrape(ctx)
	if err != nil {
		return r, err
	}
	c0, m0 := selfCPU(), machineCPU()
	start := time.Now()
	err = run(ctx, &fs)
	r.Elapsed = time.Since(start)
	r.GeneratorCPU = selfCPU() - c0
	s1, serr := g.srv.scrape(ctx)
	if serr == nil {
		r.ServerCPU = time.Duration((s1.CPU - s0.CPU) * float64(time.Second))
		if n := s1.FanoutN - s0.FanoutN; n > 0 {
			r.ServerMean = time.Duration((s1.FanoutSum - s0.FanoutSum) / n * float64(time.Second))
		}
	}
	r.OtherCPU = max(0, machineCPU()-m0-r.GeneratorCPU-r.ServerCPU)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	r.Events = fs.events
	r.Offline = summarize(fs.offline, fs.missedOff)
	r.Online = summarize(fs.online, fs.missedOn)
	r.All = summarize(append(slices.Clone(fs.offline), fs.online...), fs.missedOff+fs.missedOn)
	r.CloseCall, r.LoginCall = summarize(fs.closeCalls, 0), summarize(fs.logins, 0)
	return r, errors.Join(err, serr)
}

// live is u's session if it has not ended.
func (u *loadUser) live() *loadSession {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sess == nil || u.sess.Err() != nil {
		return nil
	}
	return u.sess
}

// toggle takes u offline (closes its session) or back online (logs in),
// and waits for the push at each of its contacts that holds a session.
func (g *loadGen) toggle(ctx context.Context, u *loadUser, online bool, fs *fanoutSamples) error {
	sess := u.live()
	if !online && sess == nil {
		return nil // dropped; counted as such
	}
	var contacts []int
	for _, c := range u.contacts {
		if g.users[c].live() != nil {
			contacts = append(contacts, c)
		}
	}
	start := time.Now()
	watches := make([]*watch, len(contacts))
	for i, c := range contacts {
		watches[i] = g.tracker.expect(c, u.idx, online, start)
	}
	var err error
	if online {
		err = g.login(ctx, u)
	} else {
		sess.closing.Store(true)
		err = sess.Close()
	}
	call := time.Since(start)
	if err != nil {
		for _, c := range contacts {
			g.tracker.forget(c, u.idx)
		}
		return fmt.Errorf("fan-out: take %s online=%v: %w", u.name, online, err)
	}
	deadline := time.NewTimer(time.Until(start.Add(fanoutTimeout)))
	defer deadline.Stop()
	var lat []time.Duration
	missed, expired := 0, false
	for i, w := range watches {
		if !expired {
			select {
			case d := <-w.got:
				lat = append(lat, d)
				continue
			case <-deadline.C:
				expired = true // the timer fires once: check the rest without waiting
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		g.tracker.forget(contacts[i], u.idx)
		select {
		case d := <-w.got: // arrived just before forget
			lat = append(lat, d)
		default:
			missed++
		}
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.events++
	if online {
		fs.online = append(fs.online, lat...)
		fs.logins = append(fs.logins, call)
		fs.missedOn += missed
	} else {
		fs.offline = append(fs.offline, lat...)
		fs.closeCalls = append(fs.closeCalls, call)
		fs.missedOff += missed
	}
	return nil
}

// spaced toggles one random user at a time, with a pause between events.
func (g *loadGen) spaced(ctx context.Context, fs *fanoutSamples) error {
	for range g.cfg.FanoutEvents {
		u := g.users[mrand.IntN(len(g.users))]
		if u.live() == nil {
			continue // dropped
		}
		for _, online := range []bool{false, true} {
			if err := g.toggle(ctx, u, online, fs); err != nil {
				return err
			}
			settle(ctx, g.cfg.FanoutInterval)
		}
	}
	return ctx.Err()
}

// burst takes BurstSize users of different groups (so none is another's
// contact) offline at once, then online at once; twice.
func (g *loadGen) burst(ctx context.Context, fs *fanoutSamples) error {
	k := g.cfg.Contacts
	groups := (len(g.users) + k - 1) / k
	for range 2 {
		var subjects []*loadUser
		for _, grp := range mrand.Perm(groups)[:g.cfg.BurstSize] {
			lo, hi := grp*k, min(grp*k+k, len(g.users))
			subjects = append(subjects, g.users[lo+mrand.IntN(hi-lo)])
		}
		for _, online := range []bool{false, true} {
			var eg errgroup.Group
			for _, u := range subjects {
				eg.Go(func() error { return g.toggle(ctx, u, online, fs) })
			}
			if err := eg.Wait(); err != nil {
				return err
			}
			settle(ctx, g.pause())
		}
	}
	return ctx.Err()
}

// teardown stops the server (which tells every session to go away), then
// closes the generator's hosts. It returns how long the server took.
func (g *loadGen) teardown() (time.Duration, error) {
	for _, u := range g.users {
		if u == nil {
			continue
		}
		u.mu.Lock()
		if u.sess != nil {
			u.sess.closing.Store(true)
		}
		u.mu.Unlock()
	}
	start := time.Now()
	err := g.srv.stop()
	took := time.Since(start)
	var eg errgroup.Group
	eg.SetLimit(64)
	for _, u := range g.users {
		if u == nil || u.host == nil {
			continue
		}
		eg.Go(u.host.Close)
	}
	err = errors.Join(err, eg.Wait())
	g.readers.Wait()
	return took, err
}

// productionEnrolments registers users on a separate server that hashes
// passwords at production cost.
func (g *loadGen) productionEnrolments(ctx context.Context, bin, dir, db string) (Phase, error) {
	var p Phase
	srv, err := startLoadServer(ctx, bin, dir, db, false)
	if err != nil {
		return p, err
	}
	pg := &loadGen{cfg: g.cfg, srv: srv, progress: g.progress, prefix: g.prefix + "p"}
	pg.cfg.Sessions = g.cfg.ProductionEnrolments
	var hosts Phase
	if err := pg.createHosts(ctx, &hosts); err != nil {
		return p, errors.Join(err, srv.stop())
	}
	pg.cfg.Concurrency = g.cfg.ProductionConcurrency
	p, err = pg.measure(ctx, pg.register)
	_, terr := pg.teardown()
	return p, errors.Join(err, terr)
}

// pause is how long to let memory and queues settle between phases:
// longer for large runs, short for the quick ones CI makes.
func (g *loadGen) pause() time.Duration {
	if g.cfg.Sessions < 2000 {
		return 500 * time.Millisecond
	}
	return 2 * time.Second
}

// settle waits for d or until ctx ends. It paces the load and lets
// memory settle between phases; it never synchronises with the server.
func settle(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// loadServer is a server process under load: parley-rendezvous or
// parley-relay.
type loadServer struct {
	name       string
	cmd        *exec.Cmd
	info       peer.AddrInfo
	metricsURL string
	logPath    string
	exited     chan struct{} // closed when the process has exited
	waitErr    error         // set before exited is closed
	stopOnce   sync.Once
	stopErr    error
}

// startLoadServer starts the server on a loopback TCP port and an admin
// port of its choosing, and reads both from its output.
func startLoadServer(ctx context.Context, bin, dataDir, db string, local bool) (_ *loadServer, err error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create server directory: %w", err)
	}
	logPath := filepath.Join(dataDir, "server.log")
	// Append: a restarted server keeps the log of the first.
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create server log: %w", err)
	}
	args := []string{
		"--data", dataDir, "--db", db,
		"--listen", "/ip4/127.0.0.1/tcp/0",
		"--admin", "127.0.0.1:0",
		"--no-limits",
		"--shutdown-timeout", "20s",
	}
	if local {
		args = append(args, "--local")
	}
	return startServerProcess(ctx, "parley-rendezvous", bin, args, logFile)
}

// startServerProcess runs a server binary that prints its peer multiaddr
// and its admin address, and reads both from its output; its output and
// errors go to logFile, which it owns.
func startServerProcess(ctx context.Context, name, bin string, args []string, logFile *os.File) (_ *loadServer, err error) {
	logPath := logFile.Name()
	cmd := exec.Command(bin, args...)
	// The server runs with the runtime's defaults, whatever the
	// generator's own GC tuning (GOGC=400 helps a large generator).
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOGC=") || strings.HasPrefix(kv, "GOMEMLIMIT=") || strings.HasPrefix(kv, "GODEBUG=")
	})
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &loadServer{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	type ready struct {
		info    peer.AddrInfo
		metrics string
	}
	readyc := make(chan ready, 1)
	go func() {
		var r ready
		sent := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if sent {
				continue
			}
			t := strings.TrimPrefix(strings.TrimSpace(line), "listening on ")
			if rest, ok := strings.CutPrefix(t, "admin: http://"); ok {
				r.metrics = "http://" + strings.Fields(strings.TrimSuffix(rest, "/healthz and /metrics"))[0]
				r.metrics = strings.TrimSuffix(r.metrics, "/healthz") + "/metrics"
			}
			if strings.HasPrefix(t, "/") && strings.Contains(t, "/p2p/") && r.info.ID == "" {
				if ai, err := peer.AddrInfoFromString(t); err == nil {
					r.info = *ai
				}
			}
			if r.info.ID != "" && r.metrics != "" {
				readyc <- r
				sent = true
			}
		}
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	defer func() {
		if err != nil {
			_ = s.stop()
		}
	}()
	select {
	case r := <-readyc:
		s.info, s.metricsURL = r.info, r.metrics
	case <-s.exited:
		return nil, fmt.Errorf("%s exited before it was ready (%v); see %s", name, s.waitErr, logPath)
	case <-time.After(time.Minute):
		return s, fmt.Errorf("%s did not print its addresses within a minute; see %s", name, logPath)
	case <-ctx.Done():
		return s, ctx.Err()
	}
	return s, nil
}

// stop interrupts the server, which shuts down gracefully, and kills it
// if it has not exited after 30s.
func (s *loadServer) stop() error {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(os.Interrupt)
		select {
		case <-s.exited:
		case <-time.After(30 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.exited
			s.stopErr = fmt.Errorf("%s did not stop within 30s; killed", s.name)
			return
		}
		if s.waitErr != nil {
			s.stopErr = fmt.Errorf("%s: %w; see %s", s.name, s.waitErr, s.logPath)
		}
	})
	return s.stopErr
}

func (s *loadServer) scrape(ctx context.Context) (ServerStats, error) {
	var st ServerStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.metricsURL, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("read server metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("read server metrics: %s", resp.Status)
	}
	fields := map[string]*float64{
		"process_resident_memory_bytes":                   &st.RSS,
		"go_memstats_heap_inuse_bytes":                    &st.HeapInuse,
		"go_memstats_stack_inuse_bytes":                   &st.StackInuse,
		"go_goroutines":                                   &st.Goroutines,
		"process_open_fds":                                &st.OpenFDs,
		"process_cpu_seconds_total":                       &st.CPU,
		"parley_rendezvous_sessions":                      &st.Sessions,
		"parley_relay_reservations":                       &st.Relayed,
		"parley_rendezvous_presence_fanout_seconds_sum":   &st.FanoutSum,
		"parley_rendezvous_presence_fanout_seconds_count": &st.FanoutN,
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if p := fields[f[0]]; p != nil {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				*p = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read server metrics: %w", err)
	}
	return st, nil
}

// scrapeMin scrapes three times, every pause, and keeps the lowest heap:
// the one least inflated by garbage not yet collected.
func (s *loadServer) scrapeMin(ctx context.Context, pause time.Duration) (ServerStats, error) {
	var best ServerStats
	for i := range 3 {
		if i > 0 {
			settle(ctx, pause)
		}
		st, err := s.scrape(ctx)
		if err != nil {
			return best, err
		}
		if i == 0 || st.HeapInuse+st.StackInuse < best.HeapInuse+best.StackInuse {
			best = st
		}
	}
	return best, nil
}

// selfCPU is this process's user+system CPU time (Linux; zero elsewhere).
func selfCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields count from after ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const clockTicks = 100 // USER_HZ on every Linux architecture Go supports
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// machineCPU is the CPU time all processes used, from /proc/stat (Linux;
// zero elsewhere).
func machineCPU() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system irq softirq steal
		v, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += v
	}
	const clockTicks = 100
	return time.Duration(ticks) * time.Second / clockTicks
}

// selfRSS is this process's resident memory in bytes (Linux; zero
// elsewhere).
func selfRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

func mib(b float64) string { return fmt.Sprintf("%.0f MiB", b/(1<<20)) }
func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/(1<<10)) }

// String is the report as a table for people.
func (r LoadReport) String() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
	cores := func(cpu, wall time.Duration) string {
		if wall <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2f", cpu.Seconds()/wall.Seconds())
	}
	w("rendezvous load: %d sessions on %s, %d contacts each, %d cores shared by server and generator",
		r.Sessions, r.Backend, r.Contacts, r.Cores)
	w("")
	w("%-22s %8s %6s %9s %9s %9s %9s %7s %7s %7s", "phase", "ops", "errors", "time", "ops/s", "p50", "p99", "srv cpu", "gen cpu", "oth cpu")
	phase := func(name string, p Phase) {
		if p.Ops == 0 && p.Elapsed == 0 {
			return
		}
		w("%-22s %8d %6d %9s %9.0f %9s %9s %7s %7s %7s", name, p.Ops, p.Errors, p.Elapsed.Round(time.Millisecond),
			p.Rate(), ms(p.P50), ms(p.P99), cores(p.ServerCPU, p.Elapsed), cores(p.GeneratorCPU, p.Elapsed), cores(p.OtherCPU, p.Elapsed))
	}
	phase("generator hosts", r.Hosts)
	phase("enrol (register)", r.Register)
	phase("contact request/accept", r.Contact)
	phase("login (new conn)", r.Login)
	if r.Dial.Samples > 0 {
		w("%-22s %8s %6s %9s %9s %9s %9s", "  of which dial", "", "", "", "", ms(r.Dial.P50), ms(r.Dial.P99))
	}
	phase("enrol, prod. argon2", r.ProductionRegister)
	w("(cpu: cores busy on average during the phase: server, generator, and other processes on the machine)")
	for _, p := range []struct {
		name string
		p    Phase
	}{{"enrol", r.Register}, {"contact", r.Contact}, {"login", r.Login}, {"enrol, prod. argon2", r.ProductionRegister}} {
		if p.p.FirstError != "" {
			w("first %s error (retried): %s", p.name, p.p.FirstError)
		}
	}
	w("")
	w("presence converged %s after the last login", r.Converged.Round(time.Millisecond))
	w("sessions held: %d (server gauge), %d at the end; %d dropped by the server or network", r.Held, r.HeldAtEnd, r.Dropped)
	if r.Dropped > 0 {
		w("WARNING: sessions were dropped; the first: %s", r.DropReason)
	}
	s0, s1, s2 := r.ServerIdle, r.ServerBeforeLogins, r.ServerWithSessions
	w("server memory: RSS %s idle, %s before logins, %s with sessions; heap+stacks %s → %s; %d goroutines, %d fds",
		mib(s0.RSS), mib(s1.RSS), mib(s2.RSS), mib(s1.HeapInuse+s1.StackInuse), mib(s2.HeapInuse+s2.StackInuse),
		int(s2.Goroutines), int(s2.OpenFDs))
	w("server memory per session: %s RSS, %s heap+stacks (of which stacks %s)", kib(r.RSSPerSession), kib(r.HeapPerSession),
		kib((s2.StackInuse-s1.StackInuse)/float64(r.Sessions)))
	w("generator memory per session: %s RSS, %s heap+stacks; %d goroutines", kib(r.GeneratorRSSPerSession),
		kib(r.GeneratorHeapPerSession), r.GeneratorGoroutines)
	if r.Idle.Elapsed > 0 {
		w("idle (keepalives only) for %s: server %s cores, generator %s cores, others %s cores", r.Idle.Elapsed.Round(100*time.Millisecond),
			cores(r.Idle.ServerCPU, r.Idle.Elapsed), cores(r.Idle.GeneratorCPU, r.Idle.Elapsed), cores(r.Idle.OtherCPU, r.Idle.Elapsed))
	}
	w("")
	w("%-22s %7s %8s %9s %9s %9s %7s %9s %7s %7s %7s", "presence fan-out", "events", "pushes", "p50", "p99", "max", "missed", "srv mean", "srv cpu", "gen cpu", "oth cpu")
	fan := func(name string, f FanoutResult) {
		if f.Events == 0 {
			return
		}
		row := func(label string, l Latency) {
			w("%-22s %7s %8d %9s %9s %9s %7d", label, "", l.Samples, ms(l.P50), ms(l.P99), ms(l.Max), l.Missed)
		}
		w("%-22s %7d %8d %9s %9s %9s %7d %9s %7s %7s %7s", name, f.Events, f.All.Samples, ms(f.All.P50), ms(f.All.P99),
			ms(f.All.Max), f.All.Missed, ms(f.ServerMean), cores(f.ServerCPU, f.Elapsed), cores(f.GeneratorCPU, f.Elapsed), cores(f.OtherCPU, f.Elapsed))
		row("  going offline", f.Offline)
		row("  coming online", f.Online)
		row("  (Close call)", f.CloseCall)
		row("  (Login call)", f.LoginCall)
	}
	fan("spaced (one at a time)", r.Spaced)
	fan("burst", r.Burst)
	if r.Shutdown > 0 {
		w("")
		w("graceful server shutdown with the sessions held: %s", r.Shutdown.Round(time.Millisecond))
	}
	return b.String()
}
