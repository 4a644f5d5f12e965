// Package store opens the rendezvous store a server is configured with:
// an embedded SQLite file by default, PostgreSQL when given a URL.
package store

import (
	"context"
	"strings"

	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/postgres"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

// Open opens db: a postgres:// or postgresql:// URL selects PostgreSQL
// (several replicas may share it); anything else is the path of a SQLite
// file, created if missing.
func Open(ctx context.Context, db string) (server.Store, error) {
	if IsPostgres(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(db)
}

// IsPostgres reports whether db names a PostgreSQL database.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}
