package files

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/app/files/pb"
)

// testEntry makes an entry of size bytes whose hashes match content made
// by fill.
func testEntry(path string, size int64) Entry {
	data := fill(size, byte(len(path)))
	e := Entry{Path: path, Size: size}
	for off := int64(0); off < size; off += ChunkSize {
		end := min(off+ChunkSize, size)
		h := hashChunk(data[off:end])
		e.Hashes = append(e.Hashes, h[:]...)
	}
	return e
}

func fill(size int64, seed byte) []byte {
	b := make([]byte, size)
	x := uint32(seed) + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func TestManifestRoundTrip(t *testing.T) {
	m, err := newManifest([]Entry{
		testEntry("dir/a.bin", 3*ChunkSize+5),
		testEntry("dir/empty", 0),
		testEntry("dir/sub/b.txt", 10),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := m.Encode()
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.NumChunks() != 5 || got.TotalSize != 3*ChunkSize+15 {
		t.Fatalf("got %d chunks, %d bytes; want 5, %d", got.NumChunks(), got.TotalSize, 3*ChunkSize+15)
	}
	want := []struct{ entry, size int }{{0, ChunkSize}, {0, ChunkSize}, {0, ChunkSize}, {0, 5}, {2, 10}}
	for i, w := range want {
		c := got.Chunk(i)
		if c.Entry != w.entry || c.Size != w.size {
			t.Errorf("chunk %d: entry %d size %d, want entry %d size %d", i, c.Entry, c.Size, w.entry, w.size)
		}
	}
	c := CIDOf(b)
	if err := VerifyCID(c, b); err != nil {
		t.Fatal(err)
	}
	if err := VerifyCID(c, append([]byte{}, b[:len(b)-1]...)); !errors.Is(err, ErrCIDMismatch) {
		t.Fatalf("truncated manifest: got %v, want ErrCIDMismatch", err)
	}
	if c.Prefix().MhType != 0x1e || c.Prefix().Codec != 0x55 {
		t.Fatalf("CID prefix %+v", c.Prefix())
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := func() *pb.Manifest {
		e := testEntry("a", 2*ChunkSize)
		return &pb.Manifest{Version: 1, ChunkSize: ChunkSize, TotalSize: 2 * ChunkSize,
			Entries: []*pb.Entry{{Path: e.Path, Size: uint64(e.Size), Chunks: e.Hashes}}}
	}
	enc := func(p *pb.Manifest) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := map[string][]byte{
		"garbage":      []byte("\xff\xff\xff"),
		"empty":        enc(&pb.Manifest{Version: 1, ChunkSize: ChunkSize}),
		"version":      enc(func() *pb.Manifest { p := good(); p.Version = 2; return p }()),
		"chunk size":   enc(func() *pb.Manifest { p := good(); p.ChunkSize = 4096; return p }()),
		"total":        enc(func() *pb.Manifest { p := good(); p.TotalSize++; return p }()),
		"short hashes": enc(func() *pb.Manifest { p := good(); p.Entries[0].Chunks = p.Entries[0].Chunks[:40]; return p }()),
		"size vs hashes": enc(func() *pb.Manifest {
			p := good()
			p.Entries[0].Size += ChunkSize
			p.TotalSize += ChunkSize
			return p
		}()),
		"dotdot": enc(func() *pb.Manifest { p := good(); p.Entries[0].Path = "../a"; return p }()),
		"unsorted": enc(func() *pb.Manifest {
			p := good()
			p.Entries = append(p.Entries, &pb.Entry{Path: "0"})
			return p
		}()),
		"duplicate": enc(func() *pb.Manifest {
			p := good()
			p.Entries = append(p.Entries, &pb.Entry{Path: "a"})
			return p
		}()),
		"case collision": enc(func() *pb.Manifest {
			p := good()
			p.Entries = append([]*pb.Entry{{Path: "A"}}, p.Entries...)
			return p
		}()),
		"fold collision": enc(func() *pb.Manifest {
			p := good()
			p.Entries = append([]*pb.Entry{{Path: "STRASSE"}, {Path: "Straße"}}, p.Entries...)
			return p
		}()),
		"normalisation collision": enc(func() *pb.Manifest {
			p := good()
			p.Entries = append([]*pb.Entry{{Path: "Cafe\u0301"}, {Path: "Caf\u00e9"}}, p.Entries...)
			return p
		}()),
		"file and folder": enc(func() *pb.Manifest {
			p := good()
			p.Entries = append(p.Entries, &pb.Entry{Path: "a/b"})
			return p
		}()),
		"unknown field": protowire.AppendBytes(protowire.AppendTag(enc(good()), 99, protowire.BytesType), []byte("x")),
		"not canonical": append(enc(&pb.Manifest{TotalSize: 2 * ChunkSize, Entries: good().Entries}),
			enc(&pb.Manifest{Version: 1, ChunkSize: ChunkSize})...),
		"too large": make([]byte, MaxManifestSize+1),
	}
	if _, err := Decode(enc(good())); err != nil {
		t.Fatalf("good manifest: %v", err)
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(b)
			if !errors.Is(err, ErrBadManifest) {
				t.Fatalf("got %v, want ErrBadManifest", err)
			}
			if strings.Contains(name, "collision") && !strings.Contains(err.Error(), "collides") {
				t.Fatalf("got %v, want a collision", err)
			}
		})
	}
}

func FuzzDecodeManifest(f *testing.F) {
	m, _ := newManifest([]Entry{testEntry("d/a", ChunkSize+1), testEntry("d/b", 0)})
	f.Add(m.Encode())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		if !bytes.Equal(m.Encode(), b) {
			t.Fatal("decoded manifest re-encodes differently")
		}
		for i := range m.NumChunks() {
			c := m.Chunk(i)
			if c.Size <= 0 || c.Size > ChunkSize || c.Offset+int64(c.Size) > m.Entries[c.Entry].Size {
				t.Fatalf("chunk %d: %+v", i, c)
			}
		}
		for _, e := range m.Entries {
			if err := ValidatePath(e.Path); err != nil || strings.Contains("/"+e.Path+"/", "/../") {
				t.Fatalf("accepted path %q: %v", e.Path, err)
			}
		}
	})
}

func FuzzParseCID(f *testing.F) {
	c := CIDOf([]byte("x"))
	f.Add(c.String())
	f.Add("bafkqaaa")
	f.Add("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		if err != nil {
			return
		}
		if err := CheckCID(c); err != nil {
			t.Fatalf("ParseCID(%q) accepted %s: %v", s, c, err)
		}
		if back, err := ParseCID(c.String()); err != nil || !back.Equals(c) {
			t.Fatalf("%s does not round-trip: %v", c, err)
		}
	})
}
