package files

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func missingChunks(int) bool { return false }

func busyWith(n int) func() int { return func() int { return n } }

// takeAsync calls take in a goroutine; the span arrives on the channel.
func takeAsync(ctx context.Context, s *scheduler, p peer.ID, n int, busy func() int) <-chan span {
	got := make(chan span, 1)
	go func() {
		sp, _ := s.take(ctx, p, n, busy)
		got <- sp
	}()
	return got
}

// TestSchedulerStealsOnlyWhatIsWorthIt: in the end game a provider still
// busy with its own chunks does not take over chunks their owner will
// reach first (the copy would be sent for nothing); as its own run out, a
// verified chunk wakes it, and it takes over from the end half of what
// the owner holds beyond its own.
func TestSchedulerStealsOnlyWhatIsWorthIt(t *testing.T) {
	s := newSchedulerOf(8, missingChunks)
	if sp, ok := s.take(t.Context(), "slow", 8, busyWith(0)); !ok || sp != (span{0, 8}) {
		t.Fatalf("slow took %+v, %v; want all 8 chunks", sp, ok)
	}
	var busy atomic.Int64
	busy.Store(7)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := takeAsync(ctx, s, "fast", 4, func() int { return int(busy.Load()) })
	s.done(0) // slow holds 7, fast awaits 7 of its own: nothing worth taking
	select {
	case sp := <-got:
		t.Fatalf("busy provider took %+v; want it to wait", sp)
	case <-time.After(200 * time.Millisecond):
	}
	busy.Store(1)
	s.done(1) // slow holds 6, fast 1: fast takes (6-1)/2 from the end
	select {
	case sp := <-got:
		if sp != (span{6, 2}) {
			t.Fatalf("took %+v, want chunks 6 and 7", sp)
		}
	case <-ctx.Done():
		t.Fatal("the provider was not woken by a verified chunk")
	}
}

// TestSchedulerStealsLastChunkWhenIdle: a provider with nothing else to
// do takes over the last chunk another holds (its owner may be stalled),
// but not while it awaits chunks of its own.
func TestSchedulerStealsLastChunkWhenIdle(t *testing.T) {
	s := newSchedulerOf(2, missingChunks)
	s.take(t.Context(), "a", 2, busyWith(0))
	s.done(0)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if sp, ok := s.take(ctx, "b", 4, busyWith(1)); ok {
		t.Fatalf("busy provider took %+v, want nothing", sp)
	}
	if sp, ok := s.take(t.Context(), "b", 4, busyWith(0)); !ok || sp != (span{1, 1}) {
		t.Fatalf("idle provider took %+v, %v; want chunk 1", sp, ok)
	}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if sp, ok := s.take(ctx, "c", 4, busyWith(0)); ok {
		t.Fatalf("took %+v: a chunk is taken over only once", sp)
	}
}

// TestSchedulerStealsFromBusiest: the provider holding the most is the one
// relieved, from the end of what it holds.
func TestSchedulerStealsFromBusiest(t *testing.T) {
	s := newSchedulerOf(10, missingChunks)
	s.take(t.Context(), "a", 6, busyWith(0)) // 0-5
	s.take(t.Context(), "b", 2, busyWith(0)) // 6-7
	s.take(t.Context(), "a", 2, busyWith(0)) // 8-9
	s.done(8)
	s.done(9) // a holds 0-5, b 6-7
	if sp, ok := s.take(t.Context(), "c", 8, busyWith(0)); !ok || sp != (span{3, 3}) {
		t.Fatalf("took %+v, %v; want half of a's 6: chunks 3-5", sp, ok)
	}
}

// TestSchedulerDuplicateWakes: a copy that arrives second (done on a chunk
// already done) also wakes a waiting provider, whose own chunks may all
// have been such copies.
func TestSchedulerDuplicateWakes(t *testing.T) {
	s := newSchedulerOf(4, missingChunks)
	s.take(t.Context(), "a", 4, busyWith(0))
	s.done(0)
	var busy atomic.Int64
	busy.Store(3)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got := takeAsync(ctx, s, "b", 1, func() int { return int(busy.Load()) })
	time.Sleep(50 * time.Millisecond)
	busy.Store(0)
	s.done(0) // a duplicate of chunk 0
	select {
	case sp := <-got:
		if sp != (span{3, 1}) {
			t.Fatalf("took %+v, want chunk 3", sp)
		}
	case <-ctx.Done():
		t.Fatal("a duplicate did not wake the waiting provider")
	}
}
