package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/datadir"
)

// unreachableRendezvous is a rendezvous multiaddr no server answers: the
// engine starts without it and keeps trying in the background.
func unreachableRendezvous(t *testing.T) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return "/ip4/127.0.0.1/tcp/1/p2p/" + id.String()
}

func savedSettings(t *testing.T, dir string) datadir.Settings {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, datadir.SettingsFile))
	if err != nil {
		t.Fatal(err)
	}
	var s datadir.Settings
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDaemonRemembersSettings starts the daemon three times on one data
// directory; each start returns at once, its context being done.
func TestDaemonRemembersSettings(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join(t.TempDir(), "bob")
	rdv := unreachableRendezvous(t)

	// Without --rendezvous the first start waits for the network to be
	// chosen in the web UI, and remembers nothing yet.
	if out := mustParley(t, ctx, "", "--data", dir, "daemon"); !strings.Contains(out, "no network chosen yet") {
		t.Fatalf("first start without --rendezvous: got %q, want the setup state", out)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.SettingsFile)); !os.IsNotExist(err) {
		t.Fatalf("a start in the setup state saved settings: %v", err)
	}
	if _, err := api.Dial(dir); err == nil || !strings.Contains(err.Error(), "parley --data "+dir+" daemon --rendezvous ADDR") {
		t.Errorf("hint with no settings saved: got %v, want it to ask for --rendezvous", err)
	}

	out := mustParley(t, ctx, "", "--data", dir, "daemon", "--rendezvous", rdv,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--private", "--supernode", "never", "--upload-limit", "20MiB")
	if !strings.Contains(out, "parley daemon: device") {
		t.Fatalf("first start: got %q", out)
	}
	if s := savedSettings(t, dir); s.Rendezvous != rdv || !s.Private || s.Supernode != "never" || len(s.Listen) != 1 || s.UploadLimit != "20MiB" {
		t.Fatalf("saved after the first start: %+v", s)
	}
	if _, err := api.Dial(dir); err == nil || !strings.HasSuffix(err.Error(), "start one with: parley --data "+dir+" daemon") {
		t.Errorf("hint with settings saved: got %v, want plain parley --data DIR daemon", err)
	}

	// The command the hint gives.
	mustParley(t, ctx, "", "--data", dir, "daemon")
	if s := savedSettings(t, dir); s.Rendezvous != rdv || !s.Private || s.Supernode != "never" || s.UploadLimit != "20MiB" {
		t.Errorf("saved after a start without flags: %+v", s)
	}

	mustParley(t, ctx, "", "--data", dir, "daemon", "--private=false", "--upload-limit", "0")
	if s := savedSettings(t, dir); s.Rendezvous != rdv || s.Private || s.Supernode != "never" || s.UploadLimit != "0" {
		t.Errorf("saved after --private=false --upload-limit 0: %+v", s)
	}
}

// TestEngineConfigUploadLimit: the saved upload limit, as the flag or a
// person editing settings.json wrote it, becomes bytes a second.
func TestEngineConfigUploadLimit(t *testing.T) {
	rdv := unreachableRendezvous(t)
	for text, want := range map[string]int64{"": 0, "0": 0, "20MiB": 20 << 20, "20MiB/s": 20 << 20, " 1MB ": 1e6, "131072": 128 << 10} {
		cfg, err := engineConfig(t.TempDir(), datadir.Settings{Rendezvous: rdv, UploadLimit: text})
		if err != nil || cfg.UploadLimit != want {
			t.Errorf("upload-limit %q: got %d, %v; want %d", text, cfg.UploadLimit, err, want)
		}
	}
	for _, text := range []string{"fast", "-1MiB", "20Mbit", "100KiB", "1"} {
		if _, err := engineConfig(t.TempDir(), datadir.Settings{Rendezvous: rdv, UploadLimit: text}); err == nil || !strings.Contains(err.Error(), "--upload-limit") {
			t.Errorf("upload-limit %q: got %v, want an error naming --upload-limit", text, err)
		}
	}
}

// TestSecondDaemonIsRefused: while one daemon holds the data directory,
// a second one stops before touching it, and the first's api.json stays.
func TestSecondDaemonIsRefused(t *testing.T) {
	dir := t.TempDir()
	first, err := datadir.Open(dir) // the lock belongs to an open file: this process holds it as another daemon would
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	info := filepath.Join(dir, datadir.APIInfoFile)
	const firstInfo = `{"addr":"127.0.0.1:1","token":"first"}`
	if err := os.WriteFile(info, []byte(firstInfo), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err = parley(t, context.Background(), "", "--data", dir, "daemon", "--rendezvous", unreachableRendezvous(t))
	if _, ok := errors.AsType[*datadir.InUseError](err); !ok {
		t.Fatalf("second daemon: got %v, want *datadir.InUseError", err)
	}
	if data, err := os.ReadFile(info); err != nil || string(data) != firstInfo {
		t.Errorf("%s after the refused daemon: got %q, %v; want the first daemon's", datadir.APIInfoFile, data, err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.SettingsFile)); !os.IsNotExist(err) {
		t.Errorf("the refused daemon saved settings: %v", err)
	}
}
