// Package api is the local HTTP API of the Parley daemon, and its Go
// client. Both speak the types of package app/apitype, and both implement
// apitype.Client: the server serves an engine's Client, the client is a
// Client over HTTP.
//
// The server listens on a loopback address and writes api.json (mode 0600)
// into the client's data directory: its address and a random bearer token.
// Only a process that can read that file can drive the daemon. Requests must
// carry "Authorization: Bearer <token>", a Host header naming the loopback
// listener (against DNS rebinding), and no foreign Origin. The same
// listener serves the web UI (web.go): GET /ui/login?token= sets a session
// cookie that authorizes a browser's requests instead of the header.
//
// Endpoints (JSON in and out; request bodies are the apitype *Request
// structs, strictly decoded: unknown fields, trailing data and invalid
// UTF-8 are refused):
//
//	GET  /api/status                                  apitype.Status
//	POST /api/register          AccountRequest        apitype.Account
//	POST /api/enrol             AccountRequest        apitype.Account
//	GET  /api/contacts                                apitype.ContactBook
//	POST /api/contacts/request  ContactRequest        apitype.ContactRequestResult
//	POST /api/contacts/accept   ContactRequest
//	POST /api/contacts/decline  ContactRequest
//	POST /api/contacts/remove   ContactRequest
//	POST /api/contacts/block    ContactRequest
//	POST /api/contacts/unblock  ContactRequest
//	GET  /api/devices                                 []apitype.Device
//	POST /api/devices/revoke    RevokeRequest
//	POST /api/password          PasswordChangeRequest
//	POST /api/account/delete    DeleteAccountRequest
//	POST /api/send              SendRequest           apitype.Message
//	GET  /api/history?contact=&limit=&before=         []apitype.Message
//	GET  /api/conversations                           []apitype.Conversation
//	POST /api/read              ReadRequest           apitype.ReadResult
//	POST /api/probe             ProbeRequest          apitype.ProbeResult
//	POST /api/publish           PublishRequest        apitype.Published
//	POST /api/unpublish         UnpublishRequest
//	GET  /api/published                               []apitype.Published
//	POST /api/get               GetRequest            apitype.Transfer
//	GET  /api/transfers                               []apitype.Transfer
//	POST /api/transfers/pause   TransferRequest
//	POST /api/transfers/resume  TransferRequest
//	POST /api/transfers/cancel  TransferRequest
//	POST /api/transfers/open    TransferRequest       apitype.OpenedFolder (open.go)
//	POST /api/share             ShareRequest          apitype.Offer
//	GET  /api/offers                                  []apitype.Offer
//	POST /api/offers/accept     AcceptOfferRequest    apitype.Transfer
//	POST /api/offers/decline    OfferRequest
//	POST /api/offers/cancel     OfferRequest
//	POST /api/upload?name=      the file's raw bytes  apitype.Uploaded (upload.go)
//	GET  /api/events?since=N                          text/event-stream of apitype.Event
//	POST /api/network           NetworkRequest        apitype.Status (setup.go)
//	POST /api/logout                                  (web.go)
//
// Successful calls without a result answer {}. A failed call answers an
// apitype.ErrorResponse with the HTTP status and code of the error table
// (errors.go): 4xx for what the caller got wrong, 5xx for faults and
// unreachable servers. The API's own refusals are in the table too: 400
// bad_request (a malformed body), 401 unauthorized, 403 forbidden (Host or
// Origin), 404 no_such_endpoint, 405 method_not_allowed (with Allow), 413
// request_too_large and 415 unsupported_media_type.
//
// The event stream is server-sent events: each event is "id: <seq>",
// "event: <kind>" and "data: <apitype.Event as JSON>". A client that
// reconnects sends the last id it saw in Last-Event-ID (or ?since=) and
// gets every event after it; if those are no longer kept the stream starts
// with a "gap" event. Comments (": keepalive") are sent every 15 s.
package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	logging "github.com/ipfs/go-log/v2"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/internal/atomicfile"
)

var log = logging.Logger("parley/api")

// InfoFile is the name of the file in the data directory that tells the
// CLI where the daemon listens and which token to use.
const InfoFile = datadir.APIInfoFile

// Info is the content of InfoFile.
type Info struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
}

const maxRequestBody = 64 << 10

// Server serves the API for one engine.
type Server struct {
	info     Info
	infoPath string
	dataDir  string // uploads go under it (upload.go)
	srv      *http.Server
	done     chan struct{}
	stop     chan struct{} // closed by Close: event streams end
	// keepalive is how often an idle event stream carries a comment.
	keepalive time.Duration
	ui        *uiSessions // the web UI's cookies (web.go)
	setup     Setup       // nil unless started by ListenSetup (setup.go)
	// openFolder opens a folder in the desktop's file manager (open.go).
	openFolder func(ctx context.Context, dir string) error

	// apiMux serves /api/: the client's endpoints, or the setup state's
	// until a network is chosen.
	apiMux atomic.Pointer[http.ServeMux]

	joinMu sync.Mutex     // held through a Join; guards the following
	client apitype.Client // nil until a network is chosen

	closeOnce sync.Once
	closeErr  error
}

// Listen serves the API on addr (a loopback host:port; port 0 picks one)
// and writes InfoFile into dataDir.
func Listen(c apitype.Client, dataDir, addr string) (*Server, error) {
	return listen(c, nil, dataDir, addr)
}

func listen(c apitype.Client, setup Setup, dataDir, addr string) (*Server, error) {
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
		client:     c,
		stop:       make(chan struct{}),
		keepalive:  keepalive,
		info:       Info{Addr: ln.Addr().String(), Token: hex.EncodeToString(tok)},
		infoPath:   filepath.Join(dataDir, InfoFile),
		dataDir:    dataDir,
		done:       make(chan struct{}),
		ui:         newUISessions(ln.Addr().String()),
		setup:      setup,
		openFolder: openInFileManager,
	}
	if c != nil {
		s.apiMux.Store(s.clientRoutes(c))
	} else {
		s.apiMux.Store(s.setupRoutes())
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
		close(s.stop)
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

// routes are the UI's (web.go) and /api/, served by apiMux.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.uiRoutes(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		s.apiMux.Load().ServeHTTP(w, r)
	})
	return s.guard(mux)
}

// clientRoutes are the endpoints of client c.
func (s *Server) clientRoutes(c apitype.Client) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := c.Status(r.Context())
		writeResult(w, emptyListsOf(st), err)
	})
	account := func(f func(ctx context.Context, user, pass string) (apitype.Account, error)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req apitype.AccountRequest
			if readJSON(w, r, &req) {
				acct, err := f(r.Context(), req.Username, req.Password)
				writeResult(w, acct, err)
			}
		}
	}
	mux.HandleFunc("POST /api/register", account(c.Register))
	mux.HandleFunc("POST /api/enrol", account(c.Enrol))
	mux.HandleFunc("GET /api/contacts", func(w http.ResponseWriter, r *http.Request) {
		book, err := c.Contacts(r.Context())
		writeResult(w, book, err)
	})
	mux.HandleFunc("POST /api/contacts/request", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.ContactRequest
		if readJSON(w, r, &req) {
			res, err := c.RequestContact(r.Context(), req.Username)
			writeResult(w, res, err)
		}
	})
	for path, op := range map[string]func(context.Context, string) error{
		"accept":  c.AcceptContact,
		"decline": c.DeclineContact,
		"remove":  c.RemoveContact,
		"block":   c.Block,
		"unblock": c.Unblock,
	} {
		mux.HandleFunc("POST /api/contacts/"+path, func(w http.ResponseWriter, r *http.Request) {
			var req apitype.ContactRequest
			if readJSON(w, r, &req) {
				writeResult(w, struct{}{}, op(r.Context(), req.Username))
			}
		})
	}
	mux.HandleFunc("GET /api/devices", func(w http.ResponseWriter, r *http.Request) {
		devs, err := c.Devices(r.Context())
		if devs == nil {
			devs = []apitype.Device{}
		}
		writeResult(w, devs, err)
	})
	mux.HandleFunc("POST /api/devices/revoke", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.RevokeRequest
		if readJSON(w, r, &req) {
			writeResult(w, struct{}{}, c.RevokeDevice(r.Context(), req.Peer))
		}
	})
	mux.HandleFunc("POST /api/password", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.PasswordChangeRequest
		if readJSON(w, r, &req) {
			writeResult(w, struct{}{}, c.ChangePassword(r.Context(), req.OldPassword, req.NewPassword))
		}
	})
	mux.HandleFunc("POST /api/account/delete", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.DeleteAccountRequest
		if readJSON(w, r, &req) {
			writeResult(w, struct{}{}, c.DeleteAccount(r.Context(), req.Password))
		}
	})
	mux.HandleFunc("POST /api/send", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.SendRequest
		if readJSON(w, r, &req) {
			m, err := c.Send(r.Context(), req.To, req.Body)
			writeResult(w, m, err)
		}
	})
	mux.HandleFunc("POST /api/probe", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.ProbeRequest
		if readJSON(w, r, &req) {
			res, err := c.Probe(r.Context(), req.Username, req.Size)
			writeResult(w, res, err)
		}
	})
	mux.HandleFunc("GET /api/history", func(w http.ResponseWriter, r *http.Request) {
		q := apitype.HistoryQuery{Contact: r.URL.Query().Get("contact")}
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				writeError(w, fmt.Errorf("%w: limit must be a number from 1 to %d", app.ErrInvalidArgument, apitype.MaxHistoryLimit))
				return
			}
			q.Limit = n
		}
		q.Before = r.URL.Query().Get("before")
		msgs, err := c.History(r.Context(), q)
		if msgs == nil {
			msgs = []apitype.Message{}
		}
		writeResult(w, msgs, err)
	})
	mux.HandleFunc("GET /api/conversations", func(w http.ResponseWriter, r *http.Request) {
		convs, err := c.Conversations(r.Context())
		if convs == nil {
			convs = []apitype.Conversation{}
		}
		writeResult(w, convs, err)
	})
	mux.HandleFunc("POST /api/read", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.ReadRequest
		if readJSON(w, r, &req) {
			res, err := c.MarkRead(r.Context(), req.Contact)
			writeResult(w, res, err)
		}
	})
	mux.HandleFunc("POST /api/publish", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.PublishRequest
		if readJSON(w, r, &req) {
			p, err := c.Publish(r.Context(), req.Path)
			writeResult(w, p, err)
		}
	})
	mux.HandleFunc("POST /api/unpublish", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.UnpublishRequest
		if readJSON(w, r, &req) {
			writeResult(w, struct{}{}, c.Unpublish(r.Context(), req.CID))
		}
	})
	mux.HandleFunc("GET /api/published", func(w http.ResponseWriter, r *http.Request) {
		ps, err := c.Published(r.Context())
		if ps == nil {
			ps = []apitype.Published{}
		}
		writeResult(w, ps, err)
	})
	mux.HandleFunc("POST /api/get", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.GetRequest
		if readJSON(w, r, &req) {
			t, err := c.Get(r.Context(), req)
			writeResult(w, t, err)
		}
	})
	mux.HandleFunc("GET /api/transfers", func(w http.ResponseWriter, r *http.Request) {
		ts, err := c.Transfers(r.Context())
		if ts == nil {
			ts = []apitype.Transfer{}
		}
		writeResult(w, ts, err)
	})
	for path, op := range map[string]func(context.Context, string) error{
		"pause":  c.PauseTransfer,
		"resume": c.ResumeTransfer,
		"cancel": c.CancelTransfer,
	} {
		mux.HandleFunc("POST /api/transfers/"+path, func(w http.ResponseWriter, r *http.Request) {
			var req apitype.TransferRequest
			if readJSON(w, r, &req) {
				writeResult(w, struct{}{}, op(r.Context(), req.ID))
			}
		})
	}
	mux.HandleFunc("POST /api/share", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.ShareRequest
		if readJSON(w, r, &req) {
			o, err := c.Share(r.Context(), req)
			writeResult(w, o, err)
		}
	})
	mux.HandleFunc("GET /api/offers", func(w http.ResponseWriter, r *http.Request) {
		list, err := c.Offers(r.Context())
		if list == nil {
			list = []apitype.Offer{}
		}
		writeResult(w, list, err)
	})
	mux.HandleFunc("POST /api/offers/accept", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.AcceptOfferRequest
		if readJSON(w, r, &req) {
			t, err := c.AcceptOffer(r.Context(), req)
			writeResult(w, t, err)
		}
	})
	for path, op := range map[string]func(context.Context, string) error{
		"decline": c.DeclineOffer,
		"cancel":  c.CancelOffer,
	} {
		mux.HandleFunc("POST /api/offers/"+path, func(w http.ResponseWriter, r *http.Request) {
			var req apitype.OfferRequest
			if readJSON(w, r, &req) {
				writeResult(w, struct{}{}, op(r.Context(), req.ID))
			}
		})
	}
	mux.HandleFunc("POST /api/transfers/open", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.TransferRequest
		if readJSON(w, r, &req) {
			res, err := s.openTransferFolder(r.Context(), c, req.ID)
			writeResult(w, res, err)
		}
	})
	mux.HandleFunc("POST /api/network", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.NetworkRequest
		if readJSON(w, r, &req) {
			writeError(w, fmt.Errorf("%w: restart the daemon with --rendezvous to use another", ErrNetworkChosen))
		}
	})
	mux.HandleFunc("POST /api/upload", s.upload)
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) { s.events(c, w, r) })
	notFound(mux)
	return mux
}

// notFound answers what mux has no endpoint for: 405 for an endpoint
// asked with the wrong method, 404 for the rest.
func notFound(mux *http.ServeMux) {
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if !wrongMethod(mux, w, r) {
			writeError(w, fmt.Errorf("%w: %s %s", errNoEndpoint, r.Method, r.URL.Path))
		}
	})
}

// wrongMethod answers 405, with the method it takes, a request for an
// endpoint of mux asked with another method, and reports whether it did.
func wrongMethod(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if _, pattern := mux.Handler(&http.Request{Method: m, Host: r.Host, URL: r.URL}); pattern != "/api/" && pattern != "" {
			w.Header().Set("Allow", m)
			writeError(w, fmt.Errorf("%w: %s %s takes %s", errMethod, r.Method, r.URL.Path, m))
			return true
		}
	}
	return false
}

// emptyListsOf is st with its nil lists made empty, so that the JSON
// answer has [] rather than null (scripts read it through --json).
func emptyListsOf(st apitype.Status) apitype.Status {
	for _, l := range []*[]string{&st.PublicAddrs, &st.Addrs, &st.Supernodes, &st.Incoming, &st.Outgoing} {
		if *l == nil {
			*l = []string{}
		}
	}
	if st.Contacts == nil {
		st.Contacts = []apitype.ContactStatus{}
	}
	if st.PortMappings == nil {
		st.PortMappings = []apitype.PortMapping{}
	}
	return st
}

// guard checks the Host header, the Origin and the token or the UI's
// session cookie (web.go).
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(s.info.Addr)
		if r.Host != s.info.Addr && r.Host != "localhost:"+port {
			writeError(w, fmt.Errorf("%w: unexpected Host header", errForbidden))
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host {
			writeError(w, fmt.Errorf("%w: cross-origin requests are not allowed", errForbidden))
			return
		}
		if !s.authorize(w, r) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// readJSON decodes a request body strictly into v: JSON only, at most
// maxRequestBody bytes of valid UTF-8, no unknown fields, nothing after
// the value. It answers 4xx and reports false when the body is refused.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, errNotJSON)
			return false
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, fmt.Errorf("%w: a JSON body is at most %d bytes", errTooLarge, maxRequestBody))
			return false
		}
		writeError(w, fmt.Errorf("%w: read request body: %w", errBadBody, err))
		return false
	}
	if err := decodeStrict(data, v); err != nil {
		writeError(w, err)
		return false
	}
	return true
}

// decodeStrict decodes data into v, refusing invalid UTF-8 (which
// encoding/json would silently replace), unknown fields and trailing data.
func decodeStrict(data []byte, v any) error {
	if !utf8.Valid(data) {
		return fmt.Errorf("%w: not valid UTF-8", errBadBody)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errBadBody, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", errBadBody)
	}
	return nil
}

// writeResult answers v, or the error.
func writeResult(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// writeError answers err with its status and code from the error table.
// A fault (500) is logged; its detail is not for the caller.
func writeError(w http.ResponseWriter, err error) {
	e := lookup(err)
	msg := err.Error()
	if e.http == http.StatusInternalServerError {
		log.Errorw("API call failed", "err", err)
		msg = "internal error in the daemon; its log has the detail"
	}
	writeJSON(w, e.http, apitype.ErrorResponse{Error: msg, Code: e.code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
