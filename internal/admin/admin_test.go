package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// start runs an admin server on a free loopback port and closes it when the
// test ends.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func url(s *Server, path string) string { return "http://" + s.Addr().String() + path }

// client bounds every test request, so a hung handler fails the test
// instead of stalling it.
var client = &http.Client{Timeout: 10 * time.Second}

// do sends one request and returns the status and body.
func do(t *testing.T, method, u string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, resp.Header, string(body)
}

func TestHealthz(t *testing.T) {
	var failing atomic.Pointer[error]
	s := start(t, Config{Health: func(ctx context.Context) error {
		if p := failing.Load(); p != nil {
			return *p
		}
		return nil
	}})

	code, hdr, body := do(t, http.MethodGet, url(s, "/healthz"))
	if code != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthy: got %d %q, want 200 %q", code, body, "ok\n")
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type: got %q, want text/plain", ct)
	}

	reason := errors.New("store: ping postgres: connection refused")
	failing.Store(&reason)
	code, _, body = do(t, http.MethodGet, url(s, "/healthz"))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("unhealthy: got status %d, want 503", code)
	}
	if !strings.Contains(body, reason.Error()) {
		t.Errorf("unhealthy: got body %q, want it to contain %q", body, reason)
	}

	failing.Store(nil)
	if code, _, _ := do(t, http.MethodGet, url(s, "/healthz")); code != http.StatusOK {
		t.Errorf("recovered: got status %d, want 200", code)
	}
}

func TestHealthzNilIsHealthy(t *testing.T) {
	s := start(t, Config{})
	if code, _, body := do(t, http.MethodGet, url(s, "/healthz")); code != http.StatusOK || body != "ok\n" {
		t.Errorf("got %d %q, want 200 %q", code, body, "ok\n")
	}
}

func TestHealthzTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tests := map[string]func(ctx context.Context) error{
		"honours ctx": func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err()
		},
		"ignores ctx": func(ctx context.Context) error {
			<-release
			return nil
		},
	}
	for name, health := range tests {
		t.Run(name, func(t *testing.T) {
			s := start(t, Config{Health: health, HealthTimeout: 50 * time.Millisecond})
			began := time.Now()
			code, _, body := do(t, http.MethodGet, url(s, "/healthz"))
			if code != http.StatusServiceUnavailable {
				t.Errorf("got status %d, want 503", code)
			}
			if !strings.Contains(body, "deadline exceeded") {
				t.Errorf("got body %q, want it to mention the deadline", body)
			}
			if d := time.Since(began); d > 2*time.Second {
				t.Errorf("check took %v, want about 50ms", d)
			}
		})
	}
}

func TestHealthzPanic(t *testing.T) {
	s := start(t, Config{Health: func(context.Context) error { panic("boom") }})
	code, _, body := do(t, http.MethodGet, url(s, "/healthz"))
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "boom") {
		t.Errorf("got %d %q, want 503 mentioning the panic", code, body)
	}
}

func TestMetrics(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "parley_test_things_total",
		Help: "Things counted by the test.",
	})
	reg.MustRegister(c)
	c.Add(3)

	s := start(t, Config{Registry: reg})
	code, hdr, body := do(t, http.MethodGet, url(s, "/metrics"))
	if code != http.StatusOK {
		t.Fatalf("got status %d, want 200; body %q", code, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type: got %q, want the text format", ct)
	}

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	for _, name := range []string{"go_goroutines", "process_start_time_seconds", "parley_test_things_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if mf := families["parley_test_things_total"]; mf != nil {
		if got := mf.GetMetric()[0].GetCounter().GetValue(); got != 3 {
			t.Errorf("parley_test_things_total: got %v, want 3", got)
		}
	}
	if mf := families["go_goroutines"]; mf != nil {
		if got := mf.GetMetric()[0].GetGauge().GetValue(); got < 1 {
			t.Errorf("go_goroutines: got %v, want >= 1", got)
		}
	}
}

func TestMetricsNilRegistry(t *testing.T) {
	s := start(t, Config{})
	code, _, body := do(t, http.MethodGet, url(s, "/metrics"))
	if code != http.StatusOK || !strings.Contains(body, "\ngo_goroutines ") {
		t.Errorf("got %d, want 200 with go_goroutines; body:\n%s", code, body)
	}
}

func TestRouting(t *testing.T) {
	s := start(t, Config{})
	tests := map[string]struct {
		method, path string
		want         int
	}{
		"GET metrics":       {http.MethodGet, "/metrics", http.StatusOK},
		"HEAD metrics":      {http.MethodHead, "/metrics", http.StatusOK},
		"GET healthz":       {http.MethodGet, "/healthz", http.StatusOK},
		"HEAD healthz":      {http.MethodHead, "/healthz", http.StatusOK},
		"POST metrics":      {http.MethodPost, "/metrics", http.StatusMethodNotAllowed},
		"POST healthz":      {http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		"PUT healthz":       {http.MethodPut, "/healthz", http.StatusMethodNotAllowed},
		"DELETE metrics":    {http.MethodDelete, "/metrics", http.StatusMethodNotAllowed},
		"root":              {http.MethodGet, "/", http.StatusNotFound},
		"unknown":           {http.MethodGet, "/debug/pprof/", http.StatusNotFound},
		"trailing slash":    {http.MethodGet, "/metrics/", http.StatusNotFound},
		"sub path":          {http.MethodGet, "/healthz/x", http.StatusNotFound},
		"POST unknown path": {http.MethodPost, "/nope", http.StatusNotFound},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			code, hdr, body := do(t, tt.method, url(s, tt.path))
			if code != tt.want {
				t.Fatalf("%s %s: got %d, want %d", tt.method, tt.path, code, tt.want)
			}
			if tt.method == http.MethodHead && body != "" {
				t.Errorf("HEAD: got body %q, want none", body)
			}
			if code == http.StatusMethodNotAllowed {
				if allow := hdr.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
					t.Errorf("Allow: got %q, want GET and HEAD", allow)
				}
			}
		})
	}
}

func TestClose(t *testing.T) {
	s, err := Start(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	addr := s.Addr().String()
	if code, _, _ := do(t, http.MethodGet, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("before Close: got status %d, want 200", code)
	}
	client.CloseIdleConnections()

	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s after Close succeeded, want it refused", addr)
	}
}

func TestCloseForcesAfterDeadline(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	s, err := Start(Config{
		Addr:          "127.0.0.1:0",
		HealthTimeout: time.Minute,
		Health: func(ctx context.Context) error {
			close(entered)
			select {
			case <-ctx.Done():
			case <-release:
			}
			return nil
		},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	go func() {
		resp, err := client.Get(url(s, "/healthz"))
		if err == nil {
			resp.Body.Close()
		}
	}()
	<-entered

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close with a request in flight: got %v, want DeadlineExceeded", err)
	}
}

func TestStartErrors(t *testing.T) {
	tests := map[string]string{
		"empty":    "",
		"no port":  "127.0.0.1",
		"bad port": "127.0.0.1:99999",
	}
	for name, addr := range tests {
		t.Run(name, func(t *testing.T) {
			s, err := Start(Config{Addr: addr})
			if err == nil {
				s.Close(context.Background())
				t.Fatalf("Start(%q): got nil error, want one", addr)
			}
		})
	}
}

func TestStartPortInUse(t *testing.T) {
	s := start(t, Config{})
	if s2, err := Start(Config{Addr: s.Addr().String()}); err == nil {
		s2.Close(context.Background())
		t.Fatalf("second Start on %s: got nil error, want address in use", s.Addr())
	}
}

func TestIsLoopback(t *testing.T) {
	tests := map[string]struct {
		addr net.Addr
		want bool
	}{
		"ipv4 loopback": {&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, true},
		"ipv4 127/8":    {&net.TCPAddr{IP: net.IPv4(127, 1, 2, 3)}, true},
		"ipv6 loopback": {&net.TCPAddr{IP: net.IPv6loopback}, true},
		"unspecified":   {&net.TCPAddr{IP: net.IPv4zero}, false},
		"ipv6 any":      {&net.TCPAddr{IP: net.IPv6unspecified}, false},
		"private":       {&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1)}, false},
		"not tcp":       {&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := isLoopback(tt.addr); got != tt.want {
				t.Errorf("isLoopback(%v): got %v, want %v", tt.addr, got, tt.want)
			}
		})
	}
}
