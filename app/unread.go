package app

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
)

// unreadEvery is how often at most the unread count of a conversation
// is counted and published: a burst of messages is one event, not one a
// message.
const unreadEvery = 100 * time.Millisecond

// unreadNotifier publishes an unread event for each conversation whose
// unread count may have changed, counted from the history (so the event
// says what the history says). Its goroutine runs until Close.
type unreadNotifier struct {
	history *chat.History
	emit    func(apitype.Event)
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once

	mu    sync.Mutex
	dirty map[string]bool
}

func startUnread(h *chat.History, emit func(apitype.Event)) *unreadNotifier {
	ctx, cancel := context.WithCancel(context.Background())
	u := &unreadNotifier{history: h, emit: emit, wake: make(chan struct{}, 1), cancel: cancel, dirty: make(map[string]bool)}
	u.wg.Go(func() { u.run(ctx) })
	return u
}

// changed says that contact's unread count may have changed.
func (u *unreadNotifier) changed(contact string) {
	u.mu.Lock()
	u.dirty[contact] = true
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// Close stops the goroutine and waits for it.
func (u *unreadNotifier) Close() error {
	u.once.Do(func() {
		u.cancel()
		u.wg.Wait()
	})
	return nil
}

func (u *unreadNotifier) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		}
		u.mu.Lock()
		contacts := slices.Sorted(maps.Keys(u.dirty))
		clear(u.dirty)
		u.mu.Unlock()
		for _, c := range contacts {
			n, err := u.history.Unread(ctx, c)
			if err != nil {
				if ctx.Err() == nil {
					log.Errorw("count unread messages", "contact", c, "err", err)
				}
				continue
			}
			u.emit(apitype.Event{Kind: apitype.EventUnread, Unread: &apitype.Unread{Contact: c, Count: n}})
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(unreadEvery):
		}
	}
}
