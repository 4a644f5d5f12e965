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
// other providers still own unfinished chunks (the end game), and idle
// reports that p is about to run out of work, p takes over some of them
// from the end, each chunk at most once, so that an idle fast provider
// finishes what a slow one holds: whichever copy arrives first is kept.
// A provider still busy with its own chunks does not take over others':
// their owners may well deliver them first, and the copy would be sent
// for nothing. With nothing to take it waits; every verified chunk in the
// end game wakes it to ask idle again. idle is called with the
// scheduler's lock held. It returns false when every chunk is done or ctx
// ends.
func (s *scheduler) take(ctx context.Context, p peer.ID, n int, idle func() bool) (span, bool) {
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
		if idle() {
			if sp, ok := s.stealLocked(p, n); ok {
				s.mu.Unlock()
				return sp, true
			}
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

// stealLocked takes over up to n consecutive chunks, from the end, that
// another provider owns and nobody took over yet.
func (s *scheduler) stealLocked(p peer.ID, n int) (span, bool) {
	o := s.ownerLocked(p)
	stealable := func(i int) bool { return s.state[i] >= 0 && s.state[i] != o && !s.stolen[i] }
	for end := len(s.state) - 1; end >= 0; end-- {
		if !stealable(end) {
			continue
		}
		start := end
		for start > 0 && end-start+1 < n && stealable(start-1) {
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
	// In the end game each chunk received may make its provider idle:
	// waiters look again.
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
