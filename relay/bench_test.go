package relay_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	circuit "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/relaytest"
)

const sinkProto = protocol.ID("/parley-test/sink/1.0.0")

// sink reads a stream to its end and answers with the byte count.
func sink(s network.Stream) {
	defer s.Close()
	n, err := io.Copy(io.Discard, s)
	if err != nil {
		s.Reset()
		return
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(n))
	s.Write(b[:])
}

// push sends size bytes to p on streams parallel streams and waits until
// the receiver counted them all.
func push(ctx context.Context, h *node.Node, p peer.ID, size int64, streams int, buf []byte) error {
	var wg sync.WaitGroup
	errs := make([]error, streams)
	for i := range streams {
		wg.Go(func() {
			s, err := h.NewStream(network.WithAllowLimitedConn(ctx, "bench"), p, sinkProto)
			if err != nil {
				errs[i] = err
				return
			}
			defer s.Close()
			share := size / int64(streams)
			for left := share; left > 0; {
				n := min(left, int64(len(buf)))
				if _, err := s.Write(buf[:n]); err != nil {
					errs[i] = err
					return
				}
				left -= n
			}
			s.CloseWrite()
			var b [8]byte
			if _, err := io.ReadFull(s, b[:]); err != nil {
				errs[i] = fmt.Errorf("read count: %w", err)
				return
			}
			if got := int64(binary.BigEndian.Uint64(b[:])); got != share {
				errs[i] = fmt.Errorf("receiver counted %d bytes, want %d", got, share)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func tcpOnly(addrs []ma.Multiaddr) []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(ma.P_TCP)
		return err != nil
	})
}

func quicOnly(addrs []ma.Multiaddr) []ma.Multiaddr {
	return slices.DeleteFunc(slices.Clone(addrs), func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(ma.P_QUIC_V1)
		return err != nil
	})
}

// BenchmarkStreamThroughput compares one-way stream throughput on loopback
// directly and through a supernode, in the same run so that the two can be
// compared as a ratio (relayed/direct). Each op moves 32 MiB. "stock" is
// go-libp2p's choices (Noise first, 2 KiB relay buffers); "parley" is
// Parley's (TLS 1.3 first with batched system calls, 64 KiB buffers).
// cpu-ns/B is the CPU all three nodes spent per byte: unlike MB/s it does
// not depend on what else the machine runs.
//
//	go test -run '^$' -bench StreamThroughput -benchtime 20x ./relay
func BenchmarkStreamThroughput(b *testing.B) {
	const size = 32 << 20
	type setup struct {
		name      string
		transport func([]ma.Multiaddr) []ma.Multiaddr
		security  node.Security
		buffer    int
		streams   int
	}
	for _, st := range []setup{
		{"tcp/stock", tcpOnly, node.NoiseFirst, 2 << 10, 1},
		{"tcp/parley", tcpOnly, node.SecurityDefault, 0, 1},
		{"tcp/parley/4streams", tcpOnly, node.SecurityDefault, 0, 4},
		{"quic/parley", quicOnly, node.SecurityDefault, 0, 1},
	} {
		b.Run(st.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			iss := relaytest.NewIssuer(b)
			sec := node.WithSecurity(st.security)
			sn := iss.StartSupernode(b, relay.Config{Limits: relay.Limits{BufferSize: st.buffer}}, sec)
			a := nodetest.New(b, node.WithReachability(node.ReachabilityPrivate), sec)
			bob := nodetest.New(b, node.WithReachability(node.ReachabilityPrivate), sec)
			bob.SetStreamHandler(sinkProto, sink)
			buf := make([]byte, 256<<10)

			b.Run("direct", func(b *testing.B) {
				a.Peerstore().AddAddrs(bob.ID(), st.transport(bob.Addrs()), peerstore.TempAddrTTL)
				b.SetBytes(size)
				cpu := processCPU()
				for b.Loop() {
					if err := push(ctx, a, bob.ID(), size, st.streams, buf); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu, size)
				a.Network().ClosePeer(bob.ID())
				a.Peerstore().ClearAddrs(bob.ID())
			})
			b.Run("relayed", func(b *testing.B) {
				snInfo := peer.AddrInfo{ID: sn.Node.ID(), Addrs: st.transport(sn.Node.Addrs())}
				for _, n := range []*node.Node{a, bob} {
					if _, err := iss.Passport(b, n).Present(ctx, snInfo); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := circuit.Reserve(ctx, bob, snInfo); err != nil {
					b.Fatal(err)
				}
				a.Peerstore().AddAddrs(bob.ID(), relay.CircuitAddrs(sn.Node.ID(), snInfo.Addrs), peerstore.TempAddrTTL)
				b.SetBytes(size)
				cpu := processCPU()
				for b.Loop() {
					if err := push(ctx, a, bob.ID(), size, st.streams, buf); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, cpu, size)
				if p := a.PathTo(bob.ID()); p.Kind != node.Relayed {
					b.Fatalf("path %v, want relayed", p)
				}
			})
		})
	}
}

// processCPU is the CPU time this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time all three nodes spent per byte moved
// since start: unlike throughput, it does not depend on what else the
// machine is doing.
func reportCPU(b *testing.B, start time.Duration, size int64) {
	b.ReportMetric(float64(processCPU()-start)/float64(int64(b.N)*size), "cpu-ns/B")
}
