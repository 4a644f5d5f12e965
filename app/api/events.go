package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
)

// keepalive is how often an idle event stream carries a comment, so that
// proxies and the client notice a dead connection. A variable for tests;
// a server reads it when it starts.
var keepalive = 15 * time.Second

// events serves GET /api/events as server-sent events (see the package
// doc). The cursor is Last-Event-ID (a reconnecting EventSource sends it),
// else ?since=, else the last event published: from now on.
func (s *Server) events(c apitype.Client, w http.ResponseWriter, r *http.Request) {
	since, err := cursor(r)
	if err != nil {
		writeError(w, err)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, fmt.Errorf("event stream: the connection cannot stream"))
		return
	}
	if since == nil {
		st, err := c.Status(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		since = &st.EventSeq
	}
	evs, err := c.Watch(r.Context(), *since)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": parley events\n\n")
	fl.Flush()
	tick := time.NewTicker(s.keepalive)
	defer tick.Stop()
	for {
		select {
		case ev, ok := <-evs:
			if !ok {
				return
			}
			data, err := json.Marshal(ev)
			if err != nil {
				log.Errorw("encode event", "err", err)
				return
			}
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Kind, data); err != nil {
				return
			}
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		case <-s.stop:
			return
		case <-r.Context().Done():
			return
		}
		fl.Flush()
	}
}

// cursor is the event number a stream starts after, or nil for "now".
func cursor(r *http.Request) (*uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: the event cursor (Last-Event-ID or since) must be an event number", app.ErrInvalidArgument)
	}
	return &n, nil
}
