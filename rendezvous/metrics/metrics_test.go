package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/parleynet/parley/rendezvous/pb"
)

func newTracer(t *testing.T) (*Tracer, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return New(reg), reg
}

func TestRequest(t *testing.T) {
	type series struct {
		kind, status string
	}
	tests := map[string]struct {
		kind   string
		status pb.Status

		wantRequest series
		wantLogins  float64
		wantError   string // "" means no error counted
	}{
		"login ok": {
			kind: "login", status: pb.Status_STATUS_OK,
			wantRequest: series{"login", "ok"}, wantLogins: 1,
		},
		"login unauthenticated": {
			kind: "login", status: pb.Status_STATUS_UNAUTHENTICATED,
			wantRequest: series{"login", "unauthenticated"}, wantError: "unauthenticated",
		},
		"login rate limited": {
			kind: "login", status: pb.Status_STATUS_RATE_LIMITED,
			wantRequest: series{"login", "rate_limited"}, wantError: "rate_limited",
		},
		"register ok": {
			kind: "register", status: pb.Status_STATUS_OK,
			wantRequest: series{"register", "ok"},
		},
		"register bad request": {
			kind: "register", status: pb.Status_STATUS_BAD_REQUEST,
			wantRequest: series{"register", "bad_request"}, wantError: "bad_request",
		},
		"block internal": {
			kind: "block", status: pb.Status_STATUS_INTERNAL,
			wantRequest: series{"block", "internal"}, wantError: "internal",
		},
		"revoke permission denied": {
			kind: "revoke_device", status: pb.Status_STATUS_PERMISSION_DENIED,
			wantRequest: series{"revoke_device", "permission_denied"}, wantError: "permission_denied",
		},
		"unknown kind": {
			kind: "frobnicate", status: pb.Status_STATUS_OK,
			wantRequest: series{"other", "ok"},
		},
		"kind is case sensitive": {
			kind: "Login", status: pb.Status_STATUS_OK,
			wantRequest: series{"other", "ok"},
		},
		"empty kind": {
			kind: "", status: pb.Status_STATUS_NOT_FOUND,
			wantRequest: series{"other", "not_found"}, wantError: "not_found",
		},
		"unspecified status": {
			kind: "server_info", status: pb.Status_STATUS_UNSPECIFIED,
			wantRequest: series{"server_info", "unspecified"}, wantError: "unspecified",
		},
		"undefined status": {
			kind: "enrol", status: pb.Status(4242),
			wantRequest: series{"enrol", "unknown"}, wantError: "unknown",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			tr, reg := newTracer(t)
			tr.Request(tt.kind, tt.status)

			if got := toFloat64(t, tr.requests.WithLabelValues(tt.wantRequest.kind, tt.wantRequest.status)); got != 1 {
				t.Errorf("requests_total%v: got %v, want 1", tt.wantRequest, got)
			}
			if got := collectAndCount(t, tr.requests); got != 1 {
				t.Errorf("requests_total series: got %d, want 1", got)
			}
			if got := toFloat64(t, tr.logins); got != tt.wantLogins {
				t.Errorf("logins_total: got %v, want %v", got, tt.wantLogins)
			}

			var errTotal float64
			for _, m := range gather(t, reg, "parley_rendezvous_errors_total") {
				v := m.GetCounter().GetValue()
				errTotal += v
				if v != 0 && label(m, "status") != tt.wantError {
					t.Errorf("errors_total{status=%q}: got %v, want 0", label(m, "status"), v)
				}
			}
			wantErrTotal := 0.0
			if tt.wantError != "" {
				wantErrTotal = 1
				if got := toFloat64(t, tr.errors.WithLabelValues(tt.wantError)); got != 1 {
					t.Errorf("errors_total{status=%q}: got %v, want 1", tt.wantError, got)
				}
			}
			if errTotal != wantErrTotal {
				t.Errorf("errors_total summed over statuses: got %v, want %v", errTotal, wantErrTotal)
			}
		})
	}
}

func TestKnownKindsKeepTheirLabel(t *testing.T) {
	tr, _ := newTracer(t)
	for kind := range kinds {
		tr.Request(kind, pb.Status_STATUS_OK)
		if got := toFloat64(t, tr.requests.WithLabelValues(kind, "ok")); got != 1 {
			t.Errorf("requests_total{kind=%q,status=\"ok\"}: got %v, want 1", kind, got)
		}
	}
	if got := toFloat64(t, tr.requests.WithLabelValues(otherKind, "ok")); got != 0 {
		t.Errorf("requests_total{kind=\"other\"}: got %v, want 0", got)
	}
}

func TestStatusLabels(t *testing.T) {
	want := map[pb.Status]string{
		pb.Status_STATUS_UNSPECIFIED:        "unspecified",
		pb.Status_STATUS_OK:                 "ok",
		pb.Status_STATUS_BAD_REQUEST:        "bad_request",
		pb.Status_STATUS_UNAUTHENTICATED:    "unauthenticated",
		pb.Status_STATUS_ALREADY_EXISTS:     "already_exists",
		pb.Status_STATUS_NOT_FOUND:          "not_found",
		pb.Status_STATUS_RATE_LIMITED:       "rate_limited",
		pb.Status_STATUS_INTERNAL:           "internal",
		pb.Status_STATUS_PERMISSION_DENIED:  "permission_denied",
		pb.Status_STATUS_UNAVAILABLE:        "unavailable",
		pb.Status_STATUS_RESOURCE_EXHAUSTED: "resource_exhausted",
		pb.Status(-1):                       "unknown",
		pb.Status(1 << 20):                  "unknown",
	}
	for s, w := range want {
		if got := statusLabel(s); got != w {
			t.Errorf("statusLabel(%v): got %q, want %q", s, got, w)
		}
	}
}

func TestRequestCounts(t *testing.T) {
	tr, reg := newTracer(t)
	for range 3 {
		tr.Request("login", pb.Status_STATUS_OK)
	}
	tr.Request("login", pb.Status_STATUS_RATE_LIMITED)
	tr.Request("login", pb.Status_STATUS_RATE_LIMITED)
	tr.Request("register", pb.Status_STATUS_RATE_LIMITED)
	tr.Request("ping", pb.Status_STATUS_OK)
	tr.Request("update_addrs", pb.Status_STATUS_OK)

	const want = `# HELP parley_rendezvous_logins_total Successful logins.
# TYPE parley_rendezvous_logins_total counter
parley_rendezvous_logins_total 3
# HELP parley_rendezvous_requests_total Answered requests by kind ("other" for unlisted kinds) and status.
# TYPE parley_rendezvous_requests_total counter
parley_rendezvous_requests_total{kind="login",status="ok"} 3
parley_rendezvous_requests_total{kind="login",status="rate_limited"} 2
parley_rendezvous_requests_total{kind="other",status="ok"} 2
parley_rendezvous_requests_total{kind="register",status="rate_limited"} 1
`
	if got := gatherText(t, reg, "parley_rendezvous_logins_total", "parley_rendezvous_requests_total"); got != want {
		t.Errorf("exposition: got\n%s\nwant\n%s", got, want)
	}
	if got := toFloat64(t, tr.errors.WithLabelValues("rate_limited")); got != 3 {
		t.Errorf(`errors_total{status="rate_limited"}: got %v, want 3`, got)
	}
	if got := toFloat64(t, tr.errors.WithLabelValues("internal")); got != 0 {
		t.Errorf(`errors_total{status="internal"}: got %v, want 0`, got)
	}
}

func TestErrorSeriesStartAtZero(t *testing.T) {
	tr, _ := newTracer(t)
	// Every status but OK, including unspecified.
	if got, want := collectAndCount(t, tr.errors), len(pb.Status_name)-1; got != want {
		t.Errorf("errors_total series before any request: got %d, want %d", got, want)
	}
	if got := collectAndCount(t, tr.requests); got != 0 {
		t.Errorf("requests_total series before any request: got %d, want 0", got)
	}
}

func TestSessions(t *testing.T) {
	tr, reg := newTracer(t)
	for _, n := range []int{0, 5, 12, 3, 0} {
		tr.SessionsChanged(n)
		if got := toFloat64(t, tr.sessions); got != float64(n) {
			t.Errorf("after SessionsChanged(%d): got %v", n, got)
		}
	}
	tr.SessionsChanged(7)
	const want = `# HELP parley_rendezvous_sessions Live sessions on this replica.
# TYPE parley_rendezvous_sessions gauge
parley_rendezvous_sessions 7
`
	if got := gatherText(t, reg, "parley_rendezvous_sessions"); got != want {
		t.Errorf("exposition: got\n%s\nwant\n%s", got, want)
	}
}

func TestSupernodes(t *testing.T) {
	tr, reg := newTracer(t)
	const zero = `# HELP parley_rendezvous_supernodes Supernode candidates in this replica's directory, by state (active: handed out to clients; standby).
# TYPE parley_rendezvous_supernodes gauge
parley_rendezvous_supernodes{state="active"} 0
parley_rendezvous_supernodes{state="standby"} 0
`
	if got := gatherText(t, reg, "parley_rendezvous_supernodes"); got != zero {
		t.Errorf("before any announcement: got\n%s\nwant\n%s", got, zero)
	}
	tr.Supernodes(3, 2)
	tr.Supernodes(4, 1)
	want := strings.ReplaceAll(strings.ReplaceAll(zero, `"active"} 0`, `"active"} 4`), `"standby"} 0`, `"standby"} 1`)
	if got := gatherText(t, reg, "parley_rendezvous_supernodes"); got != want {
		t.Errorf("exposition: got\n%s\nwant\n%s", got, want)
	}
}

func TestSupernodeChecks(t *testing.T) {
	tr, reg := newTracer(t)
	tr.SupernodeChecked("ok")
	tr.SupernodeChecked("failed")
	tr.SupernodeChecked("failed")
	tr.SupernodeChecked("anything else") // counted as failed: labels stay bounded
	const want = `# HELP parley_rendezvous_supernode_checks_total Checks of supernode candidates at their announced addresses (dial, admission, reservation), by result ("ok", "failed": not seated).
# TYPE parley_rendezvous_supernode_checks_total counter
parley_rendezvous_supernode_checks_total{result="failed"} 3
parley_rendezvous_supernode_checks_total{result="ok"} 1
`
	if got := gatherText(t, reg, "parley_rendezvous_supernode_checks_total"); got != want {
		t.Errorf("exposition: got\n%s\nwant\n%s", got, want)
	}
}

func TestFanOut(t *testing.T) {
	tr, reg := newTracer(t)
	tr.FanOut(250*time.Microsecond, 3)
	tr.FanOut(40*time.Millisecond, 10)
	tr.FanOut(2*time.Second, 0)
	tr.FanOut(time.Minute, 1)         // beyond the last bucket
	tr.FanOut(time.Second, -1)        // nonsense count: observed, not pushed
	tr.FanOut(-5*time.Millisecond, 0) // clock skew: observed as zero

	mfs := gather(t, reg, "parley_rendezvous_presence_fanout_seconds")
	if len(mfs) != 1 {
		t.Fatalf("presence_fanout_seconds series: got %d, want 1", len(mfs))
	}
	h := mfs[0].GetHistogram()
	if got := h.GetSampleCount(); got != 6 {
		t.Errorf("histogram count: got %d, want 6", got)
	}
	wantSum := 0.00025 + 0.04 + 2 + 60 + 1
	if got := h.GetSampleSum(); got < wantSum-1e-9 || got > wantSum+1e-9 {
		t.Errorf("histogram sum: got %v, want %v", got, wantSum)
	}
	// Cumulative counts at a few bounds.
	wantCum := map[float64]uint64{
		0.0001: 1, // the skewed one, as zero
		0.0004: 2, // + 250µs
		0.0512: 3, // + 40ms
		1.6384: 4, // + 1s
		3.2768: 5, // + 2s
		6.5536: 5, // the minute is in +Inf only
	}
	bounds := map[float64]bool{}
	for _, b := range h.GetBucket() {
		bounds[b.GetUpperBound()] = true
		if w, ok := wantCum[b.GetUpperBound()]; ok && b.GetCumulativeCount() != w {
			t.Errorf("bucket le=%v: got %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), w)
		}
	}
	if len(bounds) != 17 || !bounds[0.0001] || !bounds[6.5536] {
		t.Errorf("bucket bounds: got %d from %v, want 17 from 100µs to 6.5536s", len(bounds), bounds)
	}

	if got := toFloat64(t, tr.pushes); got != 14 {
		t.Errorf("presence_pushes_total: got %v, want 14", got)
	}
}

func TestSeriesNames(t *testing.T) {
	tr, reg := newTracer(t)
	tr.Request("login", pb.Status_STATUS_OK)
	tr.FanOut(time.Millisecond, 1)

	want := map[string]dto.MetricType{
		"parley_rendezvous_sessions":                dto.MetricType_GAUGE,
		"parley_rendezvous_requests_total":          dto.MetricType_COUNTER,
		"parley_rendezvous_logins_total":            dto.MetricType_COUNTER,
		"parley_rendezvous_errors_total":            dto.MetricType_COUNTER,
		"parley_rendezvous_presence_fanout_seconds": dto.MetricType_HISTOGRAM,
		"parley_rendezvous_presence_pushes_total":   dto.MetricType_COUNTER,
		"parley_rendezvous_supernodes":              dto.MetricType_GAUGE,
		"parley_rendezvous_supernode_checks_total":  dto.MetricType_COUNTER,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	got := map[string]dto.MetricType{}
	for _, mf := range mfs {
		got[mf.GetName()] = mf.GetType()
	}
	for name, typ := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("missing series %s", name)
		} else if g != typ {
			t.Errorf("%s: got type %v, want %v", name, g, typ)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected series %s", name)
		}
	}
}

func TestNewTwicePanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Error("second New on the same registry: got no panic, want a duplicate registration panic")
		}
	}()
	New(reg)
}

func TestNilRegisterer(t *testing.T) {
	tr := New(nil)
	tr.Request("login", pb.Status_STATUS_OK)
	if got := toFloat64(t, tr.logins); got != 1 {
		t.Errorf("logins_total: got %v, want 1", got)
	}
}

func TestConcurrent(t *testing.T) {
	tr, _ := newTracer(t)
	const workers, each = 8, 200
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range each {
				tr.Request("login", pb.Status_STATUS_OK)
				tr.FanOut(time.Millisecond, 1)
				tr.SessionsChanged(i)
			}
		}()
	}
	for range workers {
		<-done
	}
	if got := toFloat64(t, tr.logins); got != workers*each {
		t.Errorf("logins_total: got %v, want %d", got, workers*each)
	}
	if got := toFloat64(t, tr.pushes); got != workers*each {
		t.Errorf("presence_pushes_total: got %v, want %d", got, workers*each)
	}
}

// gather returns the metrics of the family name.
func gather(t *testing.T, reg prometheus.Gatherer, name string) []*dto.Metric {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()
		}
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// The helpers below stand in for prometheus/testutil, whose diff dependency
// (github.com/kylelemons/godebug) is not in this module's go.sum.

// toFloat64 returns the value of the single counter or gauge c collects.
func toFloat64(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ms := collect(t, c)
	if len(ms) != 1 {
		t.Fatalf("collected %d metrics, want 1", len(ms))
	}
	switch m := ms[0]; {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	default:
		t.Fatalf("collected %v, want a counter or gauge", m)
		return 0
	}
}

// collectAndCount returns how many series c collects.
func collectAndCount(t *testing.T, c prometheus.Collector) int {
	t.Helper()
	return len(collect(t, c))
}

func collect(t *testing.T, c prometheus.Collector) []*dto.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	var out []*dto.Metric
	for m := range ch {
		dm := &dto.Metric{}
		if err := m.Write(dm); err != nil {
			t.Errorf("write %v: %v", m.Desc(), err)
			continue
		}
		out = append(out, dm)
	}
	return out
}

// gatherText returns the text exposition of the named families in reg,
// sorted as the registry sorts them.
func gatherText(t *testing.T, reg prometheus.Gatherer, names ...string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		for _, n := range names {
			if mf.GetName() == n {
				if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
					t.Fatalf("encode %s: %v", n, err)
				}
			}
		}
	}
	return b.String()
}
