package ratelimit

import (
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is an arbitrary start time; tests pass times relative to it.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestAllow(t *testing.T) {
	type step struct {
		key       string
		at        time.Duration // since t0
		wantOK    bool
		wantRetry time.Duration
	}
	const s = time.Second
	tests := []struct {
		name  string
		rate  Rate
		steps []step
	}{
		{
			name: "burst then refusal",
			rate: Rate{Burst: 3, Every: s},
			steps: []step{
				{"a", 0, true, 0},
				{"a", 0, true, 0},
				{"a", 0, true, 0},
				{"a", 0, false, s},
				{"a", 0, false, s}, // a refusal takes nothing
				{"a", 400 * time.Millisecond, false, 600 * time.Millisecond},
				{"a", 999 * time.Millisecond, false, time.Millisecond},
			},
		},
		{
			name: "refill after every",
			rate: Rate{Burst: 2, Every: 10 * s},
			steps: []step{
				{"a", 0, true, 0},
				{"a", 0, true, 0},
				{"a", 0, false, 10 * s},
				{"a", 10 * s, true, 0},
				{"a", 10 * s, false, 10 * s},
				{"a", 15 * s, false, 5 * s},
				{"a", 20 * s, true, 0},
				// A long pause refills to Burst, never beyond.
				{"a", 1000 * s, true, 0},
				{"a", 1000 * s, true, 0},
				{"a", 1000 * s, false, 10 * s},
			},
		},
		{
			name: "steady rate at the limit",
			rate: Rate{Burst: 1, Every: s},
			steps: []step{
				{"a", 0, true, 0},
				{"a", 1 * s, true, 0},
				{"a", 2 * s, true, 0},
				{"a", 2500 * time.Millisecond, false, 500 * time.Millisecond},
				{"a", 3 * s, true, 0},
			},
		},
		{
			name: "independent keys",
			rate: Rate{Burst: 1, Every: time.Minute},
			steps: []step{
				{"a", 0, true, 0},
				{"a", 0, false, time.Minute},
				{"b", 0, true, 0},
				{"b", 0, false, time.Minute},
				{"", 0, true, 0},
				{"a", 30 * s, false, 30 * s},
				{"c", 30 * s, true, 0},
			},
		},
		{
			name: "times slightly out of order",
			rate: Rate{Burst: 2, Every: s},
			steps: []step{
				{"a", 10 * time.Millisecond, true, 0},
				// Seen from 10ms earlier, the bucket has 10ms less refill.
				{"a", 0, false, 10 * time.Millisecond},
				{"a", 10 * time.Millisecond, true, 0},
				{"a", 5 * time.Millisecond, false, 1005 * time.Millisecond},
			},
		},
		{
			name: "zero rate is unlimited",
			rate: Rate{},
			steps: []step{
				{"a", 0, true, 0},
				{"a", 0, true, 0},
				{"a", 0, true, 0},
				{"a", 0, true, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.rate)
			for i, st := range tt.steps {
				ok, retry := l.Allow(st.key, t0.Add(st.at))
				if ok != st.wantOK || retry != st.wantRetry {
					t.Fatalf("step %d: Allow(%q, t0+%s) = %v, %s; want %v, %s",
						i, st.key, st.at, ok, retry, st.wantOK, st.wantRetry)
				}
			}
		})
	}
}

func TestZeroRateTracksNothing(t *testing.T) {
	for _, r := range []Rate{{}, NoLimit} {
		l := New(r)
		for i := range 1000 {
			if ok, _ := l.Allow(fmt.Sprint(i), t0); !ok {
				t.Fatalf("Allow refused key %d under %+v", i, r)
			}
		}
		if got := l.Len(); got != 0 {
			t.Errorf("%+v: Len() = %d, want 0", r, got)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		rate   Rate
		wantOK bool
	}{
		{"zero", Rate{}, true},
		{"no limit", NoLimit, true},
		{"normal", Rate{Burst: 5, Every: time.Second}, true},
		{"one per nanosecond", Rate{Burst: 1, Every: 1}, true},
		{"largest", Rate{Burst: 1, Every: math.MaxInt64}, true},
		{"no burst", Rate{Every: time.Second}, false},
		{"no interval", Rate{Burst: 5}, false},
		{"negative burst", Rate{Burst: -1, Every: time.Second}, false},
		{"negative interval", Rate{Burst: 1, Every: -time.Second}, false},
		{"overflow", Rate{Burst: math.MaxInt32, Every: 1000 * time.Hour}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.rate.Validate()
			if (err == nil) != tt.wantOK {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.wantOK)
			}
			defer func() {
				if p := recover(); (p == nil) != tt.wantOK {
					t.Errorf("New panicked with %v, want panic=%v", p, !tt.wantOK)
				}
			}()
			New(tt.rate)
		})
	}
}

// probeKeys returns one key per shard of l.
func probeKeys(l *Limiter) []string {
	keys := make([]string, numShards)
	found := 0
	for i := 0; found < numShards; i++ {
		k := fmt.Sprintf("probe-%d", i)
		if j := l.shardIndex(k); keys[j] == "" {
			keys[j] = k
			found++
		}
	}
	return keys
}

func (l *Limiter) shardIndex(key string) int {
	return shardOf(maphash.String(l.seed, key))
}

func TestSweepDropsFullBuckets(t *testing.T) {
	l := New(Rate{Burst: 3, Every: time.Second}) // refills completely in 3s
	probes := probeKeys(l)
	for i := range 1000 {
		l.Allow(fmt.Sprint("k", i), t0)
	}
	if got := l.Len(); got != 1000 {
		t.Fatalf("after 1000 keys: Len() = %d, want 1000", got)
	}
	// Empty k1 at t0+9s, so that it is not full at t0+10s.
	for range 3 {
		if ok, _ := l.Allow("k1", t0.Add(9*time.Second)); !ok {
			t.Fatalf("k1 refused at t0+9s")
		}
	}
	// By t0+10s a full refill time has passed since any shard was swept:
	// one call per shard sweeps every bucket that is full.
	at := t0.Add(10 * time.Second)
	for _, p := range probes {
		if ok, _ := l.Allow(p, at); !ok {
			t.Fatalf("Allow(%q) refused", p)
		}
	}
	if got, want := l.Len(), numShards+1; got != want {
		t.Errorf("after refill: Len() = %d, want %d (the probes and k1)", got, want)
	}
	// k1 kept its state: one token has come back since t0+9s.
	for i, want := range []bool{true, false} {
		if ok, _ := l.Allow("k1", at); ok != want {
			t.Errorf("k1 call %d at t0+10s: ok = %v, want %v", i, ok, want)
		}
	}
}

func TestSweepByCallCount(t *testing.T) {
	// Each key takes one token of ten, so its bucket is full again after
	// 1s, but a shard is not due a timed sweep until 10s after the last.
	// Until then it is swept once it has seen as many calls as it holds
	// keys.
	l := New(Rate{Burst: 10, Every: time.Second})
	for i := range 1000 {
		l.Allow(fmt.Sprint("k", i), t0)
	}
	at := t0.Add(5 * time.Second)
	probes := probeKeys(l)
	for range 1000 {
		for _, p := range probes {
			l.Allow(p, at)
		}
	}
	if got, want := l.Len(), numShards; got != want {
		t.Errorf("Len() = %d, want %d (the probes)", got, want)
	}
}

func TestFullBucketBeforeSweep(t *testing.T) {
	// A bucket that is full but not yet swept holds Burst tokens, no more.
	l := New(Rate{Burst: 2, Every: time.Second})
	l.Allow("a", t0)
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.ops = math.MinInt / 2         // no sweep by call count
		s.lastSweep = math.MaxInt64 / 2 // nor by time
		s.mu.Unlock()
	}
	at := t0.Add(time.Hour)
	for i, want := range []bool{true, true, false} {
		if ok, _ := l.Allow("a", at); ok != want {
			t.Errorf("call %d an hour later: ok = %v, want %v", i, ok, want)
		}
	}
}

func TestMaxKeys(t *testing.T) {
	r := Rate{Burst: 2, Every: time.Second}
	const perShard = 4
	l := New(r, MaxKeys(perShard*numShards))

	var allowed []string
	for i := range 10000 {
		k := fmt.Sprint("k", i)
		ok, retry := l.Allow(k, t0)
		if ok {
			allowed = append(allowed, k)
			continue
		}
		if retry != r.Every {
			t.Fatalf("new key refused at cap: retryAfter = %s, want %s", retry, r.Every)
		}
	}
	if got, want := len(allowed), perShard*numShards; got != want {
		t.Fatalf("allowed %d new keys, want %d", got, want)
	}
	if got, want := l.Len(), perShard*numShards; got != want {
		t.Fatalf("Len() = %d, want %d", got, want)
	}
	// Keys already tracked keep their own limit at the cap: no eviction.
	for _, k := range allowed {
		if ok, _ := l.Allow(k, t0); !ok {
			t.Fatalf("tracked key %q refused its second token", k)
		}
		if ok, retry := l.Allow(k, t0); ok || retry != time.Second {
			t.Fatalf("tracked key %q: third call = %v, %s; want false, 1s", k, ok, retry)
		}
	}
	// Once the buckets have refilled they are dropped and new keys fit.
	later := t0.Add(2 * time.Second)
	if ok, _ := l.Allow("newcomer", later); !ok {
		t.Fatalf("new key refused after every bucket refilled")
	}
}

func TestMaxKeysRounding(t *testing.T) {
	tests := []struct {
		n, wantPerShard int
	}{
		{0, DefaultMaxKeys / numShards},
		{-5, DefaultMaxKeys / numShards},
		{1, 1},
		{numShards, 1},
		{numShards + 1, 2},
	}
	for _, tt := range tests {
		l := New(Rate{Burst: 1, Every: time.Second}, MaxKeys(tt.n))
		if l.maxPerShard != tt.wantPerShard {
			t.Errorf("MaxKeys(%d): %d per shard, want %d", tt.n, l.maxPerShard, tt.wantPerShard)
		}
	}
}

func TestShrinkAfterFlood(t *testing.T) {
	l := New(Rate{Burst: 1, Every: time.Second})
	for i := range 100 * shrinkMin {
		l.Allow(fmt.Sprint("flood", i), t0)
	}
	later := t0.Add(time.Second)
	for _, p := range probeKeys(l) {
		l.Allow(p, later)
	}
	for i := range l.shards {
		s := &l.shards[i]
		if s.high > 1 {
			t.Errorf("shard %d: map not reallocated after flood: high = %d", i, s.high)
		}
	}
}

func TestConcurrent(t *testing.T) {
	const (
		burst      = 50
		keys       = 20
		goroutines = 16
		calls      = 500
	)
	l := New(Rate{Burst: burst, Every: time.Hour})
	var allowed [keys]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				k := (g + i) % keys
				// Times vary by a few ns, as with concurrent time.Now().
				if ok, _ := l.Allow(fmt.Sprint("key", k), t0.Add(time.Duration(i%7))); ok {
					allowed[k].Add(1)
				}
				if i%100 == 0 {
					l.Len()
				}
			}
		})
	}
	wg.Wait()
	for k := range allowed {
		if got := allowed[k].Load(); got != burst {
			t.Errorf("key%d: %d calls allowed, want %d", k, got, burst)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	const nkeys = 1 << 16
	keys := make([]string, nkeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("203.0.113.%d/%d", i%256, i)
	}
	l := New(Rate{Burst: 10, Every: 100 * time.Millisecond})
	var next atomic.Uint64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1) * 7919
		now := time.Now()
		for pb.Next() {
			i++
			l.Allow(keys[i%nkeys], now.Add(time.Duration(i)*time.Microsecond))
		}
	})
}
