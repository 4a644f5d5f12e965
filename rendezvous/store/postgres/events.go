package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/internal/bus"
)

const (
	// channel is the LISTEN/NOTIFY channel every Store of a database
	// shares.
	channel = "parley_events"
	// maxPayload is PostgreSQL's limit on a NOTIFY payload (8000 bytes
	// in the default build), less a margin.
	maxPayload = 7900

	// idleCheck is how long the listener waits without a notification
	// before it pings its connection, so that a silently dead connection
	// is noticed within idleCheck+pingTimeout.
	idleCheck   = 30 * time.Second
	pingTimeout = 5 * time.Second
	// The listener reconnects at once, then backs off from minBackoff,
	// doubling up to maxBackoff.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Publish sends ev, as JSON, with NOTIFY on the shared channel: every
// Store on this database delivers it to its subscribers.
func (s *Store) Publish(ctx context.Context, ev server.Event) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("publish: %w", bus.ErrClosed)
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("publish: encode event: %w", err)
	}
	if len(payload) > maxPayload {
		return fmt.Errorf("publish: %w: event of %d bytes is too large", rendezvous.ErrBadRequest, len(payload))
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, string(payload)); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// Subscribe returns the events published from now on by any Store on this
// database. The first Subscribe starts the listener connection and returns
// an error if it cannot LISTEN; later ones share it.
func (s *Store) Subscribe(ctx context.Context) (<-chan server.Event, error) {
	if err := s.startListener(ctx); err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	ch, err := s.bus.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return ch, nil
}

// startListener starts the listener goroutine unless it runs already. It
// returns once the listener's connection has run LISTEN, so that every
// event published after it returns reaches the fanout.
func (s *Store) startListener(ctx context.Context) error {
	s.listenMu.Lock()
	defer s.listenMu.Unlock()
	if s.closed || s.ctx.Err() != nil {
		return bus.ErrClosed
	}
	if s.listening {
		return nil
	}
	// Give up when the caller does, or on Close.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(s.ctx, cancel)()
	conn, err := s.connectListener(ctx)
	if err != nil {
		return err
	}
	s.listening = true
	s.wg.Add(1)
	go s.listen(conn)
	return nil
}

// connectListener opens a connection outside the pool (it is held for as
// long as the store lives) and runs LISTEN on it.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("connect listener: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.listenerPID.Store(conn.PgConn().PID())
	return conn, nil
}

// listen delivers notifications to the fanout until Close, reconnecting
// when the connection breaks. It owns conn.
func (s *Store) listen(conn *pgx.Conn) {
	defer s.wg.Done()
	for {
		err := s.receive(conn)
		s.listenerPID.Store(0)
		closeConn(conn)
		if s.ctx.Err() != nil {
			return
		}
		log.Warnw("event listener connection lost; reconnecting (events published meanwhile are missed)", "err", err)
		if conn = s.reconnect(); conn == nil {
			return
		}
		log.Infow("event listener reconnected")
	}
}

// receive delivers the notifications arriving on conn until it fails or
// the store closes.
func (s *Store) receive(conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(s.ctx, idleCheck)
		n, err := conn.WaitForNotification(wctx)
		idle := wctx.Err() == context.DeadlineExceeded
		cancel()
		switch {
		case s.ctx.Err() != nil:
			return s.ctx.Err()
		case err != nil && idle:
			// Quiet for a while: make sure the connection still works.
			pctx, cancel := context.WithTimeout(s.ctx, pingTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		case err != nil:
			return err
		}
		var ev server.Event
		if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
			log.Errorw("dropping malformed event", "payload", n.Payload, "err", err)
			continue
		}
		if err := s.bus.Deliver(s.ctx, ev); err != nil {
			return err // the store is closing
		}
	}
}

// reconnect connects a new listener, retrying with backoff. It returns nil
// when the store closes first.
func (s *Store) reconnect() *pgx.Conn {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		conn, err := s.connectListener(s.ctx)
		if err == nil {
			return conn
		}
		if s.ctx.Err() != nil {
			return nil
		}
		log.Warnw("event listener: reconnect failed", "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// closeConn closes a listener connection, waiting at most a second for the
// server to hear it.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	conn.Close(ctx)
}
