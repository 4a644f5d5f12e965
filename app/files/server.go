package files

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/parleynet/parley/app/files/pb"
)

// Requester is who asks for content: the stream's authenticated peer and,
// once it presented a membership certificate that ServerConfig.Certify
// accepted (and until that certificate expires), the username it was
// issued to.
type Requester struct {
	Peer     peer.ID
	Username string // "" when no valid certificate was presented
}

// Admitter decides who may fetch what. The client engine implements it:
// published content admits any member (a requester with a username),
// shared content the devices of the user it was offered to.
type Admitter interface {
	// Admit reports whether r may fetch content c. It may be called
	// from several goroutines at once and should not block for long.
	Admit(r Requester, c cid.Cid) bool
}

// AdmitFunc adapts a function to Admitter.
type AdmitFunc func(r Requester, c cid.Cid) bool

// Admit calls f.
func (f AdmitFunc) Admit(r Requester, c cid.Cid) bool { return f(r, c) }

// CertifyFunc checks a membership certificate presented by peer p: it
// returns the username it was issued to and when it expires, or why it is
// refused (a safe text: it is sent to the requester).
type CertifyFunc func(p peer.ID, raw []byte) (username string, expires time.Time, err error)

// Source opens content to serve. *Index is a Source.
type Source interface {
	Open(ctx context.Context, c cid.Cid) (Content, error)
}

// ServerConfig tunes a Server. The zero value is valid.
type ServerConfig struct {
	// IdleTimeout closes a stream with no request for this long; zero
	// means IdleTimeout.
	IdleTimeout time.Duration
	// WriteTimeout bounds writing one chunk to a requester; zero means
	// WriteTimeout.
	WriteTimeout time.Duration
	// Certify, if not nil, checks the certificates requesters present;
	// when nil, a presented certificate is refused and no requester has a
	// username.
	Certify CertifyFunc
	// UploadLimit caps the bytes a second the server sends, over all the
	// streams it serves together; zero (or less) means no limit. A chunk
	// that waits for the limit longer than WriteTimeout is given up on.
	UploadLimit int64
	// OnSent, if not nil, is told of each chunk written to a requester
	// (into the stream: the requester may still lose it). It is called
	// from the serving goroutines and must not block.
	OnSent func(r Requester, c cid.Cid, bytes int)
}

// Server answers /parley/files/1.0.0 on a host.
type Server struct {
	h     host.Host
	src   Source
	admit Admitter
	cfg   ServerConfig
	limit *rate.Limiter // UploadLimit, shared by all streams; nil: none
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	once  sync.Once

	mu      sync.Mutex // guards the following
	streams map[network.Stream]struct{}
	closed  bool
}

// NewServer starts serving content from src on h to the peers admit lets
// in. Close it to stop.
func NewServer(h host.Host, src Source, admit Admitter, cfg ServerConfig) (*Server, error) {
	if src == nil || admit == nil {
		return nil, errors.New("files server: a source and an admitter are required")
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = IdleTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = WriteTimeout
	}
	ctx, stop := context.WithCancel(context.Background())
	s := &Server{h: h, src: src, admit: admit, cfg: cfg, ctx: ctx, stop: stop, streams: make(map[network.Stream]struct{})}
	s.limit = newUploadLimiter(cfg.UploadLimit)
	h.SetStreamHandler(ProtocolID, s.handle)
	return s, nil
}

// Close stops serving: it removes the handler, resets open streams and
// waits for their handlers to return.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.h.RemoveStreamHandler(ProtocolID)
		s.stop()
		s.mu.Lock()
		s.closed = true
		for st := range s.streams {
			st.Reset()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

func (s *Server) track(st network.Stream) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(st network.Stream) {
	s.mu.Lock()
	delete(s.streams, st)
	s.mu.Unlock()
	s.wg.Done()
}

// handle serves one stream: requests are answered in order, one at a time;
// a requester pipelines by sending more before the answers arrive.
func (s *Server) handle(st network.Stream) {
	if !s.track(st) {
		st.Reset()
		return
	}
	defer s.untrack(st)
	remote := st.Conn().RemotePeer()
	sess := &serveSession{
		s: s, st: st, remote: remote,
		br:   bufio.NewReaderSize(st, 4<<10),
		bw:   bufio.NewWriterSize(st, 256<<10),
		open: make(map[string]Content),
	}
	defer sess.closeContents()
	err := sess.run()
	switch {
	case err == nil:
		st.Close()
	case s.ctx.Err() != nil:
		st.Reset() // shutting down: stay quiet
	default:
		log.Debugw("files stream ended", "peer", remote, "err", err)
		st.Reset()
	}
}

// deadliner is the part of a stream a session sets deadlines on.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

type serveSession struct {
	s      *Server
	st     deadliner
	remote peer.ID
	br     *bufio.Reader
	bw     *bufio.Writer
	open   map[string]Content // by CID key, open for the stream's life
	buf    []byte

	username string    // from the certificate presented on this stream
	expires  time.Time // when username stops counting
}

// requester is who asks on this stream now.
func (ss *serveSession) requester() Requester {
	r := Requester{Peer: ss.remote}
	if ss.username != "" && time.Now().Before(ss.expires) {
		r.Username = ss.username
	}
	return r
}

// certify checks a presented certificate and answers it.
func (ss *serveSession) certify(raw []byte) error {
	if ss.s.cfg.Certify == nil {
		return ss.header(&pb.Response{Status: pb.Response_STATUS_REFUSED, Error: "this device does not take certificates"})
	}
	user, expires, err := ss.s.cfg.Certify(ss.remote, raw)
	if err != nil {
		log.Debugw("files: certificate refused", "peer", ss.remote, "err", err)
		return ss.header(&pb.Response{Status: pb.Response_STATUS_REFUSED, Error: "certificate refused: " + err.Error()})
	}
	ss.username, ss.expires = user, expires
	return ss.header(&pb.Response{Status: pb.Response_STATUS_OK})
}

func (ss *serveSession) closeContents() {
	for _, c := range ss.open {
		c.Close()
	}
}

func (ss *serveSession) run() error {
	for {
		ss.st.SetReadDeadline(time.Now().Add(ss.s.cfg.IdleTimeout))
		var req pb.Request
		err := protodelim.UnmarshalOptions{MaxSize: MaxRequestSize}.UnmarshalFrom(ss.br, &req)
		if errors.Is(err, io.EOF) {
			return ss.bw.Flush()
		}
		if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		if err := ss.serve(&req); err != nil {
			return err
		}
		if ss.br.Buffered() == 0 { // no request waiting: send what we have
			if err := ss.bw.Flush(); err != nil {
				return fmt.Errorf("write response: %w", err)
			}
		}
	}
}

// serve answers one request. It returns an error only when the stream is
// no longer usable.
func (ss *serveSession) serve(req *pb.Request) error {
	if req.Kind == pb.Request_KIND_CERTIFICATE {
		return ss.certify(req.Certificate)
	}
	c, err := cid.Cast(req.Cid)
	if err != nil {
		return ss.refuse(fmt.Errorf("%w: invalid CID", ErrBadRequest))
	}
	if !ss.s.admit.Admit(ss.requester(), c) {
		log.Debugw("files request refused", "peer", ss.remote, "cid", c)
		return ss.refuse(ErrRefused)
	}
	content, err := ss.content(c)
	if err != nil {
		return ss.refuse(err)
	}
	raw, m := content.Manifest()
	switch req.Kind {
	case pb.Request_KIND_MANIFEST:
		if err := ss.header(&pb.Response{Status: pb.Response_STATUS_OK, Size: uint32(len(raw))}); err != nil {
			return err
		}
		if err := ss.writeLimited(time.Now().Add(ss.s.cfg.WriteTimeout), raw); err != nil {
			return fmt.Errorf("write manifest: %w", err)
		}
		return nil
	case pb.Request_KIND_CHUNKS:
	default:
		return ss.refuse(fmt.Errorf("%w: unknown request kind %d", ErrBadRequest, req.Kind))
	}
	n := uint64(m.NumChunks())
	if req.Count == 0 || req.Count > MaxRangeChunks || req.Start >= n || uint64(req.Count) > n-req.Start {
		return ss.refuse(fmt.Errorf("%w: chunks [%d, +%d) of %d (at most %d per request)", ErrBadRequest, req.Start, req.Count, n, MaxRangeChunks))
	}
	if ss.buf == nil {
		ss.buf = make([]byte, ChunkSize)
	}
	for i := int(req.Start); i < int(req.Start)+int(req.Count); i++ {
		b, err := content.ReadChunk(i, ss.buf)
		if err != nil {
			log.Debugw("files: not serving chunk", "cid", c, "chunk", i, "err", err)
			return ss.refuse(err)
		}
		deadline := time.Now().Add(ss.s.cfg.WriteTimeout)
		ss.st.SetWriteDeadline(deadline)
		if err := ss.header(&pb.Response{Status: pb.Response_STATUS_OK, Index: uint64(i), Size: uint32(len(b))}); err != nil {
			return err
		}
		if err := ss.writeLimited(deadline, b); err != nil {
			return fmt.Errorf("write chunk: %w", err)
		}
		if ss.s.cfg.OnSent != nil {
			ss.s.cfg.OnSent(ss.requester(), c, len(b))
		}
	}
	return nil
}

func (ss *serveSession) content(c cid.Cid) (Content, error) {
	if content := ss.open[c.KeyString()]; content != nil {
		return content, nil
	}
	if len(ss.open) >= 8 { // a stream is meant for one content; bound what it holds open
		ss.closeContents()
		clear(ss.open)
	}
	content, err := ss.s.src.Open(ss.s.ctx, c)
	if err != nil {
		return nil, err
	}
	ss.open[c.KeyString()] = content
	return content, nil
}

// refuse sends the status of err; the request's answer ends there.
func (ss *serveSession) refuse(err error) error {
	status, msg := statusOf(err)
	return ss.header(&pb.Response{Status: status, Error: msg})
}

func (ss *serveSession) header(r *pb.Response) error {
	if _, err := protodelim.MarshalTo(ss.bw, r); err != nil {
		return fmt.Errorf("write response: %w", err)
	}
	return nil
}
