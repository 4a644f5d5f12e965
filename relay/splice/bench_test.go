package splice

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkRawThroughput: bytes through the splice server against a
// plain loopback TCP connection, no crypto at either end: the fast path's
// own ceiling and cost. ns/op is per 64 MiB.
func BenchmarkRawThroughput(b *testing.B) {
	const size = 64 << 20
	send := func(b *testing.B, w, r net.Conn) {
		buf := make([]byte, 256<<10)
		done := make(chan error, 1)
		go func() {
			_, err := io.CopyN(io.Discard, r, size)
			done <- err
		}()
		for n := 0; n < size; n += len(buf) {
			if _, err := w.Write(buf); err != nil {
				b.Fatal(err)
			}
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.Run("direct", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		acc := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			acc <- c
		}()
		w, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		r := <-acc
		defer r.Close()
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			send(b, w, r)
		}
	})
	b.Run("splice", func(b *testing.B) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		bn := newBench(b, ctx, 10*time.Second)
		ta, tb, _ := bn.grant(b, ctx)
		w, r := bn.present(b, nil, ta), bn.present(b, nil, tb)
		wantPaired(b, w)
		wantPaired(b, r)
		b.SetBytes(size)
		b.ResetTimer()
		for range b.N {
			send(b, w, r)
		}
	})
}
