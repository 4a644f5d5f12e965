package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
)

// Names sort byte-wise (COLLATE "C") whatever the database's collation, as
// in SQLite.

// lockPair checks that both users exist and locks their rows, in id order,
// so that contact changes between the same two users run one after the
// other (two crossing requests must end accepted, not as two requests).
// FOR NO KEY UPDATE does not block the foreign-key checks of other
// transactions.
func lockPair(ctx context.Context, tx pgx.Tx, a, b int64) error {
	rows, err := tx.Query(ctx,
		`SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, []int64{a, b})
	if err != nil {
		return fmt.Errorf("lock users: %w", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock users: %w", err)
	}
	if n != 2 {
		return fmt.Errorf("user %d or %d: %w", a, b, rendezvous.ErrNotFound)
	}
	return nil
}

// RequestContact records that from wants to as a contact; see
// server.RequestResult.
func (s *Store) RequestContact(ctx context.Context, from, to int64) (server.RequestResult, error) {
	if from == to {
		return 0, fmt.Errorf("%w: cannot add yourself", rendezvous.ErrBadRequest)
	}
	var result server.RequestResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPair(ctx, tx, from, to); err != nil {
			return err
		}
		// Asking for someone lifts one's own block on them, whatever
		// they think of us.
		if _, err := tx.Exec(ctx,
			`DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2`, from, to); err != nil {
			return fmt.Errorf("delete own block: %w", err)
		}
		var blocked, reverse bool
		if err := tx.QueryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM blocks WHERE user_id = $1 AND blocked_id = $2),
			        EXISTS (SELECT 1 FROM contacts WHERE user_id = $1 AND contact_id = $2)`,
			to, from).Scan(&blocked, &reverse); err != nil {
			return fmt.Errorf("select block and reverse contact: %w", err)
		}
		switch {
		case blocked:
			result = server.Ignored
			return nil
		case !reverse:
			if _, err := tx.Exec(ctx,
				`INSERT INTO contacts (user_id, contact_id, state, created_at) VALUES ($1, $2, 'requested', $3)
				 ON CONFLICT (user_id, contact_id) DO NOTHING`, from, to, now()); err != nil {
				return fmt.Errorf("insert contact request: %w", err)
			}
			result = server.Requested
			return nil
		}
		// Accepted rows always come in pairs, so the reverse row alone
		// decides: to asked for from, or they are already contacts.
		if err := acceptPair(ctx, tx, from, to, now()); err != nil {
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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPair(ctx, tx, me, from); err != nil {
			return err
		}
		var pending bool
		if err := tx.QueryRow(ctx,
			`SELECT EXISTS (SELECT 1 FROM contacts WHERE user_id = $1 AND contact_id = $2 AND state = 'requested')`,
			from, me).Scan(&pending); err != nil {
			return fmt.Errorf("select request: %w", err)
		}
		if !pending {
			return fmt.Errorf("request from user %d to %d: %w", from, me, rendezvous.ErrNotFound)
		}
		return acceptPair(ctx, tx, me, from, now())
	})
}

// acceptPair makes both directions between a and b accepted.
func acceptPair(ctx context.Context, tx pgx.Tx, a, b int64, at time.Time) error {
	if _, err := tx.Exec(ctx,
		`INSERT INTO contacts (user_id, contact_id, state, created_at) VALUES ($1, $2, 'accepted', $3), ($2, $1, 'accepted', $3)
		 ON CONFLICT (user_id, contact_id) DO UPDATE SET state = 'accepted'`, a, b, at); err != nil {
		return fmt.Errorf("accept contact: %w", err)
	}
	return nil
}

// DeclineContact deletes the pending request from `from` to me.
func (s *Store) DeclineContact(ctx context.Context, me, from int64) error {
	return s.execOne(ctx, fmt.Sprintf("request from user %d to %d", from, me),
		`DELETE FROM contacts WHERE user_id = $1 AND contact_id = $2 AND state = 'requested'`, from, me)
}

// RemoveContact ends an accepted contact or withdraws me's request.
func (s *Store) RemoveContact(ctx context.Context, me, other int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPair(ctx, tx, me, other); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM contacts WHERE user_id = $1 AND contact_id = $2`, me, other)
		if err := oneRow(tag, err, fmt.Sprintf("contact %d of user %d", other, me)); err != nil {
			return err
		}
		// If me's row was accepted, so is this one; if it was a
		// request, there is no row here.
		if _, err := tx.Exec(ctx,
			`DELETE FROM contacts WHERE user_id = $1 AND contact_id = $2 AND state = 'accepted'`, other, me); err != nil {
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
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockPair(ctx, tx, me, other); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`DELETE FROM contacts WHERE (user_id = $1 AND contact_id = $2) OR (user_id = $2 AND contact_id = $1)`,
			me, other); err != nil {
			return fmt.Errorf("delete contacts: %w", err)
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3)
			 ON CONFLICT (user_id, blocked_id) DO NOTHING`, me, other, now()); err != nil {
			return fmt.Errorf("insert block: %w", err)
		}
		return nil
	})
}

// Unblock lifts me's block on other.
func (s *Store) Unblock(ctx context.Context, me, other int64) error {
	return s.execOne(ctx, fmt.Sprintf("block of user %d by %d", other, me),
		`DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2`, me, other)
}

// Contacts returns the accepted contacts of the user, sorted by name.
func (s *Store) Contacts(ctx context.Context, userID int64) ([]server.User, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+userColumns+` FROM contacts c JOIN users u ON u.id = c.contact_id
		 WHERE c.user_id = $1 AND c.state = 'accepted' ORDER BY u.name COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("select contacts: %w", err)
	}
	defer rows.Close()
	var users []server.User
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

// ContactLists returns the user's contact book, read in one statement so
// that the lists agree with each other.
func (s *Store) ContactLists(ctx context.Context, userID int64) (server.ContactLists, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT l.list, `+userColumns+` FROM (
			SELECT 'a' AS list, contact_id AS id FROM contacts WHERE user_id = $1 AND state = 'accepted'
			UNION ALL
			SELECT 'i', user_id FROM contacts WHERE contact_id = $1 AND state = 'requested'
			UNION ALL
			SELECT 'o', contact_id FROM contacts WHERE user_id = $1 AND state = 'requested'
			UNION ALL
			SELECT 'b', blocked_id FROM blocks WHERE user_id = $1
		 ) l JOIN users u ON u.id = l.id
		 ORDER BY u.name COLLATE "C"`, userID)
	if err != nil {
		return server.ContactLists{}, fmt.Errorf("select contact lists: %w", err)
	}
	defer rows.Close()
	var l server.ContactLists
	for rows.Next() {
		var list string
		u, err := scanUser(listRow{&list, rows})
		if err != nil {
			return server.ContactLists{}, fmt.Errorf("scan contact lists: %w", err)
		}
		switch list {
		case "a":
			l.Accepted = append(l.Accepted, u)
		case "i":
			l.Incoming = append(l.Incoming, u)
		case "o":
			l.Outgoing = append(l.Outgoing, u)
		case "b":
			l.Blocked = append(l.Blocked, u)
		}
	}
	if err := rows.Err(); err != nil {
		return server.ContactLists{}, fmt.Errorf("select contact lists: %w", err)
	}
	return l, nil
}

// listRow scans a leading list column, then hands the rest to scanUser.
type listRow struct {
	list *string
	row  pgx.Row
}

func (r listRow) Scan(dest ...any) error { return r.row.Scan(append([]any{r.list}, dest...)...) }
