package natlab

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// selfSignedTLS is a server TLS config with a throwaway certificate.
func selfSignedTLS(t testing.TB) *tls.Config {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}}, NextProtos: []string{"natlab"}}
}

// testQUICBulk sends size bytes over a QUIC stream from a to b, whose
// sockets live in their namespaces, and compares checksums.
func testQUICBulk(t *testing.T, a, b *Host, size int64) {
	ctx := testContext(t, time.Minute)
	spc := must(b.ListenPacket("udp4", ":7300"))(t)
	defer spc.Close()
	ln, err := quic.Listen(spc, selfSignedTLS(t), &quic.Config{MaxIdleTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		n   int64
		sum []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			res <- result{err: err}
			return
		}
		defer conn.CloseWithError(0, "")
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			res <- result{err: err}
			return
		}
		h := sha256.New()
		n, err := io.Copy(h, s)
		res <- result{n, h.Sum(nil), err}
	}()
	cpc := must(a.ListenPacket("udp4", ":0"))(t)
	defer cpc.Close()
	conn, err := quic.Dial(ctx, cpc, net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.IP, 7300)),
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"natlab"}}, &quic.Config{MaxIdleTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	start := time.Now()
	if _, err := io.Copy(io.MultiWriter(s, h), io.LimitReader(mrand.NewChaCha8([32]byte{2}), size)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r := <-res
	elapsed := time.Since(start)
	if r.err != nil {
		t.Fatalf("receive: %v after %d bytes", r.err, r.n)
	}
	if r.n != size || !bytes.Equal(r.sum, h.Sum(nil)) {
		t.Fatalf("received %d bytes with SHA-256 %x, sent %d with %x", r.n, r.sum, size, h.Sum(nil))
	}
	t.Logf("QUIC: %d MiB in %v: %.1f MB/s", size>>20, elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6)
}
