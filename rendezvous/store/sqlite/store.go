package sqlite

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parleynet/parley/internal/sqlitedb"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/internal/bus"
)

var _ server.Store = (*Store)(nil)

// Store is a server.Store in one SQLite file. It is safe for concurrent
// use.
type Store struct {
	db        *sqlitedb.DB
	bus       *bus.Bus
	closeOnce sync.Once
	closeErr  error
}

// Open opens the SQLite database at path, creating it if it does not exist,
// and applies any missing schema migrations.
func Open(path string) (*Store, error) {
	db, err := sqlitedb.Open(path, migrations)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, bus: bus.New()}, nil
}

// Close closes the subscription channels and the database. Calls after the
// first return nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.bus.Close()
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Ping checks that the database file answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

const userColumns = `u.id, u.name, u.password_hash, u.created_at, u.last_seen`

// Register creates a user and enrols its first device in one transaction.
func (s *Store) Register(ctx context.Context, name string, passwordHash []byte, device peer.ID) (server.User, error) {
	u := server.User{
		Name:         name,
		PasswordHash: passwordHash,
		Created:      time.UnixMilli(time.Now().UnixMilli()),
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?) RETURNING id`,
			name, passwordHash, u.Created.UnixMilli()).Scan(&u.ID)
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
			return rendezvous.ErrUsernameTaken
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		// A revoked device keeps its row, so it is refused here too.
		_, err = tx.ExecContext(ctx,
			`INSERT INTO devices (peer_id, user_id, enrolled_at) VALUES (?, ?, ?)`,
			device.String(), u.ID, u.Created.UnixMilli())
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
			return rendezvous.ErrDeviceTaken
		}
		if err != nil {
			return fmt.Errorf("insert device: %w", err)
		}
		return nil
	})
	if err != nil {
		return server.User{}, err
	}
	return u, nil
}

// UserByName returns the user called name, or rendezvous.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (server.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.name = ?`, name))
	if err != nil {
		return server.User{}, fmt.Errorf("select user %q: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with the id, or rendezvous.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (server.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM users u WHERE u.id = ?`, id))
	if err != nil {
		return server.User{}, fmt.Errorf("select user %d: %w", id, err)
	}
	return u, nil
}

// SetPasswordHash replaces the user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID int64, hash []byte) error {
	return s.execOne(ctx, fmt.Sprintf("user %d", userID),
		`UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
}

// DeleteUser deletes the user; the foreign keys cascade to its devices,
// contact rows in both directions, blocks and sessions.
func (s *Store) DeleteUser(ctx context.Context, userID int64) error {
	return s.execOne(ctx, fmt.Sprintf("user %d", userID),
		`DELETE FROM users WHERE id = ?`, userID)
}

// SetLastSeen records when the user was last online, to the millisecond.
func (s *Store) SetLastSeen(ctx context.Context, userID int64, t time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("user %d", userID),
		`UPDATE users SET last_seen = ? WHERE id = ?`, t.UnixMilli(), userID)
}

// EnrolDevice adds device to the user; see server.Store.
func (s *Store) EnrolDevice(ctx context.Context, userID int64, device peer.ID) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx,
			`INSERT INTO devices (peer_id, user_id, enrolled_at) VALUES (?, ?, ?)
			 ON CONFLICT (peer_id) DO NOTHING`,
			device.String(), userID, time.Now().UnixMilli())
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return fmt.Errorf("user %d: %w", userID, rendezvous.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert device: %w", err)
		}
		var (
			owner   int64
			revoked sql.NullInt64
		)
		if err := tx.QueryRowContext(ctx,
			`SELECT user_id, revoked_at FROM devices WHERE peer_id = ?`, device.String()).Scan(&owner, &revoked); err != nil {
			return fmt.Errorf("select device owner: %w", err)
		}
		switch {
		case owner != userID:
			return rendezvous.ErrDeviceTaken
		case revoked.Valid:
			return rendezvous.ErrDeviceRevoked
		}
		return nil
	})
}

// DeviceOwner returns the user device is enrolled to; see server.Store.
func (s *Store) DeviceOwner(ctx context.Context, device peer.ID) (server.User, error) {
	var revoked sql.NullInt64
	row := s.db.QueryRowContext(ctx,
		`SELECT `+userColumns+`, d.revoked_at
		 FROM devices d JOIN users u ON u.id = d.user_id
		 WHERE d.peer_id = ?`, device.String())
	u, err := scanUser(row, &revoked)
	if err != nil {
		return server.User{}, fmt.Errorf("select owner of device %s: %w", device, err)
	}
	if revoked.Valid {
		return server.User{}, fmt.Errorf("device %s: %w", device, rendezvous.ErrDeviceRevoked)
	}
	return u, nil
}

// Devices lists the user's devices in enrolment order.
func (s *Store) Devices(ctx context.Context, userID int64) ([]server.Device, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT peer_id, enrolled_at, revoked_at FROM devices
		 WHERE user_id = ? ORDER BY enrolled_at, rowid`, userID)
	if err != nil {
		return nil, fmt.Errorf("select devices: %w", err)
	}
	defer rows.Close()
	var devs []server.Device
	for rows.Next() {
		var (
			id       string
			enrolled int64
			revoked  sql.NullInt64
		)
		if err := rows.Scan(&id, &enrolled, &revoked); err != nil {
			return nil, fmt.Errorf("scan device: %w", err)
		}
		d := server.Device{Enrolled: time.UnixMilli(enrolled)}
		if d.Peer, err = peer.Decode(id); err != nil {
			return nil, fmt.Errorf("device %q: %w", id, err)
		}
		if revoked.Valid {
			d.Revoked = time.UnixMilli(revoked.Int64)
		}
		devs = append(devs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select devices: %w", err)
	}
	return devs, nil
}

// RevokeDevice marks the device revoked (keeping the first revocation
// time) and deletes its session, mailbox key and mail.
func (s *Store) RevokeDevice(ctx context.Context, userID int64, device peer.ID) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE devices SET revoked_at = COALESCE(revoked_at, ?) WHERE peer_id = ? AND user_id = ?`,
			time.Now().UnixMilli(), device.String(), userID)
		if err := oneRow(res, err, fmt.Sprintf("device %s of user %d", device, userID)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE device = ?`, device.String()); err != nil {
			return fmt.Errorf("delete sessions: %w", err)
		}
		return dropDeviceMail(ctx, tx, device)
	})
}

// RequestContact records that from wants to as a contact; see
// server.RequestResult.
func (s *Store) RequestContact(ctx context.Context, from, to int64) (server.RequestResult, error) {
	if from == to {
		return 0, fmt.Errorf("%w: cannot add yourself", rendezvous.ErrBadRequest)
	}
	var result server.RequestResult
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkUsers(ctx, tx, from, to); err != nil {
			return err
		}
		// Asking for someone lifts one's own block on them, whatever
		// they think of us.
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, from, to); err != nil {
			return fmt.Errorf("delete own block: %w", err)
		}
		var blocked int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM blocks WHERE user_id = ? AND blocked_id = ?`, to, from).Scan(&blocked); err != nil {
			return fmt.Errorf("select block: %w", err)
		}
		if blocked > 0 {
			result = server.Ignored
			return nil
		}
		// Accepted rows always come in pairs, so the reverse row alone
		// decides: if to asked for from (or they are already contacts),
		// this completes the pair.
		var reverse int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM contacts WHERE user_id = ? AND contact_id = ?`, to, from).Scan(&reverse); err != nil {
			return fmt.Errorf("select reverse contact: %w", err)
		}
		now := time.Now().UnixMilli()
		if reverse == 0 {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO contacts (user_id, contact_id, state, created_at) VALUES (?, ?, 'requested', ?)
				 ON CONFLICT (user_id, contact_id) DO NOTHING`, from, to, now); err != nil {
				return fmt.Errorf("insert contact request: %w", err)
			}
			result = server.Requested
			return nil
		}
		if err := acceptPair(ctx, tx, from, to, now); err != nil {
			return err
		}
		result = server.Accepted
		return nil
	})
	if err != nil {
		return 0, err
	}
	return result, nil
}

// AcceptContact accepts the pending request from `from` to me.
func (s *Store) AcceptContact(ctx context.Context, me, from int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM contacts WHERE user_id = ? AND contact_id = ? AND state = 'requested'`,
			from, me).Scan(&n); err != nil {
			return fmt.Errorf("select request: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("request from user %d to %d: %w", from, me, rendezvous.ErrNotFound)
		}
		return acceptPair(ctx, tx, me, from, time.Now().UnixMilli())
	})
}

// acceptPair makes both directions between a and b accepted.
func acceptPair(ctx context.Context, tx *sql.Tx, a, b int64, now int64) error {
	for _, p := range [][2]int64{{a, b}, {b, a}} {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO contacts (user_id, contact_id, state, created_at) VALUES (?, ?, 'accepted', ?)
			 ON CONFLICT (user_id, contact_id) DO UPDATE SET state = 'accepted'`, p[0], p[1], now); err != nil {
			return fmt.Errorf("accept contact: %w", err)
		}
	}
	return nil
}

// DeclineContact deletes the pending request from `from` to me.
func (s *Store) DeclineContact(ctx context.Context, me, from int64) error {
	return s.execOne(ctx, fmt.Sprintf("request from user %d to %d", from, me),
		`DELETE FROM contacts WHERE user_id = ? AND contact_id = ? AND state = 'requested'`, from, me)
}

// RemoveContact ends an accepted contact or withdraws me's request.
func (s *Store) RemoveContact(ctx context.Context, me, other int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`DELETE FROM contacts WHERE user_id = ? AND contact_id = ?`, me, other)
		if err := oneRow(res, err, fmt.Sprintf("contact %d of user %d", other, me)); err != nil {
			return err
		}
		// If me's row was accepted, so is this one; if it was a
		// request, there is no row here.
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM contacts WHERE user_id = ? AND contact_id = ? AND state = 'accepted'`, other, me); err != nil {
			return fmt.Errorf("delete reverse contact: %w", err)
		}
		return nil
	})
}

// Block deletes the contact rows between me and other and records the
// block.
func (s *Store) Block(ctx context.Context, me, other int64) error {
	if me == other {
		return fmt.Errorf("%w: cannot block yourself", rendezvous.ErrBadRequest)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkUsers(ctx, tx, me, other); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`DELETE FROM contacts WHERE (user_id = ? AND contact_id = ?) OR (user_id = ? AND contact_id = ?)`,
			me, other, other, me); err != nil {
			return fmt.Errorf("delete contacts: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)
			 ON CONFLICT (user_id, blocked_id) DO NOTHING`, me, other, time.Now().UnixMilli()); err != nil {
			return fmt.Errorf("insert block: %w", err)
		}
		return nil
	})
}

// Unblock lifts me's block on other.
func (s *Store) Unblock(ctx context.Context, me, other int64) error {
	return s.execOne(ctx, fmt.Sprintf("block of user %d by %d", other, me),
		`DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, me, other)
}

// Contacts returns the accepted contacts of the user, sorted by name.
func (s *Store) Contacts(ctx context.Context, userID int64) ([]server.User, error) {
	return s.users(ctx, "contacts",
		`SELECT `+userColumns+` FROM contacts c JOIN users u ON u.id = c.contact_id
		 WHERE c.user_id = ? AND c.state = 'accepted' ORDER BY u.name`, userID)
}

// ContactLists returns the user's contact book.
func (s *Store) ContactLists(ctx context.Context, userID int64) (server.ContactLists, error) {
	var (
		l   server.ContactLists
		err error
	)
	// One read transaction, so the lists agree with each other.
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []struct {
			what  string
			dst   *[]server.User
			query string
		}{
			{"accepted contacts", &l.Accepted,
				`SELECT ` + userColumns + ` FROM contacts c JOIN users u ON u.id = c.contact_id
				 WHERE c.user_id = ? AND c.state = 'accepted' ORDER BY u.name`},
			{"incoming requests", &l.Incoming,
				`SELECT ` + userColumns + ` FROM contacts c JOIN users u ON u.id = c.user_id
				 WHERE c.contact_id = ? AND c.state = 'requested' ORDER BY u.name`},
			{"outgoing requests", &l.Outgoing,
				`SELECT ` + userColumns + ` FROM contacts c JOIN users u ON u.id = c.contact_id
				 WHERE c.user_id = ? AND c.state = 'requested' ORDER BY u.name`},
			{"blocked users", &l.Blocked,
				`SELECT ` + userColumns + ` FROM blocks b JOIN users u ON u.id = b.blocked_id
				 WHERE b.user_id = ? ORDER BY u.name`},
		} {
			if *q.dst, err = queryUsers(ctx, tx, q.what, q.query, userID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return server.ContactLists{}, err
	}
	return l, nil
}

// HeartbeatReplica records that the replica is alive at t.
func (s *Store) HeartbeatReplica(ctx context.Context, replica string, t time.Time) error {
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO replicas (id, heartbeat) VALUES (?, ?)
		 ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat`, replica, t.UnixMilli()); err != nil {
		return fmt.Errorf("heartbeat replica %q: %w", replica, err)
	}
	return nil
}

// PutSession stores or replaces the session of s.Device. The device must be
// an unrevoked device of s.UserID (else ErrNotFound or ErrDeviceRevoked) and
// the replica must have a row (else ErrNotFound).
func (s *Store) PutSession(ctx context.Context, sess server.SessionRecord) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkSession(ctx, tx, sess); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx,
			`INSERT INTO sessions (device, user_id, replica, addrs, started) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT (device) DO UPDATE SET user_id = excluded.user_id, replica = excluded.replica,
			   addrs = excluded.addrs, started = excluded.started`,
			sess.Device.String(), sess.UserID, sess.Replica, encodeAddrs(sess.Addrs), sess.Started.UnixMilli())
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return fmt.Errorf("replica %q: %w", sess.Replica, rendezvous.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert session: %w", err)
		}
		return nil
	})
}

func checkSession(ctx context.Context, tx *sql.Tx, sess server.SessionRecord) error {
	var revoked sql.NullInt64
	err := tx.QueryRowContext(ctx,
		`SELECT revoked_at FROM devices WHERE peer_id = ? AND user_id = ?`,
		sess.Device.String(), sess.UserID).Scan(&revoked)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("device %s of user %d: %w", sess.Device, sess.UserID, rendezvous.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("select device: %w", err)
	}
	if revoked.Valid {
		return fmt.Errorf("device %s: %w", sess.Device, rendezvous.ErrDeviceRevoked)
	}
	return nil
}

// DeleteSession deletes the device's session if it is on replica.
func (s *Store) DeleteSession(ctx context.Context, device peer.ID, replica string) error {
	if _, err := s.db.ExecContext(ctx,
		`DELETE FROM sessions WHERE device = ? AND replica = ?`, device.String(), replica); err != nil {
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
	ids, err := json.Marshal(userIDs)
	if err != nil {
		return nil, fmt.Errorf("encode user ids: %w", err)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT s.device, s.user_id, s.replica, s.addrs, s.started
		 FROM sessions s JOIN replicas r ON r.id = s.replica
		 WHERE r.heartbeat > ? AND s.user_id IN (SELECT value FROM json_each(?))
		 ORDER BY s.started, s.device`, aliveSince.UnixMilli(), string(ids))
	if err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	defer rows.Close()
	var out []server.SessionRecord
	for rows.Next() {
		var (
			r       server.SessionRecord
			dev     string
			addrs   []byte
			started int64
		)
		if err := rows.Scan(&dev, &r.UserID, &r.Replica, &addrs, &started); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		if r.Device, err = peer.Decode(dev); err != nil {
			return nil, fmt.Errorf("session device %q: %w", dev, err)
		}
		if r.Addrs, err = decodeAddrs(addrs); err != nil {
			return nil, fmt.Errorf("session of %s: %w", dev, err)
		}
		r.Started = time.UnixMilli(started)
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
	return s.deleteReplicas(ctx, `heartbeat < ?`, deadBefore.UnixMilli())
}

// DeleteReplica deletes the replica and its sessions. An unknown replica is
// a no-op.
func (s *Store) DeleteReplica(ctx context.Context, replica string) ([]int64, error) {
	return s.deleteReplicas(ctx, `id = ?`, replica)
}

// deleteReplicas deletes the replicas matching where (a condition on the
// replicas table) and returns the users that had sessions on them, in
// ascending order.
func (s *Store) deleteReplicas(ctx context.Context, where string, arg any) ([]int64, error) {
	var users []int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx,
			`SELECT DISTINCT user_id FROM sessions
			 WHERE replica IN (SELECT id FROM replicas WHERE `+where+`) ORDER BY user_id`, arg)
		if err != nil {
			return fmt.Errorf("select sessions: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return fmt.Errorf("scan user: %w", err)
			}
			users = append(users, id)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("select sessions: %w", err)
		}
		// Sessions go with their replica (ON DELETE CASCADE).
		if _, err := tx.ExecContext(ctx, `DELETE FROM replicas WHERE `+where, arg); err != nil {
			return fmt.Errorf("delete replicas: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// Publish hands ev to every subscriber of this Store, in the order of
// Publish calls, waiting while a subscriber's buffer is full. Several
// Store values on one file do not see each other's events.
func (s *Store) Publish(ctx context.Context, ev server.Event) error {
	if err := s.bus.Deliver(ctx, ev); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	return nil
}

// Subscribe returns the events published on this Store from now on.
func (s *Store) Subscribe(ctx context.Context) (<-chan server.Event, error) {
	ch, err := s.bus.Subscribe(ctx)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	return ch, nil
}

// users runs a query returning user rows.
func (s *Store) users(ctx context.Context, what, query string, args ...any) ([]server.User, error) {
	return queryUsers(ctx, s.db, what, query, args...)
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryUsers(ctx context.Context, q querier, what, query string, args ...any) ([]server.User, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("select %s: %w", what, err)
	}
	defer rows.Close()
	var users []server.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", what, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select %s: %w", what, err)
	}
	return users, nil
}

// checkUsers returns ErrNotFound unless both users exist.
func checkUsers(ctx context.Context, tx *sql.Tx, a, b int64) error {
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM users WHERE id IN (?, ?)`, a, b).Scan(&n); err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n != 2 {
		return fmt.Errorf("user %d or %d: %w", a, b, rendezvous.ErrNotFound)
	}
	return nil
}

// execOne runs a statement that must change exactly one row; if it changes
// none, what was not found.
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	res, err := s.db.ExecContext(ctx, query, args...)
	return oneRow(res, err, what)
}

func oneRow(res sql.Result, err error, what string) error {
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, rendezvous.ErrNotFound)
	}
	return nil
}

// inTx runs fn in a transaction, committing if it returns nil and rolling
// back otherwise.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// scanUser reads id, name, password_hash, created_at, last_seen and then
// any extra columns into extra. A missing row is rendezvous.ErrNotFound.
func scanUser(row interface{ Scan(...any) error }, extra ...any) (server.User, error) {
	var (
		u        server.User
		created  int64
		lastSeen sql.NullInt64
	)
	err := row.Scan(append([]any{&u.ID, &u.Name, &u.PasswordHash, &created, &lastSeen}, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return server.User{}, rendezvous.ErrNotFound
	}
	if err != nil {
		return server.User{}, err
	}
	u.Created = time.UnixMilli(created)
	if lastSeen.Valid {
		u.LastSeen = time.UnixMilli(lastSeen.Int64)
	}
	return u, nil
}

// encodeAddrs concatenates the addresses, each preceded by its length as a
// uvarint.
func encodeAddrs(addrs [][]byte) []byte {
	var b []byte
	for _, a := range addrs {
		b = binary.AppendUvarint(b, uint64(len(a)))
		b = append(b, a...)
	}
	if b == nil {
		b = []byte{} // the column is NOT NULL
	}
	return b
}

// decodeAddrs reverses encodeAddrs.
func decodeAddrs(b []byte) ([][]byte, error) {
	var addrs [][]byte
	for len(b) > 0 {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, errors.New("corrupt address list")
		}
		b = b[k:]
		addrs = append(addrs, b[:n:n])
		b = b[n:]
	}
	return addrs, nil
}

// isConstraint reports whether err is the SQLite extended constraint error
// code.
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}
