package files

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeTree writes files (relative path -> content) under dir.
func writeTree(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, b, 0o644))
	}
}

func TestIndexShareAndServe(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	big := fill(3*ChunkSize+100, 7)
	writeTree(t, src, map[string][]byte{"album/a.bin": big, "album/sub/b.txt": []byte("hello"), "album/empty": nil})
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "album", "link")))
	x, err := OpenIndex(filepath.Join(t.TempDir(), "index.db"))
	must(t, err)
	defer x.Close()
	c, m, err := x.Share(ctx, filepath.Join(src, "album"))
	must(t, err)
	if len(m.Entries) != 3 || m.Entries[0].Path != "album/a.bin" || m.NumChunks() != 5 {
		t.Fatalf("manifest entries %+v", m.Entries)
	}
	content, err := x.Open(ctx, c)
	must(t, err)
	defer content.Close()
	buf := make([]byte, ChunkSize)
	got, err := content.ReadChunk(3, buf)
	must(t, err)
	if !bytes.Equal(got, big[3*ChunkSize:]) {
		t.Fatal("chunk 3 differs")
	}

	// Same size, same mtime, different bytes: caught by the change time,
	// which the write moved and nobody can set back.
	f, err := os.OpenFile(filepath.Join(src, "album", "a.bin"), os.O_WRONLY, 0)
	must(t, err)
	fi, _ := f.Stat()
	_, err = f.WriteAt([]byte{big[0] ^ 1}, 0)
	must(t, err)
	f.Close()
	must(t, os.Chtimes(f.Name(), fi.ModTime(), fi.ModTime()))
	if _, err := content.ReadChunk(0, buf); !errors.Is(err, ErrChanged) {
		t.Fatalf("changed bytes: got %v, want ErrChanged", err)
	}
	// Indexed without a change time (another platform, an older index):
	// the same change is caught by hashing the chunk read.
	legacy := content.(*localContent)
	legacy.stats[0].ctime = 0
	if _, err := content.ReadChunk(0, buf); !errors.Is(err, ErrChanged) || !strings.Contains(err.Error(), "chunk 0") {
		t.Fatalf("changed bytes, no change time indexed: got %v, want ErrChanged for chunk 0", err)
	}
	// A newer mtime: caught by the stat, for every chunk.
	must(t, os.Chtimes(f.Name(), time.Now().Add(time.Hour), time.Now().Add(time.Hour)))
	if _, err := content.ReadChunk(1, buf); !errors.Is(err, ErrChanged) {
		t.Fatalf("changed mtime: got %v, want ErrChanged", err)
	}
	if _, err := x.Open(ctx, CIDOf([]byte("nothing"))); !errors.Is(err, ErrNotShared) {
		t.Fatalf("unknown CID: got %v, want ErrNotShared", err)
	}
	// Sharing the changed folder again gives a new CID and drops the old.
	c2, _, err := x.Share(ctx, filepath.Join(src, "album"))
	must(t, err)
	if c2.Equals(c) {
		t.Fatal("changed folder kept its CID")
	}
	if _, err := x.Open(ctx, c); !errors.Is(err, ErrNotShared) {
		t.Fatalf("old CID after re-share: got %v, want ErrNotShared", err)
	}
	must(t, x.Unshare(ctx, c2))
	c = c2
	if _, err := x.Open(ctx, c); !errors.Is(err, ErrNotShared) {
		t.Fatalf("unshared: got %v, want ErrNotShared", err)
	}
}

func TestBuildRefusesBadName(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string][]byte{"d/ok": nil, "d/bad:name": nil})
	if _, err := Build(context.Background(), filepath.Join(src, "d")); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("got %v, want ErrUnsafePath", err)
	}
}

func testContent(t testing.TB, files map[string][]byte) (src string, raw []byte, m *Manifest) {
	src = t.TempDir()
	writeTree(t, src, files)
	m, err := Build(context.Background(), filepath.Join(src, "d"))
	must(t, err)
	return src, m.Encode(), m
}

func TestPartialResumeAndFinish(t *testing.T) {
	data := fill(5*ChunkSize+3, 1)
	_, raw, m := testContent(t, map[string][]byte{"d/x.bin": data, "d/y/e": nil})
	c := CIDOf(raw)
	dl := t.TempDir()
	p, err := OpenPartial(dl, c, raw, m)
	must(t, err)
	chunk := func(i int) []byte { ch := m.Chunk(i); return data[ch.Offset : ch.Offset+int64(ch.Size)] }
	must(t, p.WriteChunk(0, chunk(0)))
	must(t, p.WriteChunk(4, chunk(4)))
	bad := bytes.Clone(chunk(2))
	bad[10] ^= 1
	if err := p.WriteChunk(2, bad); !errors.Is(err, ErrBadChunk) {
		t.Fatalf("bad chunk: got %v, want ErrBadChunk", err)
	}
	must(t, p.Close())

	if got, err := ReadPartialManifest(dl, c); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("ReadPartialManifest: %v", err)
	}
	p, err = OpenPartial(dl, c, raw, m)
	must(t, err)
	if got, want := p.Missing(), []int{1, 2, 3, 5}; !slices.Equal(got, want) {
		t.Fatalf("missing after reopen %v, want %v", got, want)
	}
	if err := p.Finish(); err == nil {
		t.Fatal("Finish of an incomplete download succeeded")
	}
	for _, i := range p.Missing() {
		must(t, p.WriteChunk(i, chunk(i)))
	}
	must(t, p.Finish())
	got, err := os.ReadFile(filepath.Join(dl, "d", "x.bin"))
	must(t, err)
	if !bytes.Equal(got, data) {
		t.Fatal("finished file differs")
	}
	if _, err := os.Stat(filepath.Join(dl, "d", "y", "e")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dl, partialDirName)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("partial folder left behind: %v", err)
	}
}

func TestPartialRefusesBlockedTarget(t *testing.T) {
	_, raw, m := testContent(t, map[string][]byte{"d/x": []byte("x")})
	dl := t.TempDir()
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(dl, "d")))
	if _, err := OpenPartial(dl, CIDOf(raw), raw, m); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("got %v, want ErrUnsafePath", err)
	}
	if ents, _ := os.ReadDir(dl); len(ents) != 1 {
		t.Fatalf("download folder has %d entries, want only the link", len(ents))
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatal("wrote through the link")
	}
}

func TestPartialDiskFull(t *testing.T) {
	data := fill(4*ChunkSize, 2)
	_, raw, m := testContent(t, map[string][]byte{"d/x": data})
	p, err := OpenPartial(t.TempDir(), CIDOf(raw), raw, m)
	must(t, err)
	defer p.Close()
	must(t, p.WriteChunk(0, data[:ChunkSize]))
	p.writeAt = func(*os.File, []byte, int64) (int, error) {
		return 0, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	}
	err = p.WriteChunk(1, data[ChunkSize:2*ChunkSize])
	var ns *NoSpaceError
	if !errors.As(err, &ns) || ns.Need != 3*ChunkSize || ns.Verified != ChunkSize {
		t.Fatalf("got %v, want NoSpaceError needing %d", err, 3*ChunkSize)
	}
	if !p.Has(0) || p.Has(1) {
		t.Fatal("verified map wrong after ENOSPC")
	}
}
