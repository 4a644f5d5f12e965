package files

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"sync"
	"syscall"

	"github.com/ipfs/go-cid"
)

// ErrBadChunk means a chunk's bytes do not match the hash the manifest
// gives for it.
var ErrBadChunk = errors.New("chunk does not match its hash")

// NoSpaceError means the disk filled up during a download. The chunks
// verified so far stay on disk; the transfer resumes from them once there
// is room.
type NoSpaceError struct {
	Need     int64 // bytes still to write to finish the download
	Verified int64 // bytes verified and kept
	Err      error
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("disk full: %d more bytes are needed to finish (%d verified bytes kept); free space and resume", e.Need, e.Verified)
}

func (e *NoSpaceError) Unwrap() error { return e.Err }

// flushEvery is how many newly verified chunks a Partial holds in memory
// before making them durable. A crash loses at most this many chunks of
// work (they are fetched again), never correctness: the bitmap on disk
// only marks chunks whose data was synced first.
const flushEvery = 32

// Partial is one download in progress: under the download directory,
// .parley-partial/<cid>/ holds the manifest, one data file per entry
// (named by entry number, so no name from the network touches the disk
// before the end) with each chunk written at its offset, and a bitmap of
// verified chunks. Safe for concurrent use.
type Partial struct {
	root *os.Root // the download directory
	dir  string   // the transfer's directory, relative to root
	c    cid.Cid
	m    *Manifest

	mu       sync.Mutex // guards the following
	bits     []byte
	fresh    []byte // chunks verified in memory and written by this Partial
	verified int64
	dirty    map[int]bool // entries written since the last flush
	pending  int          // chunks verified since the last flush
	files    map[int]*os.File
	bitmap   *os.File
	closed   bool
	writeAt  func(f *os.File, b []byte, off int64) (int, error) // a test hook
}

// OpenPartial opens (or creates) the partial download of content c in
// downloadDir. raw must be the verified manifest bytes of c and m their
// decoded form. Before anything is written it checks that every entry can
// be placed in downloadDir: nothing there already, no symbolic link or file
// in the way of a folder.
func OpenPartial(downloadDir string, c cid.Cid, raw []byte, m *Manifest) (_ *Partial, err error) {
	root, err := os.OpenRoot(downloadDir)
	if err != nil {
		return nil, fmt.Errorf("open download folder: %w", err)
	}
	defer func() {
		if err != nil {
			root.Close()
		}
	}()
	for _, e := range m.Entries {
		if err := checkTarget(root, e.Path); err != nil {
			return nil, err
		}
	}
	p := &Partial{
		root: root, dir: path.Join(partialDirName, c.String()), c: c, m: m,
		bits:    make([]byte, (m.NumChunks()+7)/8),
		fresh:   make([]byte, (m.NumChunks()+7)/8),
		dirty:   make(map[int]bool),
		files:   make(map[int]*os.File),
		writeAt: (*os.File).WriteAt,
	}
	if err := root.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create partial folder: %w", err)
	}
	if err := p.writeManifest(raw); err != nil {
		return nil, err
	}
	p.bitmap, err = root.OpenFile(path.Join(p.dir, "verified"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open verified map: %w", err)
	}
	n, err := p.bitmap.ReadAt(p.bits, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		p.bitmap.Close()
		return nil, fmt.Errorf("read verified map: %w", err)
	}
	clear(p.bits[n:])
	for i := range m.NumChunks() {
		if p.hasLocked(i) {
			p.verified += int64(m.Chunk(i).Size)
		}
	}
	return p, nil
}

// writeManifest keeps the manifest beside the data, so a resumed download
// need not fetch it again; a different manifest under the same CID cannot
// exist, so an existing file is left alone.
func (p *Partial) writeManifest(raw []byte) error {
	name := path.Join(p.dir, "manifest")
	if _, err := p.root.Stat(name); err == nil {
		return nil
	}
	f, err := p.root.OpenFile(name+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.root.Rename(name+".tmp", name)
	}
	if err != nil {
		return p.noSpace(fmt.Errorf("write manifest: %w", err))
	}
	return nil
}

// RemovePartial deletes what a download of c into downloadDir left
// unfinished (nothing when there is none), and the partial folder too when
// no other download uses it.
func RemovePartial(downloadDir string, c cid.Cid) error {
	root, err := os.OpenRoot(downloadDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.RemoveAll(path.Join(partialDirName, c.String())); err != nil {
		return fmt.Errorf("remove partial download %s: %w", c, err)
	}
	_ = root.Remove(partialDirName) // only if no other download uses it
	return nil
}

// ReadPartialManifest returns the manifest bytes a partial download of c
// in downloadDir kept, verified against c, or an error wrapping
// fs.ErrNotExist when there is none.
func ReadPartialManifest(downloadDir string, c cid.Cid) ([]byte, error) {
	root, err := os.OpenRoot(downloadDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	f, err := root.Open(path.Join(partialDirName, c.String(), "manifest"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if err := VerifyCID(c, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// Has reports whether chunk i is verified on disk.
func (p *Partial) Has(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hasLocked(i)
}

func (p *Partial) hasLocked(i int) bool { return p.bits[i/8]&(1<<(i%8)) != 0 }

// Missing returns the chunks not verified yet, in order.
func (p *Partial) Missing() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for i := range p.m.NumChunks() {
		if !p.hasLocked(i) {
			out = append(out, i)
		}
	}
	return out
}

// Verified returns the bytes verified so far.
func (p *Partial) Verified() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.verified
}

// Complete reports whether every chunk is verified.
func (p *Partial) Complete() bool { return p.Verified() == p.m.TotalSize }

// WriteChunk verifies data as chunk i and writes it at its offset. A chunk
// already verified is ignored. It returns ErrBadChunk (nothing written)
// when the hash does not match, and a *NoSpaceError when the disk is full.
func (p *Partial) WriteChunk(i int, data []byte) error {
	c := p.m.Chunk(i)
	if len(data) != c.Size {
		return fmt.Errorf("%w: chunk %d is %d bytes, want %d", ErrBadChunk, i, len(data), c.Size)
	}
	if h := hashChunk(data); string(h[:]) != string(c.Hash) {
		return fmt.Errorf("%w: chunk %d", ErrBadChunk, i)
	}
	_, err := p.writeVerified(i, data)
	return err
}

// writeVerified is WriteChunk for data already checked against its hash.
// It reports whether the chunk was new.
func (p *Partial) writeVerified(i int, data []byte) (bool, error) {
	if p.Has(i) {
		return false, nil // a duplicate from the end game
	}
	c := p.m.Chunk(i)
	f, err := p.file(c.Entry)
	if err != nil {
		return false, err
	}
	if _, err := p.writeAt(f, data, c.Offset); err != nil {
		return false, p.noSpace(fmt.Errorf("write chunk %d: %w", i, err))
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.hasLocked(i) {
		return false, nil
	}
	p.bits[i/8] |= 1 << (i % 8)
	p.fresh[i/8] |= 1 << (i % 8)
	p.verified += int64(c.Size)
	p.dirty[c.Entry] = true
	p.pending++
	if p.pending >= flushEvery {
		return true, p.flushLocked()
	}
	return true, nil
}

func (p *Partial) file(entry int) (*os.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("partial download closed")
	}
	if f := p.files[entry]; f != nil {
		return f, nil
	}
	f, err := p.root.OpenFile(path.Join(p.dir, strconv.Itoa(entry)), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open partial file: %w", err)
	}
	p.files[entry] = f
	return f, nil
}

// noSpace turns ENOSPC (and EDQUOT) into a *NoSpaceError.
func (p *Partial) noSpace(err error) error {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		return err
	}
	v := p.Verified()
	return &NoSpaceError{Need: p.m.TotalSize - v, Verified: v, Err: err}
}

// Flush makes every chunk verified so far durable: the data files are
// synced before the bitmap that marks them.
func (p *Partial) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushLocked()
}

func (p *Partial) flushLocked() error {
	if p.pending == 0 || p.closed {
		return nil
	}
	for e := range p.dirty {
		if err := p.files[e].Sync(); err != nil {
			return fmt.Errorf("sync partial file: %w", err)
		}
	}
	clear(p.dirty)
	if _, err := p.bitmap.WriteAt(p.bits, 0); err != nil {
		return fmt.Errorf("write verified map: %w", err)
	}
	if err := p.bitmap.Sync(); err != nil {
		return fmt.Errorf("sync verified map: %w", err)
	}
	p.pending = 0
	return nil
}

// Close flushes and closes the download; it can be opened again to resume.
func (p *Partial) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	return errors.Join(p.flushLocked(), p.closeFilesLocked(), p.root.Close())
}

func (p *Partial) closeFilesLocked() error {
	var errs []error
	p.closed = true
	for _, f := range p.files {
		errs = append(errs, f.Close())
	}
	clear(p.files)
	if p.bitmap != nil {
		errs = append(errs, p.bitmap.Close())
		p.bitmap = nil
	}
	return errors.Join(errs...)
}

// Finish checks that the download is complete, verifies every chunk again
// as it is on disk, and renames each file into place in the download
// directory (creating folders as needed), then removes the partial folder.
// It never overwrites: a path taken since the download began is refused.
// On success p is closed; after an error it stays open for Close.
func (p *Partial) Finish() error {
	if !p.Complete() {
		return fmt.Errorf("finish %s: %d of %d bytes verified", p.c, p.Verified(), p.m.TotalSize)
	}
	if err := p.Flush(); err != nil {
		return err
	}
	buf := make([]byte, ChunkSize)
	for i := range p.m.NumChunks() {
		if p.fresh[i/8]&(1<<(i%8)) != 0 {
			continue // hashed right before it was written
		}
		c := p.m.Chunk(i)
		f, err := p.file(c.Entry)
		if err != nil {
			return err
		}
		b := buf[:c.Size]
		if _, err := f.ReadAt(b, c.Offset); err != nil {
			return fmt.Errorf("finish %s: read chunk %d: %w", p.c, i, err)
		}
		if h := hashChunk(b); string(h[:]) != string(c.Hash) {
			// The disk lost or changed it: fetch it again.
			p.mu.Lock()
			p.bits[i/8] &^= 1 << (i % 8)
			p.verified -= int64(c.Size)
			p.pending++
			err := p.flushLocked()
			p.mu.Unlock()
			return errors.Join(fmt.Errorf("finish %s: %w: chunk %d changed on disk; fetch it again", p.c, ErrBadChunk, i), err)
		}
	}
	for i, e := range p.m.Entries {
		if err := checkTarget(p.root, e.Path); err != nil {
			return fmt.Errorf("finish %s: %w", p.c, err)
		}
		src := path.Join(p.dir, strconv.Itoa(i))
		if _, err := p.file(i); err != nil { // an empty file has no data file yet
			return err
		}
		if err := p.files[i].Truncate(e.Size); err != nil {
			return fmt.Errorf("finish %s: %w", p.c, err)
		}
		mode := fs.FileMode(0o644)
		if e.Executable {
			mode = 0o755
		}
		if err := p.root.Chmod(src, mode); err != nil {
			return fmt.Errorf("finish %s: %w", p.c, err)
		}
		if dir := path.Dir(e.Path); dir != "." {
			if err := p.root.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("finish %s: %w", p.c, err)
			}
		}
		if err := p.root.Rename(src, e.Path); err != nil {
			return fmt.Errorf("finish %s: place %s: %w", p.c, e.Path, err)
		}
	}
	p.mu.Lock()
	p.pending = 0 // nothing left to flush: the data moved out
	err := p.closeFilesLocked()
	p.mu.Unlock()
	if err != nil {
		log.Debugw("close finished download", "cid", p.c, "err", err)
	}
	defer p.root.Close()
	if err := p.root.RemoveAll(p.dir); err != nil {
		return fmt.Errorf("finish %s: remove partial folder: %w", p.c, err)
	}
	_ = p.root.Remove(partialDirName) // only if no other download uses it
	return nil
}
