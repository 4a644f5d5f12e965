// Package wire frames protobuf messages on libp2p streams: each message is a
// uvarint length followed by that many bytes of protobuf (protodelim), and
// every read is bounded by a size limit chosen by the protocol.
package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrTooLarge means a frame announced a length above the reader's limit.
	// The stream cannot be resynchronised and must be reset.
	ErrTooLarge = errors.New("frame exceeds size limit")
	// ErrMalformed means a frame's bytes are not a valid message.
	ErrMalformed = errors.New("malformed frame")
)

// Reader reads size-limited frames from one stream. It buffers, so use one
// Reader per stream for the stream's whole life.
type Reader struct {
	br  *bufio.Reader
	max int
}

// NewReader returns a Reader that refuses frames larger than max bytes.
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{br: bufio.NewReader(r), max: max}
}

// Read decodes the next frame into m. At a clean end of stream it returns
// io.EOF; a frame cut short returns io.ErrUnexpectedEOF.
func (r *Reader) Read(m proto.Message) error {
	err := protodelim.UnmarshalOptions{MaxSize: int64(r.max)}.UnmarshalFrom(r.br, m)
	if err == nil {
		return nil
	}
	var tooLarge *protodelim.SizeTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, tooLarge.Size, r.max)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return err
	default:
		var perr interface{ Timeout() bool }
		if errors.As(err, &perr) {
			return err // a deadline, not bad input
		}
		if isProtoError(err) {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return err
	}
}

// Raw returns the rest of the stream after the frames read so far (with
// what the Reader has buffered), for protocols that follow a frame with raw
// bytes. Do not call Read after reading from it.
func (r *Reader) Raw() io.Reader { return r.br }

// isProtoError tells decoding errors from transport errors: proto decoding
// errors wrap proto.Error.
func isProtoError(err error) bool {
	return errors.Is(err, proto.Error)
}

// Write encodes m as one frame and writes it with one call. It refuses to
// send a message larger than max (0 means no limit), so a peer's limit is
// never violated by us. One call matters: a peer may answer as soon as the
// frame is complete and close its side, and a second call (protodelim
// writes the length and the body apart, even an empty body) would then
// fail on the stream the peer stopped reading.
func Write(w io.Writer, m proto.Message, max int) error {
	n := proto.Size(m)
	if max > 0 && n > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
	}
	b := protowire.AppendVarint(make([]byte, 0, protowire.SizeVarint(uint64(n))+n), uint64(n))
	b, err := proto.MarshalOptions{}.MarshalAppend(b, m)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// Stream is the part of a libp2p stream Exchange uses.
type Stream interface {
	io.ReadWriter
	CloseWrite() error
	Reset() error
}

// Exchange sends req as one frame, closes its side of st, and reads one
// frame into resp: a request and its answer. Either failing resets st.
func Exchange(st Stream, req, resp proto.Message, max int) error {
	if err := Write(st, req, max); err != nil {
		st.Reset()
		return fmt.Errorf("send: %w", err)
	}
	_ = st.CloseWrite()
	if err := NewReader(st, max).Read(resp); err != nil {
		st.Reset()
		return fmt.Errorf("read the answer: %w", err)
	}
	return nil
}
