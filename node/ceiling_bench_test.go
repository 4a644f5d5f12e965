package node_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"

	"github.com/parleynet/parley/internal/tstest"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// ceilingProto is the libp2p protocol of the ceiling benchmark's sink.
const ceilingProto = "/parley-test/ceiling/1.0.0"

// ceilingALPN is the ALPN of the raw QUIC case.
const ceilingALPN = "parley-ceiling"

// ceilingResult is one sub-benchmark run's throughput and CPU cost.
type ceilingResult struct {
	mbps, cpuPerGiB float64
}

// ceilingRounds is how many times BenchmarkLibraryCeiling runs each case.
const ceilingRounds = 3

// BenchmarkLibraryCeiling measures one-way stream throughput on loopback
// of the libraries under Parley, with and without libp2p, in one run so
// that the QUIC/TCP ratios come from the same machine state:
//
//   - tls-tcp: crypto/tls (TLS 1.3) over one TCP connection;
//   - quic: quic-go directly, one stream, go-libp2p's quic.Config;
//   - libp2p-tcp, libp2p-quic: two Parley nodes, one stream, the
//     transport forced by giving the dialer only that kind of address.
//
// Each case keeps one connection and one stream; an op writes a size of
// data in 256 KiB buffers and waits for the receiver, which reads it with
// io.Copy into io.Discard, to answer with the byte count. An op moves
// 256 MiB, or PARLEY_BENCH_SIZE (e.g. "64MiB"). Both ends run in this
// process, so cpu-s/GiB (user+system CPU of the process per GiB moved) is
// the cost of sending and receiving together.
//
// The cases take turns in ceilingRounds rounds (round=N/case), since
// -count repeats each sub-benchmark back to back; the end logs the
// quic/tls-tcp and libp2p-quic/libp2p-tcp ratios of the medians (-v shows
// them):
//
//	go test -run '^$' -bench LibraryCeiling -benchtime 3x -count 3 -v ./node/
//
// To profile one case: -bench 'LibraryCeiling/round=1/^quic$' -cpuprofile.
func BenchmarkLibraryCeiling(b *testing.B) {
	size := tstest.EnvSize(b, "PARLEY_BENCH_SIZE", 256<<20)
	results := map[string][]ceilingResult{}
	for round := 1; round <= ceilingRounds; round++ {
		for _, c := range []struct {
			name string
			open func(*testing.B, int64) io.ReadWriter
		}{
			{"tls-tcp", tlsTCPStream},
			{"quic", quicStream},
			{"libp2p-tcp", func(b *testing.B, size int64) io.ReadWriter { return libp2pStream(b, size, ma.P_TCP) }},
			{"libp2p-quic", func(b *testing.B, size int64) io.ReadWriter { return libp2pStream(b, size, ma.P_QUIC_V1) }},
		} {
			b.Run(fmt.Sprintf("round=%d/%s", round, c.name), func(b *testing.B) {
				results[c.name] = append(results[c.name], ceilingBench(b, size, c.open(b, size)))
			})
		}
	}
	for _, pair := range [][2]string{{"quic", "tls-tcp"}, {"libp2p-quic", "libp2p-tcp"}} {
		num, den := results[pair[0]], results[pair[1]]
		if len(num) == 0 || len(den) == 0 {
			continue
		}
		mbps := func(r ceilingResult) float64 { return r.mbps }
		cpu := func(r ceilingResult) float64 { return r.cpuPerGiB }
		b.Logf("%s/%s over %d/%d runs: MB/s ratio %.2f, cpu-s/GiB ratio %.2f (medians %.0f/%.0f MB/s, %.2f/%.2f cpu-s/GiB)",
			pair[0], pair[1], len(num), len(den),
			median(num, mbps)/median(den, mbps), median(num, cpu)/median(den, cpu),
			median(num, mbps), median(den, mbps), median(num, cpu), median(den, cpu))
	}
}

// ceilingBench pushes size bytes per op through s, whose other end runs
// ceilingSink, and reports and returns throughput and CPU per GiB.
func ceilingBench(b *testing.B, size int64, s io.ReadWriter) ceilingResult {
	buf := make([]byte, 256<<10)
	b.SetBytes(size)
	cpu := ceilingCPU()
	for b.Loop() {
		for left := size; left > 0; left -= int64(len(buf)) {
			if _, err := s.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				b.Fatal(err)
			}
		}
		var ack [8]byte
		if _, err := io.ReadFull(s, ack[:]); err != nil {
			b.Fatalf("read count: %v", err)
		}
		if got := int64(binary.BigEndian.Uint64(ack[:])); got != size {
			b.Fatalf("receiver counted %d bytes, want %d", got, size)
		}
	}
	gib := float64(int64(b.N)*size) / (1 << 30)
	r := ceilingResult{
		mbps:      float64(int64(b.N)*size) / 1e6 / b.Elapsed().Seconds(),
		cpuPerGiB: (ceilingCPU() - cpu).Seconds() / gib,
	}
	b.ReportMetric(r.cpuPerGiB, "cpu-s/GiB")
	return r
}

// ceilingSink answers every size bytes read from s with their count,
// until s ends.
func ceilingSink(s io.ReadWriter, size int64) {
	for {
		n, err := io.Copy(io.Discard, io.LimitReader(s, size))
		if err != nil || n == 0 {
			return
		}
		var ack [8]byte
		binary.BigEndian.PutUint64(ack[:], uint64(n))
		if _, err := s.Write(ack[:]); err != nil {
			return
		}
	}
}

// ceilingCPU is the user and system CPU time this process used so far.
func ceilingCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// median is the median of f over rs.
func median(rs []ceilingResult, f func(ceilingResult) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 0 {
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return v[len(v)/2]
}

// ceilingTLS returns a server and a client TLS 1.3 configuration for a
// fresh self-signed ECDSA P-256 certificate for 127.0.0.1.
func ceilingTLS(b *testing.B) (server, client *tls.Config) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ceilingALPN},
	}
	client = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13, NextProtos: []string{ceilingALPN}}
	return server, client
}

// tlsTCPStream returns the client end of a TLS 1.3 connection over
// loopback TCP whose server end runs ceilingSink.
func tlsTCPStream(b *testing.B, size int64) io.ReadWriter {
	serverConf, clientConf := ceilingTLS(b)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", serverConf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		ceilingSink(c, size)
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), clientConf)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// ceilingQUICConfig is go-libp2p v0.51.0's quic.Config
// (p2p/transport/quicreuse/config.go).
var ceilingQUICConfig = &quic.Config{
	MaxIncomingStreams:               256,
	MaxIncomingUniStreams:            5,
	MaxStreamReceiveWindow:           10 << 20,
	MaxConnectionReceiveWindow:       15 << 20,
	KeepAlivePeriod:                  15 * time.Second,
	Versions:                         []quic.Version{quic.Version1},
	EnableDatagrams:                  true,
	EnableStreamResetPartialDelivery: true,
}

// quicStream returns the client end of a quic-go stream over loopback
// whose server end runs ceilingSink.
func quicStream(b *testing.B, size int64) io.ReadWriter {
	serverConf, clientConf := ceilingTLS(b)
	ln, err := quic.ListenAddr("127.0.0.1:0", serverConf, ceilingQUICConfig)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer c.CloseWithError(0, "")
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		ceilingSink(s, size)
	}()
	c, err := quic.DialAddr(ctx, ln.Addr().String(), clientConf, ceilingQUICConfig)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.CloseWithError(0, "") })
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// libp2pStream returns a stream between two fresh Parley nodes over the
// transport proto (ma.P_TCP or ma.P_QUIC_V1) whose far end runs
// ceilingSink.
func libp2pStream(b *testing.B, size int64, proto int) network.Stream {
	a := nodetest.New(b, node.WithReachability(node.ReachabilityPrivate))
	bob := nodetest.New(b, node.WithReachability(node.ReachabilityPrivate))
	bob.SetStreamHandler(ceilingProto, func(s network.Stream) {
		defer s.Close()
		ceilingSink(s, size)
	})
	addrs := slices.DeleteFunc(slices.Clone(bob.Addrs()), func(a ma.Multiaddr) bool {
		_, err := a.ValueForProtocol(proto)
		return err != nil
	})
	a.Peerstore().AddAddrs(bob.ID(), addrs, peerstore.TempAddrTTL)
	s, err := a.NewStream(context.Background(), bob.ID(), ceilingProto)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Reset() })
	if got, want := connTransport(s.Conn()), ma.ProtocolWithCode(proto).Name; !strings.HasPrefix(want, got) {
		b.Fatalf("stream on %s, want %s", got, want)
	}
	return s
}
