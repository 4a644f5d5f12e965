package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/parleynet/parley/app/apitype"
)

// A daemon started on a fresh data directory without a rendezvous address
// serves the API in the setup state (ListenSetup): the UI and
//
//	GET  /api/status                  the device's peer ID and Status.Setup (a suggested address)
//	POST /api/network  NetworkRequest apitype.Status once the network is joined
//	POST /api/logout                  as always (web.go)
//
// and every other endpoint answers 409 no_network. POST /api/network hands
// the address to Setup.Join, which checks it (422 invalid_argument: not a
// multiaddr, or no /p2p/<peer ID>; 502 server_unreachable: nothing answers
// there), remembers it and starts the engine; from then on the API serves
// the engine as if the daemon had been started with --rendezvous. Once a
// network is chosen POST /api/network answers 409 network_chosen.
// (Before, an endpoint the setup state does not know answers 409
// no_network, whether the engine has it or not.)

// Setup is a daemon waiting for its network.
type Setup interface {
	// Status is the device before it joins a network: its peer ID, with
	// Status.Setup set.
	Status(ctx context.Context) (apitype.Status, error)
	// Join checks rendezvous, joins that network and returns the client
	// to serve from then on. Its errors wrap app.ErrInvalidArgument for
	// an address that is not one, app.ErrServerUnreachable when the
	// server does not answer.
	Join(ctx context.Context, rendezvous string) (apitype.Client, error)
}

var (
	// ErrNoNetwork: the daemon has no network yet (POST /api/network).
	ErrNoNetwork = errors.New("no network chosen yet: choose the rendezvous server first (POST /api/network, or parley daemon --rendezvous)")
	// ErrNetworkChosen: POST /api/network on a daemon that has one.
	ErrNetworkChosen = errors.New("this daemon is on a network already")
)

// ListenSetup serves the API in the setup state on addr (see Listen) until
// a network is chosen through setup.
func ListenSetup(setup Setup, dataDir, addr string) (*Server, error) {
	return listen(nil, setup, dataDir, addr)
}

// Client is the client the server serves: the one given to Listen, or
// the one Setup.Join returned; nil while none.
func (s *Server) Client() apitype.Client {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	return s.client
}

// setupRoutes are the endpoints of the setup state.
func (s *Server) setupRoutes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/status", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.setup.Status(r.Context())
		writeResult(w, emptyListsOf(st), err)
	})
	mux.HandleFunc("POST /api/network", func(w http.ResponseWriter, r *http.Request) {
		var req apitype.NetworkRequest
		if !readJSON(w, r, &req) {
			return
		}
		c, err := s.join(r.Context(), req.Rendezvous)
		if err != nil {
			writeError(w, err)
			return
		}
		st, err := c.Status(r.Context())
		writeResult(w, emptyListsOf(st), err)
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		// A request that raced a Join goes to the client's endpoints.
		if mux := s.apiMux.Load(); s.Client() != nil {
			mux.ServeHTTP(w, r)
			return
		}
		if wrongMethod(mux, w, r) {
			return
		}
		writeError(w, fmt.Errorf("%w (%s %s)", ErrNoNetwork, r.Method, r.URL.Path))
	})
	return mux
}

// join chooses the network once: concurrent calls wait for the first.
func (s *Server) join(ctx context.Context, rendezvous string) (apitype.Client, error) {
	s.joinMu.Lock()
	defer s.joinMu.Unlock()
	if s.client != nil {
		return nil, ErrNetworkChosen
	}
	c, err := s.setup.Join(ctx, rendezvous)
	if err != nil {
		return nil, err
	}
	s.client = c
	s.apiMux.Store(s.clientRoutes(c))
	return c, nil
}

// JoinNetwork chooses the network of a daemon in the setup state (POST
// /api/network) and returns its status once it joined.
func (c *Client) JoinNetwork(ctx context.Context, rendezvous string) (apitype.Status, error) {
	var st apitype.Status
	err := c.do(ctx, http.MethodPost, "/api/network", apitype.NetworkRequest{Rendezvous: rendezvous}, &st)
	return st, err
}
