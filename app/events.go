package app

import (
	"context"
	"sync"
	"time"

	"github.com/parleynet/parley/app/apitype"
)

// keptEvents is how many recent events the engine keeps for watchers that
// fall behind or reconnect (the API's Last-Event-ID).
const keptEvents = 4096

// eventLog numbers the engine's events and keeps the most recent ones, so
// that a watcher reads them at its own pace from a cursor and one that
// reconnects misses nothing (syncthing's /rest/events?since=N). Publishing
// never blocks: a watcher that falls more than keptEvents behind is told
// so with an EventGap.
type eventLog struct {
	done chan struct{} // closed by close: every watcher stops

	mu     sync.Mutex      // guards the following
	seq    uint64          // the last event's number
	kept   []apitype.Event // a ring: event s is at kept[(s-1)%keptEvents]
	notify chan struct{}   // closed and replaced by each publish
}

func newEventLog() *eventLog {
	return &eventLog{done: make(chan struct{}), notify: make(chan struct{})}
}

// publish numbers ev, keeps it and wakes the watchers.
func (l *eventLog) publish(ev apitype.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	ev.Seq = l.seq
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	if len(l.kept) < keptEvents {
		l.kept = append(l.kept, ev)
	} else {
		l.kept[(ev.Seq-1)%keptEvents] = ev
	}
	close(l.notify)
	l.notify = make(chan struct{})
}

// last is the number of the last event published.
func (l *eventLog) last() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq
}

// after returns the kept events numbered after cursor, whether some were
// lost to the caller (cursor is older than what is kept, or from another
// run: newer than the last event), the cursor to go on from, and a channel
// closed by the next publish.
func (l *eventLog) after(cursor uint64) (evs []apitype.Event, gap bool, next uint64, notify <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	oldest := l.seq - uint64(len(l.kept)) // the kept events are oldest+1 … seq
	switch {
	case cursor > l.seq:
		return nil, true, l.seq, l.notify
	case cursor < oldest:
		gap, cursor = true, oldest
	}
	for s := cursor + 1; s <= l.seq; s++ {
		evs = append(evs, l.kept[(s-1)%keptEvents])
	}
	return evs, gap, l.seq, l.notify
}

// watch streams the events after since until ctx ends or the log closes;
// the channel is closed then.
func (l *eventLog) watch(ctx context.Context, since uint64) <-chan apitype.Event {
	out := make(chan apitype.Event, 16)
	go func() {
		defer close(out)
		send := func(ev apitype.Event) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
			case <-l.done:
			}
			return false
		}
		cursor := since
		for {
			evs, gap, next, notify := l.after(cursor)
			if gap && !send(apitype.Event{Kind: apitype.EventGap, Seq: next - uint64(len(evs)), Time: time.Now()}) {
				return
			}
			for _, ev := range evs {
				if !send(ev) {
					return
				}
			}
			cursor = next
			select {
			case <-notify:
			case <-ctx.Done():
				return
			case <-l.done:
				return
			}
		}
	}()
	return out
}

func (l *eventLog) close() { close(l.done) }

// Watch streams the engine's events numbered after since (see
// apitype.Client.Watch). The channel is closed when ctx ends or the engine
// closes.
func (e *Engine) Watch(ctx context.Context, since uint64) (<-chan apitype.Event, error) {
	return e.events.watch(ctx, since), nil
}

// emitAll emits events in order.
func (e *Engine) emitAll(evs []apitype.Event) {
	for _, ev := range evs {
		e.emit(ev)
	}
}

func (e *Engine) emit(ev apitype.Event) { e.events.publish(ev) }
