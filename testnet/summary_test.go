package testnet

import (
	"slices"
	"testing"
)

func TestSummaryChanged(t *testing.T) {
	prev := Summary{Lines: []string{"clients:", "  alice online", "  bob offline"}}
	next := Summary{Lines: []string{"clients:", "  alice online", "  bob online"}}
	if got := next.Changed(prev); !slices.Equal(got, []string{"bob online"}) {
		t.Errorf("Changed = %q, want only bob's line", got)
	}
	if got := next.Changed(Summary{}); len(got) != 3 {
		t.Errorf("against nothing, Changed = %q, want every line", got)
	}
}
