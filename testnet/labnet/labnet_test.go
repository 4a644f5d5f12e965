package labnet_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/testnet/labnet"
	"github.com/parleynet/parley/testnet/natlab"
)

func TestMain(m *testing.M) {
	code := m.Run()
	labnet.Cleanup()
	os.Exit(code)
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func relayed(path string) bool { return strings.HasPrefix(path, "relayed via ") }

// TestConeToConeHolePunched: two users behind endpoint-independent NATs,
// 20 ms on every public link. The first message goes at once over the
// relay; DCUtR then punches a direct connection, and later messages and
// the status say "holepunched".
func TestConeToConeHolePunched(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Delay: 20 * time.Millisecond})
	alice := n.AddClient(t, "alice", natlab.Cone)
	bob := n.AddClient(t, "bob", natlab.Cone)
	n.MakeContacts(t, alice, bob)

	start := time.Now()
	first := alice.MustSend(t, "bob", "hello through the NATs")
	firstTook := time.Since(start)
	path, err := alice.AwaitPath(ctx, "bob", func(p string) bool { return p == "holepunched" })
	if err != nil {
		t.Fatalf("%v\nalice's log:\n%s", err, alice.Log())
	}
	directTook := time.Since(start)
	t.Logf("first message %s after %v (path %s); direct (%s) after %v", first.ID[:8], firstTook, first.Path, path, directTook)

	m := alice.MustSend(t, "bob", "now directly")
	if m.Path != "holepunched" {
		t.Errorf("a message after the punch went %q, want holepunched", m.Path)
	}
	reply := bob.MustSend(t, "alice", "and back")
	if reply.Path != "holepunched" {
		t.Errorf("bob's reply went %q, want holepunched", reply.Path)
	}
	got, err := bob.History(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) < 2 || got[0].ID != first.ID || got[1].ID != m.ID {
		t.Errorf("bob's history %+v, want alice's two messages in order", got)
	}
}

// TestSymmetricPairStaysRelayed: with a symmetric NAT on both sides no
// hole can be punched; the pair stays relayed and still exchanges
// messages and a 64 MiB stream intact.
func TestSymmetricPairStaysRelayed(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{})
	alice := n.AddClient(t, "alice", natlab.Symmetric)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)

	m := alice.MustSend(t, "bob", "hello, relayed")
	if !relayed(m.Path) {
		t.Fatalf("first message went %q, want relayed", m.Path)
	}
	res, err := alice.Probe(ctx, "bob", 64<<20)
	if err != nil {
		t.Fatalf("64 MiB probe: %v\n%s", err, alice.Log())
	}
	if !res.Intact || res.Bytes != 64<<20 || !relayed(res.Path) {
		t.Errorf("probe %+v, want 64 MiB intact through a supernode", res)
	}
	t.Logf("64 MiB relayed between symmetric NATs: %.1f MB/s via %s", res.MBPerSecond, res.Path)
	// go-libp2p tries three punches of up to 5 s each, the watchdog more
	// rounds after; all fail, and the relay carries on meanwhile.
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		for _, c := range []*labnet.Client{alice, bob} {
			other := map[*labnet.Client]string{alice: "bob", bob: "alice"}[c]
			if cs, _ := c.Contact(ctx, other); !relayed(cs.Path) {
				t.Fatalf("%s's path to %s became %q, want relayed", c.Name, other, cs.Path)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	reply := bob.MustSend(t, "alice", "got it")
	if !relayed(reply.Path) {
		t.Errorf("reply went %q, want relayed", reply.Path)
	}
}

// TestCloudSupernode: a supernode on a cloud-like machine (a private
// interface address behind a one-to-one NAT, announcing the public one)
// is seated, relays two users behind symmetric NATs, and splices them:
// the fast path names the supernode's public address, which the users
// reach it at, not its interface's.
func TestCloudSupernode(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Supernodes: 1, CloudSupernodes: true})
	alice := n.AddClient(t, "alice", natlab.Symmetric)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)
	if m := alice.MustSend(t, "bob", "through the cloud"); !relayed(m.Path) {
		t.Fatalf("message went %q, want relayed", m.Path)
	}
	probeSpliced(t, ctx, alice, "bob", n.Supernodes[0])
}

// probeSpliced waits until from's path to contact is spliced by sn, then
// checks a 64 MiB probe against sn's counters: its label says relayed via
// sn over TCP, sn's spliced-bytes counter grows by the probe, and its
// circuit counter stays about still.
func probeSpliced(t *testing.T, ctx context.Context, from *labnet.Client, contact string, sn *labnet.Server) {
	t.Helper()
	tstest.WaitFor(t, time.Minute, func() error {
		if cs, _ := from.Contact(ctx, contact); !relayed(cs.Path) || cs.Transport != "tcp" {
			return fmt.Errorf("%s's path to %s is %q over %q, want relayed over tcp (spliced)", from.Name, contact, cs.Path, cs.Transport)
		}
		return nil
	})
	before, err := sn.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	res, err := from.Probe(ctx, contact, size)
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, from.Log())
	}
	after, err := sn.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Intact || res.Bytes != size || res.Path != "relayed via "+sn.Peer || res.Transport != "tcp" {
		t.Errorf("probe %+v, want %d bytes intact, relayed via %s over tcp", res, size, sn.Peer)
	}
	spliced := after["parley_relay_spliced_bytes_total"] - before["parley_relay_spliced_bytes_total"]
	circuit := after["parley_relay_bytes_relayed_total"] - before["parley_relay_bytes_relayed_total"]
	t.Logf("64 MiB spliced at %.1f MB/s; the supernode spliced %.1f MiB and relayed %.1f MiB through circuits", res.MBPerSecond, spliced/(1<<20), circuit/(1<<20))
	if spliced < size {
		t.Errorf("the supernode spliced %.0f bytes, want at least the probe's %d", spliced, size)
	}
	if circuit > 1<<20 {
		t.Errorf("the supernode relayed %.0f bytes through circuits during the probe, want about none", circuit)
	}
}

// TestSupernodeKilledMidStream kills the supernode a relayed pair uses
// while messages flow: the pair goes on through the other supernode, and
// every message alice saw acknowledged is in bob's history.
func TestSupernodeKilledMidStream(t *testing.T) {
	ctx := testContext(t, 4*time.Minute)
	n := labnet.Start(t, labnet.Config{Supernodes: 2})
	alice := n.AddClient(t, "alice", natlab.Symmetric)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)
	first := alice.MustSend(t, "bob", "before the crash")
	if !relayed(first.Path) {
		t.Fatalf("first message went %q, want relayed", first.Path)
	}
	via := strings.TrimPrefix(first.Path, "relayed via ")
	var victim, other *labnet.Server
	for _, s := range n.Supernodes {
		if s.Peer == via {
			victim = s
		} else {
			other = s
		}
	}
	if victim == nil {
		t.Fatalf("the pair is relayed via %s, which is none of the supernodes", via)
	}

	// A long stream is cut by the crash; messages go on.
	probeErr := make(chan error, 1)
	go func() {
		_, err := alice.Probe(ctx, "bob", 256<<20)
		probeErr <- err
	}()
	var sent []apitype.Message
	crashAt := time.Time{}
	var recovered time.Duration
	for i := 0; ; i++ {
		if i == 5 {
			if err := victim.Kill(); err != nil {
				t.Fatal(err)
			}
			crashAt = time.Now()
		}
		m, err := alice.Send(ctx, "bob", fmt.Sprintf("message %d", i))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		sent = append(sent, m)
		if !crashAt.IsZero() && m.State == apitype.MessageDelivered && m.Path == "relayed via "+other.Peer {
			recovered = time.Since(crashAt)
			break
		}
		if !crashAt.IsZero() && time.Since(crashAt) > 90*time.Second {
			t.Fatalf("90 s after the crash messages still do not go through %s: last %+v\n%s", other.Peer, m, alice.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("first message through the other supernode %v after the crash", recovered)
	// A crashed supernode's QUIC connections fall silent: the clients'
	// liveness pings find out within 5 s + 3 s; then one round trip to
	// reserve elsewhere and a presence push. (Measured about 7 s; the
	// margin is for a loaded CI machine.)
	if recovered > 15*time.Second {
		t.Errorf("failover took %v, want under 15 s\nalice's log:\n%s", recovered, alice.Log())
	}
	if err := <-probeErr; err == nil {
		t.Log("the 256 MiB probe finished before the crash")
	}
	// Everything alice sent arrives, those queued during the failover too.
	if err := tstest.Poll(ctx, func() error {
		got, err := bob.History(ctx, "alice")
		if err != nil {
			return fmt.Errorf("bob's history: %w", err)
		}
		have := map[string]bool{}
		for _, m := range got {
			have[m.ID] = true
		}
		var missing []string
		for _, m := range sent {
			if !have[m.ID] {
				missing = append(missing, m.ID)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("bob's history lacks %d of the %d messages alice sent: %v", len(missing), len(sent), missing)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Both move off the dead supernode, and each sees the other there,
	// within the liveness bound (5 s + 3 s) of the crash and a push.
	for _, c := range []*labnet.Client{alice, bob} {
		name := map[*labnet.Client]string{alice: "bob", bob: "alice"}[c]
		bound, cancel := context.WithDeadline(ctx, crashAt.Add(15*time.Second))
		err := tstest.Poll(bound, func() error {
			cs, _ := c.Contact(ctx, name)
			if !slices.ContainsFunc(cs.Addrs, func(a string) bool { return strings.Contains(a, via) }) &&
				slices.ContainsFunc(cs.Addrs, func(a string) bool { return strings.Contains(a, other.Peer) }) {
				return nil
			}
			return fmt.Errorf("%s sees %s at %v, want only through the live supernode %s", c.Name, name, cs.Addrs, other.Peer)
		})
		cancel()
		if err != nil {
			t.Errorf("15 s after the crash: %v", err)
		}
	}
}

// TestHolePunchRightAfterStart restarts alice and has her send to bob the
// moment she is logged in again, before her node may know its own public
// address. A peer that does not know it refuses DCUtR, and go-libp2p does
// not try again, so without the product's own watchdog (package node)
// such a pair would stay relayed.
func TestHolePunchRightAfterStart(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Delay: 20 * time.Millisecond, Env: []string{"GOLOG_LOG_LEVEL=info,parley/node=debug"}})
	alice := n.AddClient(t, "alice", natlab.Cone)
	bob := n.AddClient(t, "bob", natlab.Cone)
	n.MakeContacts(t, alice, bob)
	for round := range 3 {
		if err := alice.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		tstest.WaitFor(t, 30*time.Second, func() error {
			if cs, ok := alice.Contact(ctx, "bob"); !ok || !cs.Online {
				return fmt.Errorf("round %d: alice did not log in again: she sees bob as %+v (found %v), want online", round, cs, ok)
			}
			return nil
		})
		start := time.Now()
		m := alice.MustSend(t, "bob", fmt.Sprintf("right after the restart, round %d", round))
		first := time.Since(start)
		path, err := alice.AwaitPath(ctx, "bob", func(p string) bool { return p == "holepunched" })
		if err != nil {
			t.Fatalf("round %d: %v\nalice's log:\n%s", round, err, alice.Log())
		}
		t.Logf("round %d: first message %s after %v, %s after %v", round, m.Path, first, path, time.Since(start))
	}
	retries := 0
	for _, c := range []*labnet.Client{alice, bob} {
		b, _ := os.ReadFile(c.Proc.LogPath())
		retries += strings.Count(string(b), "hole punch watchdog: trying")
	}
	t.Logf("the watchdog stepped in %d times", retries)
}

// TestVolunteerSupernode runs a client daemon on a public host with
// --supernode=auto: AutoNAT v2 confirms its address, it becomes a
// supernode candidate, and a NATed client can reserve a slot on it and be
// reached through it.
func TestVolunteerSupernode(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Supernodes: 1})
	// The lab shares one machine with the tests: do not let its load
	// count against carol's headroom.
	carol := n.AddPublicClient(t, "carol", "--supernode", "auto", "--supernode-uptime", "0s", "--supernode-max-load", "100")
	var st apitype.Status
	serving, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := tstest.Poll(serving, func() error {
		s, err := carol.Status(ctx)
		if err != nil {
			return fmt.Errorf("carol's status: %w", err)
		}
		st = s
		if !s.Supernode.Serving || !s.Supernode.Active || len(s.PublicAddrs) == 0 {
			return fmt.Errorf("carol does not serve as an active supernode: status %+v", s)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, carol.Log())
	}
	t.Logf("carol's public addresses %v; serving: %+v", st.PublicAddrs, st.Supernode)
	if len(st.Supernodes) != 0 {
		t.Errorf("a publicly reachable device holds relay slots on %v, want none", st.Supernodes)
	}
	// Two NATed users now reserve on the dedicated supernode and on carol.
	alice := n.AddClient(t, "alice", natlab.Symmetric)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	s, err := alice.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	carolID := st.Peer
	if !slices.Contains(s.Supernodes, carolID) {
		t.Errorf("alice holds slots on %v, want one on carol %s", s.Supernodes, carolID)
	}
	n.MakeContacts(t, alice, bob)
	m := alice.MustSend(t, "bob", "through whichever supernode")
	t.Logf("delivered %s", m.Path)
	counted, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := tstest.Poll(counted, func() error {
		s, err := carol.Status(ctx)
		if err != nil {
			return fmt.Errorf("carol's status: %w", err)
		}
		if s.Supernode.Reservations < 2 {
			return fmt.Errorf("carol counts %d reservations, want alice's and bob's", s.Supernode.Reservations)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestSupernodeGracefulShutdown stops (SIGTERM) the supernode a relayed
// pair uses: it tells its clients first, they reserve elsewhere and
// publish their new addresses before it goes, so the pair moves without
// waiting for a liveness timeout.
func TestSupernodeGracefulShutdown(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	n := labnet.Start(t, labnet.Config{Supernodes: 3})
	alice := n.AddClient(t, "alice", natlab.Symmetric)
	bob := n.AddClient(t, "bob", natlab.Symmetric)
	n.MakeContacts(t, alice, bob)
	first := alice.MustSend(t, "bob", "before the shutdown")
	via := strings.TrimPrefix(first.Path, "relayed via ")
	var leaving *labnet.Server
	for _, s := range n.Supernodes {
		if s.Peer == via {
			leaving = s
		}
	}
	if leaving == nil {
		t.Fatalf("first message went %q, not through a supernode", first.Path)
	}
	start := time.Now()
	if err := leaving.Stop(30 * time.Second); err != nil {
		t.Fatalf("parley-relay did not stop cleanly: %v", err)
	}
	stopped := time.Since(start)
	// By the time the process has exited its clients had moved: bob
	// advertises no circuit through it any more.
	s, err := bob.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(s.Supernodes, via) || slices.ContainsFunc(s.Addrs, func(a string) bool { return strings.Contains(a, via) }) {
		t.Errorf("when the supernode had stopped bob still used it: supernodes %v, addrs %v", s.Supernodes, s.Addrs)
	}
	if len(s.Supernodes) < 2 {
		t.Errorf("bob holds slots on %v after the move, want two", s.Supernodes)
	}
	m := alice.MustSend(t, "bob", "after the shutdown")
	if m.Path == first.Path {
		t.Errorf("a message after the shutdown went through the stopped supernode")
	}
	t.Logf("supernode stopped in %v; next message %s", stopped, m.Path)
	if stopped > 10*time.Second {
		t.Errorf("shutdown took %v: it waited out its drain instead of the clients' acknowledgements", stopped)
	}
}

// TestOneSupernodeHolePunched: with one supernode, a client is seen by two
// peers only, the rendezvous server and the supernode, often over two
// transports (two addresses seen once each). Their word is enough (they
// are the network's own), so cone↔cone pairs still punch. The first label
// other than relayed must already say holepunched: the punched
// connection opens before DCUtR reports success, and must not show as a
// plain direct one meanwhile.
func TestOneSupernodeHolePunched(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	n := labnet.Start(t, labnet.Config{Supernodes: 1, Delay: 20 * time.Millisecond})
	alice := n.AddClient(t, "alice", natlab.Cone)
	bob := n.AddClient(t, "bob", natlab.Cone)
	n.MakeContacts(t, alice, bob)
	alice.MustSend(t, "bob", "hello")
	for _, c := range []struct {
		from  *labnet.Client
		other string
	}{{alice, "bob"}, {bob, "alice"}} {
		path, err := c.from.AwaitPath(ctx, c.other, func(p string) bool { return p == "direct" || p == "holepunched" })
		if err != nil || path != "holepunched" {
			t.Fatalf("%s's path to %s: %q, %v; want holepunched\n%s", c.from.Name, c.other, path, err, c.from.Log())
		}
	}
}
