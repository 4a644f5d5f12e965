// Package pgtest gives tests a fresh PostgreSQL database.
//
// Tests find the server through PARLEY_TEST_POSTGRES, a URL such as
// postgres://postgres@127.0.0.1:55432/postgres?sslmode=disable whose user
// may create databases. Without it they skip, unless
// PARLEY_REQUIRE_POSTGRES=1 (as in CI), when they fail. `.ci/postgres.sh
// start` starts a throwaway server and prints its URL. The server must be
// PostgreSQL 13 or newer (DROP DATABASE ... WITH (FORCE)).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// EnvURL names the variable holding the server URL.
	EnvURL = "PARLEY_TEST_POSTGRES"
	// EnvRequire, set to 1, makes a missing EnvURL a failure.
	EnvRequire = "PARLEY_REQUIRE_POSTGRES"
)

// ServerURL returns the URL in PARLEY_TEST_POSTGRES. Without one, it skips
// the test, or fails it when PARLEY_REQUIRE_POSTGRES=1.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u != "" {
		return u
	}
	const how = EnvURL + " is not set; start a throwaway server with\n" +
		"\texport " + EnvURL + "=$(.ci/postgres.sh start)\n" +
		"(stop it with .ci/postgres.sh stop), or point it at any server where the user may CREATE DATABASE, e.g.\n" +
		"\t" + EnvURL + "='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'"
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("%s=1 but %s", EnvRequire, how)
	}
	t.Skip(how)
	return ""
}

// NewDatabase creates an empty database with a random name on the server
// in PARLEY_TEST_POSTGRES (see ServerURL for when there is none) and
// returns its URL. The database is dropped, with its connections, when the
// test ends; close stores before that (t.Cleanup runs last-in first-out, so
// a store opened after NewDatabase and closed in a Cleanup is).
func NewDatabase(t testing.TB) (dbURL string) {
	t.Helper()
	server := ServerURL(t)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got %q", EnvURL, server)
	}
	var b [8]byte
	rand.Read(b[:])
	name := "parley_test_" + hex.EncodeToString(b[:])

	if err := admin(server, `CREATE DATABASE `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := admin(server, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Error(err)
		}
	})

	u.Path = "/" + name
	return u.String()
}

// admin runs one statement on the server's own database.
func admin(server, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, server)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
