package dht

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/dht/records"
	"github.com/parleynet/parley/internal/atomicfile"
	"github.com/parleynet/parley/internal/tstest"
)

func keyOf(t *testing.T, d *DHT) crypto.PrivKey {
	t.Helper()
	k := d.Host().Peerstore().PrivKey(d.Host().ID())
	if k == nil {
		t.Fatal("no private key in the peerstore")
	}
	return k
}

// TestAddressRecord: a device behind NAT publishes its signed address
// record by itself; another client, which never met it, finds it; a newer
// record replaces it, also after the device restarts.
func TestAddressRecord(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 4)
	seqFile := filepath.Join(t.TempDir(), "dht.seq")
	seq, err := FileSeq(seqFile)
	if err != nil {
		t.Fatal(err)
	}
	device := client(t, servers[:1], WithAddressRecords(), WithSeq(seq))
	finder := client(t, servers[3:])

	var first records.Record
	tstest.WaitFor(t, waitTimeout, func() error {
		r, err := finder.LookupAddrs(ctx, device.Host().ID())
		if err != nil {
			return fmt.Errorf("the device's record is not found: %w", err)
		}
		first = r
		return nil
	})
	if first.Peer != device.Host().ID() || len(first.Addrs) == 0 {
		t.Fatalf("got %+v", first)
	}
	for _, a := range first.Addrs {
		if !slices.ContainsFunc(device.Host().Addrs(), a.Equal) {
			t.Errorf("record address %s is not one of the device's %v", a, device.Host().Addrs())
		}
	}
	if finder.Host().Network().Connectedness(device.Host().ID()) == network.Connected {
		t.Error("the finder connected to the device")
	}

	// A restart: a new DHT with the same identity and sequence file.
	device.Close()
	seq2, err := FileSeq(seqFile)
	if err != nil {
		t.Fatal(err)
	}
	restarted, err := New(device.Host(), WithMode(ModeClient), WithBootstrapPeers(info(servers[0])), WithSeq(seq2),
		WithRecordAddrs(func() []ma.Multiaddr { return []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.7/tcp/4001")} }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { restarted.Close() })
	if err := restarted.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	second, err := restarted.PublishAddrs(ctx)
	if err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	if second.Seq <= first.Seq {
		t.Fatalf("sequence went from %d to %d across a restart", first.Seq, second.Seq)
	}
	got, err := finder.LookupAddrs(ctx, device.Host().ID())
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != second.Seq || len(got.Addrs) != 1 || got.Addrs[0].String() != "/ip4/192.0.2.7/tcp/4001" {
		t.Fatalf("got seq %d %v, want seq %d with the new address", got.Seq, got.Addrs, second.Seq)
	}
	if r, ok := restarted.Published(records.KindAddr); !ok || r.Seq != second.Seq {
		t.Errorf("Published: %v %v", r.Seq, ok)
	}
}

// TestRecordsRefused: DHT servers refuse forged, replayed (lower
// sequence), expired, malformed and oversized records, whether they come
// through PutRecord or as a raw PUT_VALUE.
func TestRecordsRefused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 4)
	owner := client(t, servers[:1])
	mallory := client(t, servers[2:3])
	ownerKey, malloryKey := keyOf(t, owner), keyOf(t, mallory)
	ownerID := owner.Host().ID()
	addr := []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/4001")}
	sign := func(k crypto.PrivKey, kind records.Kind, seq uint64, issued time.Time) records.Record {
		r, err := records.Sign(k, kind, seq, addr, issued, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	good := sign(ownerKey, records.KindAddr, 10, time.Now())
	if n, err := owner.PutRecord(ctx, good); err != nil || n == 0 {
		t.Fatalf("put the genuine record: %d, %v", n, err)
	}

	// A replay of an older record, signed by the owner, from another node.
	older := sign(ownerKey, records.KindAddr, 9, time.Now())
	if _, err := mallory.PutRecord(ctx, older); !errors.Is(err, ErrRefused) {
		t.Fatalf("replayed record: got %v, want %v", err, ErrRefused)
	}
	// An expired record never leaves the node.
	if _, err := mallory.PutRecord(ctx, sign(ownerKey, records.KindAddr, 11, time.Now().Add(-3*time.Hour))); !errors.Is(err, records.ErrExpired) {
		t.Fatalf("expired record: got %v, want %v", err, records.ErrExpired)
	}

	mine := sign(malloryKey, records.KindAddr, 99, time.Now())
	oversized := bytes.Repeat([]byte{1}, records.MaxSize+1)
	forgedBody := func() []byte { // mallory's record with the owner's peer ID swapped in
		v := bytes.Clone(mine.Raw)
		i := bytes.Index(v, []byte(mallory.Host().ID()))
		copy(v[i:], []byte(ownerID))
		return v
	}()
	pm, err := kadpb.NewProtocolMessenger(mallory.Kad().MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	raw := []struct {
		name  string
		key   string
		value []byte
	}{
		{"replayed (lower sequence)", good.Key(), older.Raw},
		{"forged: someone else's signature", good.Key(), forgedBody},
		{"another peer's record under the owner's key", good.Key(), mine.Raw},
		{"supernode record under an addr key", good.Key(), sign(ownerKey, records.KindSupernode, 50, time.Now()).Raw},
		{"expired", good.Key(), sign(ownerKey, records.KindAddr, 60, time.Now().Add(-3*time.Hour)).Raw},
		{"malformed", good.Key(), []byte("hello")},
		{"oversized", good.Key(), oversized},
		{"unknown namespace", "/pk/" + string(ownerID), good.Raw},
		{"public-key records are not served", "/ipns/" + string(ownerID), good.Raw},
	}
	for _, tt := range raw {
		t.Run(tt.name, func(t *testing.T) {
			for _, s := range servers {
				if err := pm.PutValue(ctx, s.Host().ID(), record.MakePutRecord(tt.key, tt.value)); err == nil {
					t.Errorf("server %s accepted it", s.Host().ID())
				}
			}
		})
	}
	// Every server still holds the genuine record, or none.
	for _, s := range servers {
		v, err := s.Kad().GetValue(ctx, good.Key(), routing.Offline)
		if err == nil && !bytes.Equal(v, good.Raw) {
			t.Errorf("server %s holds %x, want the genuine record", s.Host().ID(), v)
		}
	}
	got, err := mallory.LookupAddrs(ctx, ownerID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 10 {
		t.Fatalf("lookup after the attacks: seq %d, want 10", got.Seq)
	}
}

// TestSupernodeDiscovery: a client that knows no supernode finds the
// current ones through the DHT; a node that only claims to be one (a
// provider record without a signed announcement) is left out.
func TestSupernodeDiscovery(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	servers := newNetwork(t, 4)
	sn1 := server(t, servers[:1])
	sn2 := server(t, servers[1:2])
	sn1.SetSupernode(true)
	sn2.SetSupernode(true)
	sn1.SetSupernode(true) // idempotent
	impostor := server(t, servers[2:3])
	if err := impostor.Provide(ctx, SupernodeCID); err != nil {
		t.Fatal(err)
	}
	c := client(t, servers[3:])

	want := map[peer.ID]*DHT{sn1.Host().ID(): sn1, sn2.Host().ID(): sn2}
	var got []peer.AddrInfo
	tstest.WaitFor(t, waitTimeout, func() error {
		var err error
		got, err = c.FindSupernodes(ctx, 0)
		if err != nil || len(got) != 2 {
			return fmt.Errorf("FindSupernodes = %v, %v; want both supernodes", got, err)
		}
		return nil
	})
	for _, ai := range got {
		d, ok := want[ai.ID]
		if !ok {
			t.Fatalf("FindSupernodes returned %s, which is no supernode", ai.ID)
		}
		if len(ai.Addrs) != len(d.Host().Addrs()) {
			t.Errorf("%s: addrs %v, want %v", ai.ID, ai.Addrs, d.Host().Addrs())
		}
	}
	if one, err := c.FindSupernodes(ctx, 1); err != nil || len(one) != 1 {
		t.Errorf("FindSupernodes(1) = %v, %v", one, err)
	}
	sn2.SetSupernode(false)
	sn2.SetSupernode(false)
	if _, err := c.LookupSupernode(ctx, impostor.Host().ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("impostor's record: got %v, want %v", err, ErrNotFound)
	}
}

func TestSeqSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seq")
	s, err := FileSeq(path)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.NextSeq()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.NextSeq()
	if b <= a {
		t.Fatalf("%d then %d", a, b)
	}
	if min := uint64(time.Now().Add(-time.Hour).UnixMilli()); a < min {
		t.Errorf("first number %d is below the clock", a)
	}
	s2, err := FileSeq(path)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := s2.NextSeq(); c <= b {
		t.Fatalf("after reopening: %d, want above %d", c, b)
	}
	// A number persisted ahead of the clock is still exceeded.
	if err := atomicfile.Write(path, []byte("99999999999999999\n")); err != nil {
		t.Fatal(err)
	}
	s3, _ := FileSeq(path)
	if c, _ := s3.NextSeq(); c != 100000000000000000 {
		t.Fatalf("got %d, want one above the persisted number", c)
	}
	if err := atomicfile.Write(path, []byte("not a number")); err != nil {
		t.Fatal(err)
	}
	if _, err := FileSeq(path); err == nil {
		t.Fatal("a corrupt sequence file was accepted")
	}
	if _, err := FileSeq(filepath.Join(t.TempDir(), "missing-dir", "x", "seq")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	cs := ClockSeq()
	x, _ := cs.NextSeq()
	y, _ := cs.NextSeq()
	if y <= x {
		t.Fatalf("ClockSeq: %d then %d", x, y)
	}
}
