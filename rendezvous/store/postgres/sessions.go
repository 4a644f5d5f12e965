package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
)

// HeartbeatReplica records that the replica is alive at t.
func (s *Store) HeartbeatReplica(ctx context.Context, replica string, t time.Time) error {
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO replicas (id, heartbeat) VALUES ($1, $2)
		 ON CONFLICT (id) DO UPDATE SET heartbeat = EXCLUDED.heartbeat`, replica, t); err != nil {
		return fmt.Errorf("heartbeat replica %q: %w", replica, err)
	}
	return nil
}

// PutSession stores or replaces the session of sess.Device. The device must
// be an unrevoked device of sess.UserID (else ErrNotFound or
// ErrDeviceRevoked) and the replica must have a row (else ErrNotFound).
func (s *Store) PutSession(ctx context.Context, sess server.SessionRecord) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// FOR SHARE: a concurrent RevokeDevice waits for this
		// transaction (then deletes the session), or this one sees the
		// revocation.
		var revoked *time.Time
		err := tx.QueryRow(ctx,
			`SELECT revoked_at FROM devices WHERE peer_id = $1 AND user_id = $2 FOR SHARE`,
			sess.Device.String(), sess.UserID).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("device %s of user %d: %w", sess.Device, sess.UserID, rendezvous.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("select device: %w", err)
		}
		if revoked != nil {
			return fmt.Errorf("device %s: %w", sess.Device, rendezvous.ErrDeviceRevoked)
		}
		addrs := make([][]byte, len(sess.Addrs)) // never NULL, nor NULL elements
		for i, a := range sess.Addrs {
			addrs[i] = append([]byte{}, a...)
		}
		_, err = tx.Exec(ctx,
			`INSERT INTO sessions (device, user_id, replica, addrs, started) VALUES ($1, $2, $3, $4, $5)
			 ON CONFLICT (device) DO UPDATE SET user_id = EXCLUDED.user_id, replica = EXCLUDED.replica,
			   addrs = EXCLUDED.addrs, started = EXCLUDED.started`,
			sess.Device.String(), sess.UserID, sess.Replica, addrs, sess.Started)
		if isCode(err, foreignKeyViolation) {
			return fmt.Errorf("replica %q: %w", sess.Replica, rendezvous.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
}

// DeleteSession deletes the device's session if it is on replica.
func (s *Store) DeleteSession(ctx context.Context, device peer.ID, replica string) error {
	if _, err := s.pool.Exec(ctx,
		`DELETE FROM sessions WHERE device = $1 AND replica = $2`, device.String(), replica); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Sessions returns the users' sessions on replicas alive after aliveSince,
// oldest first.
func (s *Store) Sessions(ctx context.Context, aliveSince time.Time, userIDs ...int64) ([]server.SessionRecord, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx,
		`SELECT s.device, s.user_id, s.replica, s.addrs, s.started
		 FROM sessions s JOIN replicas r ON r.id = s.replica
		 WHERE r.heartbeat > $1 AND s.user_id = ANY($2)
		 ORDER BY s.started, s.device COLLATE "C"`, aliveSince, userIDs)
	if err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	defer rows.Close()
	var out []server.SessionRecord
	for rows.Next() {
		var (
			r   server.SessionRecord
			dev string
		)
		if err := rows.Scan(&dev, &r.UserID, &r.Replica, &r.Addrs, &r.Started); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		if r.Device, err = peer.Decode(dev); err != nil {
			return nil, fmt.Errorf("session device %q: %w", dev, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	return out, nil
}

// ReapReplicas deletes the replicas whose heartbeat is before deadBefore
// with their sessions.
func (s *Store) ReapReplicas(ctx context.Context, deadBefore time.Time) ([]int64, error) {
	return s.deleteReplicas(ctx, `heartbeat < $1`, deadBefore)
}

// DeleteReplica deletes the replica and its sessions. An unknown replica is
// a no-op.
func (s *Store) DeleteReplica(ctx context.Context, replica string) ([]int64, error) {
	return s.deleteReplicas(ctx, `id = $1`, replica)
}

// deleteReplicas deletes the replicas matching where (a condition on the
// replicas table with one argument) and returns the users that had
// sessions on them, in ascending order.
func (s *Store) deleteReplicas(ctx context.Context, where string, arg any) ([]int64, error) {
	var users []int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Locking the replica rows first makes a concurrent PutSession
		// on them wait (its foreign-key check needs a share lock) and
		// then fail, so that no session disappears unreported.
		rows, err := tx.Query(ctx, `SELECT id FROM replicas WHERE `+where+` FOR UPDATE`, arg)
		if err != nil {
			return fmt.Errorf("lock replicas: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("lock replicas: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx,
			`SELECT DISTINCT user_id FROM sessions WHERE replica = ANY($1) ORDER BY user_id`, ids)
		if err != nil {
			return fmt.Errorf("select sessions: %w", err)
		}
		if users, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
			return fmt.Errorf("select sessions: %w", err)
		}
		// Sessions go with their replica (ON DELETE CASCADE).
		if _, err := tx.Exec(ctx, `DELETE FROM replicas WHERE id = ANY($1)`, ids); err != nil {
			return fmt.Errorf("delete replicas: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}
