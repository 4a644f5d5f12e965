// Package probe measures the path to a contact's device: it streams a
// given number of pseudo-random bytes over /parley/probe/1.0.0 and checks
// that every byte arrived intact, reporting the throughput and the path
// the stream took (direct, hole-punched or relayed via a supernode). It
// is the client's connection test (`parley probe USER`).
//
// The protocol: the prober opens a stream and sends a Request with the
// size (at most MaxSize). The responder accepts probes only from the
// devices of its contacts: it answers with a Result, ACCEPTED or a
// refusal. After ACCEPTED the prober sends exactly size bytes and closes
// its side; the responder reads and hashes them (SHA-256) and answers with
// the final Result: OK with the count, the digest and how long the bytes
// took to arrive, or SHORT. Frames are length-delimited protobuf of at most
// maxFrame bytes; the stream's deadline grows with the size.
package probe

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/probe/pb"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
)

var log = logging.Logger("parley/probe")

// ProtocolID is the probe protocol.
const ProtocolID = "/parley/probe/1.0.0"

// MaxSize is the largest probe a responder takes.
const MaxSize = 1 << 30

const (
	maxFrame = 256
	// minRate is the slowest transfer a probe's deadline allows for.
	minRate = 256 << 10 // bytes per second
	// baseTimeout is added to every probe's deadline.
	baseTimeout = 30 * time.Second
)

// ErrRefused means the contact's device refused the probe.
var ErrRefused = errors.New("probe refused")

// Contacts tells whether a peer is the device of a contact.
type Contacts interface {
	UsernameOf(p peer.ID) (string, bool)
}

// Result is what a probe measured.
type Result struct {
	Device   string        `json:"device"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	// MBps is the throughput in megabytes (10⁶ bytes) per second, from
	// the first byte sent to the responder's answer.
	MBps float64 `json:"mbps"`
	// Path is how the stream went: "direct", "holepunched" or "relayed via
	// <supernode>".
	Path string `json:"path"`
	// Transport is what the stream's connection ran on: "tcp" or "quic"
	// (for a relayed one, the hop to the supernode).
	Transport string `json:"transport,omitempty"`
	// Intact is true when the responder received every byte and its
	// digest matches what was sent.
	Intact bool `json:"intact"`
}

// Service answers probes from contacts.
type Service struct {
	node     *node.Node
	contacts Contacts
}

// NewService starts answering ProtocolID on n.
func NewService(n *node.Node, contacts Contacts) *Service {
	s := &Service{node: n, contacts: contacts}
	n.SetStreamHandler(ProtocolID, s.handle)
	return s
}

// Close stops answering probes.
func (s *Service) Close() error {
	s.node.RemoveStreamHandler(ProtocolID)
	return nil
}

func deadline(size uint64) time.Duration {
	return baseTimeout + time.Duration(size/minRate)*time.Second
}

func (s *Service) handle(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(baseTimeout))
	remote := st.Conn().RemotePeer()
	req := new(pb.Request)
	r := wire.NewReader(st, maxFrame)
	if err := r.Read(req); err != nil {
		log.Debugw("bad probe request", "peer", remote, "err", err)
		st.Reset()
		return
	}
	if res := s.admit(remote, req.GetSize()); res != nil {
		log.Infow("probe refused", "peer", remote, "status", res.GetStatus(), "reason", res.GetError())
		if err := wire.Write(st, res, maxFrame); err != nil {
			st.Reset()
		}
		return
	}
	if err := wire.Write(st, &pb.Result{Status: pb.Result_STATUS_ACCEPTED}, maxFrame); err != nil {
		st.Reset()
		return
	}
	res := s.receive(st, r.Raw(), req.GetSize())
	if res.GetStatus() != pb.Result_STATUS_OK {
		log.Infow("probe not accepted", "peer", remote, "status", res.GetStatus(), "reason", res.GetError())
	}
	if err := wire.Write(st, res, maxFrame); err != nil {
		log.Debugw("write probe result", "peer", remote, "err", err)
		st.Reset()
	}
}

// admit returns the refusal of a probe, or nil to accept it.
func (s *Service) admit(remote peer.ID, size uint64) *pb.Result {
	if _, ok := s.contacts.UsernameOf(remote); !ok {
		return &pb.Result{Status: pb.Result_STATUS_REFUSED, Error: "you are not a contact of this device's user"}
	}
	if size == 0 || size > MaxSize {
		return &pb.Result{Status: pb.Result_STATUS_TOO_LARGE, Error: fmt.Sprintf("probe of %d bytes; want 1 to %d", size, MaxSize)}
	}
	return nil
}

func (s *Service) receive(st network.Stream, r io.Reader, size uint64) *pb.Result {
	_ = st.SetDeadline(time.Now().Add(deadline(size)))
	h := sha256.New()
	var start time.Time
	first := &firstRead{r: r, at: &start}
	n, err := io.Copy(h, io.LimitReader(first, int64(size)))
	res := &pb.Result{Received: uint64(n), Sha256: h.Sum(nil)}
	if !start.IsZero() {
		res.ElapsedUs = uint64(time.Since(start).Microseconds())
	}
	switch {
	case err != nil:
		res.Status, res.Error = pb.Result_STATUS_SHORT, fmt.Sprintf("stream broke after %d of %d bytes: %v", n, size, err)
	case uint64(n) < size:
		res.Status, res.Error = pb.Result_STATUS_SHORT, fmt.Sprintf("stream ended after %d of %d bytes", n, size)
	default:
		res.Status = pb.Result_STATUS_OK
	}
	return res
}

// firstRead records when its first byte arrived.
type firstRead struct {
	r  io.Reader
	at *time.Time
}

func (f *firstRead) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if n > 0 && f.at.IsZero() {
		*f.at = time.Now()
	}
	return n, err
}

// Run probes device p with size bytes. The connection must be possible
// (the caller prepares it, presenting its certificate to supernodes).
func Run(ctx context.Context, n *node.Node, p peer.ID, size int64) (Result, error) {
	if size <= 0 || size > MaxSize {
		return Result{}, fmt.Errorf("probe size %d: want 1 byte to %d", size, MaxSize)
	}
	ctx, cancel := context.WithTimeout(ctx, deadline(uint64(size)))
	defer cancel()
	st, err := n.NewBulkStream(network.WithAllowLimitedConn(ctx, "probe"), p, ProtocolID)
	if err != nil {
		return Result{}, fmt.Errorf("open probe stream: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	start := time.Now()
	if err := wire.Write(st, &pb.Request{Size: uint64(size)}, maxFrame); err != nil {
		st.Reset()
		return Result{}, err
	}
	rd := wire.NewReader(st, maxFrame)
	res := new(pb.Result)
	if err := rd.Read(res); err != nil {
		st.Reset()
		return Result{}, fmt.Errorf("read probe answer: %w", err)
	}
	if res.GetStatus() != pb.Result_STATUS_ACCEPTED {
		return Result{Device: p.String()}, fmt.Errorf("%w: %s", ErrRefused, res.GetError())
	}
	h := sha256.New()
	src := io.TeeReader(io.LimitReader(newNoise(), size), h)
	if _, err := io.CopyBuffer(st, src, make([]byte, 256<<10)); err != nil {
		st.Reset()
		return Result{}, fmt.Errorf("send probe bytes: %w", err)
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return Result{}, fmt.Errorf("close probe stream: %w", err)
	}
	res.Reset()
	if err := rd.Read(res); err != nil {
		st.Reset()
		return Result{}, fmt.Errorf("read probe result: %w", err)
	}
	took := time.Since(start)
	path := n.ConnPath(st.Conn())
	out := Result{
		Device:    p.String(),
		Bytes:     int64(res.GetReceived()),
		Duration:  took,
		MBps:      float64(res.GetReceived()) / took.Seconds() / 1e6,
		Path:      path.String(),
		Transport: path.Transport,
	}
	if res.GetStatus() != pb.Result_STATUS_OK {
		return out, fmt.Errorf("%w: %s", ErrRefused, res.GetError())
	}
	out.Intact = uint64(size) == res.GetReceived() && bytes.Equal(h.Sum(nil), res.GetSha256())
	if !out.Intact {
		return out, fmt.Errorf("probe data damaged: %d of %d bytes arrived, digest %x, sent %x", res.GetReceived(), size, res.GetSha256(), h.Sum(nil))
	}
	return out, nil
}

// noise is a fast pseudo-random byte source.
type noise struct{ r *rand.ChaCha8 }

func newNoise() *noise {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return &noise{r: rand.NewChaCha8(seed)}
}

func (n *noise) Read(p []byte) (int, error) { return n.r.Read(p) }
