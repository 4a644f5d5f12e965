package files

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func missingChunks(int) bool { return false }

// TestSchedulerStealsOnlyWhenIdle: in the end game a provider still busy
// with its own chunks does not take over another's (the owner may well
// deliver them first, and the copy would be sent for nothing); once it is
// idle, a chunk verified wakes it and it takes over from the end.
func TestSchedulerStealsOnlyWhenIdle(t *testing.T) {
	s := newSchedulerOf(8, missingChunks)
	always := func() bool { return true }
	if sp, ok := s.take(t.Context(), "slow", 8, always); !ok || sp != (span{0, 8}) {
		t.Fatalf("slow took %+v, %v; want all 8 chunks", sp, ok)
	}

	var idle atomic.Bool
	type taken struct {
		sp span
		ok bool
	}
	got := make(chan taken, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() {
		sp, ok := s.take(ctx, "fast", 2, idle.Load)
		got <- taken{sp, ok}
	}()
	s.done(0) // the end game goes on; fast is still busy
	select {
	case g := <-got:
		t.Fatalf("busy provider took %+v, %v; want it to wait", g.sp, g.ok)
	case <-time.After(200 * time.Millisecond):
	}
	for i := 1; i < 8; i++ {
		if st := s.state[i]; st != s.owners["slow"] {
			t.Fatalf("chunk %d: state %d, want still slow's", i, st)
		}
	}

	idle.Store(true)
	s.done(1) // a chunk verified: fast looks again
	select {
	case g := <-got:
		if !g.ok || g.sp != (span{6, 2}) {
			t.Fatalf("idle provider took %+v, %v; want chunks 6 and 7", g.sp, g.ok)
		}
	case <-ctx.Done():
		t.Fatal("the idle provider was not woken by a verified chunk")
	}
}

// TestSchedulerDuplicateWakes: a copy that arrives second (done on a chunk
// already done) also wakes a waiting provider, whose own chunks may all
// have been such copies.
func TestSchedulerDuplicateWakes(t *testing.T) {
	s := newSchedulerOf(4, missingChunks)
	always := func() bool { return true }
	s.take(t.Context(), "a", 4, always)
	s.done(0)
	var idle atomic.Bool
	got := make(chan span, 1)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	go func() {
		sp, _ := s.take(ctx, "b", 1, idle.Load)
		got <- sp
	}()
	time.Sleep(50 * time.Millisecond)
	idle.Store(true)
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
