package files

import (
	"bufio"
	"context"
	"fmt"
	"time"

	"golang.org/x/time/rate"
)

// Bounds of an upload limiter's burst: the bytes a server may send at once
// after an idle spell, and the largest piece it writes between waits.
const (
	minUploadBurst = 16 << 10
	maxUploadBurst = 256 << 10
)

// newUploadLimiter returns the token bucket for limit bytes a second, or
// nil for no limit (limit <= 0). Its burst is an eighth of a second of
// sending, between minUploadBurst and maxUploadBurst: small enough that
// the rate holds over a fraction of a second, large enough that a fast
// limit does not wake the writer thousands of times a second.
func newUploadLimiter(limit int64) *rate.Limiter {
	if limit <= 0 {
		return nil
	}
	burst := int(min(max(limit/8, minUploadBurst), maxUploadBurst))
	return rate.NewLimiter(rate.Limit(limit), burst)
}

// writeLimited writes b to the stream under the server's upload limit,
// if it has one. It gives up at deadline or when the server closes.
func (ss *serveSession) writeLimited(deadline time.Time, b []byte) error {
	if ss.s.limit == nil {
		_, err := ss.bw.Write(b)
		return err
	}
	ctx, cancel := context.WithDeadline(ss.s.ctx, deadline)
	defer cancel()
	return writePaced(ctx, ss.s.limit, ss.bw, b)
}

// writePaced writes b to w in pieces of at most lim's burst, each after
// waiting for its tokens, and flushes each piece: the bytes leave when
// their tokens are granted, not in bursts of w's buffer, and a stream the
// requester reset fails the next piece instead of holding tokens the
// other streams could use. The wait ends with an error when ctx ends; the
// tokens of a wait cut short are given back.
func writePaced(ctx context.Context, lim *rate.Limiter, w *bufio.Writer, b []byte) error {
	for len(b) > 0 {
		n := min(len(b), lim.Burst())
		if err := lim.WaitN(ctx, n); err != nil {
			return fmt.Errorf("wait for the upload limit: %w", err)
		}
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
