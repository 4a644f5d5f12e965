package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/api"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/offers"
	"github.com/parleynet/parley/node/nodetest"
	"github.com/parleynet/parley/rendezvous"
)

// TestErrorStatuses checks, on a logged-in device, that each class of
// error reaches a raw HTTP caller with its status and code, and the Go
// client with its sentinel.
func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice, _ := contactsPair(t, ctx)
	info := readInfo(t, alice.Dir)
	c := dial(t, alice.Dir)
	stranger := nodetest.PeerID(t).String()
	// Lists are [] when empty, never null, on a NATed device too.
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.PublicAddrs == nil || st.Addrs == nil || st.Supernodes == nil || st.Incoming == nil || st.Outgoing == nil {
		t.Errorf("status with a list as null, want []: %+v", st)
	}
	tests := []struct {
		name     string
		method   string
		path     string
		body     string
		status   int
		code     string
		sentinel error // what the Go client's error unwraps to (nil: not checked)
		call     func() error
	}{
		{"malformed JSON", "POST", "/api/send", `{"to":`, 400, "bad_request", nil, nil},
		{"trailing data", "POST", "/api/send", `{"to":"bob","body":"x"}{"to":"bob"}`, 400, "bad_request", nil, nil},
		{"invalid UTF-8", "POST", "/api/send", "{\"to\":\"bob\",\"body\":\"a\xc3\"}", 400, "bad_request", nil, nil},
		{"unknown field", "POST", "/api/contacts/request", `{"username":"bob","note":"hi"}`, 400, "bad_request", nil, nil},
		{"oversized", "POST", "/api/send", `{"to":"bob","body":"` + strings.Repeat("é", 40<<10) + `"}`, 413, "request_too_large", nil, nil},
		{"out of range: history limit", "GET", "/api/history?contact=bob&limit=1001", "", 422, "invalid_argument", app.ErrInvalidArgument,
			func() error { _, err := c.History(ctx, apitype.HistoryQuery{Contact: "bob", Limit: 1001}); return err }},
		{"out of range: probe size", "POST", "/api/probe", `{"username":"bob","size":-5}`, 422, "invalid_argument", app.ErrInvalidArgument,
			func() error { _, err := c.Probe(ctx, "bob", -5); return err }},
		{"empty message", "POST", "/api/send", `{"to":"bob","body":""}`, 422, "invalid_message", chat.ErrInvalidMessage,
			func() error { _, err := c.Send(ctx, "bob", ""); return err }},
		{"bad username", "POST", "/api/contacts/request", `{"username":"b"}`, 422, "invalid_request", rendezvous.ErrBadRequest,
			func() error { _, err := c.RequestContact(ctx, "b"); return err }},
		{"not a contact", "POST", "/api/send", `{"to":"carol","body":"hi"}`, 409, "not_a_contact", chat.ErrNotAContact,
			func() error { _, err := c.Send(ctx, "carol", "hi"); return err }},
		{"probe a non-contact", "POST", "/api/probe", `{"username":"carol","size":1}`, 409, "not_a_contact", chat.ErrNotAContact,
			func() error { _, err := c.Probe(ctx, "carol", 1); return err }},
		{"wrong password", "POST", "/api/password", `{"old_password":"not the password","new_password":"a new password"}`, 401, "bad_credentials", rendezvous.ErrBadCredentials,
			func() error { return c.ChangePassword(ctx, "not the password", "a new password") }},
		{"no such device", "POST", "/api/devices/revoke", `{"peer":"` + stranger + `"}`, 404, "not_found", rendezvous.ErrNotFound,
			func() error { return c.RevokeDevice(ctx, stranger) }},
		{"share with a non-contact", "POST", "/api/share", `{"to":"carol","path":"/tmp"}`, 409, "not_a_contact", chat.ErrNotAContact,
			func() error { _, err := c.Share(ctx, apitype.ShareRequest{To: "carol", Path: "/tmp"}); return err }},
		{"no such offer", "POST", "/api/offers/accept", `{"id":"nope"}`, 404, "no_such_offer", offers.ErrNoSuchOffer,
			func() error { _, err := c.AcceptOffer(ctx, apitype.AcceptOfferRequest{ID: "nope"}); return err }},
		{"decline no such offer", "POST", "/api/offers/decline", `{"id":"nope"}`, 404, "no_such_offer", offers.ErrNoSuchOffer,
			func() error { return c.DeclineOffer(ctx, "nope") }},
		{"register an enrolled device", "POST", "/api/register", `{"username":"alice2","password":"alice-password"}`, 409, "device_taken", rendezvous.ErrDeviceTaken,
			func() error { _, err := c.Register(ctx, "alice2", "alice-password"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(ctx, tt.method, "http://"+info.Addr+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+info.Token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e apitype.ErrorResponse
			if resp.StatusCode != tt.status || json.Unmarshal(data, &e) != nil || e.Code != tt.code || e.Error == "" {
				t.Errorf("got %d %s, want %d with code %q", resp.StatusCode, data, tt.status, tt.code)
			}
			if tt.call == nil {
				return
			}
			err = tt.call()
			apiErr, ok := errors.AsType[*api.Error](err)
			if !ok || apiErr.Status != tt.status || apiErr.Code != tt.code {
				t.Errorf("Go client: got %#v, want an *api.Error %d %q", err, tt.status, tt.code)
			}
			if tt.sentinel != nil && !errors.Is(err, tt.sentinel) {
				t.Errorf("Go client: got %v, want it to unwrap to %v", err, tt.sentinel)
			}
		})
	}
}
