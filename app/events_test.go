package app

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/parleynet/parley/app/apitype"
)

// logWith is an event log with n events published.
func logWith(n int) *eventLog {
	l := newEventLog()
	for range n {
		l.publish(apitype.Event{Kind: apitype.EventPresence})
	}
	return l
}

func TestEventLogAfter(t *testing.T) {
	const k = keptEvents
	tests := []struct {
		name      string
		published int
		cursor    uint64
		wantFirst uint64 // Seq of the first event returned; 0 for none
		wantCount int
		wantGap   bool
	}{
		{"empty", 0, 0, 0, 0, false},
		{"from the start", 10, 0, 1, 10, false},
		{"from the middle", 10, 4, 5, 6, false},
		{"up to date", 10, 10, 0, 0, false},
		{"from the future", 10, 11, 0, 0, true},
		{"from the future, empty log", 0, 7, 0, 0, true},
		{"all kept, from the oldest", k, 0, 1, k, false},
		{"oldest kept is the cursor", k + 10, 10, 11, k, false},
		{"older than kept", k + 10, 9, 11, k, true},
		{"from the start, some dropped", k + 10, 0, 11, k, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := logWith(tt.published)
			evs, gap, next, _ := l.after(tt.cursor)
			if gap != tt.wantGap {
				t.Errorf("gap: got %v, want %v", gap, tt.wantGap)
			}
			if len(evs) != tt.wantCount {
				t.Fatalf("got %d events, want %d", len(evs), tt.wantCount)
			}
			if len(evs) > 0 && evs[0].Seq != tt.wantFirst {
				t.Errorf("first event: got %d, want %d", evs[0].Seq, tt.wantFirst)
			}
			for i := 1; i < len(evs); i++ {
				if evs[i].Seq != evs[i-1].Seq+1 {
					t.Fatalf("events %d then %d, want consecutive", evs[i-1].Seq, evs[i].Seq)
				}
			}
			if next != uint64(tt.published) {
				t.Errorf("next cursor: got %d, want %d (the last event)", next, tt.published)
			}
		})
	}
}

// checkStream reads a watcher's events up to last and checks that they
// are numbered from since+1 without repeats, and that events are skipped
// only right after a gap event, which names the event they go on after.
// It returns the number of gap events.
func checkStream(t *testing.T, evs <-chan apitype.Event, since, last uint64) (gaps int) {
	t.Helper()
	prev := since
	for prev < last {
		ev, ok := <-evs
		if !ok {
			t.Fatalf("the stream closed after %d, want events up to %d", prev, last)
		}
		if ev.Kind == apitype.EventGap {
			if ev.Seq <= prev {
				t.Fatalf("gap event at %d after event %d: a gap skips forward", ev.Seq, prev)
			}
			gaps++
			prev = ev.Seq
			continue
		}
		if ev.Seq != prev+1 {
			t.Fatalf("event %d after %d, want %d (lost or repeated, and no gap event said so)", ev.Seq, prev, prev+1)
		}
		if ev.Time.IsZero() {
			t.Errorf("event %d has no time", ev.Seq)
		}
		prev = ev.Seq
	}
	return gaps
}

func TestEventLogWatch(t *testing.T) {
	t.Run("follows publishes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := logWith(3)
			evs := l.watch(t.Context(), 3)
			synctest.Wait()
			select {
			case ev := <-evs:
				t.Fatalf("got event %d before any was published after the cursor", ev.Seq)
			default:
			}
			for range 5 {
				l.publish(apitype.Event{Kind: apitype.EventMessage})
			}
			if gaps := checkStream(t, evs, 3, 8); gaps != 0 {
				t.Errorf("got %d gap events, want none", gaps)
			}
		})
	})

	t.Run("a slow watcher does not block publishers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := newEventLog()
			evs := l.watch(t.Context(), 0) // and not read for a while
			total := 2*keptEvents + 10
			for range total {
				l.publish(apitype.Event{Kind: apitype.EventMessage})
			}
			synctest.Wait()
			if gaps := checkStream(t, evs, 0, uint64(total)); gaps != 1 {
				t.Errorf("got %d gap events, want 1 (the watcher fell more than %d events behind)", gaps, keptEvents)
			}
		})
	})

	t.Run("cursor from the future", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := logWith(5)
			evs := l.watch(t.Context(), 100)
			if ev := <-evs; ev.Kind != apitype.EventGap || ev.Seq != 5 {
				t.Fatalf("first event: got %s %d, want a gap at 5 (the last event)", ev.Kind, ev.Seq)
			}
			l.publish(apitype.Event{Kind: apitype.EventMessage})
			if ev := <-evs; ev.Seq != 6 {
				t.Errorf("after the gap: got event %d, want 6", ev.Seq)
			}
		})
	})

	t.Run("cursor older than kept", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := logWith(keptEvents + 7)
			evs := l.watch(t.Context(), 3)
			if ev := <-evs; ev.Kind != apitype.EventGap || ev.Seq != 7 {
				t.Fatalf("first event: got %s %d, want a gap at 7 (the events after it are kept)", ev.Kind, ev.Seq)
			}
			if ev := <-evs; ev.Kind == apitype.EventGap || ev.Seq != 8 {
				t.Errorf("after the gap: got %s %d, want event 8", ev.Kind, ev.Seq)
			}
		})
	})

	t.Run("ends with ctx or close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := logWith(2)
			ctx, cancel := context.WithCancel(t.Context())
			byCtx := l.watch(ctx, 2)
			byClose := l.watch(t.Context(), 2)
			full := l.watch(t.Context(), 0) // never read, its buffer full
			for range 20 {
				l.publish(apitype.Event{Kind: apitype.EventMessage})
			}
			synctest.Wait()
			cancel()
			drain := func(ch <-chan apitype.Event) {
				for range ch {
				}
			}
			drain(byCtx) // returns once the channel is closed
			l.close()
			drain(byClose)
			drain(full)
		})
	})
}

// BenchmarkEventLogPublish publishes into a full log, the steady state of
// a long-running engine.
func BenchmarkEventLogPublish(b *testing.B) {
	l := logWith(keptEvents)
	ev := apitype.Event{Kind: apitype.EventMessage, Message: &apitype.Message{Body: "hi"}}
	for b.Loop() {
		l.publish(ev)
	}
}
