package server_test

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous/cert"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
)

// TestSupernodeCheck: with the real check, a working supernode is seated
// (the check took a reservation on it, which its load shows and which ends
// with the check), while volunteers announcing a closed port or a tarpit
// (a port that accepts and then says nothing) stay standbys with the
// reason, and are never handed out.
func TestSupernodeCheck(t *testing.T) {
	t.Parallel()
	ts := startServer(t, func(c *server.Config) { c.SupernodeCheck = nil })
	ctx := testContext(t)

	verifier, err := cert.NewVerifier(ts.srv.CertPublicKey())
	if err != nil {
		t.Fatal(err)
	}
	good := newNode(t)
	sn, err := relay.Start(good, relay.Config{Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	goodDir := client.New(good, ts.info())
	a, err := goodDir.AnnounceSupernode(ctx, good.Addrs(), &pb.SupernodeLoad{})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Active {
		t.Errorf("a working supernode on loopback: announced standby, want active at once (its check is quick)")
	}

	closed := closedPort(t)
	tarpit := tarpitPort(t)
	for _, addr := range []ma.Multiaddr{closed, tarpit} {
		c, n := newClient(t, ts)
		a, err := c.AnnounceSupernode(ctx, []ma.Multiaddr{addr}, &pb.SupernodeLoad{})
		if err != nil {
			t.Fatalf("announce %s: %v", addr, err)
		}
		if a.Active {
			t.Errorf("a supernode at %s (%s) was seated", addr, n.ID())
		}
	}
	// The tarpit's check ends with its timeout (10 s).
	var announced time.Time
	tstest.WaitFor(t, 20*time.Second, func() error {
		// The working one keeps announcing itself, as its heartbeat does
		// (within the announcement rate limit).
		if time.Since(announced) > 3*time.Second {
			announced = time.Now()
			if _, err := goodDir.AnnounceSupernode(ctx, good.Addrs(), &pb.SupernodeLoad{}); err != nil {
				t.Fatal(err)
			}
		}
		failed := 0
		for _, e := range ts.srv.Supernodes() {
			switch {
			case e.Peer == good.ID():
				if !e.Active || !e.Checked {
					t.Fatalf("the working supernode: %+v, want active and checked", e)
				}
			case e.Active:
				t.Fatalf("a dead supernode is active: %+v", e)
			case e.CheckError != "":
				failed++
			}
		}
		if failed != 2 {
			return fmt.Errorf("%d of the 2 dead supernodes have failed their check", failed)
		}
		return nil
	})
	for _, e := range ts.srv.Supernodes() {
		t.Logf("%s active=%v checked=%v error=%q", e.Peer, e.Active, e.Checked, e.CheckError)
	}
	observer, _ := newClient(t, ts)
	list, err := observer.Supernodes(ctx, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != good.ID() {
		t.Errorf("listed %v, want only the working supernode %s", ids(list), good.ID())
	}
	// The checker's reservation ended when it disconnected.
	tstest.WaitFor(t, 10*time.Second, func() error {
		if r := sn.Load().GetReservations(); r != 0 {
			return fmt.Errorf("the supernode still holds %d reservations after the check", r)
		}
		return nil
	})
}

func ids(list []peer.AddrInfo) []peer.ID {
	out := make([]peer.ID, len(list))
	for i, p := range list {
		out[i] = p.ID
	}
	return out
}

// closedPort is a loopback TCP address nothing listens on.
func closedPort(t *testing.T) ma.Multiaddr {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close()
	return ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(addr.Port))
}

// tarpitPort accepts TCP connections and never writes a byte.
func tarpitPort(t *testing.T) ma.Multiaddr {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return ma.StringCast("/ip4/127.0.0.1/tcp/" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
}
