package sqlitedb

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrationsApplyOnceAndRefuseNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	v1 := []string{`CREATE TABLE a (id INTEGER PRIMARY KEY)`}
	v2 := append(v1, `CREATE TABLE b (id INTEGER PRIMARY KEY)`)

	db, err := Open(path, v1)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(path, v2) // applies only migration 2
	if err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("got %d migrations recorded, want 2", n)
	}
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal mode: got %q (%v), want wal", mode, err)
	}
	db.Close()

	_, err = Open(path, v1)
	if err == nil || !strings.Contains(err.Error(), "newer than this build") {
		t.Fatalf("old build on new schema: got %v, want refusal", err)
	}
}

func TestFailedMigrationLeavesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	bad := []string{`CREATE TABLE a (id INTEGER PRIMARY KEY); CREATE TABLE oops (`}
	if _, err := Open(path, bad); err == nil {
		t.Fatal("broken migration applied without error")
	}
	db, err := Open(path, []string{`CREATE TABLE a (id INTEGER PRIMARY KEY)`})
	if err != nil {
		t.Fatalf("table a survived the failed migration: %v", err)
	}
	db.Close()
}
