package main

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

func TestParseRendezvous(t *testing.T) {
	id := nodetest.PeerID(t)
	for _, tt := range []struct {
		name, in, want string // want: a part of the error, "" for none
	}{
		{"good", "/ip4/127.0.0.1/tcp/4001/p2p/" + id.String(), ""},
		{"spaces around", "  /ip4/127.0.0.1/tcp/4001/p2p/" + id.String() + "\n", ""},
		{"empty", "", "no rendezvous address given"},
		{"not a multiaddr", "127.0.0.1:4001", "is not a multiaddr"},
		{"no peer ID", "/ip4/127.0.0.1/tcp/4001", "must end in /p2p/"},
		{"only a peer ID", "/p2p/" + id.String(), "no address to reach it at"},
		{"bad peer ID", "/ip4/127.0.0.1/tcp/4001/p2p/xyz", "is not a multiaddr"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseRendezvous(tt.in)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want it taken", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, app.ErrInvalidArgument)):
				t.Errorf("got %v, want ErrInvalidArgument saying %q", err, tt.want)
			}
		})
	}
}

// fakeTestnet writes what parley-testnet up leaves in its directory:
// ports.json and the rendezvous server's key.
func fakeTestnet(t *testing.T, dir, tcpAddr string) peer.ID {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := crypto.MarshalPrivateKey(key)
	if err := os.MkdirAll(filepath.Join(dir, "rendezvous"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rendezvous", "identity.key"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := `{"rendezvous": ["` + tcpAddr + `", "/ip4/127.0.0.1/udp/9/quic-v1"]}`
	if err := os.WriteFile(filepath.Join(dir, "ports.json"), []byte(ports), 0o600); err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	return id
}

func TestSuggestRendezvous(t *testing.T) {
	t.Setenv("PARLEY_RENDEZVOUS", "")
	t.Setenv("TMPDIR", t.TempDir())
	if addr, from := suggestRendezvous(); addr != "" {
		t.Errorf("with no testnet: got %q from %q, want none", addr, from)
	}

	// Two testnets in TMPDIR: a stopped one and a running one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	running := filepath.Join(os.TempDir(), "parley-testnet-1")
	stopped := filepath.Join(os.TempDir(), "parley-testnet-2")
	runningID := fakeTestnet(t, running, "/ip4/127.0.0.1/tcp/"+itoa(port))
	fakeTestnet(t, stopped, "/ip4/127.0.0.1/tcp/1")
	addr, from := suggestRendezvous()
	if want := "/ip4/127.0.0.1/tcp/" + itoa(port) + "/p2p/" + runningID.String(); addr != want {
		t.Errorf("got %q, want the running testnet's %q", addr, want)
	}
	if !strings.Contains(from, running) || !strings.Contains(from, "(running)") {
		t.Errorf("from: got %q", from)
	}
	if _, err := parseRendezvous(addr); err != nil {
		t.Errorf("the suggestion does not parse: %v", err)
	}

	t.Setenv("PARLEY_TESTNET_DIR", stopped)
	if addr, from := suggestRendezvous(); !strings.HasPrefix(addr, "/ip4/127.0.0.1/tcp/1/p2p/") || !strings.Contains(from, "not running now") {
		t.Errorf("with PARLEY_TESTNET_DIR: got %q from %q", addr, from)
	}
	env := "/ip4/192.0.2.1/tcp/4001/p2p/" + runningID.String()
	t.Setenv("PARLEY_RENDEZVOUS", env)
	if addr, from := suggestRendezvous(); addr != env || !strings.Contains(from, "PARLEY_RENDEZVOUS") {
		t.Errorf("with PARLEY_RENDEZVOUS: got %q from %q", addr, from)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDaemonSetupJoins starts the daemon without --rendezvous, chooses
// the network over the API as the UI does, and starts it again: the
// address was remembered.
func TestDaemonSetupJoins(t *testing.T) {
	t.Setenv("PARLEY_RENDEZVOUS", "")
	t.Setenv("TMPDIR", t.TempDir())
	server := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	serverAddr := server.Addrs()[0].String() + "/p2p/" + server.ID().String()
	dir := filepath.Join(t.TempDir(), "carol")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := parley(t, ctx, "", "--data", dir, "daemon", "--listen", "/ip4/127.0.0.1/tcp/0", "--supernode", "never")
		done <- err
	}()
	var cl *api.Client
	deadline := time.Now().Add(20 * time.Second)
	for {
		var err error
		if cl, err = api.Dial(dir); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon wrote no API address: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	callCtx, callCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer callCancel()
	st, err := cl.Status(callCtx)
	if err != nil || st.Setup == nil || st.Peer == "" {
		t.Fatalf("status in the setup state: %+v, %v", st, err)
	}
	if _, err := cl.JoinNetwork(callCtx, "/ip4/127.0.0.1/tcp/4001"); !errors.Is(err, app.ErrInvalidArgument) {
		t.Errorf("no peer ID: got %v, want ErrInvalidArgument", err)
	}
	down := unreachableRendezvous(t)
	if _, err := cl.JoinNetwork(callCtx, down); !errors.Is(err, app.ErrServerUnreachable) {
		t.Errorf("nothing there: got %v, want ErrServerUnreachable", err)
	}
	if _, err := os.Stat(filepath.Join(dir, datadir.SettingsFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused address was saved: %v", err)
	}
	st, err = cl.JoinNetwork(callCtx, serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Setup != nil || st.Rendezvous != serverAddr || st.Peer == "" {
		t.Errorf("status after joining: got %+v", st)
	}
	if s := savedSettings(t, dir); s.Rendezvous != serverAddr || s.Supernode != "never" || len(s.Listen) != 1 {
		t.Errorf("saved: %+v, want the network and the flags given", s)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("daemon: %v", err)
	}

	// The next start goes to that network without asking.
	stopped, stop := context.WithCancel(context.Background())
	stop()
	if out := mustParley(t, stopped, "", "--data", dir, "daemon"); strings.Contains(out, "no network chosen") {
		t.Errorf("second start: got %q, want the remembered network", out)
	}
}
