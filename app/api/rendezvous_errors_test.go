package api

import (
	"testing"

	"github.com/parleynet/parley/rendezvous"
)

// TestRendezvousErrorsAgree: the API names each rendezvous sentinel with
// the code and HTTP status of its row in rendezvous.Errors, the code the
// server sends on the wire, so one error has one name everywhere.
func TestRendezvousErrorsAgree(t *testing.T) {
	for _, row := range rendezvous.Errors() {
		got := lookup(row.Err)
		if got.code != row.Code || got.http != row.HTTP {
			t.Errorf("%v: API answers %q %d, rendezvous.Errors says %q %d", row.Err, got.code, got.http, row.Code, row.HTTP)
		}
	}
}
