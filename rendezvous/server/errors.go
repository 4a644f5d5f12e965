package server

import (
	"errors"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// statusOf maps an error from the service to the wire: a status and a
// message that is safe to show the remote user. Unknown errors become
// STATUS_INTERNAL with a generic message; the caller logs the detail.
func statusOf(err error) (pb.Status, string) {
	var se *rendezvous.StatusError
	switch {
	case errors.As(err, &se):
		return se.Status, se.Message
	case errors.Is(err, rendezvous.ErrBadRequest):
		return pb.Status_STATUS_BAD_REQUEST, err.Error()
	case errors.Is(err, rendezvous.ErrBadCredentials):
		return pb.Status_STATUS_UNAUTHENTICATED, rendezvous.ErrBadCredentials.Error()
	case errors.Is(err, rendezvous.ErrDeviceNotEnrolled):
		return pb.Status_STATUS_UNAUTHENTICATED, rendezvous.ErrDeviceNotEnrolled.Error()
	case errors.Is(err, rendezvous.ErrAccountDeleted):
		return pb.Status_STATUS_UNAUTHENTICATED, rendezvous.ErrAccountDeleted.Error()
	case errors.Is(err, rendezvous.ErrUsernameTaken):
		return pb.Status_STATUS_ALREADY_EXISTS, rendezvous.ErrUsernameTaken.Error()
	case errors.Is(err, rendezvous.ErrDeviceTaken):
		return pb.Status_STATUS_ALREADY_EXISTS, rendezvous.ErrDeviceTaken.Error()
	case errors.Is(err, rendezvous.ErrNotFound):
		return pb.Status_STATUS_NOT_FOUND, rendezvous.ErrNotFound.Error()
	case errors.Is(err, rendezvous.ErrRateLimited):
		return pb.Status_STATUS_RATE_LIMITED, rendezvous.ErrRateLimited.Error()
	case errors.Is(err, rendezvous.ErrDeviceRevoked):
		return pb.Status_STATUS_PERMISSION_DENIED, rendezvous.ErrDeviceRevoked.Error()
	case errors.Is(err, rendezvous.ErrNotTrusted):
		return pb.Status_STATUS_PERMISSION_DENIED, rendezvous.ErrNotTrusted.Error()
	case errors.Is(err, rendezvous.ErrUnavailable):
		return pb.Status_STATUS_UNAVAILABLE, rendezvous.ErrUnavailable.Error()
	default:
		return pb.Status_STATUS_INTERNAL, rendezvous.ErrInternal.Error()
	}
}
