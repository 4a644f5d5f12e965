package files

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/app/files/pb"
)

// ProtocolID is the file transfer protocol.
const ProtocolID = "/parley/files/1.0.0"

var (
	// ErrRefused means the provider does not admit us to this content.
	ErrRefused = errors.New("not admitted to this content")
	// ErrBadRequest means the provider found our request malformed or out
	// of bounds (a bug on our side, or a manifest it does not have).
	ErrBadRequest = errors.New("bad request")
	// ErrProviderFailed means the provider could not read its own copy.
	ErrProviderFailed = errors.New("provider failed to read its copy")
	// ErrProtocol means the provider broke the protocol (a frame too large
	// or malformed, a chunk of the wrong index or size).
	ErrProtocol = errors.New("protocol violation")
)

// StatusError is a non-OK Response from a provider. It unwraps to the
// sentinel of its status, so errors.Is(err, ErrRefused) works.
type StatusError struct {
	Status pb.Response_Status
	Msg    string // the provider's text, for display only
}

func (e *StatusError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("provider answered %s", e.Status)
	}
	return fmt.Sprintf("provider answered %s: %s", e.Status, e.Msg)
}

func (e *StatusError) Unwrap() error {
	switch e.Status {
	case pb.Response_STATUS_NOT_FOUND:
		return ErrNotShared
	case pb.Response_STATUS_REFUSED:
		return ErrRefused
	case pb.Response_STATUS_BAD_REQUEST:
		return ErrBadRequest
	case pb.Response_STATUS_CHANGED:
		return ErrChanged
	default:
		return ErrProviderFailed
	}
}

// statusOf maps an error met while serving to the status and the safe
// text sent to the requester; the detail stays in our log.
func statusOf(err error) (pb.Response_Status, string) {
	switch {
	case errors.Is(err, ErrNotShared):
		return pb.Response_STATUS_NOT_FOUND, "content not shared here"
	case errors.Is(err, ErrRefused):
		return pb.Response_STATUS_REFUSED, "not admitted to this content"
	case errors.Is(err, ErrBadRequest):
		return pb.Response_STATUS_BAD_REQUEST, err.Error()
	case errors.Is(err, ErrChanged):
		return pb.Response_STATUS_CHANGED, "the shared file changed since it was shared"
	default:
		return pb.Response_STATUS_INTERNAL, "could not read the shared copy"
	}
}

// errProto is what the protobuf runtime's decoding errors wrap.
var errProto = proto.Error
