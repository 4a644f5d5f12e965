// Package bus hands a store's events to its subscribers, in one order for
// all of them. The SQLite store publishes into it directly; the PostgreSQL
// store from its LISTEN connection.
package bus

import (
	"context"
	"errors"
	"sync"

	"github.com/parleynet/parley/rendezvous/server"
)

// ErrClosed is returned by Deliver and Subscribe after Close.
var ErrClosed = errors.New("rendezvous store is closed")

// subscriberBuffer is how many events a subscriber may fall behind before
// deliveries wait for it.
const subscriberBuffer = 64

// Bus hands events to the subscribers of one store, every subscriber
// seeing every event in the same order.
type Bus struct {
	closing chan struct{}  // closed by close: wakes deliveries blocked on a subscriber
	wg      sync.WaitGroup // the context.AfterFunc callbacks of subscribers

	// Lock order: sendMu before mu.

	// sendMu serializes deliveries (so all subscribers see one order) and
	// is held while a channel is closed, so that no send hits a closed
	// channel.
	sendMu sync.Mutex

	mu     sync.Mutex // guards the following
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch   chan server.Event
	done <-chan struct{} // the subscriber's ctx.Done()
	stop func() bool     // stops the AfterFunc that drops the subscriber
}

// New returns a bus without subscribers.
func New() *Bus {
	return &Bus{
		closing: make(chan struct{}),
		subs:    make(map[*subscriber]struct{}),
	}
}

// Subscribe adds a subscriber until ctx ends or Close.
func (f *Bus) Subscribe(ctx context.Context) (<-chan server.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, ErrClosed
	}
	s := &subscriber{ch: make(chan server.Event, subscriberBuffer), done: ctx.Done()}
	f.subs[s] = struct{}{}
	f.wg.Add(1)
	s.stop = context.AfterFunc(ctx, func() {
		defer f.wg.Done()
		f.sendMu.Lock()
		defer f.sendMu.Unlock()
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.subs[s]; ok {
			delete(f.subs, s)
			close(s.ch)
		}
	})
	return s.ch, nil
}

// Deliver sends ev to every current subscriber, waiting for those whose
// buffer is full. A subscriber whose context has ended is skipped. It
// gives up when ctx ends or the bus closes.
func (f *Bus) Deliver(ctx context.Context, ev server.Event) error {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	subs := make([]*subscriber, 0, len(f.subs))
	for s := range f.subs {
		subs = append(subs, s)
	}
	f.mu.Unlock()
	for _, s := range subs {
		select {
		case s.ch <- ev:
		case <-s.done:
		case <-f.closing:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close closes every subscriber's channel and refuses new ones. It must be
// called once.
func (f *Bus) Close() {
	close(f.closing)
	f.sendMu.Lock()
	f.mu.Lock()
	f.closed = true
	for s := range f.subs {
		if s.stop() {
			f.wg.Done() // its callback will never run
		}
		delete(f.subs, s)
		close(s.ch)
	}
	f.mu.Unlock()
	f.sendMu.Unlock()
	f.wg.Wait()
}
