package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleynet/parley/app"
	"github.com/parleynet/parley/app/apitype"
)

// fakeSetup joins the engine it is given when asked for the address
// "good"; "bad" is malformed, "down" unreachable.
type fakeSetup struct {
	engine apitype.Client
	joins  atomic.Int32
}

func (f *fakeSetup) Status(context.Context) (apitype.Status, error) {
	return apitype.Status{Peer: "12D3KooWsetup", Reachability: "unknown", Setup: &apitype.NetworkSetup{Suggested: "good", SuggestedFrom: "a test"}}, nil
}

func (f *fakeSetup) Join(_ context.Context, addr string) (apitype.Client, error) {
	switch addr {
	case "good":
		f.joins.Add(1)
		return f.engine, nil
	case "down":
		return nil, fmt.Errorf("%w: nothing answers", app.ErrServerUnreachable)
	}
	return nil, fmt.Errorf("%w: %q is not a multiaddr", app.ErrInvalidArgument, addr)
}

func TestSetupState(t *testing.T) {
	engine, _ := startDaemon(t) // an engine to join, with its own server
	setup := &fakeSetup{engine: engine.Client()}
	s, err := ListenSetup(setup, t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &Client{info: s.info, http: http.DefaultClient}

	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Setup == nil || st.Setup.Suggested != "good" || st.Peer == "" {
		t.Fatalf("status in the setup state: got %+v, want Setup with the suggestion", st)
	}
	base := "http://" + s.Addr()
	call := func(t *testing.T, method, path, body string, want int, code string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+s.info.Token)
		checkAnswer(t, http.DefaultClient, req, want, code)
	}
	for _, tt := range []struct {
		name, method, path, body string
		want                     int
		code                     string
	}{
		{"send before a network", "POST", "/api/send", `{"to":"bob","body":"x"}`, http.StatusConflict, "no_network"},
		{"events before a network", "GET", "/api/events", "", http.StatusConflict, "no_network"},
		{"malformed body", "POST", "/api/network", `{"rendezvous":`, http.StatusBadRequest, "bad_request"},
		{"wrong type", "POST", "/api/network", `{"rendezvous":1}`, http.StatusBadRequest, "bad_request"},
		{"unknown field", "POST", "/api/network", `{"rendezvous":"good","x":1}`, http.StatusBadRequest, "bad_request"},
		{"not a multiaddr", "POST", "/api/network", `{"rendezvous":"bad"}`, http.StatusUnprocessableEntity, "invalid_argument"},
		{"server down", "POST", "/api/network", `{"rendezvous":"down"}`, http.StatusBadGateway, "server_unreachable"},
		{"GET network", "GET", "/api/network", "", http.StatusMethodNotAllowed, "method_not_allowed"},
	} {
		t.Run(tt.name, func(t *testing.T) { call(t, tt.method, tt.path, tt.body, tt.want, tt.code) })
	}
	if setup.joins.Load() != 0 {
		t.Fatal("a refused address joined")
	}

	st, err = c.JoinNetwork(ctx, "good")
	if err != nil {
		t.Fatal(err)
	}
	if st.Setup != nil || st.Peer != engine.Client().(*app.Engine).Node().ID().String() {
		t.Fatalf("status after joining: got %+v, want the engine's", st)
	}
	if st, err := c.Status(ctx); err != nil || st.Setup != nil {
		t.Fatalf("status after joining: %+v, %v", st, err)
	}
	if _, err := c.JoinNetwork(ctx, "good"); !errors.Is(err, ErrNetworkChosen) {
		t.Fatalf("a second join: got %v, want ErrNetworkChosen", err)
	}
	if setup.joins.Load() != 1 {
		t.Fatalf("joined %d times, want 1", setup.joins.Load())
	}
	// The engine's endpoints answer now.
	call(t, "POST", "/api/send", `{"to":"bob","body":"x"}`, http.StatusConflict, "not_logged_in")
	if _, err := c.Conversations(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestUILogout(t *testing.T) {
	s, _ := startDaemon(t)
	base := "http://" + s.Addr()
	a, b := uiLogin(t, s), uiLogin(t, s) // two browsers
	if a.Value == b.Value {
		t.Fatal("two sign-ins share a session secret")
	}
	req := func(method, path string, cookie *http.Cookie) *http.Request {
		r, err := http.NewRequest(method, base+path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		r.AddCookie(cookie)
		if method == "POST" {
			r.Header.Set("Origin", base)
		}
		return r
	}
	checkAnswer(t, noRedirect, req("GET", "/api/status", a), http.StatusOK, "")
	// Logging out is a change: no Origin, no logout.
	noOrigin := req("POST", "/api/logout", a)
	noOrigin.Header.Del("Origin")
	checkAnswer(t, noRedirect, noOrigin, http.StatusForbidden, "forbidden")

	resp, err := noRedirect.Do(req("POST", "/api/logout", a))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("logout: got %d", resp.StatusCode)
	}
	if cs := resp.Cookies(); len(cs) != 1 || cs[0].Name != a.Name || cs[0].MaxAge >= 0 || cs[0].Value != "" {
		t.Errorf("logout's cookies: got %+v, want %s cleared", cs, a.Name)
	}
	// The old cookie is worthless now, on the API and for the pages; the
	// other browser's is not.
	checkAnswer(t, noRedirect, req("GET", "/api/status", a), http.StatusUnauthorized, "unauthorized")
	checkAnswer(t, noRedirect, req("POST", "/api/logout", a), http.StatusUnauthorized, "unauthorized")
	page, err := noRedirect.Do(req("GET", "/", a))
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusUnauthorized {
		t.Errorf("the UI's page with a logged-out cookie: got %d, want 401", page.StatusCode)
	}
	checkAnswer(t, noRedirect, req("GET", "/api/status", b), http.StatusOK, "")
	// Signing in again takes the link.
	checkAnswer(t, noRedirect, req("GET", "/api/status", uiLogin(t, s)), http.StatusOK, "")
}

func TestUISessionsBounded(t *testing.T) {
	u := newUISessions("127.0.0.1:1")
	first := u.create()
	for range maxUISessions {
		u.create()
	}
	if u.valid(first) {
		t.Error("the oldest session outlived the bound")
	}
	if len(u.secrets) != maxUISessions {
		t.Errorf("%d sessions kept, want %d", len(u.secrets), maxUISessions)
	}
}

// transfersClient is an engine whose transfer list is given.
type transfersClient struct {
	apitype.Client
	list []apitype.Transfer
}

func (c transfersClient) Transfers(context.Context) ([]apitype.Transfer, error) { return c.list, nil }

func TestOpenTransferFolder(t *testing.T) {
	engine, dataDir := startDaemon(t)
	downloads := t.TempDir()
	file := filepath.Join(downloads, "photo.jpg")
	folder := filepath.Join(downloads, "album")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(folder, 0o700); err != nil {
		t.Fatal(err)
	}
	c := transfersClient{Client: engine.Client(), list: []apitype.Transfer{
		{ID: "file", State: apitype.TransferDone, Dir: downloads, Path: file},
		{ID: "folder", State: apitype.TransferDone, Dir: downloads, Path: folder},
		{ID: "running", State: apitype.TransferRunning, Dir: downloads},
		{ID: "gone", State: apitype.TransferDone, Dir: downloads, Path: filepath.Join(downloads, "deleted")},
	}}
	s, err := Listen(c, dataDir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var opened []string
	headless := false
	SetOpenFolderForTest(s, func(_ context.Context, dir string) error {
		if headless {
			return fmt.Errorf("%w: no DISPLAY", ErrNoFileManager)
		}
		opened = append(opened, dir)
		return nil
	})
	base := "http://" + s.Addr()
	call := func(t *testing.T, body string, want int, code string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/api/transfers/open", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.info.Token)
		checkAnswer(t, http.DefaultClient, req, want, code)
	}
	call(t, `{"id":"file"}`, http.StatusOK, "")
	call(t, `{"id":"folder"}`, http.StatusOK, "")
	if len(opened) != 2 || opened[0] != downloads || opened[1] != folder {
		t.Errorf("opened %q, want the file's folder %s, then the folder %s", opened, downloads, folder)
	}
	for _, tt := range []struct {
		name, body string
		want       int
		code       string
	}{
		{"unknown", `{"id":"nope"}`, http.StatusNotFound, "no_such_transfer"},
		{"not finished", `{"id":"running"}`, http.StatusConflict, "transfer_not_done"},
		{"deleted since", `{"id":"gone"}`, http.StatusNotFound, "no_such_file"},
		{"a path instead", `{"path":"/etc"}`, http.StatusBadRequest, "bad_request"},
		{"malformed", `{"id":`, http.StatusBadRequest, "bad_request"},
	} {
		t.Run(tt.name, func(t *testing.T) { call(t, tt.body, tt.want, tt.code) })
	}
	headless = true
	call(t, `{"id":"file"}`, http.StatusNotImplemented, "no_file_manager")
	if len(opened) != 2 {
		t.Errorf("opened %q after the refusals", opened)
	}
}

func TestFileManagerHeadless(t *testing.T) {
	t.Setenv("DISPLAY", "")
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("PATH", t.TempDir()) // no opener either
	err := openInFileManager(context.Background(), "/tmp")
	if !errors.Is(err, ErrNoFileManager) || !strings.Contains(err.Error(), "/tmp") {
		t.Errorf("got %v, want ErrNoFileManager naming the folder", err)
	}
}
