package files

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/parleynet/parley/app/files/pb"
)

// memContent serves a small manifest from memory.
type memContent struct {
	raw  []byte
	m    *Manifest
	data [][]byte // per entry
}

func newMemContent(t testing.TB) *memContent {
	data := [][]byte{[]byte("0123456789"), nil, []byte("abcdefghijklmnopqrst")}
	var entries []Entry
	for i, name := range []string{"d/a", "d/b", "d/c"} {
		e := Entry{Path: name, Size: int64(len(data[i]))}
		if len(data[i]) > 0 {
			h := hashChunk(data[i])
			e.Hashes = h[:]
		}
		entries = append(entries, e)
	}
	m, err := newManifest(entries)
	must(t, err)
	return &memContent{raw: m.Encode(), m: m, data: data}
}

func (c *memContent) Open(context.Context, cid.Cid) (Content, error) { return c, nil }
func (c *memContent) Manifest() ([]byte, *Manifest)                  { return c.raw, c.m }
func (c *memContent) Close() error                                   { return nil }
func (c *memContent) ReadChunk(i int, buf []byte) ([]byte, error) {
	ch := c.m.Chunk(i)
	return append(buf[:0], c.data[ch.Entry][ch.Offset:ch.Offset+int64(ch.Size)]...), nil
}

type noDeadlines struct{}

func (noDeadlines) SetReadDeadline(time.Time) error  { return nil }
func (noDeadlines) SetWriteDeadline(time.Time) error { return nil }

// FuzzServeRequests feeds arbitrary request bytes to a serving session:
// it must never panic, and what it writes must parse as responses.
func FuzzServeRequests(f *testing.F) {
	mc := newMemContent(f)
	c := CIDOf(mc.raw)
	var seed bytes.Buffer
	protodelim.MarshalTo(&seed, &pb.Request{Kind: pb.Request_KIND_CERTIFICATE, Certificate: []byte("member:carol")})
	protodelim.MarshalTo(&seed, &pb.Request{Kind: pb.Request_KIND_MANIFEST, Cid: c.Bytes()})
	protodelim.MarshalTo(&seed, &pb.Request{Kind: pb.Request_KIND_CHUNKS, Cid: c.Bytes(), Start: 0, Count: 2})
	protodelim.MarshalTo(&seed, &pb.Request{Kind: pb.Request_KIND_CHUNKS, Cid: c.Bytes(), Start: 1, Count: 5})
	f.Add(seed.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	srv := &Server{src: mc, admit: admitAll, cfg: ServerConfig{IdleTimeout: time.Second, WriteTimeout: time.Second, Certify: testCertify}, ctx: context.Background()}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		ss := &serveSession{s: srv, st: noDeadlines{}, br: bufio.NewReader(bytes.NewReader(in)), bw: bufio.NewWriter(&out), open: map[string]Content{}}
		ss.run()
		ss.bw.Flush()
		br := bufio.NewReader(&out)
		for {
			var r pb.Response
			err := protodelim.UnmarshalOptions{MaxSize: MaxResponseHeaderSize}.UnmarshalFrom(br, &r)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("server wrote a bad header: %v", err)
			}
			if r.Status == pb.Response_STATUS_OK {
				if r.Size > MaxManifestSize {
					t.Fatalf("OK response of %d bytes", r.Size)
				}
				if _, err := io.CopyN(io.Discard, br, int64(r.Size)); err != nil {
					t.Fatalf("short OK response: %v", err)
				}
			}
		}
	})
}

// FuzzClientResponses feeds arbitrary response bytes to the requesting
// side: it must never panic, and a chunk it accepts has the right hash.
func FuzzClientResponses(f *testing.F) {
	mc := newMemContent(f)
	c := CIDOf(mc.raw)
	var seed bytes.Buffer
	ss := &serveSession{s: &Server{src: mc, admit: admitAll, ctx: context.Background()}, st: noDeadlines{}, bw: bufio.NewWriter(&seed), open: map[string]Content{}}
	ss.serve(&pb.Request{Kind: pb.Request_KIND_MANIFEST, Cid: c.Bytes()})
	ss.serve(&pb.Request{Kind: pb.Request_KIND_CHUNKS, Cid: c.Bytes(), Start: 0, Count: 2})
	ss.bw.Flush()
	f.Add(seed.Bytes())
	f.Add([]byte{0x02, 0x08, 0x03})
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := &Conn{br: bufio.NewReader(bytes.NewReader(in))}
		raw, m, err := conn.ReadManifest(c)
		if err != nil {
			return
		}
		if !bytes.Equal(raw, mc.raw) {
			t.Fatal("accepted a manifest that is not the CID's")
		}
		buf := make([]byte, ChunkSize)
		for i := range m.NumChunks() {
			b, err := conn.ReadChunk(m, i, buf)
			if err != nil {
				return
			}
			if h := hashChunk(b); !bytes.Equal(h[:], m.Chunk(i).Hash) {
				t.Fatalf("accepted a bad chunk %d", i)
			}
		}
	})
}
