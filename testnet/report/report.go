// Package report holds what a parley-testnet scenario measured and writes
// it as report.json, report.md (Markdown tables) and SVG charts: a heat
// map of outcomes by NAT-type pair and a latency distribution. The
// numbers come from the daemons (path labels, arrival times of messages),
// never from the configuration.
package report

import (
	"slices"
	"time"
)

// Outcome is how a pair of clients ended up connected in one attempt.
type Outcome string

// The outcomes, best first.
const (
	Direct      Outcome = "direct"      // a direct connection, no punch needed
	HolePunched Outcome = "holepunched" // DCUtR made a direct connection
	Relayed     Outcome = "relayed"     // messages went through a supernode only
	Failed      Outcome = "failed"      // no message got through
)

// Outcomes are every outcome, best first.
var Outcomes = []Outcome{Direct, HolePunched, Relayed, Failed}

// Report is one scenario run.
type Report struct {
	Scenario string    `json:"scenario"`
	Mode     string    `json:"mode"` // how the network ran: loopback or natlab, and with what
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	TookNS   int64     `json:"took_ns"`
	// Clients are the clients by name with their NAT type.
	Clients      []Client      `json:"clients"`
	Connectivity *Connectivity `json:"connectivity,omitempty"`
	Chat         *Chat         `json:"chat,omitempty"`
	Failover     *Failover     `json:"failover,omitempty"`
	Files        *Files        `json:"files,omitempty"`
	Churn        *Churn        `json:"churn,omitempty"`
	DHT          *DHT          `json:"dht,omitempty"`
	// Problems are the checks the run failed (a pair that cannot talk,
	// a cone↔cone pair not direct, a message lost); empty on success.
	Problems []string `json:"problems"`
}

// Client is one client of the network.
type Client struct {
	Name string `json:"name"`
	NAT  string `json:"nat"`
}

// Connectivity is the connectivity scenario's result.
type Connectivity struct {
	Attempts int `json:"attempts"` // per pair
	// DirectTimeoutNS is how long an attempt waits for a direct path.
	DirectTimeoutNS int64 `json:"direct_timeout_ns"`
	// Matrix has a row per NAT-type pair.
	Matrix []Cell `json:"matrix"`
	// Pairs has a row per pair of clients.
	Pairs []Pair `json:"pairs"`
	// DirectShare is the share of attempts that ended direct or
	// hole-punched, 0 to 1.
	DirectShare  float64 `json:"direct_share"`
	FirstMessage Stats   `json:"first_message"` // send to arrival at the receiver
	ToDirect     Stats   `json:"to_direct"`     // send to the direct path label
}

// Cell is the outcome counts of a NAT-type pair.
type Cell struct {
	NATs     string          `json:"nats"` // "cone ↔ symmetric"
	Attempts int             `json:"attempts"`
	Outcomes map[Outcome]int `json:"outcomes"`
}

// Pair is the attempts of one pair of clients.
type Pair struct {
	Names    string          `json:"pair"` // "alice ↔ bob"
	NATs     string          `json:"nats"`
	Outcomes map[Outcome]int `json:"outcomes"`
	// FirstMessageNS and ToDirectNS are each attempt's times (ToDirect
	// only for attempts that became direct).
	FirstMessageNS []int64 `json:"first_message_ns"`
	ToDirectNS     []int64 `json:"to_direct_ns"`
}

// Chat is the chat scenario's result.
type Chat struct {
	PerDirection int   `json:"messages_per_direction"`
	Sent         int   `json:"sent"`
	Arrived      int   `json:"arrived"`
	Lost         int   `json:"lost"`
	Latency      Stats `json:"latency"` // send to arrival at the receiver
	// LatenciesNS are every arrived message's latency, for the chart.
	LatenciesNS []int64 `json:"latencies_ns"`
	// Paths counts the messages by the path the sender saw.
	Paths map[string]int `json:"paths"`
}

// Failover is the failover scenario's result.
type Failover struct {
	Pair    string   `json:"pair"`
	Outages []Outage `json:"outages"`
	Sent    int      `json:"sent"`
	Arrived int      `json:"arrived"`
	Lost    int      `json:"lost"`
	Latency Stats    `json:"latency"`
}

// Outage is one supernode stopped under a pair's relayed chat.
type Outage struct {
	How       string `json:"how"` // "SIGKILL" or "SIGTERM"
	Supernode string `json:"supernode"`
	// PathAfter is the sender's path label once it recovered.
	PathAfter string `json:"path_after"`
	// RecoveredNS is from the stop to the first arrival of a message
	// sent after it; -1 when none arrived.
	RecoveredNS int64 `json:"recovered_ns"`
	// PathRecoveredNS is from the stop to a path label not through the
	// stopped supernode; -1 when it never changed.
	PathRecoveredNS int64 `json:"path_recovered_ns"`
}

// Files is the files scenario's result.
type Files struct {
	SizeBytes int64          `json:"size_bytes"`
	Transfers []FileTransfer `json:"transfers"`
	// Croc is the same size sent with croc through its relay on
	// loopback, for comparison.
	Croc CrocTransfer `json:"croc"`
	// MedianMBPerSecond is the median of the parley downloads' MB/s;
	// CrocRatio is it divided by croc's (0 without croc).
	MedianMBPerSecond float64 `json:"median_mb_per_second"`
	CrocRatio         float64 `json:"croc_ratio"`
}

// CrocTransfer is one file sent with croc.
type CrocTransfer struct {
	// Installed: croc was on PATH; nothing else is set otherwise.
	Installed   bool    `json:"installed"`
	TookNS      int64   `json:"took_ns"` // the receiver's start to its exit
	MBPerSecond float64 `json:"mb_per_second"`
	Intact      bool    `json:"intact"`
	Error       string  `json:"error,omitempty"`
}

// FileTransfer is one download of a file a contact published.
type FileTransfer struct {
	Pair string `json:"pair"` // "alice → bob": bob downloads what alice published
	NATs string `json:"nats"`
	// Path is the downloader's path label to the publisher when the
	// download ended, with the transport ("holepunched/quic").
	Path        string  `json:"path"`
	TookNS      int64   `json:"took_ns"` // Get to done
	MBPerSecond float64 `json:"mb_per_second"`
	// Intact: the file on disk equals the published one.
	Intact bool   `json:"intact"`
	Error  string `json:"error,omitempty"`
}

// Churn is the churn scenario's result.
type Churn struct {
	DurationNS int64 `json:"duration_ns"`
	// Events are the clients restarted and the supernode stopped, in
	// order.
	Events []ChurnEvent `json:"events"`
	// Sent are the messages the API accepted; SendErrors those it
	// refused (mostly while the sender itself was restarting).
	Sent       int   `json:"sent"`
	SendErrors int   `json:"send_errors"`
	Arrived    int   `json:"arrived"`
	Lost       int   `json:"lost"`
	Latency    Stats `json:"latency"` // of the arrivals seen as events
}

// ChurnEvent is a client leaving and coming back, or a supernode
// leaving.
type ChurnEvent struct {
	AtNS   int64  `json:"at_ns"` // since the start
	What   string `json:"what"`
	TookNS int64  `json:"took_ns"` // until the client was back with its relays
}

// Stats summarises durations, in nanoseconds.
type Stats struct {
	N      int   `json:"n"`
	Median int64 `json:"median_ns"`
	P95    int64 `json:"p95_ns"`
	P99    int64 `json:"p99_ns"`
	Max    int64 `json:"max_ns"`
}

// Summarize computes Stats of ds (nearest-rank percentiles).
func Summarize(ds []int64) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) int64 {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Stats{N: len(s), Median: rank(0.5), P95: rank(0.95), P99: rank(0.99), Max: s[len(s)-1]}
}

// Dur is a nanosecond count as a rounded duration, for tables.
func Dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}
