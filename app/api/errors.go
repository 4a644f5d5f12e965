package api

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"slices"
	"syscall"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/app/offers"
	"github.com/parleynet/parley/app/probe"
	"github.com/parleynet/parley/app/xfer"
	"github.com/parleynet/parley/rendezvous"
)

// errorCode ties a sentinel error to the HTTP status the API answers it
// with and the stable code in apitype.ErrorResponse, so that the Go client
// turns the code back into the same sentinel (errors.Is works whichever
// home of apitype.Client a caller uses).
type errorCode struct {
	err  error
	code string
	http int
}

// errorTable is the API's one mapping of errors to statuses: 4xx for what
// the caller got wrong or asked at the wrong time, 5xx for faults and for
// servers that did not answer. The first row whose sentinel the error
// wraps wins; an error in no row is an internal fault (500). The
// rendezvous protocol's sentinels take their rows from rendezvous.Errors,
// so one error has one code on the wire and over HTTP.
var errorTable = slices.Concat([]errorCode{
	{errBadBody, "bad_request", http.StatusBadRequest},
	{errNotJSON, "unsupported_media_type", http.StatusUnsupportedMediaType},
	{errTooLarge, "request_too_large", http.StatusRequestEntityTooLarge},
	{errUnauthorized, "unauthorized", http.StatusUnauthorized},
	{errForbidden, "forbidden", http.StatusForbidden},
	{errNoEndpoint, "no_such_endpoint", http.StatusNotFound},
	{errMethod, "method_not_allowed", http.StatusMethodNotAllowed},
	{app.ErrInvalidArgument, "invalid_argument", http.StatusUnprocessableEntity},
	{chat.ErrInvalidMessage, "invalid_message", http.StatusUnprocessableEntity},
	{chat.ErrNotLoggedIn, "not_logged_in", http.StatusConflict},
	{chat.ErrNotAContact, "not_a_contact", http.StatusConflict},
	{chat.ErrOffline, "offline", http.StatusConflict},
	{chat.ErrRejected, "rejected", http.StatusConflict},
	{probe.ErrRefused, "probe_refused", http.StatusConflict},
	{xfer.ErrInvalidLink, "invalid_link", http.StatusUnprocessableEntity},
	{xfer.ErrNoSuchTransfer, "no_such_transfer", http.StatusNotFound},
	{ErrNotDone, "transfer_not_done", http.StatusConflict},
	{ErrNoFileManager, "no_file_manager", http.StatusNotImplemented},
	{ErrNoNetwork, "no_network", http.StatusConflict},
	{ErrNetworkChosen, "network_chosen", http.StatusConflict},
	{offers.ErrNoSuchOffer, "no_such_offer", http.StatusNotFound},
	{offers.ErrNotPending, "offer_not_pending", http.StatusConflict},
	{files.ErrUnsafePath, "unsafe_path", http.StatusUnprocessableEntity},
	{files.ErrNotShared, "not_shared", http.StatusNotFound},
	{files.ErrChanged, "file_changed", http.StatusConflict},
	{fs.ErrNotExist, "no_such_file", http.StatusNotFound},
	{fs.ErrPermission, "permission_denied", http.StatusForbidden},
	{syscall.ENOSPC, "no_space", http.StatusInsufficientStorage},
	{app.ErrServerUnreachable, "server_unreachable", http.StatusBadGateway},
	{context.DeadlineExceeded, "timeout", http.StatusGatewayTimeout},
}, rendezvousErrors())

// rendezvousErrors are the rows of rendezvous.Errors in the API's table.
func rendezvousErrors() []errorCode {
	var out []errorCode
	for _, r := range rendezvous.Errors() {
		out = append(out, errorCode{r.Err, r.Code, r.HTTP})
	}
	return out
}

// The errors of the API itself: requests it refuses before any call.
var (
	errBadBody      = errors.New("bad request body") // not what the endpoint takes
	errNotJSON      = errors.New("the request body must be application/json")
	errTooLarge     = errors.New("request body too large")
	errUnauthorized = errors.New("missing or wrong API token (read it from " + InfoFile + " in the data directory)")
	errForbidden    = errors.New("forbidden")
	errNoEndpoint   = errors.New("no such API endpoint")
	errMethod       = errors.New("method not allowed")
)

var internalError = errorCode{code: "", http: http.StatusInternalServerError}

// lookup is err's row of the table.
func lookup(err error) errorCode {
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			return e
		}
	}
	return internalError
}

// sentinelOf is the sentinel a code names, or nil.
func sentinelOf(code string) error {
	for _, e := range errorTable {
		if e.code == code {
			return e.err
		}
	}
	return nil
}

// Error is an error answer from the daemon. It unwraps to the sentinel its
// code names (chat.ErrNotAContact, rendezvous.ErrNotFound, …).
type Error struct {
	Status  int    // the HTTP status
	Code    string // apitype.ErrorResponse.Code
	Message string

	sentinel error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.sentinel }
