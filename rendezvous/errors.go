package rendezvous

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/parleynet/parley/rendezvous/pb"
)

// Sentinel errors. Each has one row in the error table (Errors), which
// maps it to a wire status, a stable code and an HTTP status, so callers
// on both sides of the wire, and of the client daemon's local API, can
// test with errors.Is.
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
	// ErrContactRequired: mailbox keys and deposits are for accepted
	// contacts only (and a user's own keys for the user).
	ErrContactRequired = errors.New("only accepted contacts may do this")
	// ErrMailboxFull: the recipient's mailbox is at its quota. The server
	// names the user in its message.
	ErrMailboxFull = errors.New("the recipient's mailbox is full; the message stays queued on your device and is retried")
	// ErrDeviceKeysChanged: a deposit's envelopes do not match the
	// recipient's active devices with keys (one was enrolled, revoked or
	// published a new key). Fetch the keys again and seal anew.
	ErrDeviceKeysChanged = errors.New("the recipient's devices changed; fetch their keys again and seal the message anew")
)

// ErrorCode is one row of the error table: a sentinel and what stands for
// it on the wire and over HTTP.
type ErrorCode struct {
	// Err is the sentinel.
	Err error
	// Status is the wire status a server answers with. Several sentinels
	// share a status; the first row with a status is its default, the
	// sentinel a response without a code stands for.
	Status pb.Status
	// Code is the stable, machine-readable name of the error: sent in
	// Response.code and in the client daemon's local API. It never
	// changes once released.
	Code string
	// HTTP is the status the client daemon's local API answers with.
	HTTP int
}

// errorTable has one row per sentinel; see ErrorCode for the order. The
// codes and HTTP statuses are the client daemon's local API's (app/api),
// seen from the daemon, for which the rendezvous server is upstream: 422 a
// request to fix (400 stays for a body the API cannot parse), 401 who you
// are was not established (credentials, enrolment, a deleted account),
// 403 who you are may not do this, 404, 409 a name or device already in
// use or no session yet (or a deposit sealed to devices that changed),
// 429 wait and retry, 507 a mailbox is full (retry later), 503 the server
// is going away, 502 the server failed.
var errorTable = []ErrorCode{
	{ErrBadRequest, pb.Status_STATUS_BAD_REQUEST, "invalid_request", http.StatusUnprocessableEntity},
	{ErrBadCredentials, pb.Status_STATUS_UNAUTHENTICATED, "bad_credentials", http.StatusUnauthorized},
	{ErrDeviceNotEnrolled, pb.Status_STATUS_UNAUTHENTICATED, "device_not_enrolled", http.StatusUnauthorized},
	{ErrAccountDeleted, pb.Status_STATUS_UNAUTHENTICATED, "account_deleted", http.StatusUnauthorized},
	{ErrNotLoggedIn, pb.Status_STATUS_UNAUTHENTICATED, "session_required", http.StatusConflict},
	{ErrUsernameTaken, pb.Status_STATUS_ALREADY_EXISTS, "username_taken", http.StatusConflict},
	{ErrDeviceTaken, pb.Status_STATUS_ALREADY_EXISTS, "device_taken", http.StatusConflict},
	{ErrNotFound, pb.Status_STATUS_NOT_FOUND, "not_found", http.StatusNotFound},
	{ErrRateLimited, pb.Status_STATUS_RATE_LIMITED, "rate_limited", http.StatusTooManyRequests},
	{ErrDeviceRevoked, pb.Status_STATUS_PERMISSION_DENIED, "device_revoked", http.StatusForbidden},
	{ErrNotTrusted, pb.Status_STATUS_PERMISSION_DENIED, "not_trusted", http.StatusForbidden},
	{ErrContactRequired, pb.Status_STATUS_PERMISSION_DENIED, "contact_required", http.StatusForbidden},
	{ErrDeviceKeysChanged, pb.Status_STATUS_BAD_REQUEST, "device_keys_changed", http.StatusConflict},
	{ErrMailboxFull, pb.Status_STATUS_RESOURCE_EXHAUSTED, "mailbox_full", http.StatusInsufficientStorage},
	{ErrUnavailable, pb.Status_STATUS_UNAVAILABLE, "server_unavailable", http.StatusServiceUnavailable},
	{ErrInternal, pb.Status_STATUS_INTERNAL, "server_internal", http.StatusBadGateway},
}

// internalRow is the row of ErrInternal, for errors the table lacks.
var internalRow = errorTable[len(errorTable)-1]

// Errors returns the error table: one row per sentinel of this package.
func Errors() []ErrorCode { return slices.Clone(errorTable) }

// CodeOf returns the row of the first sentinel err matches with
// errors.Is; a *StatusError matches the sentinel it unwraps to. An error
// that matches none is ErrInternal's row; nil is the zero ErrorCode.
func CodeOf(err error) ErrorCode {
	if err == nil {
		return ErrorCode{}
	}
	for _, row := range errorTable {
		if errors.Is(err, row.Err) {
			return row
		}
	}
	return internalRow
}

// LookupCode returns the row of a code from the wire or the local API.
func LookupCode(code string) (ErrorCode, bool) {
	i := slices.IndexFunc(errorTable, func(r ErrorCode) bool { return r.Code == code })
	if i < 0 {
		return ErrorCode{}, false
	}
	return errorTable[i], true
}

// statusRow is the default row of a status: the first with it, or
// ErrInternal's for a status that has none.
func statusRow(s pb.Status) ErrorCode {
	i := slices.IndexFunc(errorTable, func(r ErrorCode) bool { return r.Status == s })
	if i < 0 {
		return internalRow
	}
	return errorTable[i]
}

// StatusError is an error response from the server: a wire status, the
// code of the error, the server's safe message, and for rate limits when
// to retry.
type StatusError struct {
	Status pb.Status
	// Code names the sentinel (an ErrorCode's Code). Empty from a server
	// that predates codes, or when the status alone says which.
	Code       string
	Message    string
	RetryAfter time.Duration
}

// Error is the server's message; a message about a limit already says
// when to retry.
func (e *StatusError) Error() string {
	return "rendezvous: " + e.Message
}

// Unwrap returns the sentinel, so errors.Is works on the client side: the
// sentinel of the code if it is known and belongs to the status, else the
// status's default (ErrInternal for a status the table lacks).
func (e *StatusError) Unwrap() error {
	if row, ok := LookupCode(e.Code); ok && row.Status == e.Status {
		return row.Err
	}
	return statusRow(e.Status).Err
}

// ErrorResponse is how a server answers err: the status and code of its
// row in the error table, and a message that is safe to show the remote
// user. The message is the sentinel's own, except for a *StatusError (its
// Message) and ErrBadRequest (the whole error, which says which rule the
// request broke), so an error outside the table becomes STATUS_INTERNAL
// with a generic message; the server logs the detail. A StatusError's
// RetryAfter becomes retry_after_ms, rounded up.
func ErrorResponse(err error) *pb.Response {
	row := CodeOf(err)
	resp := &pb.Response{Status: row.Status, Code: row.Code, Message: row.Err.Error()}
	var se *StatusError
	switch {
	case errors.As(err, &se):
		resp.Message = se.Message
	case row.Err == ErrBadRequest:
		resp.Message = err.Error()
	}
	if se != nil && se.RetryAfter > 0 {
		// Round up: a client that waits exactly this long must not be
		// refused again, and a wait under 1ms must not become 0 (no hint).
		resp.RetryAfterMs = uint64((se.RetryAfter + time.Millisecond - 1) / time.Millisecond)
	}
	return resp
}

// ResponseError is the error a response stands for: nil for STATUS_OK,
// else a *StatusError that unwraps to the sentinel of its code (see
// StatusError.Unwrap).
func ResponseError(resp *pb.Response) error {
	if resp.GetStatus() == pb.Status_STATUS_OK {
		return nil
	}
	msg := resp.GetMessage()
	if msg == "" {
		msg = resp.GetStatus().String()
	}
	return &StatusError{
		Status:     resp.GetStatus(),
		Code:       resp.GetCode(),
		Message:    msg,
		RetryAfter: time.Duration(resp.GetRetryAfterMs()) * time.Millisecond,
	}
}
