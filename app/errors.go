package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleynet/parley/rendezvous"
)

// ErrInvalidArgument means a caller's argument is out of range or
// malformed; the error's text says which and what is allowed.
var ErrInvalidArgument = errors.New("invalid argument")

// ErrServerUnreachable means the rendezvous server did not answer.
var ErrServerUnreachable = errors.New("cannot reach the rendezvous server; check the network and try again")

// serverError marks an error that did not come from the server (a dial
// or stream failure) as ErrServerUnreachable. Errors the server answered
// (*rendezvous.StatusError) and cancellations pass unchanged, and so
// does a request refused before it was sent (ErrBadRequest): it did not
// fail for the network's sake either.
func serverError(err error) error {
	var status *rendezvous.StatusError
	if err == nil || errors.As(err, &status) || errors.Is(err, rendezvous.ErrBadRequest) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w (%w)", ErrServerUnreachable, err)
}
