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

// lockUser checks that the user exists and locks its row against other
// deposits to it, device-key changes and revocations, so a deposit's
// quota and device checks hold until it commits.
func lockUser(ctx context.Context, tx pgx.Tx, userID int64) error {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("user %d: %w", userID, rendezvous.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("lock user %d: %w", userID, err)
	}
	return nil
}

// AreContacts reports whether a and b are accepted contacts.
func (s *Store) AreContacts(ctx context.Context, a, b int64) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx,
		`SELECT EXISTS (SELECT 1 FROM contacts WHERE user_id = $1 AND contact_id = $2 AND state = 'accepted')`,
		a, b).Scan(&ok); err != nil {
		return false, fmt.Errorf("select contact: %w", err)
	}
	return ok, nil
}

// PutDeviceKey stores or replaces the device's mailbox key.
func (s *Store) PutDeviceKey(ctx context.Context, userID int64, device peer.ID, key []byte, at time.Time) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		var revoked *time.Time
		err := tx.QueryRow(ctx,
			`SELECT revoked_at FROM devices WHERE peer_id = $1 AND user_id = $2`,
			device.String(), userID).Scan(&revoked)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("device %s of user %d: %w", device, userID, rendezvous.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("select device: %w", err)
		}
		if revoked != nil {
			return fmt.Errorf("device %s: %w", device, rendezvous.ErrDeviceRevoked)
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO device_keys (device, signed_key, published_at) VALUES ($1, $2, $3)
			 ON CONFLICT (device) DO UPDATE SET signed_key = EXCLUDED.signed_key, published_at = EXCLUDED.published_at`,
			device.String(), key, at); err != nil {
			return fmt.Errorf("insert device key: %w", err)
		}
		return nil
	})
}

// DeviceKeys returns the keys of the user's active devices.
func (s *Store) DeviceKeys(ctx context.Context, userID int64) ([]server.DeviceKey, error) {
	return deviceKeys(ctx, s.pool, userID)
}

// queryer is a pool or a transaction.
type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func deviceKeys(ctx context.Context, q queryer, userID int64) ([]server.DeviceKey, error) {
	rows, err := q.Query(ctx,
		`SELECT k.device, k.signed_key, k.published_at
		 FROM device_keys k JOIN devices d ON d.peer_id = k.device
		 WHERE d.user_id = $1 AND d.revoked_at IS NULL
		 ORDER BY d.enrolled_at, d.seq`, userID)
	if err != nil {
		return nil, fmt.Errorf("select device keys: %w", err)
	}
	defer rows.Close()
	var keys []server.DeviceKey
	for rows.Next() {
		var (
			k   server.DeviceKey
			dev string
		)
		if err := rows.Scan(&dev, &k.Key, &k.Published); err != nil {
			return nil, fmt.Errorf("scan device key: %w", err)
		}
		if k.Device, err = peer.Decode(dev); err != nil {
			return nil, fmt.Errorf("device %q: %w", dev, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select device keys: %w", err)
	}
	return keys, nil
}

// Deposit stores a message and its copies; see server.Store.
func (s *Store) Deposit(ctx context.Context, d server.Deposit, q server.MailQuota) (server.DepositResult, error) {
	var res server.DepositResult
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, d.Recipient); err != nil {
			return err
		}
		err := tx.QueryRow(ctx,
			`SELECT id FROM mail WHERE recipient_id = $1 AND sender_id = $2 AND message_id = $3`,
			d.Recipient, d.Sender, d.MessageID).Scan(&res.ID)
		if err == nil {
			res.Duplicate = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("select mail: %w", err)
		}
		keys, err := deviceKeys(ctx, tx, d.Recipient)
		if err != nil {
			return err
		}
		if err := server.CheckCopies(keys, d.Copies, d.Has); err != nil {
			return err
		}
		if err := checkQuota(ctx, tx, d, q); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx,
			`INSERT INTO mail (recipient_id, sender_id, sender_device, message_id, size, deposited_at, expires_at)
			 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			d.Recipient, d.Sender, d.SenderDevice.String(), d.MessageID, d.Size(), d.At, d.Expires).Scan(&res.ID); err != nil {
			return fmt.Errorf("insert mail: %w", err)
		}
		devs := make([]string, 0, len(d.Copies))
		cts := make([][]byte, 0, len(d.Copies))
		for _, c := range d.Copies {
			devs = append(devs, c.Device.String())
			cts = append(cts, c.Ciphertext)
		}
		// One statement for all copies: a round trip, where COPY takes
		// several.
		if _, err := tx.Exec(ctx,
			`INSERT INTO mail_copies (mail_id, device, ciphertext)
			 SELECT $1, dev, ct FROM unnest($2::text[], $3::bytea[]) AS c(dev, ct)`,
			res.ID, devs, cts); err != nil {
			return fmt.Errorf("insert mail copies: %w", err)
		}
		return nil
	})
	if err != nil {
		return server.DepositResult{}, err
	}
	return res, nil
}

// checkQuota refuses a deposit that would take the recipient's unexpired
// mail over q.
func checkQuota(ctx context.Context, tx pgx.Tx, d server.Deposit, q server.MailQuota) error {
	var n, size int64
	if err := tx.QueryRow(ctx,
		`SELECT COUNT(*), COALESCE(SUM(size), 0)::bigint FROM mail WHERE recipient_id = $1 AND expires_at > $2`,
		d.Recipient, d.At).Scan(&n, &size); err != nil {
		return fmt.Errorf("select mailbox use: %w", err)
	}
	if n+1 > int64(q.Messages) || size+d.Size() > q.Bytes {
		return fmt.Errorf("%w: %d messages, %d bytes", rendezvous.ErrMailboxFull, n, size)
	}
	return nil
}

// FetchMail returns the device's unexpired copies, oldest first.
func (s *Store) FetchMail(ctx context.Context, device peer.ID, now time.Time, max int) ([]server.Mail, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT m.id, u.name, m.sender_device, m.message_id, m.deposited_at, c.ciphertext
		 FROM mail_copies c JOIN mail m ON m.id = c.mail_id JOIN users u ON u.id = m.sender_id
		 WHERE c.device = $1 AND m.expires_at > $2
		 ORDER BY m.id LIMIT $3`, device.String(), now, max)
	if err != nil {
		return nil, fmt.Errorf("select mail: %w", err)
	}
	defer rows.Close()
	var out []server.Mail
	for rows.Next() {
		var (
			m      server.Mail
			sender string
		)
		if err := rows.Scan(&m.ID, &m.Sender, &sender, &m.MessageID, &m.Deposited, &m.Ciphertext); err != nil {
			return nil, fmt.Errorf("scan mail: %w", err)
		}
		if m.SenderDevice, err = peer.Decode(sender); err != nil {
			return nil, fmt.Errorf("mail %d sender device %q: %w", m.ID, sender, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select mail: %w", err)
	}
	return out, nil
}

// CountMail counts the device's unexpired copies.
func (s *Store) CountMail(ctx context.Context, device peer.ID, now time.Time) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx,
		`SELECT COUNT(*) FROM mail_copies c JOIN mail m ON m.id = c.mail_id
		 WHERE c.device = $1 AND m.expires_at > $2`, device.String(), now).Scan(&n); err != nil {
		return 0, fmt.Errorf("count mail: %w", err)
	}
	return n, nil
}

// AckMail deletes the device's copies of ids, then the messages left
// without copies.
func (s *Store) AckMail(ctx context.Context, device peer.ID, ids []int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var deleted int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Lock the messages: of two devices acknowledging a message's
		// last two copies at once, the second must see the first's
		// deletion, and delete the message.
		if _, err := tx.Exec(ctx,
			`SELECT id FROM mail WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
			return fmt.Errorf("lock mail: %w", err)
		}
		rows, err := tx.Query(ctx,
			`DELETE FROM mail_copies WHERE device = $1 AND mail_id = ANY($2) RETURNING mail_id`,
			device.String(), ids)
		if err != nil {
			return fmt.Errorf("delete mail copies: %w", err)
		}
		gone, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("delete mail copies: %w", err)
		}
		deleted = len(gone)
		if _, err := tx.Exec(ctx,
			`DELETE FROM mail m WHERE m.id = ANY($1)
			 AND NOT EXISTS (SELECT 1 FROM mail_copies c WHERE c.mail_id = m.id)`, gone); err != nil {
			return fmt.Errorf("delete delivered mail: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}

// ExpireMail deletes the messages expired at now with their copies.
func (s *Store) ExpireMail(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM mail WHERE expires_at <= $1`, now)
	if err != nil {
		return 0, fmt.Errorf("delete expired mail: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// dropDeviceMail deletes a revoked device's key and copies, and the
// messages no other device waits for.
func dropDeviceMail(ctx context.Context, tx pgx.Tx, device peer.ID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM device_keys WHERE device = $1`, device.String()); err != nil {
		return fmt.Errorf("delete device key: %w", err)
	}
	// Lock the device's messages, as AckMail does.
	if _, err := tx.Exec(ctx,
		`SELECT id FROM mail WHERE id IN (SELECT mail_id FROM mail_copies WHERE device = $1) ORDER BY id FOR UPDATE`,
		device.String()); err != nil {
		return fmt.Errorf("lock mail: %w", err)
	}
	rows, err := tx.Query(ctx, `DELETE FROM mail_copies WHERE device = $1 RETURNING mail_id`, device.String())
	if err != nil {
		return fmt.Errorf("delete mail copies: %w", err)
	}
	gone, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("delete mail copies: %w", err)
	}
	if _, err := tx.Exec(ctx,
		`DELETE FROM mail m WHERE m.id = ANY($1)
		 AND NOT EXISTS (SELECT 1 FROM mail_copies c WHERE c.mail_id = m.id)`, gone); err != nil {
		return fmt.Errorf("delete mail only for the device: %w", err)
	}
	return nil
}
