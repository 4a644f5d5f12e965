package files

import (
	"bytes"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/parleynet/parley/app/files/pb"
)

// ManifestVersion is the manifest format this package writes and reads.
const ManifestVersion = 1

// ErrBadManifest means manifest bytes are malformed, not canonical,
// inconsistent or over a limit; the error says which.
var ErrBadManifest = errors.New("bad manifest")

// Manifest describes a file or a folder tree: its regular files, in path
// order, with the hash of every chunk. It is immutable once decoded or
// built; share it freely.
type Manifest struct {
	Entries   []Entry
	TotalSize int64

	first []int // first[i] is the global index of entry i's first chunk; first[len] = NumChunks
}

// Entry is one regular file in a manifest.
type Entry struct {
	Path       string // relative, '/'-separated, valid by ValidatePath
	Size       int64
	Executable bool
	Hashes     []byte // HashSize bytes per chunk
}

// NumChunks returns the number of chunks of e.
func (e *Entry) NumChunks() int { return chunksFor(e.Size) }

func chunksFor(size int64) int { return int((size + ChunkSize - 1) / ChunkSize) }

// Chunk locates one chunk of the content.
type Chunk struct {
	Index  int   // global, across entries in order
	Entry  int   // index into Manifest.Entries
	Offset int64 // within the entry's file
	Size   int
	Hash   []byte
}

// NumChunks returns the number of chunks of the whole content.
func (m *Manifest) NumChunks() int { return m.first[len(m.Entries)] }

// Chunk returns chunk i, which must be in [0, NumChunks).
func (m *Manifest) Chunk(i int) Chunk {
	// Binary search for the entry whose range holds i.
	lo, hi := 0, len(m.Entries)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if m.first[mid] <= i {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// Empty entries share a first index with the next entry; skip them.
	for m.Entries[lo].NumChunks() == 0 || i >= m.first[lo+1] {
		lo++
	}
	e := &m.Entries[lo]
	k := i - m.first[lo]
	off := int64(k) * ChunkSize
	size := int64(ChunkSize)
	if rest := e.Size - off; rest < size {
		size = rest
	}
	return Chunk{Index: i, Entry: lo, Offset: off, Size: int(size), Hash: e.Hashes[k*HashSize : (k+1)*HashSize]}
}

// Encode returns the canonical encoding of m, the bytes its CID hashes.
func (m *Manifest) Encode() []byte {
	p := &pb.Manifest{Version: ManifestVersion, ChunkSize: ChunkSize, TotalSize: uint64(m.TotalSize)}
	for _, e := range m.Entries {
		p.Entries = append(p.Entries, &pb.Entry{Path: e.Path, Size: uint64(e.Size), Executable: e.Executable, Chunks: e.Hashes})
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("encode manifest: %v", err)) // only invalid UTF-8, which a valid Manifest has not
	}
	return b
}

// newManifest checks entries against every rule Decode enforces and indexes
// them.
func newManifest(entries []Entry) (*Manifest, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no entries", ErrBadManifest)
	}
	if len(entries) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, limit %d", ErrBadManifest, len(entries), MaxEntries)
	}
	m := &Manifest{Entries: entries, first: make([]int, len(entries)+1)}
	seen := make(map[string]bool, len(entries)) // folded path -> is a directory
	chunks := 0
	for i := range entries {
		e := &entries[i]
		if err := ValidatePath(e.Path); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrBadManifest, i, err)
		}
		if i > 0 && entries[i-1].Path >= e.Path {
			return nil, fmt.Errorf("%w: entry %d: paths not sorted and unique (%q after %q)", ErrBadManifest, i, e.Path, entries[i-1].Path)
		}
		if err := claim(seen, e.Path); err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrBadManifest, i, err)
		}
		if e.Size < 0 || e.Size > MaxChunks*ChunkSize {
			return nil, fmt.Errorf("%w: entry %d: size %d out of range", ErrBadManifest, i, e.Size)
		}
		n := e.NumChunks()
		if len(e.Hashes) != n*HashSize {
			return nil, fmt.Errorf("%w: entry %d: %d bytes of hashes for %d chunks", ErrBadManifest, i, len(e.Hashes), n)
		}
		m.first[i] = chunks
		chunks += n
		if chunks > MaxChunks {
			return nil, fmt.Errorf("%w: more than %d chunks", ErrBadManifest, MaxChunks)
		}
		m.TotalSize += e.Size
	}
	m.first[len(entries)] = chunks
	return m, nil
}

// claim records path and its parent directories in seen and refuses a
// path that collides with an earlier one on a case-insensitive or
// normalisation-insensitive file system (Windows, macOS: keys are NFC with
// Unicode case folding, so "Straße" meets "STRASSE" and a decomposed "é"
// meets a composed one), or that is both a file and a directory.
func claim(seen map[string]bool, path string) error {
	folded := cases.Fold().String(norm.NFC.String(path))
	for i := 0; i < len(folded); i++ {
		if folded[i] != '/' {
			continue
		}
		dir := folded[:i]
		if isDir, ok := seen[dir]; ok && !isDir {
			return fmt.Errorf("%w: %q is both a file and a folder", ErrUnsafePath, path[:i])
		}
		seen[dir] = true
	}
	if _, ok := seen[folded]; ok {
		return fmt.Errorf("%w: %q collides with another entry when case is ignored", ErrUnsafePath, path)
	}
	seen[folded] = false
	return nil
}

// Decode parses manifest bytes received from the network. It refuses bytes
// over MaxManifestSize, bytes that are not the canonical encoding (so one
// content has exactly one CID), and a manifest that breaks any rule: paths
// valid, sorted, unique even ignoring case; hashes matching sizes; sizes
// adding up; limits respected. It does not check a CID: see VerifyCID.
func Decode(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadManifest, len(b), MaxManifestSize)
	}
	var p pb.Manifest
	if err := proto.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if p.Version != ManifestVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadManifest, p.Version, ManifestVersion)
	}
	if p.ChunkSize != ChunkSize {
		return nil, fmt.Errorf("%w: chunk size %d, want %d", ErrBadManifest, p.ChunkSize, ChunkSize)
	}
	if len(p.ProtoReflect().GetUnknown()) != 0 {
		return nil, fmt.Errorf("%w: unknown fields", ErrBadManifest)
	}
	if len(p.Entries) > MaxEntries {
		return nil, fmt.Errorf("%w: %d entries, limit %d", ErrBadManifest, len(p.Entries), MaxEntries)
	}
	entries := make([]Entry, len(p.Entries))
	for i, e := range p.Entries {
		if len(e.ProtoReflect().GetUnknown()) != 0 {
			return nil, fmt.Errorf("%w: entry %d: unknown fields", ErrBadManifest, i)
		}
		if e.Size > MaxChunks*ChunkSize {
			return nil, fmt.Errorf("%w: entry %d: size %d out of range", ErrBadManifest, i, e.Size)
		}
		entries[i] = Entry{Path: e.Path, Size: int64(e.Size), Executable: e.Executable, Hashes: e.Chunks}
	}
	m, err := newManifest(entries)
	if err != nil {
		return nil, err
	}
	if uint64(m.TotalSize) != p.TotalSize {
		return nil, fmt.Errorf("%w: total size %d, entries add up to %d", ErrBadManifest, p.TotalSize, m.TotalSize)
	}
	if !bytes.Equal(m.Encode(), b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadManifest)
	}
	return m, nil
}
