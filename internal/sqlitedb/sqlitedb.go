// Package sqlitedb opens an embedded SQLite file (pure-Go driver
// modernc.org/sqlite, so builds need no cgo) with the pragmas Parley uses
// everywhere, and brings its schema up to date with versioned migrations.
package sqlitedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	logging "github.com/ipfs/go-log/v2"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Open opens (creating if needed) the SQLite file at path in WAL mode with
// foreign keys on, and applies the migrations it has not seen yet. The
// file is readable by its owner only (mode 0600), and so are SQLite's
// -wal and -shm files beside it, whatever the umask.
//
// migrations is the schema history: entry i is version i+1. Append only;
// never edit or reorder an entry that has shipped. A file whose version is
// newer than len(migrations) is refused, so an old build cannot corrupt a
// newer schema.
//
// The pool holds one connection, so statements and transactions never race
// each other for SQLite's write lock.
//
// No commit runs a WAL checkpoint (with synchronous=NORMAL the checkpoint
// is where SQLite fsyncs, so one commit in a thousand waited for it: the
// p99 of a chat message was 10 ms). A goroutine checkpoints instead, every
// CheckpointEvery, on a connection of its own (a PASSIVE checkpoint does
// not block the writer); Close stops it.
func Open(path string, migrations []string) (*DB, error) {
	if err := createPrivate(path); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	q := url.Values{"_pragma": {
		"busy_timeout(5000)",
		"foreign_keys(1)",
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"wal_autocheckpoint(0)",
	}}
	dsn := path + "?" + q.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := migrate(context.Background(), db, migrations); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate %s: %w", path, err)
	}
	ckpt, err := sql.Open("sqlite", dsn)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	ctx, cancel := context.WithCancel(context.Background())
	d := &DB{DB: db, ckpt: ckpt, stop: cancel, done: make(chan struct{})}
	go d.checkpoints(ctx)
	return d, nil
}

var log = logging.Logger("parley/sqlitedb")

// CheckpointEvery is how often the WAL is checkpointed.
const CheckpointEvery = 250 * time.Millisecond

// DB is an open SQLite file with its checkpointer.
type DB struct {
	*sql.DB
	ckpt *sql.DB // the checkpointer's connection
	stop context.CancelFunc
	done chan struct{}
}

// Close stops the checkpointer and closes the file (the last connection
// to close checkpoints what is left).
func (d *DB) Close() error {
	d.stop()
	<-d.done
	return errors.Join(d.ckpt.Close(), d.DB.Close())
}

func (d *DB) checkpoints(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := d.ckpt.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil && ctx.Err() == nil {
			log.Warnw("checkpoint", "err", err)
		}
	}
}

// createPrivate creates the file at path if it is missing, and makes it
// 0600. SQLite takes an empty file for a new database, and creates its
// -wal, -shm and -journal files with the database file's mode (chmodding
// an empty one left with another mode), so they are 0600 too; the
// process's umask can only narrow that.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return err
	}
	return f.Close()
}

func migrate(ctx context.Context, db *sql.DB, migrations []string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL -- unix ms
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this build knows (%d)", current, len(migrations))
	}
	for i := current; i < len(migrations); i++ {
		if err := apply(ctx, db, i+1, migrations[i]); err != nil {
			return err
		}
	}
	return nil
}

func apply(ctx context.Context, db *sql.DB, version int, stmts string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migration %d: begin: %w", version, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, stmts); err != nil {
		return fmt.Errorf("migration %d: %w", version, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
		version, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("migration %d: record: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migration %d: commit: %w", version, err)
	}
	return nil
}
