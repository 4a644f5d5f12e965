// Package admin serves the operator-facing HTTP listener of Parley's server
// binaries (parley-rendezvous, and later parley-relay).
//
// It serves two paths, both GET or HEAD only (other methods get 405, other
// paths 404):
//
//   - /metrics: the Prometheus text exposition of Config.Registry;
//   - /healthz: 200 "ok" when Config.Health returns nil, 503 with the
//     error's text otherwise.
//
// The listener should stay on loopback. Binding it elsewhere, for a
// Prometheus scraper on another host, is allowed but logged as a warning:
// the endpoints carry no authentication.
package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var log = logging.Logger("parley/admin")

// DefaultHealthTimeout bounds one /healthz check when Config.HealthTimeout
// is zero.
const DefaultHealthTimeout = 2 * time.Second

// Config configures the admin listener.
type Config struct {
	// Addr is the host:port to listen on. It must be given; the binaries
	// default it to 127.0.0.1:<port>. Port 0 picks a free port (see
	// Server.Addr). A host that is not loopback is logged as a warning.
	Addr string

	// Registry is gathered for /metrics. Nil means a fresh NewRegistry(),
	// which exposes only the Go runtime and process collectors.
	Registry *prometheus.Registry

	// Health is called for every /healthz request with a context that
	// expires after HealthTimeout. Nil means always healthy. It may be
	// called from several goroutines concurrently. If it has not returned
	// by the deadline the check answers 503 and its eventual result is
	// discarded, so it should honour ctx.
	Health func(ctx context.Context) error

	// HealthTimeout bounds one health check. Zero means
	// DefaultHealthTimeout.
	HealthTimeout time.Duration
}

// Server is a running admin listener. Close it to stop it.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when the serve goroutine returns

	closeOnce sync.Once
	closeErr  error
}

// Timeouts of the HTTP server. Scrapes are small and local; these only stop
// a stuck or malicious client from holding a connection.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	metricsTimeout    = 20 * time.Second // below writeTimeout
)

// Start listens on cfg.Addr and serves in a background goroutine. The
// listener is bound when Start returns, so Addr reports the chosen port.
func Start(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		return nil, errors.New("admin: no listen address")
	}
	if cfg.Registry == nil {
		cfg.Registry = NewRegistry()
	}
	if cfg.HealthTimeout <= 0 {
		cfg.HealthTimeout = DefaultHealthTimeout
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("admin: listen: %w", err)
	}
	if !isLoopback(ln.Addr()) {
		log.Warnw("admin listener is not on loopback; /metrics and /healthz are unauthenticated",
			"addr", ln.Addr().String())
	}

	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           newHandler(cfg),
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("admin listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	log.Infow("admin listener started", "addr", ln.Addr().String())
	return s, nil
}

// Addr returns the address the listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting connections and waits for in-flight requests to
// finish (http.Server.Shutdown). If ctx expires first, the remaining
// connections are closed forcibly and ctx's error is returned. Close waits
// for the serve goroutine in either case; later calls return the first
// call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = errors.Join(fmt.Errorf("admin: shutdown: %w", err), s.srv.Close())
		}
		<-s.done
		s.closeErr = err
	})
	return s.closeErr
}

func newHandler(cfg Config) http.Handler {
	mux := http.NewServeMux()
	// "GET" patterns also match HEAD; ServeMux answers other methods with
	// 405 and an Allow header, and unknown paths with 404.
	mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:            promLogger{},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             metricsTimeout,
	}))
	mux.Handle("GET /healthz", healthHandler(cfg.Health, cfg.HealthTimeout))
	return mux
}

func healthHandler(health func(context.Context) error, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")

		err := checkHealth(r.Context(), health, timeout)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err.Error())
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// checkHealth runs health with a deadline and returns when it returns or
// the deadline passes, whichever is first. A panic in health is reported as
// an error.
func checkHealth(ctx context.Context, health func(context.Context) error, timeout time.Duration) error {
	if health == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	result := make(chan error, 1) // buffered: the checker never blocks
	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Errorw("health check panicked", "panic", p)
				result <- fmt.Errorf("health check panicked: %v", p)
			}
		}()
		result <- health(ctx)
	}()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("health check: %w", ctx.Err())
	}
}

// isLoopback reports whether a is a TCP address on a loopback IP. The
// unspecified address (all interfaces) is not loopback.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// promLogger routes promhttp's errors (failed gathers, failed writes) into
// go-log.
type promLogger struct{}

func (promLogger) Println(v ...any) {
	log.Warnw("serve metrics", "err", fmt.Sprint(v...))
}
