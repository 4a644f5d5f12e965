package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/command"
	"github.com/parleynet/parley/internal/command/commandtest"
	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous/client"
	"github.com/parleynet/parley/rendezvous/server"
	"github.com/parleynet/parley/rendezvous/store/sqlite"
)

// net is a small live DHT on loopback.
type net struct {
	servers  []*dht.DHT
	device   *dht.DHT // a client with a published address record
	provider *dht.DHT // a client that provides content
	content  cid.Cid
	super    *dht.DHT // a server announcing itself as a supernode
}

func startDHT(t *testing.T, n *node.Node, opts ...dht.Option) *dht.DHT {
	t.Helper()
	d, err := dht.New(n, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func addrOf(d *dht.DHT) string {
	return d.Host().Addrs()[0].String() + "/p2p/" + d.Host().ID().String()
}

func infoOf(d *dht.DHT) peer.AddrInfo {
	return peer.AddrInfo{ID: d.Host().ID(), Addrs: d.Host().Addrs()}
}

func startNet(t *testing.T, ctx context.Context) *net {
	t.Helper()
	public := func() *node.Node { return nodetest.New(t, node.WithReachability(node.ReachabilityPublic)) }
	first := startDHT(t, public(), dht.WithMode(dht.ModeServer), dht.WithRoutingTableService(nil))
	nw := &net{servers: []*dht.DHT{first}}
	for range 4 {
		nw.servers = append(nw.servers, startDHT(t, public(), dht.WithMode(dht.ModeServer), dht.WithBootstrapPeers(infoOf(first))))
	}
	nw.super = startDHT(t, public(), dht.WithMode(dht.ModeServer), dht.WithBootstrapPeers(infoOf(first)))
	nw.device = startDHT(t, nodetest.New(t), dht.WithMode(dht.ModeClient), dht.WithBootstrapPeers(infoOf(nw.servers[1])))
	nw.provider = startDHT(t, nodetest.New(t), dht.WithMode(dht.ModeClient), dht.WithBootstrapPeers(infoOf(nw.servers[2])))
	for _, d := range append(nw.servers[1:], nw.super, nw.device, nw.provider) {
		if err := d.Bootstrap(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range nw.servers {
		<-d.Kad().RefreshRoutingTable()
	}
	if _, err := nw.device.PublishAddrs(ctx); err != nil {
		t.Fatal(err)
	}
	sum, _ := mh.Sum([]byte("a shared file"), mh.SHA2_256, -1)
	nw.content = cid.NewCidV1(cid.Raw, sum)
	if err := nw.provider.Provide(ctx, nw.content); err != nil {
		t.Fatal(err)
	}
	nw.super.SetSupernode(true)
	return nw
}

// parleyDHT runs the CLI and returns its output and exit status.
func parleyDHT(t *testing.T, ctx context.Context, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	args = append(args[:1:1], append([]string{"--listen", "/ip4/127.0.0.1/tcp/0", "--timeout", "20s"}, args[1:]...)...)
	err := runCLI(ctx, args, &out)
	if err != nil {
		t.Logf("parley-dht %v: %v", args, err)
	}
	return out.String(), command.ExitCode(err)
}

func mustJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
}

// TestCLIAgainstLiveNetwork runs every command against a small loopback
// DHT and checks the --json documents and the exit statuses.
func TestCLIAgainstLiveNetwork(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	nw := startNet(t, ctx)
	boot := addrOf(nw.servers[3])
	deviceID := nw.device.Host().ID().String()

	t.Run("find-peer of a device: its address record", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "find-peer", "--bootstrap", boot, "--json", "--trace", deviceID)
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		var res findPeerResult
		mustJSON(t, out, &res)
		if !res.Found || res.Record == nil || res.Record.Peer != deviceID || res.Record.Kind != "addr" || len(res.Record.Addrs) == 0 {
			t.Fatalf("got %+v", res)
		}
		if len(res.Traces) != 2 {
			t.Fatalf("%d traces, want 2 (record, routing)", len(res.Traces))
		}
		rec := res.Traces[0]
		if rec.Summary.Hops < 1 || rec.Summary.Queried == 0 || len(rec.Events) == 0 {
			t.Errorf("record lookup trace: %+v", rec.Summary)
		}
		for _, ev := range rec.Events {
			if ev.Peer == "" || ev.Message != "GET_VALUE" || len(ev.Distance) != 64 || ev.Hop < 1 {
				t.Errorf("event %+v", ev)
			}
			if ev.Event == "response" && ev.RTTMs <= 0 {
				t.Errorf("response without RTT: %+v", ev)
			}
		}
	})
	t.Run("find-peer of a server: routing", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "find-peer", "--bootstrap", boot, "--json", nw.servers[4].Host().ID().String())
		var res findPeerResult
		mustJSON(t, out, &res)
		if code != 0 || res.Routing == nil || res.Routing.Peer != nw.servers[4].Host().ID().String() || len(res.Routing.Addrs) == 0 {
			t.Fatalf("exit %d, %+v", code, res)
		}
	})
	t.Run("find-peer of nobody: exit 3", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "find-peer", "--bootstrap", boot, "--json", nodetest.PeerID(t).String())
		var res findPeerResult
		mustJSON(t, out, &res)
		if code != command.ExitNotFound || res.Found {
			t.Fatalf("exit %d, %+v", code, res)
		}
	})
	t.Run("providers, flags after the CID", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "providers", nw.content.String(), "--bootstrap", boot, "--json", "--trace")
		var res providersResult
		mustJSON(t, out, &res)
		if code != 0 || !res.Found || len(res.Providers) != 1 || res.Providers[0].Peer != nw.provider.Host().ID().String() || len(res.Providers[0].Addrs) == 0 {
			t.Fatalf("exit %d, %+v", code, res)
		}
		found := false
		for _, ev := range res.Traces[0].Events {
			found = found || len(ev.Providers) > 0
		}
		if !found || res.Traces[0].Summary.Hops < 1 {
			t.Errorf("no trace event holds the provider: %+v", res.Traces[0].Summary)
		}
	})
	t.Run("providers of unknown content: exit 3", func(t *testing.T) {
		sum, _ := mh.Sum([]byte("nobody has it"), mh.SHA2_256, -1)
		out, code := parleyDHT(t, ctx, "providers", "--bootstrap", boot, "--json", cid.NewCidV1(cid.Raw, sum).String())
		var res providersResult
		mustJSON(t, out, &res)
		if code != command.ExitNotFound || res.Found || len(res.Providers) != 0 {
			t.Fatalf("exit %d, %+v", code, res)
		}
	})
	t.Run("get", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "get", "--bootstrap", boot, "--json", "/addr/"+deviceID)
		var res getResult
		mustJSON(t, out, &res)
		if code != 0 || !res.Found || res.Record.Peer != deviceID {
			t.Fatalf("exit %d, %+v", code, res)
		}
		out, code = parleyDHT(t, ctx, "get", "--bootstrap", boot, "--json", "/supernode/"+deviceID)
		mustJSON(t, out, &res)
		if code != command.ExitNotFound || res.Found {
			t.Fatalf("a device's supernode record: exit %d, %+v", code, res)
		}
	})
	t.Run("put, then get it back; a replay is refused", func(t *testing.T) {
		keyFile := filepath.Join(t.TempDir(), "key")
		key := nodetest.Key(t)
		raw, _ := crypto.MarshalPrivateKey(key)
		if err := os.WriteFile(keyFile, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		id, _ := peer.IDFromPrivateKey(key)
		out, code := parleyDHT(t, ctx, "put", "--bootstrap", boot, "--json", "--key", keyFile, "--seq", "5", "--addr", "/ip4/192.0.2.9/tcp/4001")
		var res putResult
		mustJSON(t, out, &res)
		if code != 0 || res.StoredOn == 0 || res.Record.Seq != 5 || res.Record.Peer != id.String() {
			t.Fatalf("exit %d, %+v", code, res)
		}
		out, _ = parleyDHT(t, ctx, "get", "--bootstrap", boot, "--json", "/addr/"+id.String())
		var got getResult
		mustJSON(t, out, &got)
		if !got.Found || !slices.Equal(got.Record.Addrs, []string{"/ip4/192.0.2.9/tcp/4001"}) {
			t.Fatalf("got %+v", got)
		}
		if out, code := parleyDHT(t, ctx, "put", "--bootstrap", boot, "--key", keyFile, "--seq", "4", "--addr", "/ip4/192.0.2.9/tcp/4001"); code != 1 {
			t.Fatalf("replay: exit %d\n%s", code, out)
		}
	})
	t.Run("provide, then find it", func(t *testing.T) {
		sum, _ := mh.Sum([]byte("provided from the CLI"), mh.SHA2_256, -1)
		k := cid.NewCidV1(cid.Raw, sum)
		out, code := parleyDHT(t, ctx, "provide", "--bootstrap", boot, "--json", k.String())
		var res provideResult
		mustJSON(t, out, &res)
		if code != 0 || res.StoredOn == 0 || res.Provider == "" {
			t.Fatalf("exit %d, %+v", code, res)
		}
		provs, err := nw.servers[0].FindProviders(ctx, k, 0)
		if err != nil || provs[0].ID.String() != res.Provider {
			t.Fatalf("providers %v, %v; want %s", provs, err, res.Provider)
		}
	})
	t.Run("supernodes", func(t *testing.T) {
		var res supernodesResult
		tstest.WaitFor(t, 20*time.Second, func() error {
			out, code := parleyDHT(t, ctx, "supernodes", "--bootstrap", boot, "--json")
			mustJSON(t, out, &res)
			if code != 0 {
				return fmt.Errorf("supernodes: exit %d, %+v", code, res)
			}
			return nil
		})
		if !res.Found || len(res.Supernodes) != 1 || res.Supernodes[0].Peer != nw.super.Host().ID().String() {
			t.Fatalf("got %+v", res)
		}
	})
	t.Run("routing-table", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "routing-table", "--json", addrOf(nw.servers[0]))
		var res routingTableResult
		mustJSON(t, out, &res)
		if code != 0 || res.Peer != nw.servers[0].Host().ID().String() || !res.Server || res.BucketSize != 20 || len(res.Peers) < 4 {
			t.Fatalf("exit %d, %+v", code, res)
		}
		if out, code := parleyDHT(t, ctx, "routing-table", addrOf(nw.servers[1])); code != 1 {
			t.Fatalf("a node without the service: exit %d\n%s", code, out)
		}
		// By peer ID, found through the DHT, in human form.
		out, code = parleyDHT(t, ctx, "routing-table", "--bootstrap", boot, nw.servers[0].Host().ID().String())
		if code != 0 || !strings.Contains(out, "server mode, bucket size 20") {
			t.Fatalf("exit %d\n%s", code, out)
		}
	})
	t.Run("ping", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "ping", "--json", "--count", "2", "--interval", "1ms", addrOf(nw.servers[2]))
		var res pingResult
		mustJSON(t, out, &res)
		if code != 0 || len(res.RTTsMs) != 2 || res.Lost != 0 {
			t.Fatalf("exit %d, %+v", code, res)
		}
		if _, code := parleyDHT(t, ctx, "ping", "--count", "1", addrOf(nw.device)); code != 1 {
			t.Fatalf("pinging a DHT client: exit %d, want 1", code)
		}
	})
	t.Run("human output with --trace", func(t *testing.T) {
		out, code := parleyDHT(t, ctx, "providers", "--bootstrap", boot, "--trace", nw.content.String())
		if code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		for _, want := range []string{"lookup: providers of " + nw.content.String(), "hop 1", "GET_PROVIDERS", "cpl", "xor", "rtt", "1 provider(s): " + nw.provider.Host().ID().String(), "= answered at hop", nw.provider.Host().ID().String() + "  /ip4/127.0.0.1/"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		out, code = parleyDHT(t, ctx, "find-peer", "--bootstrap", boot, deviceID)
		if code != 0 || !strings.Contains(out, "signed address record: /addr/"+deviceID) {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
}

// TestCLIThroughRendezvous joins the DHT through a rendezvous server's
// supernode directory alone.
func TestCLIThroughRendezvous(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nw := startNet(t, ctx)
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "rendezvous.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	rn := nodetest.New(t, node.WithReachability(node.ReachabilityPublic))
	cfg := server.LocalConfig(nodetest.Key(t))
	// The test's supernode is a DHT server only, with no relay service
	// for the directory's check to reserve on: it passes.
	cfg.SupernodeCheck = func(context.Context, peer.AddrInfo) error { return nil }
	srv, err := server.New(t.Context(), rn, store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// The supernode registers in the directory as relay nodes do.
	rc := client.New(nw.super.Host(), peer.AddrInfo{ID: rn.ID(), Addrs: rn.Addrs()})
	if _, err := rc.AnnounceSupernode(ctx, nw.super.Host().Addrs(), nil); err != nil {
		t.Fatal(err)
	}
	rdv := rn.Addrs()[0].String() + "/p2p/" + rn.ID().String()
	out, code := parleyDHT(t, ctx, "providers", "--rendezvous", rdv, "--json", nw.content.String())
	var res providersResult
	mustJSON(t, out, &res)
	if code != 0 || len(res.Providers) != 1 {
		t.Fatalf("exit %d, %+v", code, res)
	}
}

func TestCLIUsage(t *testing.T) {
	commandtest.CheckTree(t, newRoot)
	ctx := t.Context()
	var out bytes.Buffer
	if err := runCLI(ctx, []string{"--help"}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"find-peer", "providers", "routing-table", "--trace", "exit status", "3  not found", "2  usage"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	out.Reset()
	if err := runCLI(ctx, []string{"providers", "--help"}, &out); err != nil || !strings.Contains(out.String(), "-max") {
		t.Errorf("providers --help: %v\n%s", err, out.String())
	}
	tests := []struct {
		args []string
		want string
	}{
		{nil, "missing command: one of find-peer, get"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"providers"}, "providers needs CID"},
		{[]string{"providers", "notacid"}, "is not a CID"},
		{[]string{"providers", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}, "give --bootstrap"},
		{[]string{"providers", "--bootstrap", "/ip4/127.0.0.1/tcp/1", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"}, "--bootstrap"},
		{[]string{"get", "x", "y"}, "unexpected arguments"},
		{[]string{"get", "x"}, "x"},
		{[]string{"find-peer", "nobody"}, "is not a peer ID"},
		{[]string{"put", "--addr", "/ip4/1.2.3.4/tcp/1"}, "put needs --key"},
		{[]string{"put", "--kind", "pk"}, `--kind "pk"`},
		{[]string{"ping", "--count", "0", "x"}, "--count"},
		{[]string{"ping", "x", "--count", "many"}, `invalid argument "many" for "--count"`},
		{[]string{"supernodes", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"supernodes", "extra"}, `unknown command "extra"`},
	}
	for _, tt := range tests {
		out.Reset()
		err := runCLI(ctx, tt.args, &out)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want an error containing %q", tt.args, err, tt.want)
		}
		if command.ExitCode(err) != command.ExitUsage {
			t.Errorf("%v: exit %d, want %d", tt.args, command.ExitCode(err), command.ExitUsage)
		}
	}
}
