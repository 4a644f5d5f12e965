package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/server"
)

// AreContacts reports whether a and b are accepted contacts.
func (s *Store) AreContacts(ctx context.Context, a, b int64) (bool, error) {
	var n int
	if err := s.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM contacts WHERE user_id = ? AND contact_id = ? AND state = 'accepted'`,
		a, b).Scan(&n); err != nil {
		return false, fmt.Errorf("select contact: %w", err)
	}
	return n > 0, nil
}

// PutDeviceKey stores or replaces the device's mailbox key.
func (s *Store) PutDeviceKey(ctx context.Context, userID int64, device peer.ID, key []byte, at time.Time) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := checkSession(ctx, tx, server.SessionRecord{Device: device, UserID: userID}); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO device_keys (device, signed_key, published_at) VALUES (?, ?, ?)
			 ON CONFLICT (device) DO UPDATE SET signed_key = excluded.signed_key, published_at = excluded.published_at`,
			device.String(), key, at.UnixMilli()); err != nil {
			return fmt.Errorf("insert device key: %w", err)
		}
		return nil
	})
}

// DeviceKeys returns the keys of the user's active devices.
func (s *Store) DeviceKeys(ctx context.Context, userID int64) ([]server.DeviceKey, error) {
	return deviceKeys(ctx, s.db, userID)
}

func deviceKeys(ctx context.Context, q querier, userID int64) ([]server.DeviceKey, error) {
	rows, err := q.QueryContext(ctx,
		`SELECT k.device, k.signed_key, k.published_at
		 FROM device_keys k JOIN devices d ON d.peer_id = k.device
		 WHERE d.user_id = ? AND d.revoked_at IS NULL
		 ORDER BY d.enrolled_at, d.rowid`, userID)
	if err != nil {
		return nil, fmt.Errorf("select device keys: %w", err)
	}
	defer rows.Close()
	var keys []server.DeviceKey
	for rows.Next() {
		var (
			k         server.DeviceKey
			dev       string
			published int64
		)
		if err := rows.Scan(&dev, &k.Key, &published); err != nil {
			return nil, fmt.Errorf("scan device key: %w", err)
		}
		if k.Device, err = peer.Decode(dev); err != nil {
			return nil, fmt.Errorf("device %q: %w", dev, err)
		}
		k.Published = time.UnixMilli(published)
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
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx,
			`SELECT id FROM mail WHERE recipient_id = ? AND sender_id = ? AND message_id = ?`,
			d.Recipient, d.Sender, d.MessageID).Scan(&res.ID)
		if err == nil {
			res.Duplicate = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
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
		if err := tx.QueryRowContext(ctx,
			`INSERT INTO mail (recipient_id, sender_id, sender_device, message_id, size, deposited_at, expires_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			d.Recipient, d.Sender, d.SenderDevice.String(), d.MessageID, d.Size(),
			d.At.UnixMilli(), d.Expires.UnixMilli()).Scan(&res.ID); err != nil {
			return fmt.Errorf("insert mail: %w", err)
		}
		for _, c := range d.Copies {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO mail_copies (mail_id, device, ciphertext) VALUES (?, ?, ?)`,
				res.ID, c.Device.String(), c.Ciphertext); err != nil {
				return fmt.Errorf("insert mail copy: %w", err)
			}
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
func checkQuota(ctx context.Context, tx *sql.Tx, d server.Deposit, q server.MailQuota) error {
	var (
		n    int
		size int64
	)
	if err := tx.QueryRowContext(ctx,
		`SELECT COUNT(*), COALESCE(SUM(size), 0) FROM mail WHERE recipient_id = ? AND expires_at > ?`,
		d.Recipient, d.At.UnixMilli()).Scan(&n, &size); err != nil {
		return fmt.Errorf("select mailbox use: %w", err)
	}
	if n+1 > q.Messages || size+d.Size() > q.Bytes {
		return fmt.Errorf("%w: %d messages, %d bytes", rendezvous.ErrMailboxFull, n, size)
	}
	return nil
}

// FetchMail returns the device's unexpired copies, oldest first.
func (s *Store) FetchMail(ctx context.Context, device peer.ID, now time.Time, max int) ([]server.Mail, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT m.id, u.name, m.sender_device, m.message_id, m.deposited_at, c.ciphertext
		 FROM mail_copies c JOIN mail m ON m.id = c.mail_id JOIN users u ON u.id = m.sender_id
		 WHERE c.device = ? AND m.expires_at > ?
		 ORDER BY m.id LIMIT ?`, device.String(), now.UnixMilli(), max)
	if err != nil {
		return nil, fmt.Errorf("select mail: %w", err)
	}
	defer rows.Close()
	var out []server.Mail
	for rows.Next() {
		var (
			m         server.Mail
			sender    string
			deposited int64
		)
		if err := rows.Scan(&m.ID, &m.Sender, &sender, &m.MessageID, &deposited, &m.Ciphertext); err != nil {
			return nil, fmt.Errorf("scan mail: %w", err)
		}
		if m.SenderDevice, err = peer.Decode(sender); err != nil {
			return nil, fmt.Errorf("mail %d sender device %q: %w", m.ID, sender, err)
		}
		m.Deposited = time.UnixMilli(deposited)
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
	if err := s.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM mail_copies c JOIN mail m ON m.id = c.mail_id
		 WHERE c.device = ? AND m.expires_at > ?`, device.String(), now.UnixMilli()).Scan(&n); err != nil {
		return 0, fmt.Errorf("count mail: %w", err)
	}
	return n, nil
}

// AckMail deletes the device's copies of ids, then the messages left
// without copies.
func (s *Store) AckMail(ctx context.Context, device peer.ID, ids []int64) (int, error) {
	var deleted int
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			res, err := tx.ExecContext(ctx,
				`DELETE FROM mail_copies WHERE device = ? AND mail_id = ?`, device.String(), id)
			if err != nil {
				return fmt.Errorf("delete mail copy: %w", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("delete mail copy: %w", err)
			}
			if n == 0 {
				continue
			}
			deleted++
			if _, err := tx.ExecContext(ctx,
				`DELETE FROM mail WHERE id = ? AND NOT EXISTS (SELECT 1 FROM mail_copies WHERE mail_id = ?)`,
				id, id); err != nil {
				return fmt.Errorf("delete delivered mail: %w", err)
			}
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
	res, err := s.db.ExecContext(ctx, `DELETE FROM mail WHERE expires_at <= ?`, now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("delete expired mail: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete expired mail: %w", err)
	}
	return int(n), nil
}

// dropDeviceMail deletes a revoked device's key and copies, and the
// messages no other device waits for.
func dropDeviceMail(ctx context.Context, tx *sql.Tx, device peer.ID) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_keys WHERE device = ?`, device.String()); err != nil {
		return fmt.Errorf("delete device key: %w", err)
	}
	if _, err := tx.ExecContext(ctx,
		`DELETE FROM mail WHERE id IN (SELECT mail_id FROM mail_copies WHERE device = ?)
		 AND NOT EXISTS (SELECT 1 FROM mail_copies c WHERE c.mail_id = mail.id AND c.device <> ?)`,
		device.String(), device.String()); err != nil {
		return fmt.Errorf("delete mail only for the device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM mail_copies WHERE device = ?`, device.String()); err != nil {
		return fmt.Errorf("delete mail copies: %w", err)
	}
	return nil
}
