package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous/client"
)

func TestSessionCache(t *testing.T) {
	dir := t.TempDir()
	newEngine := func() *Engine {
		return &Engine{cfg: Config{DataDir: dir}, sess: newSessionKeeper(nil, "", 0, ""), contacts: newContactSync(nil, nil)}
	}
	phone, laptop := nodetest.New(t).ID(), nodetest.New(t).ID()
	addr := ma.StringCast("/ip4/192.0.2.7/tcp/4001")

	e := newEngine()
	e.saveSession() // not logged in yet: nothing to keep
	if _, err := os.Stat(filepath.Join(dir, sessionFile)); !os.IsNotExist(err) {
		t.Fatalf("saved a session without an account: %v", err)
	}
	e.sess.restore("alice", []byte("certificate"))
	e.contacts.restore([]client.Presence{
		{Username: "bob", Peer: laptop, Devices: []peer.AddrInfo{{ID: phone}, {ID: laptop, Addrs: []ma.Multiaddr{addr}}}},
		{Username: "carol"}, // offline
	})
	e.saveSession()
	if fi, err := os.Stat(filepath.Join(dir, sessionFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("session file: %v, %v; want mode 0600", fi, err)
	}

	r := newEngine()
	if err := r.restoreSession(); err != nil {
		t.Fatal(err)
	}
	if user, cert := r.sess.account(); user != "alice" || string(cert) != "certificate" {
		t.Errorf("restored user %q, certificate %q", user, cert)
	}
	restored := r.contacts.known()
	if len(restored) != 2 || restored[0].Username != "bob" || restored[1].Username != "carol" {
		t.Fatalf("restored contacts: %v", restored)
	}
	bob := restored[0]
	if bob.Online || bob.Peer != laptop || !bob.HasDevice(phone) || len(bob.Devices) != 2 || !bob.Devices[1].Addrs[0].Equal(addr) {
		t.Errorf("restored bob: %+v", bob)
	}
	// Without a session, messages go to bob's last device and are taken
	// from each of his devices.
	if id, ok := r.contacts.Lookup("bob"); !ok || id != laptop {
		t.Errorf("lookup bob: %s, %v", id, ok)
	}
	if name, ok := r.contacts.UsernameOf(phone); !ok || name != "bob" {
		t.Errorf("sender %s: %q, %v", phone, name, ok)
	}

	r.forgetSession()
	if err := newEngine().restoreSession(); err != nil {
		t.Fatalf("restore after forget: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, sessionFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newEngine().restoreSession(); err == nil {
		t.Error("a corrupt session file was accepted")
	}
}
