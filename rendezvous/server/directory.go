package server

import (
	"bytes"
	"cmp"
	"fmt"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// ElectionConfig tunes how the supernode directory elects its active set.
// Zero fields take the DefaultElection value.
//
// Candidates announce themselves with their load and capacity. The
// directory hands out only active supernodes and keeps the active set
// sized to demand: demand is the reservations the candidates report,
// plus slots it handed out that are not reported yet, plus for a while the
// reservations of supernodes that failed or left (their clients are about
// to reserve elsewhere). A standby is promoted as soon as demand exceeds
// TargetUtilisation of the active set's capacity; an active supernode is
// demoted only when the others would stay under DemoteBelow, after
// MinTenure, one at a time: the gap between the two thresholds and the
// tenure are the hysteresis that keeps the set from flapping.
type ElectionConfig struct {
	// MinActive is the smallest active set, when that many candidates
	// exist. Default 3: clients hold reservations on two supernodes, and a
	// third takes over a failed one's clients.
	MinActive int
	// TargetUtilisation is the share of the active set's capacity the
	// directory aims to use. Default 0.6.
	TargetUtilisation float64
	// DemoteBelow: an active supernode is demoted only when demand would
	// stay under this share of the remaining capacity. Default 0.3.
	DemoteBelow float64
	// MaxUtilisation: a supernode at this share of its capacity (or of its
	// CPU) is not handed out while a less loaded one exists. Default 0.9.
	MaxUtilisation float64
	// MinTenure is how long a supernode stays active before it may be
	// demoted, and the least time between two demotions. Default 10 min.
	MinTenure time.Duration
	// DefaultCapacity is the capacity (reservations) of a candidate that
	// reports none. Default 1024.
	DefaultCapacity int
	// PendingTTL is how long a handed-out slot counts as load before the
	// supernode reports it. Default 30s.
	PendingTTL time.Duration
}

// DefaultElection holds the value each zero field of an ElectionConfig
// takes.
func DefaultElection() ElectionConfig {
	return ElectionConfig{
		MinActive:         3,
		TargetUtilisation: 0.6,
		DemoteBelow:       0.3,
		MaxUtilisation:    0.9,
		MinTenure:         10 * time.Minute,
		DefaultCapacity:   1024,
		PendingTTL:        30 * time.Second,
	}
}

func (c ElectionConfig) withDefaults() ElectionConfig {
	d := DefaultElection()
	if c.MinActive == 0 {
		c.MinActive = d.MinActive
	}
	if c.TargetUtilisation == 0 {
		c.TargetUtilisation = d.TargetUtilisation
	}
	if c.DemoteBelow == 0 {
		c.DemoteBelow = d.DemoteBelow
	}
	if c.MaxUtilisation == 0 {
		c.MaxUtilisation = d.MaxUtilisation
	}
	if c.MinTenure == 0 {
		c.MinTenure = d.MinTenure
	}
	if c.DefaultCapacity == 0 {
		c.DefaultCapacity = d.DefaultCapacity
	}
	if c.PendingTTL == 0 {
		c.PendingTTL = d.PendingTTL
	}
	return c
}

// Bounds of the directory's memory.
const (
	// MaxCandidates is how many supernode candidates a directory keeps;
	// newcomers beyond it are refused until some expire.
	MaxCandidates = 10_000
	// maxOrphans bounds the remembered demand of departed supernodes.
	maxOrphans = 1024
	// rejoinDelay is how long announcements of a supernode that left are
	// ignored (one sent before it left may arrive after).
	rejoinDelay = 10 * time.Second
)

// directory is the supernode directory: the candidates that announced
// themselves recently, and which of them are active. A candidate lives for
// ttl after its last announcement.
type directory struct {
	ttl  time.Duration
	cfg  ElectionConfig
	seed maphash.Seed

	mu           sync.Mutex // guards the following
	cands        map[peer.ID]*candidate
	orphans      []orphan              // demand of supernodes that failed or left
	left         map[peer.ID]time.Time // supernodes that left, and when
	lastDemotion time.Time
}

type candidate struct {
	id      peer.ID
	addrs   [][]byte
	load    *pb.SupernodeLoad
	joined  time.Time
	expires time.Time
	active  bool
	since   time.Time // when it became active
	// pending are slots handed out to clients (by client) that the
	// supernode's load may not show yet, with when they were handed out.
	pending map[peer.ID]time.Time
	// reported is when the load was last reported.
	reported time.Time
	// check is how the candidate fared when the server tried it at its
	// announced addresses; only a candidate that passed is seated.
	check checkState
}

// checkState is a candidate's check (see SupernodeCheck).
type checkState struct {
	passed  bool      // the last check passed
	addrs   [][]byte  // the addresses the last check tried
	running bool      // a check is under way
	err     string    // why the last check failed
	at      time.Time // when the last check ended
}

type orphan struct {
	reservations int
	until        time.Time
}

// DirectoryEntry is a candidate as the directory sees it, for tests,
// metrics and operators.
type DirectoryEntry struct {
	Peer         peer.ID
	Active       bool
	Reservations int // reported plus handed out and not yet reported
	Capacity     int
	Utilisation  float64
	// Checked says whether the candidate passed its last check at its
	// announced addresses; CheckError is why it failed ("" if it passed
	// or was not checked yet).
	Checked    bool
	CheckError string
}

func newDirectory(ttl time.Duration, cfg ElectionConfig) *directory {
	return &directory{
		ttl:   ttl,
		cfg:   cfg.withDefaults(),
		seed:  maphash.MakeSeed(),
		cands: make(map[peer.ID]*candidate),
		left:  make(map[peer.ID]time.Time),
	}
}

// announce records a candidate's heartbeat and reports whether it is
// active, and whether the caller must check it (then call checked). A
// newcomer, one whose addresses changed, and one whose last check failed
// longer than checkRetry ago need a check. It refuses a newcomer when the
// directory is full (ErrUnavailable).
func (d *directory) announce(p peer.ID, addrs [][]byte, load *pb.SupernodeLoad, now time.Time) (active, check bool, err error) {
	if load == nil {
		load = &pb.SupernodeLoad{}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if at, ok := d.left[p]; ok {
		if now.Sub(at) < rejoinDelay {
			return false, false, nil // a heartbeat sent before it left
		}
		delete(d.left, p)
	}
	c, ok := d.cands[p]
	if !ok {
		if len(d.cands) >= MaxCandidates {
			d.rebalanceLocked(now) // expire the silent first
			if len(d.cands) >= MaxCandidates {
				return false, false, fmt.Errorf("%w: the supernode directory is full", rendezvous.ErrUnavailable)
			}
		}
		c = &candidate{id: p, joined: now, pending: make(map[peer.ID]time.Time)}
		d.cands[p] = c
		log.Infow("supernode candidate joined", "peer", p, "dedicated", load.GetDedicated())
	}
	// The reservations the supernode gained since its last report are,
	// as far as the directory can tell, the slots it handed out first.
	if gained := int(load.GetReservations()) - int(c.load.GetReservations()); gained > 0 && ok {
		clients := make([]peer.ID, 0, len(c.pending))
		for client := range c.pending {
			clients = append(clients, client)
		}
		slices.SortFunc(clients, func(a, b peer.ID) int { return c.pending[a].Compare(c.pending[b]) })
		for _, client := range clients[:min(gained, len(clients))] {
			delete(c.pending, client)
		}
	}
	c.addrs, c.load, c.expires, c.reported = addrs, load, now.Add(d.ttl), now
	// New addresses are checked again; seated ones stay seated unless
	// that check fails.
	stale := !c.check.at.IsZero() && !sameAddrs(c.check.addrs, addrs)
	retry := !c.check.passed && (c.check.at.IsZero() || now.Sub(c.check.at) >= checkRetry)
	if !c.check.running && (stale || retry) {
		c.check.running = true
		check = true
	}
	d.rebalanceLocked(now)
	return c.active, check, nil
}

// checked records the outcome of a candidate's check at addrs; an outcome
// for addresses it no longer announces is dropped (announce asks for
// another check).
func (d *directory) checked(p peer.ID, addrs [][]byte, err error, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.cands[p]
	if !ok {
		return
	}
	c.check.running = false
	if !sameAddrs(c.addrs, addrs) {
		return
	}
	c.check = checkState{passed: err == nil, addrs: addrs, at: now}
	if err != nil {
		c.check.err = err.Error()
		if c.active {
			c.active = false
			log.Warnw("supernode demoted: it failed its check at its new addresses", "peer", p, "err", err)
		}
	}
	d.rebalanceLocked(now)
}

// isActive reports whether p is in the active set.
func (d *directory) isActive(p peer.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.cands[p]
	return ok && c.active
}

// sameAddrs compares two address lists as sets.
func sameAddrs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, bytes.Compare)
	slices.SortFunc(b, bytes.Compare)
	return slices.EqualFunc(a, b, bytes.Equal)
}

// leave drops a candidate that is shutting down; its clients' demand is
// kept while they move.
func (d *directory) leave(p peer.ID, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.cands[p]; ok {
		log.Infow("supernode left", "peer", p, "reservations", c.load.GetReservations())
		d.dropLocked(c, now)
		d.left[p] = now
		d.rebalanceLocked(now)
	}
}

func (d *directory) dropLocked(c *candidate, now time.Time) {
	if n := d.usedLocked(c, now); n > 0 {
		if len(d.orphans) == maxOrphans {
			d.orphans = d.orphans[1:]
		}
		d.orphans = append(d.orphans, orphan{reservations: n, until: now.Add(d.ttl)})
	}
	delete(d.cands, c.id)
}

// list returns up to max active supernodes for client, best first: least
// utilised (in steps of 10%), then nearest by the client's measured round
// trips, then least loaded. When record is true (a logged-in client), the
// first two count as handed out until the supernodes report them.
func (d *directory) list(client peer.ID, max int, rtts map[peer.ID]time.Duration, record bool, now time.Time) []*pb.PeerInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rebalanceLocked(now)
	type ranked struct {
		c      *candidate
		bucket int
		rtt    time.Duration
		used   int
		tie    uint64
	}
	rank := func(c *candidate) (ranked, bool) {
		u := d.utilisationLocked(c, now)
		r := ranked{c: c, bucket: min(int(u*10), 10), rtt: time.Duration(math.MaxInt64), used: d.usedLocked(c, now)}
		if rtt, ok := rtts[c.id]; ok {
			r.rtt = rtt.Round(5 * time.Millisecond)
		}
		// Ties are broken per client, so that equal supernodes share the
		// clients instead of all of them taking the first.
		r.tie = maphash.Comparable(d.seed, [2]peer.ID{client, c.id})
		return r, u < d.cfg.MaxUtilisation
	}
	var open, full []ranked
	for _, c := range d.cands {
		if !c.active {
			continue
		}
		if r, ok := rank(c); ok {
			open = append(open, r)
		} else {
			full = append(full, r)
		}
	}
	// Saturated: promote standbys rather than pile clients on the full.
	for len(open) < min(max, 2) {
		c := d.bestStandbyLocked(now)
		if c == nil {
			break
		}
		d.promoteLocked(c, now, "active set saturated")
		r, _ := rank(c)
		open = append(open, r)
	}
	byRank := func(a, b ranked) int {
		return cmp.Or(
			cmp.Compare(a.bucket, b.bucket),
			cmp.Compare(a.rtt, b.rtt),
			cmp.Compare(a.used, b.used),
			cmp.Compare(a.tie, b.tie))
	}
	slices.SortFunc(open, byRank)
	slices.SortFunc(full, byRank)
	all := append(open, full...) // the full only when nothing else is left
	out := make([]*pb.PeerInfo, 0, min(max, len(all)))
	for i, r := range all[:min(max, len(all))] {
		out = append(out, &pb.PeerInfo{PeerId: []byte(r.c.id), Addrs: r.c.addrs})
		if record && i < 2 {
			r.c.pending[client] = now
		}
	}
	return out
}

// entries returns every live candidate, active ones first.
func (d *directory) entries(now time.Time) []DirectoryEntry {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rebalanceLocked(now)
	out := make([]DirectoryEntry, 0, len(d.cands))
	for _, c := range d.cands {
		out = append(out, DirectoryEntry{
			Peer: c.id, Active: c.active, Reservations: d.usedLocked(c, now),
			Capacity: d.capacity(c), Utilisation: d.utilisationLocked(c, now),
			Checked: c.check.passed, CheckError: c.check.err,
		})
	}
	slices.SortFunc(out, func(a, b DirectoryEntry) int {
		if a.Active != b.Active {
			if a.Active {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Peer, b.Peer)
	})
	return out
}

func (d *directory) capacity(c *candidate) int {
	if n := int(c.load.GetMaxReservations()); n > 0 {
		return n
	}
	return d.cfg.DefaultCapacity
}

// usedLocked is a candidate's reported reservations plus the slots handed
// out since that it may not count yet.
func (d *directory) usedLocked(c *candidate, now time.Time) int {
	n := int(c.load.GetReservations())
	for client, at := range c.pending {
		if now.Sub(at) > d.cfg.PendingTTL {
			delete(c.pending, client)
			continue
		}
		n++
	}
	return n
}

// utilisationLocked is the larger of the candidate's slot use and its CPU
// use, as a share.
func (d *directory) utilisationLocked(c *candidate, now time.Time) float64 {
	slots := float64(d.usedLocked(c, now)) / float64(d.capacity(c))
	cpu := float64(c.load.GetCpuPermille()) / 1000
	return max(slots, cpu)
}

// rebalanceLocked expires silent candidates and resizes the active set.
func (d *directory) rebalanceLocked(now time.Time) {
	for _, c := range d.cands {
		if now.After(c.expires) {
			log.Warnw("supernode expired (missed its heartbeats)", "peer", c.id, "active", c.active)
			d.dropLocked(c, now)
		}
	}
	d.orphans = slices.DeleteFunc(d.orphans, func(o orphan) bool { return now.After(o.until) })
	for p, at := range d.left {
		if now.Sub(at) >= rejoinDelay {
			delete(d.left, p)
		}
	}

	demand := 0
	for _, o := range d.orphans {
		demand += o.reservations
	}
	active, activeCap := 0, 0
	for _, c := range d.cands {
		demand += d.usedLocked(c, now)
		if c.active {
			active++
			activeCap += d.capacity(c)
		}
	}
	for active < d.cfg.MinActive || float64(demand) > d.cfg.TargetUtilisation*float64(activeCap) {
		c := d.bestStandbyLocked(now)
		if c == nil {
			break
		}
		d.promoteLocked(c, now, "demand")
		active++
		activeCap += d.capacity(c)
	}
	if active <= d.cfg.MinActive || now.Sub(d.lastDemotion) < d.cfg.MinTenure {
		return
	}
	// Demote at most one: the least useful supernode that has served its
	// tenure, if the others can carry the demand with room to spare.
	var victim *candidate
	for _, c := range d.cands {
		if !c.active || now.Sub(c.since) < d.cfg.MinTenure {
			continue
		}
		if victim == nil || lessUseful(c, victim, d, now) {
			victim = c
		}
	}
	if victim == nil {
		return
	}
	rest := activeCap - d.capacity(victim)
	if float64(demand) <= d.cfg.DemoteBelow*float64(rest) {
		victim.active = false
		d.lastDemotion = now
		log.Infow("supernode demoted to standby", "peer", victim.id, "demand", demand, "remaining_capacity", rest)
	}
}

// lessUseful orders demotion victims: volunteers before dedicated relays,
// then the fewest reservations, then the most recently joined.
func lessUseful(a, b *candidate, d *directory, now time.Time) bool {
	if a.load.GetDedicated() != b.load.GetDedicated() {
		return !a.load.GetDedicated()
	}
	if ua, ub := d.usedLocked(a, now), d.usedLocked(b, now); ua != ub {
		return ua < ub
	}
	return a.joined.After(b.joined)
}

// bestStandbyLocked is the standby to promote next: dedicated relays
// first, then the least utilised, then the longest known.
func (d *directory) bestStandbyLocked(now time.Time) *candidate {
	var best *candidate
	var bestU float64
	for _, c := range d.cands {
		if c.active || !c.check.passed {
			continue
		}
		u := d.utilisationLocked(c, now)
		if u >= d.cfg.MaxUtilisation {
			continue
		}
		if best == nil || betterStandby(c, u, best, bestU) {
			best, bestU = c, u
		}
	}
	return best
}

func betterStandby(a *candidate, ua float64, b *candidate, ub float64) bool {
	if a.load.GetDedicated() != b.load.GetDedicated() {
		return a.load.GetDedicated()
	}
	if ua != ub {
		return ua < ub
	}
	if !a.joined.Equal(b.joined) {
		return a.joined.Before(b.joined)
	}
	return a.id < b.id
}

func (d *directory) promoteLocked(c *candidate, now time.Time, why string) {
	c.active, c.since = true, now
	log.Infow("supernode promoted to active", "peer", c.id, "reason", why)
}
