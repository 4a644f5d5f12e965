// Package ratelimit is a keyed token-bucket limiter for abuse limits
// (logins, password attempts, contact requests), keyed per account and per
// source address.
//
// Each key has a bucket of Rate.Burst tokens that refills at one token per
// Rate.Every. A bucket is stored as a single "theoretical arrival time" (the
// GCRA form of a token bucket): the instant at which it will be full again.
// A bucket that is full carries no information, so it is dropped; memory is
// proportional to the keys that were used in the last Burst×Every, and is
// capped (see MaxKeys).
//
// Keys are hashed to 64 bits with a random per-Limiter seed and only the
// hash is kept, so long keys cost nothing and an attacker cannot choose
// keys that collide or that land in one shard. Two keys whose hashes
// collide (probability about n²/2⁶⁵ for n live keys) share a bucket, which
// can only make the limiter stricter.
package ratelimit

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of keys a Limiter tracks unless MaxKeys says
// otherwise: about 40 MB of buckets at most.
const DefaultMaxKeys = 1 << 20

// shrinkMin is the smallest shard map worth reallocating after a sweep.
const shrinkMin = 1024

// numShards is the number of independently locked parts of a Limiter.
// Must be a power of two.
const numShards = 16

// Rate is Burst events at once, refilled at one event per Every. The zero
// Rate and NoLimit mean unlimited.
type Rate struct {
	Burst int
	Every time.Duration
}

// NoLimit is the Rate that limits nothing. Configuration structs, where a
// zero Rate takes the default, spell "no limit" with it, as they spell it
// NoLimit (a negative value) for counts and durations.
var NoLimit = Rate{Burst: -1}

// Unlimited reports whether r limits nothing: the zero Rate or NoLimit.
func (r Rate) Unlimited() bool { return r == Rate{} || r == NoLimit }

// Validate reports whether r can be passed to New: the zero Rate,
// NoLimit, or a positive Burst and Every whose product (the time a bucket
// takes to refill completely) fits in a time.Duration.
func (r Rate) Validate() error {
	switch {
	case r.Unlimited():
		return nil
	case r.Burst <= 0:
		return fmt.Errorf("rate limit: burst must be positive, not %d", r.Burst)
	case r.Every <= 0:
		return fmt.Errorf("rate limit: interval must be positive, not %s", r.Every)
	case int64(r.Every) > math.MaxInt64/int64(r.Burst):
		return errors.New("rate limit: burst × interval overflows")
	}
	return nil
}

// Option configures a Limiter.
type Option func(*Limiter)

// MaxKeys caps the number of keys a Limiter tracks at about n (the cap is
// split evenly over the Limiter's shards, rounding up). The default is
// DefaultMaxKeys; n <= 0 means the default.
//
// When a shard is full, Allow refuses keys it is not already tracking (it
// fails closed) until buckets refill and are dropped. It never evicts a
// bucket to make room: eviction would let anyone who can cycle through
// many keys (source addresses, account names) reset the bucket of the key
// they are attacking, which defeats a password-guessing limit. The cost of
// failing closed is that such an attacker can deny service to keys not yet
// tracked, which is why keys should be coarse (an IPv6 /64, not an address)
// and the cap generous.
func MaxKeys(n int) Option {
	return func(l *Limiter) {
		if n <= 0 {
			n = DefaultMaxKeys
		}
		l.maxPerShard = (n + numShards - 1) / numShards
	}
}

// Limiter is a set of token buckets keyed by string. It is safe for
// concurrent use: keys are spread over independently locked shards.
type Limiter struct {
	// Set once by New, never mutated.
	unlimited   bool
	every       int64 // Rate.Every in ns
	fill        int64 // Rate.Burst × Rate.Every in ns: an empty bucket's refill time
	maxPerShard int
	epoch       time.Time // origin of the ns offsets; monotonic reading, so wall clock steps don't matter
	seed        maphash.Seed

	shards [numShards]shard
}

type shard struct {
	mu sync.Mutex // guards the following
	// tat holds, per key hash, the bucket's theoretical arrival time: the
	// offset from Limiter.epoch, in ns, at which the bucket is full again.
	// The bucket holds (fill - (tat - now)) / every tokens; entries with
	// tat <= now are full and get dropped.
	tat       map[uint64]int64
	ops       int   // Allow calls since the last sweep
	lastSweep int64 // offset of the last sweep; math.MinInt64 before the first
	high      int   // most entries tat has held since it was allocated

	_ [64]byte // keep shards' locks on separate cache lines
}

// New returns a limiter enforcing r on each key. It panics if r is not
// valid (see Rate.Validate); a zero Rate gives a limiter that allows
// everything and tracks nothing.
func New(r Rate, opts ...Option) *Limiter {
	if err := r.Validate(); err != nil {
		panic(err)
	}
	l := &Limiter{
		unlimited: r.Unlimited(),
		every:     int64(r.Every),
		fill:      int64(r.Every) * int64(r.Burst),
		epoch:     time.Now(),
		seed:      maphash.MakeSeed(),
	}
	MaxKeys(DefaultMaxKeys)(l)
	for _, o := range opts {
		o(l)
	}
	for i := range l.shards {
		l.shards[i].tat = make(map[uint64]int64)
		l.shards[i].lastSweep = math.MinInt64
	}
	return l
}

// Allow takes one token for key at time now. When none is left it returns
// false and how long until one is. A refused call takes nothing.
//
// If the Limiter is tracking its maximum number of keys and key is not one
// of them, Allow refuses with retryAfter = Rate.Every (see MaxKeys).
//
// Callers should pass time.Now(): its monotonic reading makes the limiter
// immune to wall clock steps. Calls for one key with slightly out-of-order
// times (from concurrent callers) are safe: a call dated earlier than the
// latest one finds up to that difference less refilled, never more.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l.unlimited {
		return true, 0
	}
	h := maphash.String(l.seed, key)
	s := &l.shards[shardOf(h)]
	t := int64(now.Sub(l.epoch)) // saturates, never wraps

	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops++
	if s.ops >= len(s.tat) || l.sweepDueLocked(s, t) {
		l.sweepLocked(s, t)
	}
	tat, tracked := s.tat[h]
	if !tracked {
		if len(s.tat) >= l.maxPerShard {
			return false, time.Duration(l.every)
		}
		tat = t
	}
	tat = max(tat, t) + l.every
	if over := tat - t - l.fill; over > 0 {
		return false, time.Duration(over)
	}
	s.tat[h] = tat
	s.high = max(s.high, len(s.tat))
	return true, 0
}

func shardOf(h uint64) int { return int(h % numShards) }

// sweepDueLocked reports whether a full refill time has passed since s
// was last swept. Every bucket alive then has been used since, so a sweep
// visits at most one bucket per Allow call since the sweep before last:
// together with the ops trigger in Allow, sweeping is amortised O(1).
func (l *Limiter) sweepDueLocked(s *shard, t int64) bool {
	// Unsigned, so that the difference cannot overflow.
	return t >= s.lastSweep && uint64(t)-uint64(s.lastSweep) >= uint64(l.fill)
}

// sweepLocked drops the buckets of s that are full at t.
func (l *Limiter) sweepLocked(s *shard, t int64) {
	for h, tat := range s.tat {
		if tat <= t {
			delete(s.tat, h)
		}
	}
	s.ops = 0
	s.lastSweep = max(s.lastSweep, t)
	// Go maps never give memory back, so after a flood has passed copy
	// the survivors into a map sized for them. The copy costs no more
	// than the sweep did.
	if s.high >= shrinkMin && len(s.tat) < s.high/4 {
		m := make(map[uint64]int64, len(s.tat))
		for h, tat := range s.tat {
			m[h] = tat
		}
		s.tat = m
		s.high = len(m)
	}
}

// Len is the number of keys currently tracked (for tests and metrics). It
// includes buckets that have refilled but have not been swept yet.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}
