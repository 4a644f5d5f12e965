package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/internal/bus"
)

var log = logging.Logger("parley/rendezvous/postgres")

var _ server.Store = (*Store)(nil)

// Store is a server.Store in a PostgreSQL database that several Store
// values (rendezvous replicas) may share. It is safe for concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	bus    *bus.Bus           // this Store's subscribers
	ctx    context.Context    // ends on Close; stops the listener
	cancel context.CancelFunc // ends ctx
	wg     sync.WaitGroup     // the listener goroutine

	closeOnce sync.Once

	// listenerPID is the server process of the listener connection, 0
	// while there is none. Tests use it to break the connection.
	listenerPID atomic.Uint32

	listenMu  sync.Mutex // guards the following; held while the listener starts
	listening bool       // the listener goroutine was started
	closed    bool       // Close has begun: start no listener
}

// Open connects to the database at url (see the package doc), applies any
// missing schema migrations and returns the store. ctx bounds only the
// opening.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate postgres schema: %w", err)
	}
	sctx, cancel := context.WithCancel(context.Background())
	return &Store{pool: pool, bus: bus.New(), ctx: sctx, cancel: cancel}, nil
}

// Close stops the listener, closes the subscription channels and the
// connection pool. Calls after the first do nothing.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.listenMu.Lock()
		s.closed = true
		s.listenMu.Unlock()
		s.wg.Wait()
		s.bus.Close()
		s.pool.Close()
	})
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

const userColumns = `u.id, u.name, u.password_hash, u.created_at, u.last_seen`

// now is the current time at the precision PostgreSQL keeps, so that what
// a method returns equals what it stored.
func now() time.Time { return time.Now().Truncate(time.Microsecond) }

// Register creates a user and enrols its first device in one transaction.
func (s *Store) Register(ctx context.Context, name string, passwordHash []byte, device peer.ID) (server.User, error) {
	u := server.User{Name: name, PasswordHash: passwordHash, Created: now()}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx,
			`INSERT INTO users (name, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id`,
			name, passwordHash, u.Created).Scan(&u.ID)
		if isCode(err, uniqueViolation) {
			return rendezvous.ErrUsernameTaken
		}
		if err != nil {
			return fmt.Errorf("insert user: %w", err)
		}
		// A revoked device keeps its row, so it is refused here too.
		_, err = tx.Exec(ctx,
			`INSERT INTO devices (peer_id, user_id, enrolled_at) VALUES ($1, $2, $3)`,
			device.String(), u.ID, u.Created)
		if isCode(err, uniqueViolation) {
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
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.name = $1`, name))
	if err != nil {
		return server.User{}, fmt.Errorf("select user %q: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with the id, or rendezvous.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (server.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE u.id = $1`, id))
	if err != nil {
		return server.User{}, fmt.Errorf("select user %d: %w", id, err)
	}
	return u, nil
}

// SetPasswordHash replaces the user's password hash.
func (s *Store) SetPasswordHash(ctx context.Context, userID int64, hash []byte) error {
	return s.execOne(ctx, fmt.Sprintf("user %d", userID),
		`UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
}

// DeleteUser deletes the user; the foreign keys cascade to its devices,
// contact rows in both directions, blocks and sessions.
func (s *Store) DeleteUser(ctx context.Context, userID int64) error {
	return s.execOne(ctx, fmt.Sprintf("user %d", userID), `DELETE FROM users WHERE id = $1`, userID)
}

// SetLastSeen records when the user was last online, to the microsecond.
func (s *Store) SetLastSeen(ctx context.Context, userID int64, t time.Time) error {
	return s.execOne(ctx, fmt.Sprintf("user %d", userID),
		`UPDATE users SET last_seen = $1 WHERE id = $2`, t, userID)
}

// EnrolDevice adds device to the user; see server.Store.
func (s *Store) EnrolDevice(ctx context.Context, userID int64, device peer.ID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO devices (peer_id, user_id, enrolled_at) VALUES ($1, $2, $3)
			 ON CONFLICT (peer_id) DO NOTHING`, device.String(), userID, now())
		if isCode(err, foreignKeyViolation) {
			return fmt.Errorf("user %d: %w", userID, rendezvous.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("insert device: %w", err)
		}
		var (
			owner   int64
			revoked *time.Time
		)
		if err := tx.QueryRow(ctx,
			`SELECT user_id, revoked_at FROM devices WHERE peer_id = $1`, device.String()).Scan(&owner, &revoked); err != nil {
			return fmt.Errorf("select device owner: %w", err)
		}
		switch {
		case owner != userID:
			return rendezvous.ErrDeviceTaken
		case revoked != nil:
			return rendezvous.ErrDeviceRevoked
		}
		return nil
	})
}

// DeviceOwner returns the user device is enrolled to; see server.Store.
func (s *Store) DeviceOwner(ctx context.Context, device peer.ID) (server.User, error) {
	var revoked *time.Time
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userColumns+`, d.revoked_at
		 FROM devices d JOIN users u ON u.id = d.user_id
		 WHERE d.peer_id = $1`, device.String()), &revoked)
	if err != nil {
		return server.User{}, fmt.Errorf("select owner of device %s: %w", device, err)
	}
	if revoked != nil {
		return server.User{}, fmt.Errorf("device %s: %w", device, rendezvous.ErrDeviceRevoked)
	}
	return u, nil
}

// Devices lists the user's devices in enrolment order.
func (s *Store) Devices(ctx context.Context, userID int64) ([]server.Device, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT peer_id, enrolled_at, revoked_at FROM devices
		 WHERE user_id = $1 ORDER BY enrolled_at, seq`, userID)
	if err != nil {
		return nil, fmt.Errorf("select devices: %w", err)
	}
	defer rows.Close()
	var devs []server.Device
	for rows.Next() {
		var (
			id      string
			d       server.Device
			revoked *time.Time
		)
		if err := rows.Scan(&id, &d.Enrolled, &revoked); err != nil {
			return nil, fmt.Errorf("scan device: %w", err)
		}
		if d.Peer, err = peer.Decode(id); err != nil {
			return nil, fmt.Errorf("device %q: %w", id, err)
		}
		if revoked != nil {
			d.Revoked = *revoked
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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Deposits to the user lock the same row: a deposit sees the
		// device revoked or its copy is dropped here.
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx,
			`UPDATE devices SET revoked_at = COALESCE(revoked_at, $1) WHERE peer_id = $2 AND user_id = $3`,
			now(), device.String(), userID)
		if err := oneRow(tag, err, fmt.Sprintf("device %s of user %d", device, userID)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE device = $1`, device.String()); err != nil {
			return fmt.Errorf("delete sessions: %w", err)
		}
		return dropDeviceMail(ctx, tx, device)
	})
}

// PostgreSQL error codes (SQLSTATE) the store maps to sentinels.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// execOne runs a statement that must change exactly one row; if it changes
// none, what was not found.
func (s *Store) execOne(ctx context.Context, what, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	return oneRow(tag, err, what)
}

func oneRow(tag pgconn.CommandTag, err error, what string) error {
	if err != nil {
		return fmt.Errorf("update %s: %w", what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s: %w", what, rendezvous.ErrNotFound)
	}
	return nil
}

// scanUser reads id, name, password_hash, created_at, last_seen and then
// any extra columns into extra. A missing row is rendezvous.ErrNotFound.
func scanUser(row pgx.Row, extra ...any) (server.User, error) {
	var (
		u        server.User
		lastSeen *time.Time
	)
	err := row.Scan(append([]any{&u.ID, &u.Name, &u.PasswordHash, &u.Created, &lastSeen}, extra...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return server.User{}, rendezvous.ErrNotFound
	}
	if err != nil {
		return server.User{}, err
	}
	if lastSeen != nil {
		u.LastSeen = *lastSeen
	}
	return u, nil
}
