package app

import "errors"

// ErrInvalidArgument means a caller's argument is out of range or
// malformed; the error's text says which and what is allowed.
var ErrInvalidArgument = errors.New("invalid argument")
