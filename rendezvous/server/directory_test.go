package server

import (
	"crypto/rand"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/rendezvous/pb"
)

func testPeers(t testing.TB, n int) []peer.ID {
	t.Helper()
	ids := make([]peer.ID, n)
	for i := range ids {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if ids[i], err = peer.IDFromPrivateKey(k); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

var testAddrs = [][]byte{ma.StringCast("/ip4/192.0.2.1/tcp/4002").Bytes()}

// sim drives a directory with simulated supernodes and clients on a fake
// clock: clients take slots on the first two supernodes handed out, and
// supernodes report the slots they hold.
type sim struct {
	t     *testing.T
	d     *directory
	now   time.Time
	sns   []peer.ID
	dead  map[peer.ID]bool
	slots map[peer.ID]map[peer.ID]bool // supernode → clients holding a slot
	cap   uint32
}

func newSim(t *testing.T, supernodes int, capacity uint32, cfg ElectionConfig) *sim {
	s := &sim{
		t: t, d: newDirectory(time.Minute, cfg), now: time.Unix(1_800_000_000, 0),
		sns: testPeers(t, supernodes), dead: map[peer.ID]bool{}, slots: map[peer.ID]map[peer.ID]bool{}, cap: capacity,
	}
	for _, sn := range s.sns {
		s.slots[sn] = map[peer.ID]bool{}
	}
	s.heartbeat()
	return s
}

func (s *sim) heartbeat() {
	for _, sn := range s.sns {
		if !s.dead[sn] {
			announceWorking(s.d, sn, testAddrs, &pb.SupernodeLoad{Reservations: uint32(len(s.slots[sn])), MaxReservations: s.cap}, s.now)
		}
	}
}

// tick lets d pass, with heartbeats every 20 s as supernodes send them.
func (s *sim) tick(d time.Duration) {
	for d > 0 {
		step := min(d, 20*time.Second)
		s.now = s.now.Add(step)
		s.heartbeat()
		d -= step
	}
}

// connect makes a client hold slots on two supernodes, taking the first
// ones it is handed that it does not hold yet, as the reserver does.
func (s *sim) connect(client peer.ID) {
	held := 0
	for _, cs := range s.slots {
		if cs[client] {
			held++
		}
	}
	list := s.d.list(client, 8, nil, true, s.now)
	for _, pi := range list {
		if held == 2 {
			return
		}
		sn := peer.ID(pi.PeerId)
		if s.dead[sn] || s.slots[sn][client] {
			continue
		}
		s.slots[sn][client] = true
		held++
	}
	if held < 2 {
		s.t.Fatalf("client %s holds only %d slots; %d supernodes listed", client, held, len(list))
	}
}

// kill crashes a supernode: its clients lose their slot and take another.
func (s *sim) kill(sn peer.ID) []peer.ID {
	s.dead[sn] = true
	var orphans []peer.ID
	for c := range s.slots[sn] {
		orphans = append(orphans, c)
	}
	s.slots[sn] = map[peer.ID]bool{}
	return orphans
}

func (s *sim) active() []peer.ID {
	var out []peer.ID
	for _, e := range s.d.entries(s.now) {
		if e.Active {
			out = append(out, e.Peer)
		}
	}
	return out
}

func (s *sim) maxLoad() (peer.ID, int) {
	var worst peer.ID
	n := -1
	for sn, cs := range s.slots {
		if len(cs) > n {
			worst, n = sn, len(cs)
		}
	}
	return worst, n
}

func TestElectionMinActiveAndDedicatedFirst(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDirectory(time.Minute, ElectionConfig{})
	ids := testPeers(t, 5)
	for i, id := range ids {
		announceWorking(d, id, testAddrs, &pb.SupernodeLoad{Dedicated: i >= 3}, now.Add(time.Duration(i)*time.Second))
	}
	now = now.Add(5 * time.Second)
	var active []peer.ID
	for _, e := range d.entries(now) {
		if e.Active {
			active = append(active, e.Peer)
		}
	}
	if len(active) != 3 {
		t.Fatalf("active set %v, want MinActive=3 of 5 idle candidates", active)
	}
	// The first three joined first and took the seats; dedicated relays
	// are preferred when a seat is filled, not by evicting volunteers.
	for _, id := range ids[:3] {
		if !slices.Contains(active, id) {
			t.Errorf("early candidate %s not active", id)
		}
	}
	if got := d.list(ids[0], 10, nil, false, now); len(got) != 3 {
		t.Errorf("list hands out %d supernodes, want only the 3 active", len(got))
	}
	// A standby dedicated relay is promoted before a standby volunteer.
	d2 := newDirectory(time.Minute, ElectionConfig{MinActive: 1})
	announceWorking(d2, ids[0], testAddrs, &pb.SupernodeLoad{}, now)
	announceWorking(d2, ids[1], testAddrs, &pb.SupernodeLoad{}, now)
	announceWorking(d2, ids[4], testAddrs, &pb.SupernodeLoad{Dedicated: true}, now)
	announceWorking(d2, ids[0], testAddrs, &pb.SupernodeLoad{Reservations: 900, MaxReservations: 1000}, now)
	if e := d2.entries(now); !e[0].Active || !e[1].Active || e[0].Peer != ids[0] && e[1].Peer != ids[0] {
		t.Fatalf("entries %+v", e)
	}
	for _, e := range d2.entries(now) {
		if e.Peer == ids[1] && e.Active {
			t.Errorf("a volunteer was promoted while a dedicated relay stood by: %+v", d2.entries(now))
		}
		if e.Peer == ids[4] && !e.Active {
			t.Errorf("the dedicated relay was not promoted under load: %+v", d2.entries(now))
		}
	}
}

// TestElectionSizesToDemand grows the active set as clients arrive, so
// that no supernode is pushed past the target, and shrinks it again only
// after the tenure, one at a time, when demand has fallen well below.
func TestElectionSizesToDemand(t *testing.T) {
	cfg := ElectionConfig{MinActive: 2, TargetUtilisation: 0.6, DemoteBelow: 0.3, MinTenure: 10 * time.Minute}
	s := newSim(t, 10, 100, cfg)
	if got := len(s.active()); got != 2 {
		t.Fatalf("idle: %d active, want 2", got)
	}
	clients := testPeers(t, 200) // 400 slots: at 60% of 100, 7 supernodes
	for i, c := range clients {
		s.connect(c)
		if i%10 == 9 {
			s.tick(time.Second)
		}
	}
	s.tick(time.Second)
	if got := len(s.active()); got < 7 || got > 8 {
		t.Errorf("400 slots of capacity 100 at 60%%: %d active, want 7 or 8", got)
	}
	if sn, n := s.maxLoad(); n > 90 {
		t.Errorf("supernode %s holds %d of 100 slots, above the 90%% hand-out limit", sn, n)
	}

	// Most clients leave. Nothing is demoted before the tenure.
	for _, c := range clients[:170] {
		for _, held := range s.slots {
			delete(held, c)
		}
	}
	s.tick(time.Minute)
	before := len(s.active())
	if before < 7 {
		t.Fatalf("demoted before the tenure: %d active", before)
	}
	// After the tenure, one demotion per tenure while demand (60 slots)
	// stays within 30% of what would remain: down to 2 (60 of 200),
	// which is also MinActive.
	var sizes []int
	for range 12 {
		s.tick(cfg.MinTenure)
		sizes = append(sizes, len(s.active()))
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] < sizes[i-1]-1 {
			t.Errorf("active set shrank by more than one per tenure: %v", sizes)
		}
	}
	if final := sizes[len(sizes)-1]; final != 2 {
		t.Errorf("active set settled at %d (sizes %v), want 2", final, sizes)
	}
	t.Logf("active set before the tenure %d, after each tenure: %v", before, sizes)
}

// TestElectionNoFlapping moves demand back and forth around the target:
// the active set may grow, but must not shrink and grow again within the
// oscillation.
func TestElectionNoFlapping(t *testing.T) {
	cfg := ElectionConfig{MinActive: 2, MinTenure: 10 * time.Minute}
	d := newDirectory(time.Minute, cfg)
	now := time.Unix(1_800_000_000, 0)
	ids := testPeers(t, 6)
	changes := 0
	prev := map[peer.ID]bool{}
	for step := range 120 { // 2 hours, one step a minute
		// Demand swings between 55% and 65% of the capacity of two.
		load := uint32(110)
		if step%2 == 1 {
			load = 130
		}
		for i, id := range ids {
			r := uint32(0)
			if i < 2 {
				r = load / 2
			}
			announceWorking(d, id, testAddrs, &pb.SupernodeLoad{Reservations: r, MaxReservations: 100}, now)
		}
		for _, e := range d.entries(now) {
			if prev[e.Peer] != e.Active {
				changes++
			}
			prev[e.Peer] = e.Active
		}
		now = now.Add(time.Minute)
	}
	// The first step activates two, the first swing above 60% a third;
	// hysteresis keeps the third (demand never falls under 30% of two).
	if changes > 3 {
		t.Errorf("%d activations and demotions over 2 hours of a ±5%% swing, want at most 3", changes)
	}
}

// TestElectionFailureBoundsSurvivors kills active supernodes under load:
// the directory promotes standbys and no survivor is pushed past the
// hand-out limit.
func TestElectionFailureBoundsSurvivors(t *testing.T) {
	cfg := ElectionConfig{MinActive: 3, TargetUtilisation: 0.6, MaxUtilisation: 0.9}
	s := newSim(t, 10, 100, cfg)
	clients := testPeers(t, 150) // 300 slots: 5 active at 60%
	for i, c := range clients {
		s.connect(c)
		if i%10 == 9 {
			s.tick(time.Second)
		}
	}
	s.tick(10 * time.Second)
	activeBefore := s.active()
	t.Logf("before the failure: %d active", len(activeBefore))
	// Kill the two busiest active supernodes.
	slices.SortFunc(activeBefore, func(a, b peer.ID) int { return len(s.slots[b]) - len(s.slots[a]) })
	var orphans []peer.ID
	for _, sn := range activeBefore[:2] {
		orphans = append(orphans, s.kill(sn)...)
	}
	// Past their TTL the directory drops them. Their clients' demand is
	// kept for another TTL, so standbys are promoted before the clients
	// come back, not piled onto the survivors meanwhile.
	s.tick(70 * time.Second)
	if got := len(s.active()); got < len(activeBefore) {
		t.Errorf("right after the failure %d active, want the %d lost replaced at once (orphaned demand)", got, len(activeBefore))
	}
	for i, c := range orphans {
		s.connect(c)
		if i%10 == 9 {
			s.tick(time.Second)
		}
	}
	s.tick(10 * time.Second)
	after := s.active()
	promoted := 0
	for _, sn := range after {
		if !slices.Contains(activeBefore, sn) {
			promoted++
		}
	}
	if promoted < 2 {
		t.Errorf("after losing 2 active supernodes, %d standbys were promoted (active now %d), want at least 2", promoted, len(after))
	}
	if sn, n := s.maxLoad(); n > 90 {
		t.Errorf("after the failure supernode %s holds %d of 100 slots, want at most 90", sn, n)
	}
	total := 0
	for _, cs := range s.slots {
		total += len(cs)
	}
	if total != 2*len(clients) {
		t.Errorf("%d slots held after failover, want %d (every client on two supernodes)", total, 2*len(clients))
	}
}

func TestElectionRanking(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	d := newDirectory(time.Minute, ElectionConfig{MinActive: 4})
	ids := testPeers(t, 4)
	// near and far are equally (little) loaded; busy is at 50%; full at
	// 95% is handed out only after everything else.
	near, far, busy, full := ids[0], ids[1], ids[2], ids[3]
	announceWorking(d, full, testAddrs, &pb.SupernodeLoad{MaxReservations: 100}, now) // active while idle
	announceWorking(d, near, testAddrs, &pb.SupernodeLoad{Reservations: 3, MaxReservations: 100}, now)
	announceWorking(d, far, testAddrs, &pb.SupernodeLoad{Reservations: 1, MaxReservations: 100}, now)
	announceWorking(d, busy, testAddrs, &pb.SupernodeLoad{Reservations: 50, MaxReservations: 100}, now)
	announceWorking(d, full, testAddrs, &pb.SupernodeLoad{Reservations: 95, MaxReservations: 100}, now)
	client := testPeers(t, 1)[0]
	rtts := map[peer.ID]time.Duration{near: 5 * time.Millisecond, far: 90 * time.Millisecond, busy: time.Millisecond, full: time.Millisecond}
	var got []peer.ID
	for _, pi := range d.list(client, 10, rtts, false, now) {
		got = append(got, peer.ID(pi.PeerId))
	}
	if want := []peer.ID{near, far, busy, full}; !slices.Equal(got, want) {
		t.Errorf("ranking %v, want near, far, busy, full", labels(got, ids))
	}
	// Without measurements, the less loaded first.
	got = got[:0]
	for _, pi := range d.list(client, 2, nil, false, now) {
		got = append(got, peer.ID(pi.PeerId))
	}
	if want := []peer.ID{far, near}; !slices.Equal(got, want) {
		t.Errorf("ranking without RTTs %v, want far, near", labels(got, ids))
	}
	// A supernode that uses most of its CPU counts as full.
	announceWorking(d, near, testAddrs, &pb.SupernodeLoad{Reservations: 3, MaxReservations: 100, CpuPermille: 950}, now)
	if first := peer.ID(d.list(client, 1, rtts, false, now)[0].PeerId); first != far {
		t.Errorf("with near's CPU at 95%% the first is %s, want far", labels([]peer.ID{first}, ids))
	}
}

func labels(got, ids []peer.ID) []string {
	label := []string{"near", "far", "busy", "full"}
	var out []string
	for _, g := range got {
		i := slices.Index(ids, g)
		if i < 0 || i >= len(label) {
			out = append(out, fmt.Sprint(g))
			continue
		}
		out = append(out, label[i])
	}
	return out
}

// announceWorking announces a supernode that passes the check the
// directory asks for, as a working one does.
func announceWorking(d *directory, p peer.ID, addrs [][]byte, load *pb.SupernodeLoad, now time.Time) bool {
	active, check, err := d.announce(p, addrs, load, now)
	if err != nil || !check {
		return active
	}
	d.checked(p, addrs, nil, now)
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cands[p] != nil && d.cands[p].active
}
