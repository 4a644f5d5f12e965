package files

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/parleynet/parley/internal/sqlitedb"
)

var (
	// ErrNotShared means the index has no content with this CID.
	ErrNotShared = errors.New("content not shared")
	// ErrChanged means a shared file changed on disk after it was indexed
	// (size, modification time, inode, or the bytes of a chunk), so it is
	// no longer the content its CID names and is not served.
	ErrChanged = errors.New("shared file changed since it was indexed")
)

// indexMigrations is the schema history of the share index; append only.
var indexMigrations = []string{
	`CREATE TABLE shares (
		cid       TEXT PRIMARY KEY,
		root      TEXT NOT NULL,    -- absolute path of the shared file or folder
		manifest  BLOB NOT NULL,    -- canonical bytes, chunk hashes included
		shared_at INTEGER NOT NULL  -- unix ms
	);
	CREATE TABLE share_files (
		cid      TEXT NOT NULL REFERENCES shares(cid) ON DELETE CASCADE,
		entry    INTEGER NOT NULL,  -- index into the manifest's entries
		size     INTEGER NOT NULL,
		mtime_ns INTEGER NOT NULL,
		inode    INTEGER NOT NULL,  -- 0 where the platform has none
		PRIMARY KEY (cid, entry)
	);`,
	// The status-change time: with it, a served chunk needs no hashing
	// (0 for files indexed before, whose chunks are hashed as served).
	`ALTER TABLE share_files ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;`,
}

// Index records shared files where they are (no copy): for each content,
// its manifest and the size, modification time and inode each file had
// when it was hashed. Safe for concurrent use.
type Index struct {
	db *sqlitedb.DB
}

// OpenIndex opens (creating if needed) the share index at path.
func OpenIndex(path string) (*Index, error) {
	db, err := sqlitedb.Open(path, indexMigrations)
	if err != nil {
		return nil, fmt.Errorf("open share index: %w", err)
	}
	return &Index{db: db}, nil
}

// Close closes the index.
func (x *Index) Close() error { return x.db.Close() }

// Share hashes the file or folder at path in place and records it. Sharing
// the same unchanged content again is harmless and returns the same CID;
// sharing a path again after it changed replaces the old content, which is
// no longer served.
func (x *Index) Share(ctx context.Context, path string) (cid.Cid, *Manifest, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("share %s: %w", path, err)
	}
	m, stats, err := build(ctx, abs)
	if err != nil {
		return cid.Undef, nil, err
	}
	raw := m.Encode()
	c := CIDOf(raw)
	tx, err := x.db.BeginTx(ctx, nil)
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("share %s: %w", path, err)
	}
	defer tx.Rollback()
	// One content per path: sharing a path again (after it changed)
	// replaces what it was shared as.
	if _, err := tx.ExecContext(ctx, `DELETE FROM shares WHERE cid = ? OR root = ?`, c.String(), abs); err != nil {
		return cid.Undef, nil, fmt.Errorf("share %s: %w", path, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO shares (cid, root, manifest, shared_at) VALUES (?, ?, ?, ?)`,
		c.String(), abs, raw, time.Now().UnixMilli()); err != nil {
		return cid.Undef, nil, fmt.Errorf("share %s: %w", path, err)
	}
	for i, st := range stats {
		if _, err := tx.ExecContext(ctx, `INSERT INTO share_files (cid, entry, size, mtime_ns, inode, ctime_ns) VALUES (?, ?, ?, ?, ?, ?)`,
			c.String(), i, st.size, st.mtime, int64(st.inode), st.ctime); err != nil {
			return cid.Undef, nil, fmt.Errorf("share %s: %w", path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return cid.Undef, nil, fmt.Errorf("share %s: %w", path, err)
	}
	return c, m, nil
}

// Unshare forgets a content. Unsharing what is not shared is not an error.
func (x *Index) Unshare(ctx context.Context, c cid.Cid) error {
	if _, err := x.db.ExecContext(ctx, `DELETE FROM shares WHERE cid = ?`, c.String()); err != nil {
		return fmt.Errorf("unshare %s: %w", c, err)
	}
	return nil
}

// Open returns the shared content c for reading. Close it when done.
func (x *Index) Open(ctx context.Context, c cid.Cid) (Content, error) {
	var root string
	var raw []byte
	err := x.db.QueryRowContext(ctx, `SELECT root, manifest FROM shares WHERE cid = ?`, c.String()).Scan(&root, &raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotShared
	}
	if err != nil {
		return nil, fmt.Errorf("read share %s: %w", c, err)
	}
	m, err := Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("read share %s: %w", c, err)
	}
	rows, err := x.db.QueryContext(ctx, `SELECT entry, size, mtime_ns, inode, ctime_ns FROM share_files WHERE cid = ? ORDER BY entry`, c.String())
	if err != nil {
		return nil, fmt.Errorf("read share %s: %w", c, err)
	}
	defer rows.Close()
	stats := make([]fileStat, len(m.Entries))
	for rows.Next() {
		var i int
		var st fileStat
		var inode int64
		if err := rows.Scan(&i, &st.size, &st.mtime, &inode, &st.ctime); err != nil {
			return nil, fmt.Errorf("read share %s: %w", c, err)
		}
		if i < 0 || i >= len(stats) {
			return nil, fmt.Errorf("read share %s: entry %d out of range", c, i)
		}
		st.inode = uint64(inode)
		stats[i] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read share %s: %w", c, err)
	}
	base := filepath.Dir(root)
	return &localContent{raw: raw, m: m, base: base, stats: stats, open: make(map[int]*os.File)}, nil
}

// Content is one content a server can serve.
type Content interface {
	// Manifest returns the content's canonical manifest bytes and their
	// decoded form.
	Manifest() ([]byte, *Manifest)
	// ReadChunk reads chunk i into buf (at least ChunkSize bytes) and
	// returns the filled part. It returns an error wrapping ErrChanged
	// when the bytes are no longer those the manifest names.
	ReadChunk(i int, buf []byte) ([]byte, error)
	// Close releases open files.
	Close() error
}

// fileStat is what identifies a version of a file on disk.
type fileStat struct {
	size  int64
	mtime int64 // ns
	inode uint64
	ctime int64 // ns; 0 where unknown (another platform, an older index)
}

func statOf(fi fs.FileInfo) fileStat {
	inode, ctime := sysStat(fi)
	return fileStat{size: fi.Size(), mtime: fi.ModTime().UnixNano(), inode: inode, ctime: ctime}
}

// sameVersion reports whether now is the version of the file that was
// indexed; an index entry without a change time is compared on the rest.
func (indexed fileStat) sameVersion(now fileStat) bool {
	if indexed.ctime == 0 {
		now.ctime = 0
	}
	return now == indexed
}

// localContent serves shared files in place. Not safe for concurrent use.
type localContent struct {
	raw   []byte
	m     *Manifest
	base  string // directory holding the shared file or folder
	stats []fileStat
	open  map[int]*os.File
}

func (l *localContent) Manifest() ([]byte, *Manifest) { return l.raw, l.m }

func (l *localContent) file(entry int) (*os.File, error) {
	if f := l.open[entry]; f != nil {
		return f, nil
	}
	f, err := os.Open(filepath.Join(l.base, filepath.FromSlash(l.m.Entries[entry].Path)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrChanged, err)
	}
	l.open[entry] = f
	return f, nil
}

func (l *localContent) ReadChunk(i int, buf []byte) ([]byte, error) {
	c := l.m.Chunk(i)
	f, err := l.file(c.Entry)
	if err != nil {
		return nil, err
	}
	indexed := l.stats[c.Entry]
	if err := unchanged(f, indexed); err != nil {
		return nil, err
	}
	b := buf[:c.Size]
	if _, err := f.ReadAt(b, c.Offset); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s is shorter", ErrChanged, f.Name())
		}
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	// A write during the read moved the change time: checked again
	// after it, the file's version vouches for the bytes, and they need
	// no hashing. Without a change time, they are hashed.
	if err := unchanged(f, indexed); err != nil {
		return nil, err
	}
	if indexed.ctime == 0 {
		if h := hashChunk(b); string(h[:]) != string(c.Hash) {
			return nil, fmt.Errorf("%w: %s: chunk %d", ErrChanged, f.Name(), i)
		}
	}
	return b, nil
}

// unchanged fails with ErrChanged unless f is still the version indexed.
func unchanged(f *os.File, indexed fileStat) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	if !indexed.sameVersion(statOf(fi)) {
		return fmt.Errorf("%w: %s", ErrChanged, f.Name())
	}
	return nil
}

func (l *localContent) Close() error {
	var errs []error
	for _, f := range l.open {
		errs = append(errs, f.Close())
	}
	clear(l.open)
	return errors.Join(errs...)
}

// Build hashes the regular file or the folder at path in place and returns
// its manifest. In a
// folder, symbolic links and special files are skipped; a file name that
// ValidatePath refuses makes the whole share fail, so Parley never
// publishes a manifest its peers would refuse.
func Build(ctx context.Context, path string) (*Manifest, error) {
	m, _, err := build(ctx, path)
	return m, err
}

// build is Build that also returns what each file looked like on disk when
// it was hashed.
func build(ctx context.Context, path string) (*Manifest, []fileStat, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("share %s: %w", path, err)
	}
	type found struct {
		rel, abs string
	}
	var files []found
	name := filepath.Base(path)
	switch {
	case fi.Mode().IsRegular():
		files = append(files, found{name, path})
	case fi.IsDir():
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				if !d.IsDir() {
					log.Debugw("share: skipping non-regular file", "path", p)
				}
				return nil
			}
			rel, err := filepath.Rel(path, p)
			if err != nil {
				return err
			}
			files = append(files, found{name + "/" + filepath.ToSlash(rel), p})
			if len(files) > MaxEntries {
				return fmt.Errorf("more than %d files", MaxEntries)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("share %s: %w", path, err)
		}
	default:
		return nil, nil, fmt.Errorf("share %s: not a regular file or folder", path)
	}
	slices.SortFunc(files, func(a, b found) int { return strings.Compare(a.rel, b.rel) })
	entries := make([]Entry, len(files))
	stats := make([]fileStat, len(files))
	buf := make([]byte, ChunkSize)
	for i, f := range files {
		if err := ValidatePath(f.rel); err != nil {
			return nil, nil, fmt.Errorf("share %s: %w", path, err)
		}
		e, st, err := hashFile(ctx, f.abs, buf)
		if err != nil {
			return nil, nil, fmt.Errorf("share %s: %w", path, err)
		}
		e.Path = f.rel
		entries[i], stats[i] = e, st
	}
	m, err := newManifest(entries)
	if err != nil {
		return nil, nil, fmt.Errorf("share %s: %w", path, err)
	}
	return m, stats, nil
}

func hashFile(ctx context.Context, path string, buf []byte) (Entry, fileStat, error) {
	f, err := os.Open(path)
	if err != nil {
		return Entry{}, fileStat{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, fileStat{}, err
	}
	before := statOf(fi)
	e := Entry{Size: fi.Size(), Executable: fi.Mode().Perm()&0o111 != 0}
	if e.Size > MaxChunks*ChunkSize {
		return Entry{}, fileStat{}, fmt.Errorf("%s: %d bytes, limit %d", path, e.Size, int64(MaxChunks*ChunkSize))
	}
	e.Hashes = make([]byte, 0, chunksFor(e.Size)*HashSize)
	for off := int64(0); off < e.Size; off += ChunkSize {
		if err := ctx.Err(); err != nil {
			return Entry{}, fileStat{}, err
		}
		b := buf[:min(ChunkSize, e.Size-off)]
		if _, err := io.ReadFull(f, b); err != nil {
			return Entry{}, fileStat{}, fmt.Errorf("%s: %w (changed while hashing?)", path, err)
		}
		h := hashChunk(b)
		e.Hashes = append(e.Hashes, h[:]...)
	}
	if fi, err = f.Stat(); err != nil {
		return Entry{}, fileStat{}, err
	}
	if statOf(fi) != before {
		return Entry{}, fileStat{}, fmt.Errorf("%s: changed while hashing; try again", path)
	}
	return e, before, nil
}
