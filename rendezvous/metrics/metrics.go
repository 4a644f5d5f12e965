// Package metrics implements server.MetricsTracer for Prometheus.
//
// The series, all prefixed parley_rendezvous_:
//
//	sessions                       gauge      live sessions on this replica
//	requests_total{kind,status}    counter    answered requests
//	logins_total                   counter    requests of kind "login" answered OK
//	errors_total{status}           counter    requests answered with a non-OK status
//	presence_fanout_seconds        histogram  presence change published → last push queued
//	presence_pushes_total          counter    presence pushes queued to sessions
//	supernodes{state}              gauge      directory candidates, state "active" or "standby"
//	supernode_checks_total{result} counter    checks of candidates at their addresses, "ok" or "failed"
//
// Label values are bounded: kind is one of the known request kinds or
// "other", and status is the pb.Status name without its STATUS_ prefix in
// lower case ("ok", "bad_request", "rate_limited", ...) or "unknown" for a
// value the enum does not define.
package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleynet/parley/rendezvous/pb"
	"github.com/parleynet/parley/rendezvous/server"
)

var _ server.MetricsTracer = (*Tracer)(nil)

const (
	namespace = "parley"
	subsystem = "rendezvous"

	// otherKind replaces a request kind that is not in kinds.
	otherKind = "other"
	// unknownStatus replaces a status value that pb.Status does not define.
	unknownStatus = "unknown"
)

// kinds are the request kinds that get their own label value.
var kinds = map[string]bool{
	"register":           true,
	"enrol":              true,
	"login":              true,
	"request_contact":    true,
	"accept_contact":     true,
	"decline_contact":    true,
	"remove_contact":     true,
	"block":              true,
	"unblock":            true,
	"list_contacts":      true,
	"list_devices":       true,
	"revoke_device":      true,
	"change_password":    true,
	"delete_account":     true,
	"list_supernodes":    true,
	"announce_supernode": true,
	"server_info":        true,
	"publish_device_key": true,
	"device_keys":        true,
	"deposit":            true,
	"fetch_mail":         true,
	"ack_mail":           true,
}

// statusLabels maps every defined pb.Status to its label value.
var statusLabels = func() map[pb.Status]string {
	m := make(map[pb.Status]string, len(pb.Status_name))
	for v, name := range pb.Status_name {
		m[pb.Status(v)] = strings.ToLower(strings.TrimPrefix(name, "STATUS_"))
	}
	return m
}()

func kindLabel(kind string) string {
	if kinds[kind] {
		return kind
	}
	return otherKind
}

func statusLabel(s pb.Status) string {
	if l, ok := statusLabels[s]; ok {
		return l
	}
	return unknownStatus
}

// Tracer records the rendezvous server's measurements as Prometheus
// series. Its methods are safe for concurrent use.
type Tracer struct {
	sessions   prometheus.Gauge
	requests   *prometheus.CounterVec
	logins     prometheus.Counter
	errors     *prometheus.CounterVec
	fanOut     prometheus.Histogram
	pushes     prometheus.Counter
	supernodes *prometheus.GaugeVec
	checks     *prometheus.CounterVec
}

// New creates a Tracer and registers its series with reg. It panics if reg
// already holds series of the same names, as MustRegister does. A nil reg
// registers nothing; the Tracer still counts.
func New(reg prometheus.Registerer) *Tracer {
	t := &Tracer{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "sessions",
			Help: "Live sessions on this replica.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "requests_total",
			Help: `Answered requests by kind ("other" for unlisted kinds) and status.`,
		}, []string{"kind", "status"}),
		logins: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "logins_total",
			Help: "Successful logins.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "errors_total",
			Help: "Requests answered with a non-OK status, by status.",
		}, []string{"status"}),
		fanOut: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "presence_fanout_seconds",
			Help: "Time from a presence change being published to its last push being queued on this replica.",
			// 17 buckets doubling from 100µs to 6.5536s, then +Inf.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17),
		}),
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "presence_pushes_total",
			Help: "Presence pushes queued to sessions on this replica.",
		}),
		supernodes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name: "supernodes",
			Help: "Supernode candidates in this replica's directory, by state (active: handed out to clients; standby).",
		}, []string{"state"}),
	}
	t.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem,
		Name: "supernode_checks_total",
		Help: `Checks of supernode candidates at their announced addresses (dial, admission, reservation), by result ("ok", "failed": not seated).`,
	}, []string{"result"})
	t.checks.WithLabelValues("ok")
	t.checks.WithLabelValues("failed")
	t.supernodes.WithLabelValues("active")
	t.supernodes.WithLabelValues("standby")
	// Start every error series at zero so that rate() and alerts see the
	// first error of each status.
	for s, l := range statusLabels {
		if s != pb.Status_STATUS_OK {
			t.errors.WithLabelValues(l)
		}
	}
	if reg != nil {
		reg.MustRegister(t.sessions, t.requests, t.logins, t.errors, t.fanOut, t.pushes, t.supernodes, t.checks)
	}
	return t
}

// SessionsChanged implements server.MetricsTracer.
func (t *Tracer) SessionsChanged(n int) {
	t.sessions.Set(float64(n))
}

// Request implements server.MetricsTracer.
func (t *Tracer) Request(kind string, status pb.Status) {
	kind, sl := kindLabel(kind), statusLabel(status)
	t.requests.WithLabelValues(kind, sl).Inc()
	if status != pb.Status_STATUS_OK {
		t.errors.WithLabelValues(sl).Inc()
		return
	}
	if kind == "login" {
		t.logins.Inc()
	}
}

// FanOut implements server.MetricsTracer. A negative d, which clock
// skew between replicas can produce, is observed as zero.
func (t *Tracer) FanOut(d time.Duration, sessions int) {
	t.fanOut.Observe(max(d, 0).Seconds())
	if sessions > 0 { // Counter.Add panics on a negative value
		t.pushes.Add(float64(sessions))
	}
}

// Supernodes implements server.MetricsTracer.
func (t *Tracer) Supernodes(active, standby int) {
	t.checks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Subsystem: subsystem,
		Name: "supernode_checks_total",
		Help: `Checks of supernode candidates at their announced addresses (dial, admission, reservation), by result ("ok", "failed": not seated).`,
	}, []string{"result"})
	t.checks.WithLabelValues("ok")
	t.checks.WithLabelValues("failed")
	t.supernodes.WithLabelValues("active").Set(float64(active))
	t.supernodes.WithLabelValues("standby").Set(float64(standby))
}

// SupernodeChecked implements server.MetricsTracer.
func (t *Tracer) SupernodeChecked(result string) {
	if result != "ok" {
		result = "failed"
	}
	t.checks.WithLabelValues(result).Inc()
}
