package node

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
)

// countingConn counts the writes and reads that reach the network.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int
	reads  int
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countingConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Conn.Read(b)
}

func TestBatchConn(t *testing.T) {
	a, b := net.Pipe()
	counted := &countingConn{Conn: a}
	bc := &batchConn{Conn: counted}
	got := make(chan []byte)
	go func() {
		all, _ := io.ReadAll(b)
		got <- all
	}()

	// Outside hold/release every write goes through at once (handshake).
	if _, err := bc.Write([]byte("hello ")); err != nil {
		t.Fatal(err)
	}
	// Between hold and release writes gather and go out in one call.
	bc.hold()
	var want bytes.Buffer
	want.WriteString("hello ")
	for i := range 4 {
		rec := bytes.Repeat([]byte{byte('a' + i)}, 16<<10)
		want.Write(rec)
		if _, err := bc.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if counted.writes != 1 {
		t.Fatalf("%d writes reached the network while held, want only the first", counted.writes)
	}
	if err := bc.release(); err != nil {
		t.Fatal(err)
	}
	if counted.writes != 2 {
		t.Errorf("%d writes after release, want 2 (one for the four records)", counted.writes)
	}
	if bc.buf != nil {
		t.Error("the write buffer is kept after release, want it back in the pool")
	}
	// A batch larger than maxBatch is sent in parts, in order.
	bc.hold()
	big := bytes.Repeat([]byte{'z'}, maxBatch+100)
	want.Write(big)
	if _, err := bc.Write(big); err != nil {
		t.Fatal(err)
	}
	if err := bc.release(); err != nil {
		t.Fatal(err)
	}
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	if all := <-got; !bytes.Equal(all, want.Bytes()) {
		t.Fatalf("the other side read %d bytes that differ from the %d written", len(all), want.Len())
	}

	// Reads take what is there in one call and hand it out in pieces.
	c, d := net.Pipe()
	rc := &countingConn{Conn: c}
	br := &batchConn{Conn: rc}
	msg := bytes.Repeat([]byte("0123456789"), 1000)
	go func() {
		d.Write(msg)
		d.Close()
	}()
	var read bytes.Buffer
	p := make([]byte, 100)
	for {
		n, err := br.Read(p)
		read.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(read.Bytes(), msg) {
		t.Fatalf("read %d bytes that differ from the %d sent", read.Len(), len(msg))
	}
	if rc.reads > 3 {
		t.Errorf("%d reads reached the network for %d bytes read 100 at a time, want about one", rc.reads, len(msg))
	}
	if br.rbase != nil {
		t.Error("the read buffer is kept once empty, want it back in the pool")
	}
}
