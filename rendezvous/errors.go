package rendezvous

import (
	"errors"
	"time"

	"github.com/parleynet/parley/rendezvous/pb"
)

// Sentinel errors. The server maps them to wire statuses and the client maps
// statuses back, so callers on both sides can test with errors.Is.
var (
	ErrNotFound          = errors.New("not found")
	ErrUsernameTaken     = errors.New("username is taken")
	ErrDeviceTaken       = errors.New("device is enrolled to another account")
	ErrBadCredentials    = errors.New("wrong username or password")
	ErrDeviceNotEnrolled = errors.New("device is not enrolled; enrol it with your password first")
	ErrBadRequest        = errors.New("bad request")
	ErrRateLimited       = errors.New("too many attempts")
	ErrNotLoggedIn       = errors.New("not logged in")
	ErrInternal          = errors.New("internal server error")
	ErrDeviceRevoked     = errors.New("this device was revoked by its owner; enrol a new device")
	ErrUnavailable       = errors.New("server unavailable; try again later")
	ErrAccountDeleted    = errors.New("this account was deleted")
	ErrNotTrusted        = errors.New("this peer may not announce itself as a supernode: it is neither a trusted relay nor an enrolled device")
)

// StatusError is an error response from the server: a wire status, the
// server's safe message, and for rate limits when to retry.
type StatusError struct {
	Status     pb.Status
	Message    string
	RetryAfter time.Duration
}

// Error is the server's message; a message about a limit already says
// when to retry.
func (e *StatusError) Error() string {
	return "rendezvous: " + e.Message
}

// Unwrap returns the sentinel for the status, so errors.Is works on the
// client side.
func (e *StatusError) Unwrap() error {
	switch e.Status {
	case pb.Status_STATUS_BAD_REQUEST:
		return ErrBadRequest
	case pb.Status_STATUS_UNAUTHENTICATED:
		switch e.Message {
		case ErrDeviceNotEnrolled.Error():
			return ErrDeviceNotEnrolled
		case ErrAccountDeleted.Error():
			return ErrAccountDeleted
		}
		return ErrBadCredentials
	case pb.Status_STATUS_ALREADY_EXISTS:
		if e.Message == ErrDeviceTaken.Error() {
			return ErrDeviceTaken
		}
		return ErrUsernameTaken
	case pb.Status_STATUS_NOT_FOUND:
		return ErrNotFound
	case pb.Status_STATUS_RATE_LIMITED:
		return ErrRateLimited
	case pb.Status_STATUS_PERMISSION_DENIED:
		if e.Message == ErrNotTrusted.Error() {
			return ErrNotTrusted
		}
		return ErrDeviceRevoked
	case pb.Status_STATUS_UNAVAILABLE:
		return ErrUnavailable
	default:
		return ErrInternal
	}
}
