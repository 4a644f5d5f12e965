package dht

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parleynet/parley/internal/atomicfile"
)

// SeqSource hands out the sequence numbers of this node's records. Each
// call must return a number larger than any it returned before, also
// across restarts: DHT servers refuse a record whose sequence number is
// lower than the one they hold, so a node that restarted at 1 could not
// update its record until the old one expired.
type SeqSource interface {
	NextSeq() (uint64, error)
}

// ClockSeq returns sequence numbers from the wall clock: the Unix time in
// milliseconds, or one more than the last number when the clock has not
// moved on. It needs no storage and survives restarts as long as the clock
// does not go back by more than the time the node was down. It is the
// default; FileSeq does not depend on the clock.
func ClockSeq() SeqSource { return &clockSeq{} }

type clockSeq struct {
	mu   sync.Mutex
	last uint64
}

func (c *clockSeq) NextSeq() (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = max(c.last+1, uint64(time.Now().UnixMilli()))
	return c.last, nil
}

// FileSeq returns sequence numbers persisted in the file at path (created
// with mode 0600 on first use): each is the larger of one more than the
// last and the Unix time in milliseconds, and is written to the file
// (through a temporary file, synced and renamed) before it is returned. A
// file that does not hold a number is an error, not a reset.
func FileSeq(path string) (SeqSource, error) {
	s := &fileSeq{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read sequence file: %w", err)
	default:
		n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("sequence file %s: %w", path, err)
		}
		s.last = n
	}
	return s, nil
}

type fileSeq struct {
	path string

	mu   sync.Mutex // guards the following
	last uint64
}

func (s *fileSeq) NextSeq() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := max(s.last+1, uint64(time.Now().UnixMilli()))
	if err := atomicfile.Write(s.path, []byte(strconv.FormatUint(n, 10)+"\n")); err != nil {
		return 0, fmt.Errorf("persist sequence number: %w", err)
	}
	s.last = n
	return n, nil
}
