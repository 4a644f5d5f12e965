package app

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
)

// outbox delivers queued chat messages to contacts who are online: when
// asked (at login, when a contact comes online) and every interval. A
// contact found offline is handed to the mailbox (offline), which
// deposits their messages on the server. Its goroutine runs until Close.
type outbox struct {
	chat      *chat.Service
	history   *chat.History
	emit      func(apitype.Event)  // a message_state event for each message settled
	offline   func(contact string) // called when a contact with queued messages is offline
	interval  time.Duration
	flush     chan struct{} // asks the goroutine to deliver now
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

func startOutbox(svc *chat.Service, history *chat.History, interval time.Duration, emit func(apitype.Event), offline func(string)) *outbox {
	ctx, cancel := context.WithCancel(context.Background())
	o := &outbox{chat: svc, history: history, emit: emit, offline: offline, interval: interval, flush: make(chan struct{}, 1), cancel: cancel}
	o.wg.Go(func() { o.run(ctx) })
	return o
}

// Close stops the goroutine and waits for it.
func (o *outbox) Close() error {
	o.closeOnce.Do(func() {
		o.cancel()
		o.wg.Wait()
	})
	return nil
}

// flushSoon asks the goroutine to deliver queued messages now.
func (o *outbox) flushSoon() {
	select {
	case o.flush <- struct{}{}:
	default:
	}
}

func (o *outbox) run(ctx context.Context) {
	t := time.NewTicker(o.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-o.flush:
		case <-t.C:
		}
		waiting, err := o.history.OutboxContacts(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Errorw("read outbox", "err", err)
			}
			continue
		}
		for _, c := range waiting {
			settled, err := o.chat.Flush(ctx, c)
			for _, m := range settled {
				o.emit(apitype.Event{Kind: apitype.EventMessageState, Message: ptr(messageOf(m))})
			}
			if errors.Is(err, chat.ErrOffline) {
				o.offline(c) // the mailbox takes them
			}
			if err != nil && !errors.Is(err, chat.ErrOffline) && ctx.Err() == nil {
				log.Debugw("outbox not delivered yet", "to", c, "err", err)
			}
		}
	}
}
