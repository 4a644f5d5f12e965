package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/parleynet/parley/internal/sqlitedb"
	"github.com/parleynet/parley/rendezvous"
)

var _ rendezvous.Store = (*Store)(nil)

// Store is a rendezvous.Store in one SQLite file. It is safe for concurrent
// use.
type Store struct {
	db *sql.DB
}

// Open opens the SQLite database at path, creating it if it does not exist,
// and applies any missing schema migrations.
func Open(path string) (*Store, error) {
	db, err := sqlitedb.Open(path, migrations)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return s.db.Close()
}

// Register creates a user and enrols its first device in one transaction.
func (s *Store) Register(ctx context.Context, name string, passwordHash []byte, device peer.ID) (rendezvous.User, error) {
	u := rendezvous.User{
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
		return rendezvous.User{}, err
	}
	return u, nil
}

// UserByName returns the user called name, or rendezvous.ErrNotFound.
func (s *Store) UserByName(ctx context.Context, name string) (rendezvous.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx,
		`SELECT id, name, password_hash, created_at, last_seen FROM users WHERE name = ?`, name))
	if err != nil {
		return rendezvous.User{}, fmt.Errorf("select user %q: %w", name, err)
	}
	return u, nil
}

// EnrolDevice adds device to the user. It is a no-op if the user already
// has the device, and rendezvous.ErrDeviceTaken if another user does.
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
		var owner int64
		if err := tx.QueryRowContext(ctx,
			`SELECT user_id FROM devices WHERE peer_id = ?`, device.String()).Scan(&owner); err != nil {
			return fmt.Errorf("select device owner: %w", err)
		}
		if owner != userID {
			return rendezvous.ErrDeviceTaken
		}
		return nil
	})
}

// DeviceOwner returns the user device is enrolled to, or
// rendezvous.ErrNotFound.
func (s *Store) DeviceOwner(ctx context.Context, device peer.ID) (rendezvous.User, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx,
		`SELECT u.id, u.name, u.password_hash, u.created_at, u.last_seen
		 FROM devices d JOIN users u ON u.id = d.user_id
		 WHERE d.peer_id = ?`, device.String()))
	if err != nil {
		return rendezvous.User{}, fmt.Errorf("select owner of device %s: %w", device, err)
	}
	return u, nil
}

// AddContact records that from wants to as a contact, and accepts both
// directions when to had already asked for from.
func (s *Store) AddContact(ctx context.Context, from, to int64) (accepted bool, err error) {
	if from == to {
		return false, fmt.Errorf("%w: cannot add yourself", rendezvous.ErrBadRequest)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx,
			`SELECT COUNT(*) FROM users WHERE id IN (?, ?)`, from, to).Scan(&n); err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		if n != 2 {
			return fmt.Errorf("user: %w", rendezvous.ErrNotFound)
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
			return nil
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO contacts (user_id, contact_id, state, created_at) VALUES (?, ?, 'accepted', ?)
			 ON CONFLICT (user_id, contact_id) DO UPDATE SET state = 'accepted'`, from, to, now); err != nil {
			return fmt.Errorf("insert accepted contact: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE contacts SET state = 'accepted' WHERE user_id = ? AND contact_id = ?`, to, from); err != nil {
			return fmt.Errorf("accept contact request: %w", err)
		}
		accepted = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return accepted, nil
}

// Contacts returns the accepted contacts of the user, sorted by name.
func (s *Store) Contacts(ctx context.Context, userID int64) ([]rendezvous.User, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT u.id, u.name, u.password_hash, u.created_at, u.last_seen
		 FROM contacts c JOIN users u ON u.id = c.contact_id
		 WHERE c.user_id = ? AND c.state = 'accepted'
		 ORDER BY u.name`, userID)
	if err != nil {
		return nil, fmt.Errorf("select contacts: %w", err)
	}
	defer rows.Close()
	var users []rendezvous.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("scan contact: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select contacts: %w", err)
	}
	return users, nil
}

// SetLastSeen records when the user was last online, to the millisecond.
// It returns rendezvous.ErrNotFound for an unknown user.
func (s *Store) SetLastSeen(ctx context.Context, userID int64, t time.Time) error {
	res, err := s.db.ExecContext(ctx,
		`UPDATE users SET last_seen = ? WHERE id = ?`, t.UnixMilli(), userID)
	if err != nil {
		return fmt.Errorf("update last seen: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("update last seen: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("user %d: %w", userID, rendezvous.ErrNotFound)
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

// scanUser reads id, name, password_hash, created_at, last_seen. A missing
// row is rendezvous.ErrNotFound.
func scanUser(row interface{ Scan(...any) error }) (rendezvous.User, error) {
	var (
		u        rendezvous.User
		created  int64
		lastSeen sql.NullInt64
	)
	err := row.Scan(&u.ID, &u.Name, &u.PasswordHash, &created, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return rendezvous.User{}, rendezvous.ErrNotFound
	}
	if err != nil {
		return rendezvous.User{}, err
	}
	u.Created = time.UnixMilli(created)
	if lastSeen.Valid {
		u.LastSeen = time.UnixMilli(lastSeen.Int64)
	}
	return u, nil
}

// isConstraint reports whether err is the SQLite extended constraint error
// code.
func isConstraint(err error, code int) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == code
}
