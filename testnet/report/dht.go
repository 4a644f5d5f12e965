package report

import (
	"fmt"
	"strings"
)

// DHT is the dht scenario's result.
type DHT struct {
	// Kinds sums the lookups up by kind: "find-peer" (a contact's signed
	// address record) and "find-providers" (a CID a contact provides).
	Kinds []DHTKind `json:"kinds"`
	// Lookups are every lookup, in order.
	Lookups []DHTLookup `json:"lookups"`
}

// DHTKind sums up the lookups of one kind.
type DHTKind struct {
	Kind        string  `json:"kind"`
	Lookups     int     `json:"lookups"`
	Succeeded   int     `json:"succeeded"`
	SuccessRate float64 `json:"success_rate"` // 0 to 1
	Latency     Stats   `json:"latency"`      // of the successful lookups
	// HopsMedian and HopsMax are of the successful lookups' hops.
	HopsMedian int `json:"hops_median"`
	HopsMax    int `json:"hops_max"`
}

// DHTLookup is one lookup, measured by the DHT's trace of it.
type DHTLookup struct {
	Kind   string `json:"kind"`
	From   string `json:"from"`
	Target string `json:"target"` // the client whose record or CID was looked up
	TookNS int64  `json:"took_ns"`
	// Hops is the trace's hop of the first peer whose answer held the
	// result; Queried the requests the lookup sent.
	Hops    int    `json:"hops"`
	Queried int    `json:"queried"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

func writeDHT(b *strings.Builder, d *DHT) {
	fmt.Fprintf(b, "## DHT\n\nEvery client looks up every other client's address record (find-peer) and the CID it provides (find-providers); hops and requests come from the DHT's trace of each lookup.\n\n")
	fmt.Fprintf(b, "| lookup | n | succeeded | latency p50 | p95 | max | hops p50 | hops max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, k := range d.Kinds {
		fmt.Fprintf(b, "| %s | %d | %.0f%% | %s | %s | %s | %d | %d |\n", cell(k.Kind), k.Lookups, 100*k.SuccessRate,
			Dur(k.Latency.Median), Dur(k.Latency.P95), Dur(k.Latency.Max), k.HopsMedian, k.HopsMax)
	}
	fmt.Fprintf(b, "\n| lookup | from | target | took | hops | requests | result |\n| --- | --- | --- | ---: | ---: | ---: | --- |\n")
	for _, l := range d.Lookups {
		result := "found"
		if !l.OK {
			result = "failed: " + l.Error
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %d | %d | %s |\n", l.Kind, cell(l.From), cell(l.Target), Dur(l.TookNS), l.Hops, l.Queried, cell(result))
	}
	b.WriteString("\n![lookup latency](latency.svg)\n\n")
}
