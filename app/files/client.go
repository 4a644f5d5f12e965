package files

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protodelim"

	"github.com/parleynet/parley/app/files/pb"
)

// Conn is the requesting side of one /parley/files/1.0.0 stream. Requests
// (SendManifest, SendChunks) and answers (ReadManifest, ReadChunk) may be
// used from two goroutines, one writing and one reading, so several
// requests stay in flight; answers come in request order.
type Conn struct {
	st   network.Stream
	peer peer.ID
	br   *bufio.Reader
	bw   *bufio.Writer
}

// bulkHost is a host that knows which connection to a peer carries bulk
// data best (node.Node: direct before relayed, spliced before a circuit,
// TCP before QUIC).
type bulkHost interface {
	// NewBulkStream opens a stream on that connection.
	NewBulkStream(ctx context.Context, p peer.ID, pid protocol.ID) (network.Stream, error)
	// BetterBulkConn returns a connection to p strictly better than than.
	BetterBulkConn(ctx context.Context, p peer.ID, than network.Conn) network.Conn
}

// Dial opens a stream to p, on the fastest connection to p when h knows
// which (a bulkHost). It works over relayed connections too: file
// streams are what supernodes relay for authenticated users.
func Dial(ctx context.Context, h host.Host, p peer.ID) (*Conn, error) {
	ctx = network.WithAllowLimitedConn(ctx, "parley files")
	var st network.Stream
	var err error
	if b, ok := h.(bulkHost); ok {
		st, err = b.NewBulkStream(ctx, p, ProtocolID)
	} else {
		st, err = h.NewStream(ctx, p, ProtocolID)
	}
	if err != nil {
		return nil, fmt.Errorf("open files stream to %s: %w", p, err)
	}
	return &Conn{st: st, peer: p, br: bufio.NewReaderSize(st, 64<<10), bw: bufio.NewWriterSize(st, 4<<10)}, nil
}

// Peer returns the provider at the other end.
func (c *Conn) Peer() peer.ID { return c.peer }

// Connection is the libp2p connection the stream runs on.
func (c *Conn) Connection() network.Conn { return c.st.Conn() }

// Close ends the stream politely; Reset aborts it.
func (c *Conn) Close() error { return c.st.Close() }

// Reset aborts the stream, unblocking any reader or writer.
func (c *Conn) Reset() error { return c.st.Reset() }

// SetReadDeadline bounds the next reads (zero: none).
func (c *Conn) SetReadDeadline(t time.Time) error { return c.st.SetReadDeadline(t) }

func (c *Conn) send(r *pb.Request) error {
	if _, err := protodelim.MarshalTo(c.bw, r); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	return nil
}

// SendManifest asks for the manifest of id.
func (c *Conn) SendManifest(id cid.Cid) error {
	return c.send(&pb.Request{Kind: pb.Request_KIND_MANIFEST, Cid: id.Bytes()})
}

// Present shows the provider our membership certificate and waits for its
// answer; content published to members is refused until a valid one is
// presented on the stream. Call it before any other request.
func (c *Conn) Present(cert []byte) error {
	if err := c.send(&pb.Request{Kind: pb.Request_KIND_CERTIFICATE, Certificate: cert}); err != nil {
		return err
	}
	if _, err := c.readHeader(); err != nil {
		return fmt.Errorf("present certificate: %w", err)
	}
	return nil
}

// SendChunks asks for count chunks of id from start.
func (c *Conn) SendChunks(id cid.Cid, start, count int) error {
	return c.send(&pb.Request{Kind: pb.Request_KIND_CHUNKS, Cid: id.Bytes(), Start: uint64(start), Count: uint32(count)})
}

func (c *Conn) readHeader() (*pb.Response, error) {
	var r pb.Response
	if err := (protodelim.UnmarshalOptions{MaxSize: MaxResponseHeaderSize}).UnmarshalFrom(c.br, &r); err != nil {
		var tooLarge *protodelim.SizeTooLargeError
		if errors.As(err, &tooLarge) || errors.Is(err, errProto) {
			return nil, fmt.Errorf("%w: response header: %v", ErrProtocol, err)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read response: %w", err)
	}
	if r.Status != pb.Response_STATUS_OK {
		return nil, &StatusError{Status: r.Status, Msg: r.Error}
	}
	return &r, nil
}

// ReadManifest reads the answer to SendManifest, checks it against id and
// decodes it.
func (c *Conn) ReadManifest(id cid.Cid) ([]byte, *Manifest, error) {
	r, err := c.readHeader()
	if err != nil {
		return nil, nil, err
	}
	if r.Size > MaxManifestSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadManifest, r.Size, MaxManifestSize)
	}
	raw := make([]byte, r.Size)
	if _, err := io.ReadFull(c.br, raw); err != nil {
		return nil, nil, fmt.Errorf("read manifest: %w", err)
	}
	if err := VerifyCID(id, raw); err != nil {
		return nil, nil, err
	}
	m, err := Decode(raw)
	if err != nil {
		return nil, nil, err
	}
	return raw, m, nil
}

// GetManifest asks for the manifest of id and waits for it.
func (c *Conn) GetManifest(id cid.Cid) ([]byte, *Manifest, error) {
	if err := c.SendManifest(id); err != nil {
		return nil, nil, err
	}
	return c.ReadManifest(id)
}

// ReadChunk reads the next chunk answer, which must be chunk want of m,
// into buf (at least ChunkSize bytes) and verifies its hash. A non-OK
// answer is a *StatusError; a chunk that fails its hash is ErrBadChunk.
func (c *Conn) ReadChunk(m *Manifest, want int, buf []byte) ([]byte, error) {
	r, err := c.readHeader()
	if err != nil {
		return nil, err
	}
	ch := m.Chunk(want)
	if r.Index != uint64(want) || r.Size != uint32(ch.Size) {
		return nil, fmt.Errorf("%w: got chunk %d (%d bytes), want %d (%d bytes)", ErrProtocol, r.Index, r.Size, want, ch.Size)
	}
	b := buf[:ch.Size]
	if _, err := io.ReadFull(c.br, b); err != nil {
		return nil, fmt.Errorf("read chunk %d: %w", want, err)
	}
	if h := hashChunk(b); string(h[:]) != string(ch.Hash) {
		return nil, fmt.Errorf("%w: chunk %d from %s", ErrBadChunk, want, c.peer)
	}
	return b, nil
}
