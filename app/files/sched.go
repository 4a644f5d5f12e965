package files

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Chunk states in the scheduler besides an owner's number (>= 0).
const (
	chunkQueued = -1
	chunkDone   = -2
)

// scheduler is the shared queue of missing chunks. Providers pull spans
// from it; a provider that is dropped gives its unfinished chunks back.
// Safe for concurrent use.
type scheduler struct {
	mu      sync.Mutex // guards the following
	state   []int32    // per chunk: chunkQueued, chunkDone, or the owner's number
	stolen  []bool     // per chunk: already taken over once in the end game
	owners  map[peer.ID]int32
	left    int           // chunks not done
	hint    int           // no queued chunk below this index
	changed chan struct{} // closed and replaced when chunks are queued or all are done
	allDone chan struct{} // closed when every chunk is done
}

func newScheduler(p *Partial) *scheduler {
	return newSchedulerOf(p.m.NumChunks(), p.Has)
}

// newSchedulerOf queues the chunks among n that have reports missing.
func newSchedulerOf(n int, has func(i int) bool) *scheduler {
	s := &scheduler{
		state:   make([]int32, n),
		stolen:  make([]bool, n),
		owners:  make(map[peer.ID]int32),
		changed: make(chan struct{}),
		allDone: make(chan struct{}),
	}
	for i := range s.state {
		if has(i) {
			s.state[i] = chunkDone
		} else {
			s.state[i] = chunkQueued
			s.left++
		}
	}
	if s.left == 0 {
		close(s.allDone)
	}
	return s
}

func (s *scheduler) complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.left == 0
}

func (s *scheduler) ownerLocked(p peer.ID) int32 {
	o, ok := s.owners[p]
	if !ok {
		o = int32(len(s.owners))
		s.owners[p] = o
	}
	return o
}

// take gives p up to n consecutive queued chunks. When none is queued but
// other providers still own unfinished chunks (the end game), p may take
// over some of them (stealLocked), each chunk at most once, so that an
// idle fast provider finishes what a slow one holds: whichever copy
// arrives first is kept. busy reports how many chunks p has asked for and
// not yet received; it is called with the scheduler's lock held. With
// nothing to take it waits: a chunk verified in the end game wakes it to
// look again. It returns false when every chunk is done or ctx ends.
func (s *scheduler) take(ctx context.Context, p peer.ID, n int, busy func() int) (span, bool) {
	for {
		s.mu.Lock()
		if s.left == 0 {
			s.mu.Unlock()
			return span{}, false
		}
		for i := s.hint; i < len(s.state); i++ {
			if s.state[i] != chunkQueued {
				continue
			}
			o := s.ownerLocked(p)
			sp := span{start: i}
			for ; i < len(s.state) && sp.count < n && s.state[i] == chunkQueued; i++ {
				s.state[i] = o
				sp.count++
			}
			s.hint = i
			s.mu.Unlock()
			return sp, true
		}
		s.hint = len(s.state)
		if sp, ok := s.stealLocked(p, n, busy()); ok {
			s.mu.Unlock()
			return sp, true
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return span{}, false
		}
	}
}

// stealLocked takes over, for p with busy chunks of its own still to
// come, up to n consecutive chunks from the end of what the provider with
// the most unfinished chunks holds (the chunks it will reach last) and
// nobody took over yet. Assuming both send at the same rate, a copy is
// worth asking for only if its owner will not reach it first: p takes
// half of what the owner holds beyond p's own busy chunks, and one chunk
// when p has nothing else to do (the owner may be stalled), else none.
func (s *scheduler) stealLocked(p peer.ID, n, busy int) (span, bool) {
	o := s.ownerLocked(p)
	victim, held := s.busiestLocked(o)
	if victim < 0 {
		return span{}, false
	}
	k := min(n, (held-busy)/2)
	if k < 1 {
		if busy > 0 {
			return span{}, false
		}
		k = 1
	}
	stealable := func(i int) bool { return s.state[i] == victim && !s.stolen[i] }
	for end := len(s.state) - 1; end >= 0; end-- {
		if !stealable(end) {
			continue
		}
		start := end
		for start > 0 && end-start+1 < k && stealable(start-1) {
			start--
		}
		for i := start; i <= end; i++ {
			s.state[i] = o
			s.stolen[i] = true
		}
		return span{start: start, count: end - start + 1}, true
	}
	return span{}, false
}

// busiestLocked returns the provider other than o holding the most
// unfinished chunks, at least one of them not yet taken over, and how
// many it holds; -1 when there is none.
func (s *scheduler) busiestLocked(o int32) (victim int32, held int) {
	holds := make(map[int32]int, len(s.owners))
	stealable := make(map[int32]bool, len(s.owners))
	for i, st := range s.state {
		if st >= 0 && st != o {
			holds[st]++
			stealable[st] = stealable[st] || !s.stolen[i]
		}
	}
	victim = -1
	for v, h := range holds {
		if stealable[v] && (h > held || h == held && v < victim) {
			victim, held = v, h
		}
	}
	return victim, held
}

// done marks chunk i verified (again, for a copy that arrived second).
func (s *scheduler) done(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state[i] != chunkDone {
		s.state[i] = chunkDone
		s.left--
		if s.left == 0 {
			close(s.allDone)
		}
	}
	// In the end game each chunk received changes what a waiting provider
	// may take over: waiters look again.
	if s.left == 0 || s.hint == len(s.state) {
		s.broadcastLocked()
	}
}

// release queues again every chunk p took and did not finish.
func (s *scheduler) release(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.owners[p]
	if !ok {
		return
	}
	for i, st := range s.state {
		if st == o {
			s.state[i] = chunkQueued
			s.hint = min(s.hint, i)
		}
	}
	s.broadcastLocked()
}

func (s *scheduler) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}
