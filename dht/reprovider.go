package dht

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
)

const (
	// reprovideRetry is how soon a failed announcement is tried again (or
	// the reprovide interval, if shorter).
	reprovideRetry = time.Minute
	// reprovideTimeout bounds one announcement.
	reprovideTimeout = 2 * time.Minute
	// reprovideWorkers is how many announcements run at once.
	reprovideWorkers = 4
)

// reprovider announces each provided CID again when it is due: one
// interval after its last successful announcement, or a retry delay after
// a failed one.
type reprovider struct {
	interval time.Duration
	retry    time.Duration
	announce func(context.Context, cid.Cid) error
	wake     chan struct{}

	mu  sync.Mutex // guards the following
	due map[cid.Cid]time.Time
}

func newReprovider(interval time.Duration, announce func(context.Context, cid.Cid) error) *reprovider {
	return &reprovider{
		interval: interval,
		retry:    min(reprovideRetry, interval),
		announce: announce,
		wake:     make(chan struct{}, 1),
		due:      make(map[cid.Cid]time.Time),
	}
}

// add schedules c after an announcement that succeeded (ok) or failed.
func (r *reprovider) add(c cid.Cid, ok bool) {
	r.mu.Lock()
	r.due[c] = r.nextLocked(ok)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *reprovider) nextLocked(ok bool) time.Time {
	if ok {
		return time.Now().Add(r.interval)
	}
	return time.Now().Add(r.retry)
}

func (r *reprovider) remove(c cid.Cid) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.due[c]
	delete(r.due, c)
	return ok
}

func (r *reprovider) list() []cid.Cid {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]cid.Cid, 0, len(r.due))
	for c := range r.due {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b cid.Cid) int { return strings.Compare(a.KeyString(), b.KeyString()) })
	return out
}

// dueLocked returns the CIDs due at now and when the next one is due
// (zero if none is left).
func (r *reprovider) dueLocked(now time.Time) (due []cid.Cid, next time.Time) {
	for c, t := range r.due {
		switch {
		case !t.After(now):
			due = append(due, c)
		case next.IsZero() || t.Before(next):
			next = t
		}
	}
	return due, next
}

// run announces what is due until ctx ends.
func (r *reprovider) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		r.mu.Lock()
		due, next := r.dueLocked(time.Now())
		r.mu.Unlock()
		r.announceAll(ctx, due)
		if ctx.Err() != nil {
			return
		}
		if len(due) > 0 {
			continue // more may have come due meanwhile
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = time.Until(next)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-r.wake:
		}
	}
}

func (r *reprovider) announceAll(ctx context.Context, cids []cid.Cid) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, reprovideWorkers)
	for _, c := range cids {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			actx, cancel := context.WithTimeout(ctx, reprovideTimeout)
			err := r.announce(actx, c)
			cancel()
			if err != nil && ctx.Err() == nil {
				log.Infow("reprovide failed", "cid", c, "error", err)
			}
			r.mu.Lock()
			if _, still := r.due[c]; still { // not withdrawn meanwhile
				r.due[c] = r.nextLocked(err == nil)
			}
			r.mu.Unlock()
		}()
	}
	wg.Wait()
}
