package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/node/nodetest"
)

// startDaemon runs an engine whose rendezvous server does not exist (it
// keeps retrying the login), and its API.
func startDaemon(t *testing.T) (*Server, string) {
	t.Helper()
	nowhere := nodetest.PeerID(t)
	dir := t.TempDir()
	e, err := app.Start(app.Config{
		DataDir:      dir,
		Rendezvous:   peer.AddrInfo{ID: nowhere},
		ListenAddrs:  node.LoopbackListenAddrs,
		Reachability: node.ReachabilityPublic,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	s, err := Listen(e, dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func TestInfoFileAndClient(t *testing.T) {
	s, dir := startDaemon(t)
	info, err := os.Stat(filepath.Join(dir, InfoFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("%s mode: got %v, want 0600", InfoFile, info.Mode().Perm())
	}
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LoggedIn || st.Peer == "" {
		t.Errorf("status: got %+v, want a logged-out device with a peer ID", st)
	}
	// The first login attempt fails; status says so and that it retries.
	for st.Login == nil {
		select {
		case <-ctx.Done():
			t.Fatal("status never reports the failed login")
		case <-time.After(20 * time.Millisecond):
		}
		if st, err = c.Status(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st.Login.Reason != apitype.LoginFailed || st.Login.Stopped || st.Login.RetryAt.IsZero() {
		t.Errorf("login problem: got %+v, want a failure that is retried", st.Login)
	}
	// Lists are [] when empty, never null: scripts read them with --json.
	for name, isNil := range map[string]bool{
		"public_addrs":  st.PublicAddrs == nil,
		"addrs":         st.Addrs == nil,
		"supernodes":    st.Supernodes == nil,
		"contacts":      st.Contacts == nil,
		"port_mappings": st.PortMappings == nil,
		"incoming":      st.Incoming == nil,
		"outgoing":      st.Outgoing == nil,
	} {
		if isNil {
			t.Errorf("status lists %s as null, want []", name)
		}
	}
	_, err = c.Send(ctx, "bob", "hi")
	var apiErr *Error
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict || !errors.Is(err, chat.ErrNotLoggedIn) || !strings.Contains(apiErr.Message, "not logged in") {
		t.Errorf("send while logged out: got %v, want 409 not logged in", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(dir); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("dial after close: got %v, want ErrNoDaemon", err)
	}
}

func TestGuard(t *testing.T) {
	s, _ := startDaemon(t)
	base := "http://" + s.Addr()
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		header map[string]string
		want   int
		code   string // the ErrorResponse's code; checked when want is not 200
	}{
		{"no token", "GET", "/api/status", "", nil, http.StatusUnauthorized, "unauthorized"},
		{"wrong token", "GET", "/api/status", "", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized, "unauthorized"},
		{"wrong token scheme", "GET", "/api/status", "", map[string]string{"Authorization": "Basic " + s.info.Token}, http.StatusUnauthorized, "unauthorized"},
		{"wrong token, event stream", "GET", "/api/events", "", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized, "unauthorized"},
		{"good token", "GET", "/api/status", "", nil, http.StatusOK, ""},
		{"rebinding host", "GET", "/api/status", "", map[string]string{"Host": "evil.example:80"}, http.StatusForbidden, "forbidden"},
		{"foreign origin", "GET", "/api/status", "", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden, "forbidden"},
		{"foreign origin, POST", "POST", "/api/send", `{"to":"bob","body":"x"}`, map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden, "forbidden"},
		{"null origin", "GET", "/api/status", "", map[string]string{"Origin": "null"}, http.StatusForbidden, "forbidden"},
		{"same origin", "GET", "/api/status", "", map[string]string{"Origin": "http://" + s.Addr()}, http.StatusOK, ""},
		{"bad json", "POST", "/api/send", "{", nil, http.StatusBadRequest, "bad_request"},
		{"empty body", "POST", "/api/send", "", nil, http.StatusBadRequest, "bad_request"},
		{"not an object", "POST", "/api/send", `["bob","x"]`, nil, http.StatusBadRequest, "bad_request"},
		{"wrong field type", "POST", "/api/send", `{"to":"bob","body":7}`, nil, http.StatusBadRequest, "bad_request"},
		{"trailing data", "POST", "/api/send", `{"to":"bob","body":"x"} {}`, nil, http.StatusBadRequest, "bad_request"},
		{"trailing garbage", "POST", "/api/send", `{"to":"bob","body":"x"}x`, nil, http.StatusBadRequest, "bad_request"},
		{"invalid UTF-8", "POST", "/api/send", "{\"to\":\"bob\",\"body\":\"\xff\"}", nil, http.StatusBadRequest, "bad_request"},
		{"unknown field", "POST", "/api/send", `{"to":"bob","body":"x","evil":1}`, nil, http.StatusBadRequest, "bad_request"},
		{"not JSON", "POST", "/api/send", `to=bob`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"text/plain", "POST", "/api/send", `{"to":"bob","body":"x"}`, map[string]string{"Content-Type": "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"JSON with charset", "POST", "/api/send", `{"to":"bob","body":"x"}`, map[string]string{"Content-Type": "application/json; charset=utf-8"}, http.StatusConflict, "not_logged_in"},
		{"oversized body", "POST", "/api/send", `{"to":"bob","body":"` + strings.Repeat("x", maxRequestBody) + `"}`, nil, http.StatusRequestEntityTooLarge, "request_too_large"},
		{"empty message", "POST", "/api/send", `{"to":"bob","body":""}`, nil, http.StatusUnprocessableEntity, "invalid_message"},
		{"message too long", "POST", "/api/send", `{"to":"bob","body":"` + strings.Repeat("x", chat.MaxBodySize+1) + `"}`, nil, http.StatusUnprocessableEntity, "invalid_message"},
		{"send while logged out", "POST", "/api/send", `{"to":"bob","body":"x"}`, nil, http.StatusConflict, "not_logged_in"},
		{"unknown endpoint", "GET", "/api/frobnicate", "", nil, http.StatusNotFound, "no_such_endpoint"},
		{"wrong method", "GET", "/api/send", "", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"wrong method, GET endpoint", "POST", "/api/status", "{}", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"unknown contact op", "POST", "/api/contacts/frobnicate", `{"username":"bob"}`, nil, http.StatusNotFound, "no_such_endpoint"},
		{"bad event cursor", "GET", "/api/events?since=x", "", nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"negative event cursor", "GET", "/api/events", "", map[string]string{"Last-Event-ID": "-1"}, http.StatusUnprocessableEntity, "invalid_argument"},
		{"limit too large", "GET", "/api/history?contact=bob&limit=5000", "", nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"limit negative", "GET", "/api/history?contact=bob&limit=-1", "", nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"limit not a number", "GET", "/api/history?contact=bob&limit=ten", "", nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"probe size negative", "POST", "/api/probe", `{"username":"bob","size":-1}`, nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"probe size too large", "POST", "/api/probe", `{"username":"bob","size":1099511627776}`, nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"bad username", "GET", "/api/history?contact=%21%21", "", nil, http.StatusUnprocessableEntity, "invalid_request"},
		{"bad contact name", "POST", "/api/contacts/accept", `{"username":"!!"}`, nil, http.StatusUnprocessableEntity, "invalid_request"},
		{"bad device id", "POST", "/api/devices/revoke", `{"peer":"laptop"}`, nil, http.StatusUnprocessableEntity, "invalid_request"},
		{"short new password", "POST", "/api/password", `{"old_password":"old-password","new_password":"x"}`, nil, http.StatusUnprocessableEntity, "invalid_request"},
		{"unknown field, get", "POST", "/api/get", `{"link":"parley://x","evil":1}`, nil, http.StatusBadRequest, "bad_request"},
		{"bad link", "POST", "/api/get", `{"link":"https://example.com/x"}`, nil, http.StatusUnprocessableEntity, "invalid_link"},
		{"relative download folder", "POST", "/api/get", `{"link":"parley://bafkr4ibv3ryuw6plrafgxuvwjhp3ohmq7cmisuniwbxlyqxisjqp37zq4m","dir":"downloads"}`, nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"unpublish a bad CID", "POST", "/api/unpublish", `{"cid":"x"}`, nil, http.StatusUnprocessableEntity, "invalid_link"},
		{"publish a relative path", "POST", "/api/publish", `{"path":"notes.txt"}`, nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"publish a missing file", "POST", "/api/publish", `{"path":"/nonexistent/parley/notes.txt"}`, nil, http.StatusNotFound, "no_such_file"},
		{"pause an unknown transfer", "POST", "/api/transfers/pause", `{"id":"nope"}`, nil, http.StatusNotFound, "no_such_transfer"},
		{"cancel an unknown transfer", "POST", "/api/transfers/cancel", `{"id":"nope"}`, nil, http.StatusNotFound, "no_such_transfer"},
		{"unknown transfer op", "POST", "/api/transfers/frobnicate", `{"id":"nope"}`, nil, http.StatusNotFound, "no_such_endpoint"},
		{"wrong method, get", "GET", "/api/get", "", nil, http.StatusMethodNotAllowed, "method_not_allowed"},
		{"published, empty", "GET", "/api/published", "", nil, http.StatusOK, ""},
		{"transfers, empty", "GET", "/api/transfers", "", nil, http.StatusOK, ""},
		{"server unreachable", "POST", "/api/contacts/request", `{"username":"bob"}`, nil, http.StatusBadGateway, "server_unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+s.info.Token)
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			if tt.name == "no token" {
				req.Header.Del("Authorization")
			}
			if tt.want != http.StatusOK {
				ctx, cancel := context.WithTimeout(req.Context(), 20*time.Second)
				defer cancel()
				req = req.WithContext(ctx)
			}
			checkAnswer(t, http.DefaultClient, req, tt.want, tt.code)
		})
	}
}

// checkAnswer sends req and checks the status, and for an error the
// apitype.ErrorResponse: JSON, a message, and the code.
func checkAnswer(t *testing.T, c *http.Client, req *http.Request, want int, code string) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("got %d %s, want %d", resp.StatusCode, data, want)
	}
	if want == http.StatusOK {
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var e apitype.ErrorResponse
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("error body %q: %v", data, err)
	}
	if e.Error == "" || e.Code != code {
		t.Errorf("error body: got %+v, want code %q and a message", e, code)
	}
	if row := lookupCode(e.Code); row != nil && row.http != want {
		t.Errorf("code %q answered with %d, but the error table gives it %d", e.Code, want, row.http)
	}
}

// lookupCode is the error table's row for code, or nil.
func lookupCode(code string) *errorCode {
	for i := range errorTable {
		if errorTable[i].code == code {
			return &errorTable[i]
		}
	}
	return nil
}

func TestListenRefusesNonLoopback(t *testing.T) {
	if _, err := Listen(nil, t.TempDir(), "0.0.0.0:0"); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v, want a refusal naming loopback", err)
	}
}

func TestErrorTable(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range errorTable {
		if seen[e.code] {
			t.Errorf("code %q names two sentinels; the client could not tell them apart", e.code)
		}
		seen[e.code] = true
		if got := lookup(fmt.Errorf("wrapped: %w", e.err)); got.code != e.code {
			t.Errorf("lookup(%v): got %q, want %q (an earlier row shadows it)", e.err, got.code, e.code)
		}
		if got := sentinelOf(e.code); got != e.err {
			t.Errorf("sentinelOf(%q): got %v, want %v", e.code, got, e.err)
		}
		if e.http < 400 || e.http > 599 {
			t.Errorf("%v: HTTP status %d is not an error", e.err, e.http)
		}
	}
	if got := lookup(errors.New("disk on fire")); got.http != http.StatusInternalServerError {
		t.Errorf("an unknown error: got %d, want 500", got.http)
	}
}

func TestNoDaemonHint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	want := "start one with: parley --data '" + dir + "' daemon --rendezvous ADDR"
	if _, err := Dial(dir); !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), want) {
		t.Errorf("no settings saved: got %v, want %q", err, want)
	}
	if err := os.WriteFile(filepath.Join(dir, datadir.SettingsFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	want = "start one with: parley --data '" + dir + "' daemon"
	if _, err := Dial(dir); !errors.Is(err, ErrNoDaemon) || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("settings saved: got %v, want it to end with %q", err, want)
	}
}
