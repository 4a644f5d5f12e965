package relay

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
)

// Mode is an operator's policy for a device serving as a supernode.
type Mode int

const (
	// ModeAuto: serve when eligible (see Volunteer).
	ModeAuto Mode = iota
	// ModeAlways: serve whenever logged in, without the eligibility checks
	// (the operator knows the device is publicly reachable).
	ModeAlways
	// ModeNever: never serve.
	ModeNever
)

// ParseMode reads "auto", "always" or "never".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "auto", "":
		return ModeAuto, nil
	case "always":
		return ModeAlways, nil
	case "never":
		return ModeNever, nil
	}
	return 0, fmt.Errorf("supernode mode %q: want auto, always or never", s)
}

func (m Mode) String() string {
	switch m {
	case ModeAlways:
		return "always"
	case ModeNever:
		return "never"
	default:
		return "auto"
	}
}

// VolunteerConfig configures a Volunteer. Verifier and Directory are
// required; every other field left zero takes its default.
type VolunteerConfig struct {
	Mode Mode
	// MinUptime is how long the node must have been up. Zero means 10
	// minutes; NoLimit means no wait.
	MinUptime time.Duration
	// MaxCPU and MaxLoad are the headroom rule: the process's CPU use, as
	// a share of the machine, must stay under MaxCPU (zero means 0.5), and
	// the machine's one-minute load average per core under MaxLoad (zero
	// means 1.5: the user's computer is not busy with other work).
	// NoLimit means no such check.
	MaxCPU, MaxLoad float64
	// CheckInterval is how often eligibility is checked. Zero means 15s.
	CheckInterval time.Duration
	// Verifier returns the certificate verifier the supernode admits
	// clients with (the rendezvous server's key).
	Verifier func(ctx context.Context) (*cert.Verifier, error)
	// Directory is the rendezvous server to announce to.
	Directory *client.Client
	// Ready reports whether the device may announce itself (it is logged
	// in: the directory takes volunteers that are enrolled devices). Nil
	// means always.
	Ready func() bool
	// Limits are the supernode's limits; zero fields take their
	// DefaultLimits value, field by field.
	Limits Limits
	// Drain is how long clients get to move when the device stops serving.
	// Zero means 10s.
	Drain time.Duration
	// Announcer, when set, announces the device as a supernode while it
	// serves (see Config.Announcer).
	Announcer Announcer
}

// minFDs is the open-file limit a volunteer needs: a descriptor per
// client connection, and room for the device's own.
const minFDs = 4096

// Volunteer runs the supernode role on a client device while it is
// eligible: AutoNAT v2 confirmed a public address, the device has been up
// for MinUptime, its operator allows it, and it has headroom (CPU, load,
// file descriptors). It announces itself to the directory, which decides
// whether to hand it out (active) or keep it as a standby. When the device
// stops being eligible for three checks in a row it steps down
// gracefully, letting its clients move first.
type Volunteer struct {
	node    *node.Node
	cfg     VolunteerConfig
	load    func() (float64, bool) // the machine's load per core
	cancel  context.CancelFunc
	done    chan struct{}
	recheck chan struct{} // a token asks for a check now

	mu     sync.Mutex // guards the following
	sn     *Supernode
	reason string // why the device does not serve, "" while it does
}

// VolunteerState is what a Volunteer is doing, for status displays.
type VolunteerState struct {
	Mode    string `json:"mode"`
	Serving bool   `json:"serving"`
	// Active: the directory hands this device out to clients.
	Active bool `json:"active"`
	// Reason says why the device does not serve.
	Reason       string `json:"reason,omitempty"`
	Reservations int    `json:"reservations"`
	Circuits     int    `json:"circuits"`
}

func (c VolunteerConfig) withDefaults() VolunteerConfig {
	c.MinUptime = orDefault(c.MinUptime, 10*time.Minute)
	c.MaxCPU = orDefault(c.MaxCPU, 0.5)
	c.MaxLoad = orDefault(c.MaxLoad, 1.5)
	c.CheckInterval = orDefault(c.CheckInterval, 15*time.Second)
	c.Drain = orDefault(c.Drain, 10*time.Second)
	if c.Ready == nil {
		c.Ready = func() bool { return true }
	}
	return c
}

// StartVolunteer starts checking eligibility. Close stops it.
func StartVolunteer(n *node.Node, cfg VolunteerConfig) *Volunteer {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	v := &Volunteer{node: n, cfg: cfg, load: loadPerCore, cancel: cancel, done: make(chan struct{}), recheck: make(chan struct{}, 1), reason: "not checked yet"}
	go func() {
		defer close(v.done)
		v.run(ctx)
	}()
	return v
}

// State returns what the volunteer is doing.
func (v *Volunteer) State() VolunteerState {
	v.mu.Lock()
	defer v.mu.Unlock()
	st := VolunteerState{Mode: v.cfg.Mode.String(), Reason: v.reason}
	if v.sn != nil {
		l := v.sn.Load()
		st.Serving, st.Active = true, v.sn.Active()
		st.Reservations, st.Circuits = int(l.Reservations), int(l.Circuits)
	}
	return st
}

// Close steps down (letting clients move for up to Drain) and stops.
func (v *Volunteer) Close() error {
	v.cancel()
	<-v.done
	return nil
}

func (v *Volunteer) run(ctx context.Context) {
	var cpu cpuMeter
	cpu.permille() // start measuring
	misses := 0
	t := time.NewTicker(v.cfg.CheckInterval)
	defer t.Stop()
	defer v.stepDown("device shutting down")
	for {
		reason := v.ineligible(&cpu)
		v.mu.Lock()
		serving := v.sn != nil
		v.mu.Unlock()
		switch {
		case reason == "" && !serving:
			misses = 0
			if err := v.serve(ctx); err != nil {
				log.Warnw("could not start serving as a supernode", "err", err)
				v.setReason("could not start: " + err.Error())
			}
		case reason == "":
			misses = 0
		case serving:
			misses++
			if misses >= 3 || v.cfg.Mode == ModeNever {
				v.stepDown(reason)
			}
		default:
			v.setReason(reason)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-v.recheck:
		}
	}
}

// Recheck checks eligibility now, for example after logging in, instead
// of at the next check.
func (v *Volunteer) Recheck() {
	select {
	case v.recheck <- struct{}{}:
	default:
	}
}

func (v *Volunteer) setReason(r string) {
	v.mu.Lock()
	v.reason = r
	v.mu.Unlock()
}

// ineligible says why the device may not serve now, or "".
func (v *Volunteer) ineligible(cpu *cpuMeter) string {
	if v.cfg.Mode == ModeNever {
		return "the operator does not allow it (--supernode=never)"
	}
	if !v.cfg.Ready() {
		return "not logged in"
	}
	if v.cfg.Mode == ModeAlways {
		return ""
	}
	if len(v.node.PublicAddrs()) == 0 {
		return "no publicly reachable address confirmed by AutoNAT"
	}
	if up := time.Since(v.node.Started()); v.cfg.MinUptime > 0 && up < v.cfg.MinUptime {
		return fmt.Sprintf("up for %s, less than %s", up.Round(time.Second), v.cfg.MinUptime)
	}
	if share := float64(cpu.permille()) / 1000; v.cfg.MaxCPU >= 0 && share > v.cfg.MaxCPU {
		return fmt.Sprintf("busy: the process uses %.0f%% of the CPU", 100*share)
	}
	if load, ok := v.load(); ok && v.cfg.MaxLoad >= 0 && load > v.cfg.MaxLoad {
		return fmt.Sprintf("busy: machine load %.2f per core", load)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < minFDs {
		return fmt.Sprintf("open-file limit %d is under %d", rl.Cur, minFDs)
	}
	return ""
}

func (v *Volunteer) serve(ctx context.Context) error {
	vctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	verifier, err := v.cfg.Verifier(vctx)
	if err != nil {
		return fmt.Errorf("certificate key: %w", err)
	}
	sn, err := Start(v.node, Config{
		Verifier:    verifier,
		Limits:      v.cfg.Limits,
		Directories: []*client.Client{v.cfg.Directory},
		Addrs:       v.node.PublicAddrs,
		Announcer:   v.cfg.Announcer,
	})
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.sn, v.reason = sn, ""
	v.mu.Unlock()
	log.Infow("serving as a supernode candidate", "addrs", v.node.PublicAddrs())
	return nil
}

func (v *Volunteer) stepDown(reason string) {
	v.mu.Lock()
	sn := v.sn
	v.sn, v.reason = nil, reason
	v.mu.Unlock()
	if sn == nil {
		return
	}
	log.Infow("stepping down as a supernode", "reason", reason)
	ctx, cancel := context.WithTimeout(context.Background(), v.cfg.Drain)
	defer cancel()
	if err := sn.Shutdown(ctx); err != nil {
		log.Warnw("supernode shutdown", "err", err)
	}
}

// loadPerCore is the machine's one-minute load average per core.
func loadPerCore() (float64, bool) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, false
	}
	return l / float64(runtime.NumCPU()), true
}
