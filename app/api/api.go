// Package api is the local HTTP API of the Parley daemon, and its client
// used by the parley CLI.
//
// The server listens on a loopback address and writes api.json (mode 0600)
// into the client's data directory: its address and a random bearer token.
// Only a process that can read that file can drive the daemon. Requests must
// carry "Authorization: Bearer <token>", a Host header naming the loopback
// listener (against DNS rebinding), and no foreign Origin.
//
// Endpoints (JSON in and out; errors are {"error": "..."}):
//
//	GET  /api/status                               app.Status
//	POST /api/register          {username,password}
//	POST /api/enrol             {username,password}
//	GET  /api/contacts                             app.ContactBook
//	POST /api/contacts/request  {username}         {accepted}
//	POST /api/contacts/accept   {username}
//	POST /api/contacts/decline  {username}
//	POST /api/contacts/remove   {username}
//	POST /api/contacts/block    {username}
//	POST /api/contacts/unblock  {username}
//	GET  /api/devices                              []app.DeviceStatus
//	POST /api/devices/revoke    {peer}
//	POST /api/password          {old_password,new_password}
//	POST /api/account/delete    {password}
//	POST /api/send              {to,body}          chat.Message
//	GET  /api/history?contact=&limit=              []chat.Message
//
// POST /api/contacts {username} is the older name of /api/contacts/request.
// Successful calls without a result answer {}.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/probe"
	"github.com/parleynet/parley/internal/atomicfile"
	"github.com/parleynet/parley/rendezvous"
)

var log = logging.Logger("parley/api")

// InfoFile is the name of the file in the data directory that tells the
// CLI where the daemon listens and which token to use.
const InfoFile = "api.json"

// Info is the content of InfoFile.
type Info struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

const maxRequestBody = 64 << 10

// Server serves the API for one engine.
type Server struct {
	engine   *app.Engine
	info     Info
	infoPath string
	srv      *http.Server
	done     chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Listen serves the API on addr (a loopback host:port; port 0 picks one)
// and writes InfoFile into dataDir.
func Listen(e *app.Engine, dataDir, addr string) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("API address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("API address %q: must be a loopback IP such as 127.0.0.1", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for API: %w", err)
	}
	tok := make([]byte, 32)
	_, _ = rand.Read(tok)
	s := &Server{
		engine:   e,
		info:     Info{Addr: ln.Addr().String(), Token: hex.EncodeToString(tok)},
		infoPath: filepath.Join(dataDir, InfoFile),
		done:     make(chan struct{}),
	}
	if err := writeInfo(s.infoPath, s.info); err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Errorw("API server stopped", "err", err)
		}
	}()
	return s, nil
}

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.info.Addr }

// Close stops the server and removes InfoFile.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		<-s.done
		if rmErr := os.Remove(s.infoPath); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			err = errors.Join(err, rmErr)
		}
		s.closeErr = err
	})
	return s.closeErr
}

func writeInfo(path string, info Info) error {
	data, _ := json.Marshal(info)
	if err := atomicfile.Write(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.engine.Status())
	})
	mux.HandleFunc("POST /api/register", s.account(s.engine.Register))
	mux.HandleFunc("POST /api/enrol", s.account(s.engine.Enrol))
	request := func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Username string }
		if !readJSON(w, r, &req) {
			return
		}
		accepted, err := s.engine.RequestContact(r.Context(), req.Username)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"accepted": accepted})
	}
	mux.HandleFunc("POST /api/contacts", request)
	mux.HandleFunc("POST /api/contacts/request", request)
	mux.HandleFunc("GET /api/contacts", func(w http.ResponseWriter, r *http.Request) {
		book, err := s.engine.Contacts(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, book)
	})
	for path, op := range map[string]func(context.Context, string) error{
		"accept":  s.engine.AcceptContact,
		"decline": s.engine.DeclineContact,
		"remove":  s.engine.RemoveContact,
		"block":   s.engine.Block,
		"unblock": s.engine.Unblock,
	} {
		mux.HandleFunc("POST /api/contacts/"+path, func(w http.ResponseWriter, r *http.Request) {
			var req struct{ Username string }
			if !readJSON(w, r, &req) {
				return
			}
			writeResult(w, op(r.Context(), req.Username))
		})
	}
	mux.HandleFunc("GET /api/devices", func(w http.ResponseWriter, r *http.Request) {
		devs, err := s.engine.Devices(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, devs)
	})
	mux.HandleFunc("POST /api/devices/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Peer string }
		if !readJSON(w, r, &req) {
			return
		}
		writeResult(w, s.engine.RevokeDevice(r.Context(), req.Peer))
	})
	mux.HandleFunc("POST /api/password", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Old string `json:"old_password"`
			New string `json:"new_password"`
		}
		if !readJSON(w, r, &req) {
			return
		}
		writeResult(w, s.engine.ChangePassword(r.Context(), req.Old, req.New))
	})
	mux.HandleFunc("POST /api/account/delete", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Password string }
		if !readJSON(w, r, &req) {
			return
		}
		writeResult(w, s.engine.DeleteAccount(r.Context(), req.Password))
	})
	mux.HandleFunc("POST /api/send", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ To, Body string }
		if !readJSON(w, r, &req) {
			return
		}
		m, err := s.engine.Send(r.Context(), req.To, req.Body)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
	mux.HandleFunc("POST /api/probe", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Username string
			Size     int64
		}
		if !readJSON(w, r, &req) {
			return
		}
		res, err := s.engine.Probe(r.Context(), req.Username, req.Size)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	})
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				writeJSON(w, http.StatusBadRequest, errorBody("limit must be a number from 1 to 1000"))
				return
			}
			limit = n
		}
		msgs, err := s.engine.History(r.Context(), r.URL.Query().Get("contact"), limit)
		if err != nil {
			writeError(w, err)
			return
		}
		if msgs == nil {
			msgs = []chat.Message{}
		}
		writeJSON(w, http.StatusOK, msgs)
	})
	return s.guard(mux)
}

func (s *Server) account(f func(ctx context.Context, user, pass string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Username, Password string }
		if !readJSON(w, r, &req) {
			return
		}
		if err := f(r.Context(), req.Username, req.Password); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"username": s.engine.Username()})
	}
}

// guard checks the Host header, the Origin and the token.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(s.info.Addr)
		if r.Host != s.info.Addr && r.Host != "localhost:"+port {
			writeJSON(w, http.StatusForbidden, errorBody("unexpected Host header"))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			writeJSON(w, http.StatusForbidden, errorBody("cross-origin requests are not allowed"))
			return
		}
		want := "Bearer " + s.info.Token
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) != 1 {
			writeJSON(w, http.StatusUnauthorized, errorBody("missing or wrong API token (read it from "+InfoFile+" in the data directory)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody("bad JSON body: "+err.Error()))
		return false
	}
	return true
}

func errorBody(msg string) map[string]string { return map[string]string{"error": msg} }

// writeResult answers a call without a result: {} or the error.
func writeResult(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// writeError maps engine errors to HTTP statuses.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, rendezvous.ErrBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, rendezvous.ErrBadCredentials), errors.Is(err, rendezvous.ErrDeviceNotEnrolled),
		errors.Is(err, rendezvous.ErrAccountDeleted):
		code = http.StatusUnauthorized
	case errors.Is(err, rendezvous.ErrDeviceRevoked):
		code = http.StatusForbidden
	case errors.Is(err, rendezvous.ErrUsernameTaken), errors.Is(err, rendezvous.ErrDeviceTaken):
		code = http.StatusConflict
	case errors.Is(err, rendezvous.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, rendezvous.ErrRateLimited):
		code = http.StatusTooManyRequests
	case errors.Is(err, chat.ErrNotAContact), errors.Is(err, chat.ErrRejected), errors.Is(err, chat.ErrNotLoggedIn),
		errors.Is(err, chat.ErrOffline), errors.Is(err, probe.ErrRefused):
		code = http.StatusConflict
	case errors.Is(err, app.ErrServerUnreachable):
		code = http.StatusBadGateway
	case errors.Is(err, rendezvous.ErrUnavailable):
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	writeJSON(w, code, errorBody(err.Error()))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
