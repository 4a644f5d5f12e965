package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/dht/records"
)

// The JSON documents parley-dht prints. Times are RFC 3339, durations
// milliseconds.

type jsonPeer struct {
	Peer  string   `json:"peer"`
	Addrs []string `json:"addrs"`
}

type jsonRecord struct {
	Key     string    `json:"key"` // text form: /addr/<peer ID>
	Kind    string    `json:"kind"`
	Peer    string    `json:"peer"`
	Seq     uint64    `json:"seq"`
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"`
	Addrs   []string  `json:"addrs"`
}

type jsonCloser struct {
	Peer string `json:"peer"`
	CPL  int    `json:"cpl"`
}

type jsonEvent struct {
	AtMs      float64      `json:"at_ms"`
	Event     string       `json:"event"` // query, response, error
	Peer      string       `json:"peer"`
	Message   string       `json:"message"`
	Hop       int          `json:"hop"`
	CPL       int          `json:"cpl"`
	Distance  string       `json:"distance"` // XOR with the target, hex
	RTTMs     float64      `json:"rtt_ms,omitempty"`
	Closer    []jsonCloser `json:"closer,omitempty"`
	Providers []jsonPeer   `json:"providers,omitempty"`
	Record    bool         `json:"record,omitempty"`
	BadRecord string       `json:"bad_record,omitempty"`
	Error     string       `json:"error,omitempty"`
}

type jsonSummary struct {
	DurationMs float64 `json:"duration_ms"`
	Queried    int     `json:"queried"`
	Responded  int     `json:"responded"`
	Failed     int     `json:"failed"`
	Hops       int     `json:"hops"` // hop of the peer whose answer held the result; 0: none did
	MaxHop     int     `json:"max_hop"`
	AnsweredBy string  `json:"answered_by,omitempty"`
}

type jsonTrace struct {
	Lookup  string      `json:"lookup"`
	Summary jsonSummary `json:"summary"`
	Events  []jsonEvent `json:"events"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func addrStrings(as []ma.Multiaddr) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}

func toJSONPeer(ai peer.AddrInfo) jsonPeer {
	return jsonPeer{Peer: ai.ID.String(), Addrs: addrStrings(ai.Addrs)}
}

func toJSONRecord(r records.Record) *jsonRecord {
	return &jsonRecord{
		Key:     records.KeyString(r.Kind, r.Peer),
		Kind:    r.Kind.String(),
		Peer:    r.Peer.String(),
		Seq:     r.Seq,
		Issued:  r.Issued.UTC(),
		Expires: r.Expires.UTC(),
		Addrs:   addrStrings(r.Addrs),
	}
}

func toJSONSummary(s dht.TraceSummary) jsonSummary {
	out := jsonSummary{
		DurationMs: ms(s.Duration),
		Queried:    s.Queried,
		Responded:  s.Responded,
		Failed:     s.Failed,
		Hops:       s.Hops,
		MaxHop:     s.MaxHop,
	}
	if s.AnsweredBy != "" {
		out.AnsweredBy = s.AnsweredBy.String()
	}
	return out
}

func toJSONEvent(ev dht.TraceEvent) jsonEvent {
	out := jsonEvent{
		AtMs:     ms(ev.At),
		Event:    ev.Kind.String(),
		Peer:     ev.Peer.String(),
		Message:  ev.Message,
		Hop:      ev.Hop,
		CPL:      ev.CPL,
		Distance: hex.EncodeToString(ev.Distance),
		RTTMs:    ms(ev.RTT),
		Record:   ev.Record,
	}
	for _, p := range ev.Closer {
		out.Closer = append(out.Closer, jsonCloser{Peer: p.ID.String(), CPL: p.CPL})
	}
	for _, p := range ev.Providers {
		out.Providers = append(out.Providers, toJSONPeer(p))
	}
	if ev.BadRecord != nil {
		out.BadRecord = ev.BadRecord.Error()
	}
	if ev.Err != nil {
		out.Error = ev.Err.Error()
	}
	return out
}

// jsonTraces is the "traces" list of a document: nil without --trace.
func (s *session) jsonTraces() []jsonTrace {
	if !s.cf.trace {
		return nil
	}
	out := []jsonTrace{}
	for _, nt := range s.traces {
		jt := jsonTrace{Lookup: nt.lookup, Summary: toJSONSummary(nt.trace.Summary()), Events: []jsonEvent{}}
		for _, ev := range nt.trace.Events() {
			jt.Events = append(jt.Events, toJSONEvent(ev))
		}
		out = append(out, jt)
	}
	return out
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printEvent prints one trace event on one line.
func printEvent(w io.Writer, ev dht.TraceEvent) {
	dist := hex.EncodeToString(ev.Distance)
	if len(dist) > 16 {
		dist = dist[:16] + "…"
	}
	head := fmt.Sprintf("  %+9.1fms  hop %d  ", ms(ev.At), ev.Hop)
	switch ev.Kind {
	case dht.TraceQuery:
		fmt.Fprintf(w, "%s-> %s  %-13s cpl %3d  xor %s\n", head, ev.Peer, ev.Message, ev.CPL, dist)
	case dht.TraceResponse:
		fmt.Fprintf(w, "%s<- %s  rtt %6.1fms   %s\n", head, ev.Peer, ms(ev.RTT), describeAnswer(ev))
	case dht.TraceError:
		fmt.Fprintf(w, "%sxx %s  rtt %6.1fms   error: %v\n", head, ev.Peer, ms(ev.RTT), ev.Err)
	}
}

// describeAnswer says what a peer returned.
func describeAnswer(ev dht.TraceEvent) string {
	var parts []string
	if len(ev.Providers) > 0 {
		ids := make([]string, 0, len(ev.Providers))
		for _, p := range ev.Providers {
			ids = append(ids, p.ID.String())
		}
		parts = append(parts, fmt.Sprintf("%d provider(s): %s", len(ev.Providers), strings.Join(ids, ", ")))
	}
	if ev.Record {
		parts = append(parts, "the record")
	}
	if ev.BadRecord != nil {
		parts = append(parts, fmt.Sprintf("an invalid record (%v)", ev.BadRecord))
	}
	switch {
	case len(ev.Closer) > 0:
		best := 0
		for _, p := range ev.Closer {
			best = max(best, p.CPL)
		}
		parts = append(parts, fmt.Sprintf("%d closer peer(s), best cpl %d", len(ev.Closer), best))
	case ev.Message != "ADD_PROVIDER" && ev.Message != "PUT_VALUE" && ev.Message != "PING":
		parts = append(parts, "no closer peers")
	}
	if len(parts) == 0 {
		return "stored"
	}
	return strings.Join(parts, "; ")
}

func printSummary(w io.Writer, s dht.TraceSummary) {
	answer := "no answer held the result"
	if s.Hops > 0 {
		answer = fmt.Sprintf("answered at hop %d by %s", s.Hops, s.AnsweredBy)
	}
	if s.Queried == 0 {
		answer = "answered locally, no peer queried"
	}
	fmt.Fprintf(w, "  = %s; %d queried, %d answered, %d failed, deepest hop %d, %.1fms\n\n",
		answer, s.Queried, s.Responded, s.Failed, s.MaxHop, ms(s.Duration))
}

// printRecord prints a record for people.
func printRecord(w io.Writer, r records.Record) {
	now := time.Now()
	fmt.Fprintf(w, "%s (%s record)\n", records.KeyString(r.Kind, r.Peer), r.Kind)
	fmt.Fprintf(w, "  seq      %d\n", r.Seq)
	fmt.Fprintf(w, "  issued   %s (%s ago)\n", r.Issued.Local().Format(time.DateTime), now.Sub(r.Issued).Round(time.Second))
	fmt.Fprintf(w, "  expires  %s (in %s)\n", r.Expires.Local().Format(time.DateTime), r.Expires.Sub(now).Round(time.Second))
	printAddrs(w, "  addrs    ", r.Addrs)
}

func printAddrs(w io.Writer, label string, as []ma.Multiaddr) {
	if len(as) == 0 {
		fmt.Fprintf(w, "%s(none)\n", label)
		return
	}
	pad := strings.Repeat(" ", len([]rune(label)))
	for i, a := range as {
		if i == 0 {
			fmt.Fprintf(w, "%s%s\n", label, a)
		} else {
			fmt.Fprintf(w, "%s%s\n", pad, a)
		}
	}
}
