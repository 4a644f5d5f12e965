package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// printReport prints a load report, as far as the run got, also when it
// failed: as text, or as one JSON document with the field names of
// package testnet's report types (durations in nanoseconds, memory in
// bytes).
func printReport(w io.Writer, rep fmt.Stringer, asJSON bool, err error) error {
	if !asJSON {
		_, perr := fmt.Fprint(w, rep)
		return errors.Join(err, perr)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return errors.Join(err, enc.Encode(rep))
}
