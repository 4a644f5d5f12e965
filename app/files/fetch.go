package files

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"
)

// ErrNoProviders means no provider is left to fetch the missing chunks
// from; the error joins why each was dropped. What was verified stays on
// disk for a later resume.
var ErrNoProviders = errors.New("no provider left")

// ErrStalled means a provider sent nothing for StallTimeout while we
// waited for a chunk; it is dropped.
var ErrStalled = errors.New("provider stalled")

// stalled turns a read deadline (each transport's own error: yamux and
// QUIC differ) into ErrStalled.
func stalled(err error, d time.Duration) error {
	var timeout interface{ Timeout() bool }
	if errors.As(err, &timeout) && timeout.Timeout() {
		return fmt.Errorf("%w: nothing received for %s: %w", ErrStalled, d, err)
	}
	return err
}

// FetchConfig says where to fetch from and where to put the result.
type FetchConfig struct {
	// Providers are the peers to ask, which the caller can dial (their
	// addresses are in the host's peerstore). Required.
	Providers []peer.ID
	// DownloadDir receives the content and, while it downloads, the
	// .parley-partial folder. Required.
	DownloadDir string
	// StallTimeout drops a provider that takes longer than this to deliver
	// the chunk we are waiting for (so, with 1 MiB chunks, 15s also drops
	// a provider slower than about 70 KB/s); it also bounds dialling and
	// the manifest. Zero means 15s.
	StallTimeout time.Duration
	// Window is how many requests each provider has in flight; zero means
	// 4. With ranges of up to MaxRangeChunks, that keeps tens of MiB
	// moving per provider.
	Window int
	// Certificate, if not nil, returns our membership certificate (or
	// nil), presented to each provider before asking for anything:
	// published content is served to members only.
	Certificate func() []byte
	// Progress, if not nil, is called after each verified chunk and when
	// a provider is dropped. It may be called from several goroutines, but
	// never concurrently, and must not block for long.
	Progress func(Progress)
}

// Progress describes a running fetch.
type Progress struct {
	Verified int64   // bytes verified on disk, including from earlier runs
	Total    int64   // bytes of the content
	Fetched  int64   // bytes of verified chunks received in this run
	Rate     float64 // Fetched per second since the run began
	Peers    int     // providers still fetching
	Dropped  peer.ID // set when this call reports a provider being dropped
	Reason   error   // why Dropped was dropped
}

// Result is what a finished (or paused) fetch did.
type Result struct {
	Manifest  *Manifest
	Fetched   int64             // bytes of new verified chunks received in this run
	From      map[peer.ID]int64 // Fetched, by provider
	Duplicate int64             // bytes that arrived twice in the end game (not in Fetched)
	Dropped   map[peer.ID]error // providers dropped and why
}

// Fetch downloads content c into cfg.DownloadDir from cfg.Providers: the
// manifest (from the partial download if one exists, else from the first
// provider that has it, verified against c), then the missing chunks from
// every provider at once. Each provider pulls ranges from a shared queue,
// sized by its measured rate, so a faster provider gets more of the file;
// a provider that sends a chunk that fails its hash, breaks the protocol,
// refuses, or stalls past StallTimeout is dropped and its outstanding
// chunks go back to the queue. Cancelling ctx pauses: verified chunks stay
// on disk and a later Fetch resumes from them. When every chunk is
// verified the files are checked once more and renamed into place.
//
// Memory use does not grow with the content's size beyond its manifest
// (32 bytes per MiB): each provider holds one chunk buffer.
func Fetch(ctx context.Context, h host.Host, c cid.Cid, cfg FetchConfig) (*Result, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	if len(cfg.Providers) == 0 || cfg.DownloadDir == "" {
		return nil, errors.New("fetch: providers and a download folder are required")
	}
	if cfg.StallTimeout == 0 {
		cfg.StallTimeout = 15 * time.Second
	}
	if cfg.Window == 0 {
		cfg.Window = 4
	}
	f := &fetch{h: h, c: c, cfg: cfg, res: &Result{From: make(map[peer.ID]int64), Dropped: make(map[peer.ID]error)}, conns: make(map[peer.ID]*Conn), start: time.Now()}
	defer f.closeConns()
	raw, m, err := f.manifest(ctx)
	if err != nil {
		return f.res, err
	}
	f.res.Manifest = m
	p, err := OpenPartial(cfg.DownloadDir, c, raw, m)
	if err != nil {
		return f.res, err
	}
	f.part = p
	if testHookPartial != nil {
		testHookPartial(p)
	}
	// What earlier runs verified counts at once: a resumed download does
	// not show 0% until its first new chunk.
	f.mu.Lock()
	f.progressLocked("", nil)
	f.mu.Unlock()
	err = f.chunks(ctx)
	if err == nil {
		if err = p.Finish(); err != nil {
			p.Close()
		}
		return f.res, err
	}
	return f.res, errors.Join(err, p.Close())
}

// testHookPartial, when set by a test, sees each download's Partial before
// chunks are fetched.
var testHookPartial func(*Partial)

type fetch struct {
	h     host.Host
	c     cid.Cid
	cfg   FetchConfig
	part  *Partial
	sched *scheduler
	start time.Time

	mu    sync.Mutex // guards the following and serialises Progress calls
	res   *Result
	conns map[peer.ID]*Conn // from the manifest step, reused for chunks
	peers int
}

func (f *fetch) closeConns() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Reset()
	}
	clear(f.conns)
}

// manifest returns the manifest, from the partial download or a provider.
func (f *fetch) manifest(ctx context.Context) ([]byte, *Manifest, error) {
	if raw, err := ReadPartialManifest(f.cfg.DownloadDir, f.c); err == nil {
		m, err := Decode(raw)
		return raw, m, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		log.Infow("fetch: ignoring kept manifest", "cid", f.c, "err", err)
	}
	var errs []error
	for _, p := range f.cfg.Providers {
		raw, m, err := f.manifestFrom(ctx, p)
		if err == nil {
			return raw, m, nil
		}
		f.res.Dropped[p] = err
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, fmt.Errorf("fetch manifest of %s: %w", f.c, errors.Join(errs...))
}

func (f *fetch) manifestFrom(ctx context.Context, p peer.ID) ([]byte, *Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.StallTimeout)
	defer cancel()
	conn, err := f.dial(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Reset() })
	raw, m, err := conn.GetManifest(f.c)
	if !stop() || err != nil {
		conn.Reset()
		if err == nil {
			err = ctx.Err()
		}
		return nil, nil, err
	}
	f.conns[p] = conn
	return raw, m, nil
}

// dial opens a stream to p and presents our certificate, if we have one.
func (f *fetch) dial(ctx context.Context, p peer.ID) (*Conn, error) {
	conn, err := Dial(ctx, f.h, p)
	if err != nil {
		return nil, err
	}
	var cert []byte
	if f.cfg.Certificate != nil {
		cert = f.cfg.Certificate()
	}
	if len(cert) == 0 {
		return conn, nil
	}
	stop := context.AfterFunc(ctx, func() { conn.Reset() })
	err = conn.Present(cert)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		conn.Reset()
		return nil, err
	}
	return conn, nil
}

// chunks fetches every missing chunk from all providers at once. Workers
// end when every chunk is verified, when their provider fails, or when ctx
// ends.
func (f *fetch) chunks(parent context.Context) error {
	f.sched = newScheduler(f.part)
	if f.sched.complete() {
		return nil
	}
	// A local failure (disk full, a write error) stops every worker: it is
	// nobody's fault among the providers.
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	watcher := make(chan struct{})
	go func() { // once all is verified, stop waiting for end-game duplicates
		defer close(watcher)
		select {
		case <-f.sched.allDone:
			cancel(nil)
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for _, p := range f.cfg.Providers {
		if f.res.Dropped[p] != nil {
			continue
		}
		f.mu.Lock()
		f.peers++
		f.mu.Unlock()
		wg.Go(func() {
			err := f.worker(ctx, p)
			f.sched.release(p)
			var local *localError
			if errors.As(err, &local) {
				cancel(local.err)
			}
			if err != nil && ctx.Err() == nil {
				f.drop(p, err)
				return
			}
			f.mu.Lock()
			f.peers--
			f.mu.Unlock()
		})
	}
	// Workers end when all is verified, their provider fails, or ctx ends.
	wg.Wait()
	cause := context.Cause(ctx)
	cancel(nil)
	<-watcher
	if f.sched.complete() {
		return nil
	}
	if err := parent.Err(); err != nil {
		return err // paused
	}
	if cause != nil {
		return cause // local failure
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for p, e := range f.res.Dropped {
		errs = append(errs, fmt.Errorf("%s: %w", p, e))
	}
	return fmt.Errorf("fetch %s: %w: %w", f.c, ErrNoProviders, errors.Join(errs...))
}

func (f *fetch) drop(p peer.ID, err error) {
	log.Infow("fetch: dropping provider", "cid", f.c, "peer", p, "reason", err)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.res.Dropped[p] = err
	f.peers--
	f.progressLocked(p, err)
}

func (f *fetch) received(p peer.ID, n int, fresh bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !fresh {
		f.res.Duplicate += int64(n)
		return
	}
	f.res.Fetched += int64(n)
	f.res.From[p] += int64(n)
	f.progressLocked("", nil)
}

func (f *fetch) progressLocked(dropped peer.ID, reason error) {
	if f.cfg.Progress == nil {
		return
	}
	rate := float64(f.res.Fetched) / max(time.Since(f.start).Seconds(), 1e-3)
	f.cfg.Progress(Progress{
		Verified: f.part.Verified(), Total: f.part.m.TotalSize, Fetched: f.res.Fetched,
		Rate: rate, Peers: f.peers, Dropped: dropped, Reason: reason,
	})
}

// errBetterPath ends a worker's stream so that it goes on over a better
// connection to its provider.
var errBetterPath = errors.New("a better connection to the provider is open")

// worker fetches from one provider until the queue is empty, the provider
// fails, or ctx ends. When a better connection to the provider opens (a
// splice or a hole punch after the circuit the stream started on), it
// lets the chunks in flight arrive and goes on over a new stream, which
// takes the better connection.
func (f *fetch) worker(ctx context.Context, p peer.ID) error {
	for {
		err := f.stream(ctx, p)
		if !errors.Is(err, errBetterPath) {
			return err
		}
		log.Infow("fetch: moving to a better connection to the provider", "cid", f.c, "peer", p)
	}
}

// betterPath reports whether conn's connection is no longer the best one
// to its provider for bulk data.
func (f *fetch) betterPath(ctx context.Context, conn *Conn) bool {
	b, ok := f.h.(bulkHost)
	return ok && b.BetterBulkConn(network.WithAllowLimitedConn(ctx, "parley files"), conn.Peer(), conn.Connection()) != nil
}

// stream fetches from one provider over one stream. A writer goroutine
// keeps up to Window requests in flight; the reader verifies and stores
// each chunk as it arrives.
func (f *fetch) stream(ctx context.Context, p peer.ID) error {
	f.mu.Lock()
	conn := f.conns[p]
	delete(f.conns, p)
	f.mu.Unlock()
	if conn == nil {
		dctx, cancel := context.WithTimeout(ctx, f.cfg.StallTimeout)
		var err error
		conn, err = f.dial(dctx, p)
		cancel()
		if err != nil {
			return err
		}
	}
	defer conn.Reset()
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, func() { conn.Reset() })
	defer stop()
	inflight := make(chan span, f.cfg.Window)
	rate := &rateMeter{}
	// outstanding counts the chunks asked of p and not yet received: in
	// the end game, how much of others' work p may take over.
	var outstanding atomic.Int64
	busy := func() int { return int(outstanding.Load()) }
	var moving atomic.Bool
	g.Go(func() error { // writer
		defer close(inflight)
		for {
			if f.betterPath(gctx, conn) {
				moving.Store(true)
				return nil // the reader takes what is in flight
			}
			s, ok := f.sched.take(gctx, p, rate.rangeChunks(), busy)
			if !ok {
				return nil
			}
			outstanding.Add(int64(s.count))
			if err := conn.SendChunks(f.c, s.start, s.count); err != nil {
				return err
			}
			select {
			case inflight <- s:
			case <-gctx.Done():
				return nil
			}
		}
	})
	g.Go(func() error { // reader
		buf := make([]byte, ChunkSize)
		for s := range inflight {
			for i := s.start; i < s.start+s.count; i++ {
				conn.SetReadDeadline(time.Now().Add(f.cfg.StallTimeout))
				t0 := time.Now()
				b, err := conn.ReadChunk(f.part.m, i, buf)
				if err != nil {
					if ctx.Err() != nil {
						return nil // paused
					}
					return stalled(err, f.cfg.StallTimeout)
				}
				outstanding.Add(-1)
				rate.add(len(b), time.Since(t0))
				fresh, err := f.part.writeVerified(i, b)
				if err != nil {
					return &localError{err}
				}
				f.sched.done(i)
				f.received(p, len(b), fresh)
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil || !moving.Load() {
		return err
	}
	return errBetterPath
}

// localError is a failure on our side while fetching, such as a full
// disk; it ends the whole fetch instead of dropping a provider.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// span is a run of chunks requested together.
type span struct{ start, count int }

// rateMeter measures one provider's rate to size its requests: enough
// chunks to keep it busy for about targetSpan, between 1 and maxSpan. Used by the worker's two goroutines.
type rateMeter struct {
	mu    sync.Mutex
	bytes float64
	secs  float64
}

const (
	targetSpan = 250 * time.Millisecond
	// maxSpan keeps a provider's share of the queue small (Window spans
	// of at most 16 MiB), so that a dropped or slow provider holds back
	// little at the end of a transfer.
	maxSpan = 16
)

func (r *rateMeter) add(n int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Exponentially weighted, so a provider that slows down gets less.
	r.bytes = r.bytes*0.8 + float64(n)
	r.secs = r.secs*0.8 + d.Seconds()
}

func (r *rateMeter) rangeChunks() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secs == 0 {
		return 2
	}
	n := int(r.bytes / r.secs * targetSpan.Seconds() / ChunkSize)
	return min(max(n, 1), maxSpan)
}
