// Package metrics implements relay.MetricsTracer for Prometheus.
//
// The series, all prefixed parley_relay_:
//
//	reservations                 gauge    live relay reservations (clients holding a slot)
//	circuits                     gauge    open relayed connections
//	circuits_total               counter  relayed connections opened
//	circuit_duration_seconds     histogram  lifetime of closed relayed connections
//	bytes_relayed_total          counter  bytes copied through circuits (both directions)
//	admissions_total             counter  certificates accepted on /parley/auth/1.0.0
//	refusals_total{reason}       counter  refused presentations, reservations and circuits
//	active                       gauge    1 while a directory hands this supernode out
//	splices                      gauge    open spliced connections (the relay fast path)
//	splices_total                counter  spliced connections opened
//	spliced_bytes_total          counter  bytes copied through splices (both directions)
//
// reason is one of the relay.Reason* values, so the label set is bounded.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/splice"
)

var _ relay.MetricsTracer = (*Tracer)(nil)

const (
	namespace = "parley"
	subsystem = "relay"
)

// reasons are the refusal reasons, each started at zero.
var reasons = []string{
	relay.ReasonNoCertificate, relay.ReasonInvalid, relay.ReasonExpired, relay.ReasonBadRequest,
	relay.ReasonRateLimited, relay.ReasonLeaving, relay.ReasonResourceLimit,
	splice.ReasonNotAdmitted, splice.ReasonNotConnected, splice.ReasonDeclined, splice.ReasonLimit, splice.ReasonBadToken,
}

// Tracer records a supernode's measurements as Prometheus series. Its
// methods are safe for concurrent use.
type Tracer struct {
	reservations prometheus.Gauge
	circuits     prometheus.Gauge
	opened       prometheus.Counter
	lifetime     prometheus.Histogram
	bytes        prometheus.Counter
	admissions   prometheus.Counter
	refusals     *prometheus.CounterVec
	active       prometheus.Gauge
	splices      prometheus.Gauge
	splicesTotal prometheus.Counter
	spliced      prometheus.Counter
}

// New creates a Tracer and registers its series with reg (nil registers
// nothing).
func New(reg prometheus.Registerer) *Tracer {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: namespace, Subsystem: subsystem, Name: name, Help: help}
	}
	t := &Tracer{
		reservations: prometheus.NewGauge(prometheus.GaugeOpts(opts("reservations", "Live relay reservations."))),
		circuits:     prometheus.NewGauge(prometheus.GaugeOpts(opts("circuits", "Open relayed connections."))),
		opened:       prometheus.NewCounter(prometheus.CounterOpts(opts("circuits_total", "Relayed connections opened."))),
		lifetime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: subsystem,
			Name:    "circuit_duration_seconds",
			Help:    "Lifetime of closed relayed connections.",
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 10), // 0.1 s to about 7 h
		}),
		bytes:      prometheus.NewCounter(prometheus.CounterOpts(opts("bytes_relayed_total", "Bytes copied through circuits, both directions."))),
		admissions: prometheus.NewCounter(prometheus.CounterOpts(opts("admissions_total", "Membership certificates accepted."))),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts(opts("refusals_total",
			"Refused certificate presentations, reservations and circuits, by reason.")), []string{"reason"}),
		active: prometheus.NewGauge(prometheus.GaugeOpts(opts("active", "1 while a rendezvous directory hands this supernode out to clients."))),
	}
	t.splices = prometheus.NewGauge(prometheus.GaugeOpts(opts("splices", "Open spliced connections (the relay fast path).")))
	t.splicesTotal = prometheus.NewCounter(prometheus.CounterOpts(opts("splices_total", "Spliced connections opened.")))
	t.spliced = prometheus.NewCounter(prometheus.CounterOpts(opts("spliced_bytes_total", "Bytes copied through splices, both directions.")))
	for _, r := range reasons {
		t.refusals.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(t.reservations, t.circuits, t.opened, t.lifetime, t.bytes, t.admissions, t.refusals, t.active,
			t.splices, t.splicesTotal, t.spliced)
	}
	return t
}

// Admitted implements relay.MetricsTracer.
func (t *Tracer) Admitted() { t.admissions.Inc() }

// Refused implements relay.MetricsTracer.
func (t *Tracer) Refused(reason string) { t.refusals.WithLabelValues(reason).Inc() }

// ReservationsChanged implements relay.MetricsTracer.
func (t *Tracer) ReservationsChanged(delta int) { t.reservations.Add(float64(delta)) }

// CircuitOpened implements relay.MetricsTracer.
func (t *Tracer) CircuitOpened() {
	t.circuits.Inc()
	t.opened.Inc()
}

// CircuitClosed implements relay.MetricsTracer.
func (t *Tracer) CircuitClosed(d time.Duration) {
	t.circuits.Dec()
	t.lifetime.Observe(d.Seconds())
}

// BytesRelayed implements relay.MetricsTracer.
func (t *Tracer) BytesRelayed(n int) {
	if n > 0 {
		t.bytes.Add(float64(n))
	}
}

// SpliceOpened implements relay.MetricsTracer.
func (t *Tracer) SpliceOpened() {
	t.splices.Inc()
	t.splicesTotal.Inc()
}

// SpliceClosed implements relay.MetricsTracer.
func (t *Tracer) SpliceClosed(time.Duration) { t.splices.Dec() }

// BytesSpliced implements relay.MetricsTracer.
func (t *Tracer) BytesSpliced(n int) {
	if n > 0 {
		t.spliced.Add(float64(n))
	}
}

// Active implements relay.MetricsTracer.
func (t *Tracer) Active(active bool) {
	if active {
		t.active.Set(1)
	} else {
		t.active.Set(0)
	}
}
