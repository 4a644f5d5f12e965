package chat

import (
	"context"
	"errors"
	"fmt"
	"github.com/parleynet/parley/app/contacts/contactstest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	multiaddr "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/relaytest"
)

// BenchmarkSend measures one acknowledged, stored message from alice to
// bob over a direct connection and through a supernode's relay, in the
// same run so the two can be compared as a ratio.
func BenchmarkSend(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	b.Run("direct", func(b *testing.B) {
		alice, bob := newUser(b, "alice"), newUser(b, "bob")
		befriend(alice, bob)
		benchSend(b, ctx, alice, "direct")
	})

	b.Run("relayed", func(b *testing.B) {
		alice, _, sn := relayedPair(b, ctx)
		benchSend(b, ctx, alice, "relayed via "+sn.Node.ID().String())
	})
}

// relayedPair starts alice and bob behind imitated NATs, bob with a
// reservation on a supernode alice is admitted to, and their chat
// services.
func relayedPair(b *testing.B, ctx context.Context) (alice, bob *user, sn relaytest.Supernode) {
	iss := relaytest.NewIssuer(b)
	sn = iss.StartSupernode(b, relay.Config{})
	alice = newUser(b, "alice", node.WithNATImitation())
	bob = newUser(b, "bob", node.WithNATImitation())
	source := func(context.Context, map[peer.ID]time.Duration) ([]peer.AddrInfo, error) {
		return []peer.AddrInfo{sn.Info()}, nil
	}
	r := relay.StartReserver(bob.node, source, iss.Passport(b, bob.node), relay.ReserverConfig{Interval: time.Second})
	b.Cleanup(func() { r.Close() })
	tstest.WaitFor(b, time.Minute, func() error {
		if len(r.CircuitAddrs()) == 0 {
			return errors.New("bob has no reservation on the supernode")
		}
		return nil
	})
	if _, err := iss.Passport(b, alice.node).Present(ctx, sn.Info()); err != nil {
		b.Fatal(err)
	}
	befriend(alice, bob)
	// befriend taught alice bob's advertised addresses: circuits only.
	if got := alice.node.Peerstore().Addrs(bob.node.ID()); !slices.ContainsFunc(got, func(a multiaddr.Multiaddr) bool { _, ok := node.RelayOf(a); return ok }) {
		b.Fatalf("alice knows no circuit address of bob: %v", got)
	}
	return alice, bob, sn
}

// benchSend sends b.N messages one after the other (each waits for its
// ack) and reports the send → delivered latency, p50 and p99, next to
// the path's round trip (libp2p ping, p50) on the same connection.
func benchSend(b *testing.B, ctx context.Context, alice *user, wantPath string) {
	if m, err := alice.svc.Send(ctx, "bob", "warm-up"); err != nil || m.Path != wantPath {
		b.Fatalf("warm-up: %+v, %v; want path %q", m, err, wantPath)
	}
	rtt := pingRTT(b, ctx, alice)
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		m, err := alice.svc.Send(ctx, "bob", "ping")
		took = append(took, time.Since(start))
		if err != nil || m.State != Delivered || m.Path != wantPath {
			b.Fatalf("send: %+v, %v", m, err)
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
	b.ReportMetric(float64(rtt.Microseconds()), "rtt-p50-µs")
}

// pingRTT is the median of 50 libp2p pings from alice to bob.
func pingRTT(b *testing.B, ctx context.Context, alice *user) time.Duration {
	bob, _ := alice.svc.contacts.Lookup("bob")
	ctx, cancel := context.WithCancel(network.WithAllowLimitedConn(ctx, "bench"))
	defer cancel()
	results := ping.Ping(ctx, alice.node, bob)
	var rtts []time.Duration
	for len(rtts) < 50 {
		r := <-results
		if r.Error != nil {
			b.Fatalf("ping: %v", r.Error)
		}
		rtts = append(rtts, r.RTT)
	}
	slices.Sort(rtts)
	return rtts[len(rtts)/2]
}

// BenchmarkThroughput measures how many messages one contact can push
// to another when many are sent at once (a pasted log, a bot):
// concurrent Sends, each returning once its message is acknowledged, so
// stored in the recipient's history, and settled in the sender's. It
// reports messages per second and checks both histories.
func BenchmarkThroughput(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.Run("direct", func(b *testing.B) {
		alice, bob := newUser(b, "alice"), newUser(b, "bob")
		befriend(alice, bob)
		benchThroughput(b, ctx, alice, bob)
	})
	b.Run("relayed", func(b *testing.B) {
		alice, bob, _ := relayedPair(b, ctx)
		benchThroughput(b, ctx, alice, bob)
	})
}

func benchThroughput(b *testing.B, ctx context.Context, alice, bob *user) {
	if _, err := alice.svc.Send(ctx, "bob", "warm-up"); err != nil {
		b.Fatal(err)
	}
	const senders = 2 * Window
	next := make(chan struct{}, senders)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	for range senders {
		wg.Go(func() {
			for range next {
				if m, err := alice.svc.Send(ctx, "bob", "a line of a pasted log"); err != nil || m.State != Delivered {
					failed.Add(1)
				}
			}
		})
	}
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	elapsed, cpu := time.Since(start), cpuTime(b)-cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d messages not delivered", n, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	// The process's CPU time per message (both users, both histories): a
	// figure a loaded machine does not skew the way msgs/s is.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/msg")
	want := b.N + 1
	if got := countWith(b, ctx, bob.hist, "alice", Received); got != want {
		b.Fatalf("bob's history holds %d messages, want %d", got, want)
	}
	if got := countWith(b, ctx, alice.hist, "bob", Delivered); got != want {
		b.Fatalf("alice's history holds %d delivered messages, want %d", got, want)
	}
}

func countWith(b *testing.B, ctx context.Context, h *History, contact string, state State) int {
	var n int
	if err := h.db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE contact = ? AND state = ?`, contact, state).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkConversationMemory opens conversations from alice to many
// contacts (all on bob's device, so that the figure is the
// conversation's cost: its goroutines, buffers and stream on both sides,
// not one more connection) and reports the heap and stack they hold.
func BenchmarkConversationMemory(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Fewer than go-libp2p's default limit of streams between two peers.
	const n = 64
	for b.Loop() {
		alice, bob := newUser(b, "alice"), newUser(b, "bob")
		alice.node.Peerstore().AddAddrs(bob.node.ID(), bob.node.Addrs(), time.Hour)
		theirs := contactstest.New(map[string]peer.ID{"alice": alice.node.ID()})
		mine := contactstest.New(nil)
		for i := range n {
			mine.Set(fmt.Sprint("bob", i), bob.node.ID())
		}
		alice.svc = NewService(alice.node, alice.hist, mine, func() string { return "alice" }, nil)
		bob.svc = NewService(bob.node, bob.hist, theirs, func() string { return "bob" }, nil)
		if _, err := alice.svc.Send(ctx, "bob0", "warm-up"); err != nil {
			b.Fatal(err)
		}
		before := inUse()
		for i := 1; i < n; i++ {
			if m, err := alice.svc.Send(ctx, fmt.Sprint("bob", i), "hi"); err != nil || m.State != Delivered {
				b.Fatalf("send: %+v, %v", m, err)
			}
		}
		after := inUse()
		b.ReportMetric(float64(after-before)/float64(n-1), "B/conversation")
		alice.svc.Close()
		bob.svc.Close()
	}
}

// cpuTime is the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// inUse is the heap and goroutine stacks in use after a collection.
func inUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}
