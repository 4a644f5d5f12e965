package api

import (
	"context"
	"errors"
	"fmt"
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
	if st.Incoming == nil || st.Outgoing == nil {
		t.Errorf("status lists requests as null, want []: %+v", st)
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
	}{
		{"no token", "GET", "/api/status", "", nil, http.StatusUnauthorized},
		{"wrong token", "GET", "/api/status", "", map[string]string{"Authorization": "Bearer nope"}, http.StatusUnauthorized},
		{"good token", "GET", "/api/status", "", nil, http.StatusOK},
		{"rebinding host", "GET", "/api/status", "", map[string]string{"Host": "evil.example:80"}, http.StatusForbidden},
		{"foreign origin", "GET", "/api/status", "", map[string]string{"Origin": "http://evil.example"}, http.StatusForbidden},
		{"bad json", "POST", "/api/send", "{", nil, http.StatusBadRequest},
		{"trailing data", "POST", "/api/send", `{"to":"bob","body":"x"} {}`, nil, http.StatusBadRequest},
		{"invalid UTF-8", "POST", "/api/send", "{\"to\":\"bob\",\"body\":\"\xff\"}", nil, http.StatusBadRequest},
		{"not JSON", "POST", "/api/send", `to=bob`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType},
		{"empty message", "POST", "/api/send", `{"to":"bob","body":""}`, nil, http.StatusUnprocessableEntity},
		{"unknown endpoint", "GET", "/api/frobnicate", "", nil, http.StatusNotFound},
		{"bad event cursor", "GET", "/api/events?since=x", "", nil, http.StatusUnprocessableEntity},
		{"unknown field", "POST", "/api/send", `{"to":"bob","body":"x","evil":1}`, nil, http.StatusBadRequest},
		{"oversized body", "POST", "/api/send", `{"to":"bob","body":"` + strings.Repeat("x", maxRequestBody) + `"}`, nil, http.StatusRequestEntityTooLarge},
		{"bad limit", "GET", "/api/history?contact=bob&limit=5000", "", nil, http.StatusUnprocessableEntity},
		{"bad username", "GET", "/api/history?contact=%21%21", "", nil, http.StatusUnprocessableEntity},
		{"bad contact name", "POST", "/api/contacts/accept", `{"username":"!!"}`, nil, http.StatusUnprocessableEntity},
		{"bad device id", "POST", "/api/devices/revoke", `{"peer":"laptop"}`, nil, http.StatusUnprocessableEntity},
		{"short new password", "POST", "/api/password", `{"old_password":"old-password","new_password":"x"}`, nil, http.StatusUnprocessableEntity},
		{"unknown contact op", "POST", "/api/contacts/frobnicate", `{"username":"bob"}`, nil, http.StatusNotFound},
		{"server unreachable", "POST", "/api/contacts/request", `{"username":"bob"}`, nil, http.StatusBadGateway},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(tt.name, "token") || tt.name == "good token" {
				req.Header.Set("Authorization", "Bearer "+s.info.Token)
			}
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("got %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
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
