package scenario

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/parleynet/parley/app/apitype"
)

// watcher records, from a client's event stream, when each message
// arrived and when the path to each contact first became direct, in the
// client's own event times.
type watcher struct {
	done chan struct{} // closed when the event stream ended

	mu       sync.Mutex // guards the following
	arrivals map[string]time.Time
	direct   map[string]directPath // by contact
	paths    map[string]string     // current label by contact
}

type directPath struct {
	label string
	at    time.Time
}

// watch starts watching p's events from now on, until ctx ends.
func watch(ctx context.Context, p *Peer) (*watcher, error) {
	st, err := p.API().Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("status of %s: %w", p.Name, err)
	}
	events, err := p.API().Watch(ctx, st.EventSeq)
	if err != nil {
		return nil, fmt.Errorf("watch %s's events: %w", p.Name, err)
	}
	w := &watcher{
		done:     make(chan struct{}),
		arrivals: map[string]time.Time{},
		direct:   map[string]directPath{},
		paths:    map[string]string{},
	}
	for _, c := range st.Contacts {
		w.sawPath(c.Username, c.Path, time.Now())
	}
	go func() {
		defer close(w.done)
		for ev := range events {
			switch {
			case ev.Kind == apitype.EventMessage && ev.Message != nil && ev.Message.Incoming:
				w.mu.Lock()
				if _, ok := w.arrivals[ev.Message.ID]; !ok {
					w.arrivals[ev.Message.ID] = ev.Time
				}
				w.mu.Unlock()
			case ev.Kind == apitype.EventPath && ev.Contact != nil:
				w.sawPath(ev.Contact.Username, ev.Contact.Path, ev.Time)
			}
		}
	}()
	return w, nil
}

// isDirect says whether a path label is a direct connection.
func isDirect(label string) bool { return label == "direct" || label == "holepunched" }

// isRelayed says whether a path label goes through a supernode, and
// which.
func isRelayed(label string) (string, bool) { return strings.CutPrefix(label, "relayed via ") }

func (w *watcher) sawPath(contact, label string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.paths[contact] = label
	if _, ok := w.direct[contact]; !ok && isDirect(label) {
		w.direct[contact] = directPath{label, at}
	}
}

// arrival is when the message id arrived, if it did.
func (w *watcher) arrival(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.arrivals[id]
	return t, ok
}

// directSince is when the path to contact first became direct, with its
// label.
func (w *watcher) directSince(contact string) (directPath, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d, ok := w.direct[contact]
	return d, ok
}

// path is the current path label to contact.
func (w *watcher) path(contact string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.paths[contact]
}

// poll calls cond every 50 ms until it holds (true) or ctx ends (false).
func poll(ctx context.Context, cond func() bool) bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
	return true
}
