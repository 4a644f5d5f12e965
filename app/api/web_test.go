package api

import (
	"compress/gzip"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/web"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// uiLogin signs in with the login link and returns the session cookie.
func uiLogin(t *testing.T, s *Server) *http.Cookie {
	t.Helper()
	resp, err := noRedirect.Get("http://" + s.Addr() + uiLoginPath + "?token=" + s.info.Token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: got %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	cookies := resp.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("login set %d cookies, want 1", len(cookies))
	}
	return cookies[0]
}

func TestUILoginCookie(t *testing.T) {
	s, _ := startDaemon(t)
	c := uiLogin(t, s)
	_, port, _ := net.SplitHostPort(s.Addr())
	if c.Name != "parley_session_"+port {
		t.Errorf("cookie name: got %q, want one naming the port %s", c.Name, port)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" {
		t.Errorf("cookie: got %+v, want HttpOnly, SameSite=Strict, Path=/", c)
	}
	if c.Value == s.info.Token || strings.Contains(c.Value, s.info.Token) || len(c.Value) < 32 {
		t.Errorf("cookie value %q: want a session secret, not the API token", c.Value)
	}
	// A second server has another secret: a cookie is good for one run.
	s2, _ := startDaemon(t)
	if c2 := uiLogin(t, s2); c2.Value == c.Value {
		t.Error("two servers share a session secret")
	}
}

func TestUIAuth(t *testing.T) {
	s, _ := startDaemon(t)
	base := "http://" + s.Addr()
	session := uiLogin(t, s)
	origin := map[string]string{"Origin": base}
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		cookie *http.Cookie
		header map[string]string
		want   int
		code   string
	}{
		{"no cookie", "GET", "/api/status", "", nil, nil, http.StatusUnauthorized, "unauthorized"},
		{"wrong cookie", "GET", "/api/status", "", &http.Cookie{Name: session.Name, Value: strings.Repeat("0", 64)}, nil, http.StatusUnauthorized, "unauthorized"},
		{"cookie of another port", "GET", "/api/status", "", &http.Cookie{Name: "parley_session_1", Value: session.Value}, nil, http.StatusUnauthorized, "unauthorized"},
		{"cookie", "GET", "/api/status", "", session, nil, http.StatusOK, ""},
		{"cookie, event stream cursor checked", "GET", "/api/events?since=x", "", session, nil, http.StatusUnprocessableEntity, "invalid_argument"},
		{"cookie, same-origin fetch", "GET", "/api/status", "", session, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": base}, http.StatusOK, ""},
		{"cookie, cross-site fetch", "GET", "/api/status", "", session, map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden, "forbidden"},
		{"cookie, same-site other port", "GET", "/api/status", "", session, map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden, "forbidden"},
		{"cookie, foreign origin", "GET", "/api/status", "", session, map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden, "forbidden"},
		{"cookie, wrong host", "GET", "/api/status", "", session, map[string]string{"Host": "evil.example:80"}, http.StatusForbidden, "forbidden"},
		{"cookie, POST without Origin", "POST", "/api/send", `{"to":"bob","body":"x"}`, session, nil, http.StatusForbidden, "forbidden"},
		{"cookie, POST same origin", "POST", "/api/send", `{"to":"bob","body":"x"}`, session, origin, http.StatusConflict, "not_logged_in"},
		{"cookie, malformed body", "POST", "/api/send", `{"to":`, session, origin, http.StatusBadRequest, "bad_request"},
		{"cookie, unknown field", "POST", "/api/contacts/request", `{"username":"bob","x":1}`, session, origin, http.StatusBadRequest, "bad_request"},
		{"cookie, form post", "POST", "/api/send", `to=bob`, session, map[string]string{"Origin": base, "Content-Type": "application/x-www-form-urlencoded"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"login, wrong host", "GET", uiLoginPath + "?token=" + s.info.Token, "", nil, map[string]string{"Host": "evil.example:80"}, http.StatusForbidden, "forbidden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.cookie != nil {
				req.AddCookie(tt.cookie)
			}
			for k, v := range tt.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			checkAnswer(t, noRedirect, req, tt.want, tt.code)
		})
	}
}

func TestUILoginRefused(t *testing.T) {
	s, _ := startDaemon(t)
	for name, query := range map[string]string{
		"no token":    "",
		"wrong token": "?token=" + strings.Repeat("0", len(s.info.Token)),
		"prefix":      "?token=" + s.info.Token[:10],
		"longer":      "?token=" + s.info.Token + "0",
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := noRedirect.Get("http://" + s.Addr() + uiLoginPath + query)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
				t.Errorf("got %d with %d cookies, want 401 and none", resp.StatusCode, len(resp.Cookies()))
			}
			if resp.Header.Get("Content-Security-Policy") != web.CSP {
				t.Errorf("the refusal has no CSP")
			}
		})
	}
}

func TestUIPages(t *testing.T) {
	s, _ := startDaemon(t)
	base := "http://" + s.Addr()
	session := uiLogin(t, s)
	get := func(t *testing.T, path string, cookie *http.Cookie, header map[string]string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		// Transport, not Client: no transparent gzip decoding.
		resp, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, data
	}
	checkHeaders := func(t *testing.T, resp *http.Response) {
		t.Helper()
		want := map[string]string{
			"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s: got %q, want %q", k, got, v)
			}
		}
	}

	t.Run("without a session", func(t *testing.T) {
		resp, body := get(t, "/", nil, nil)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "parley ui") {
			t.Errorf("got %d %q, want 401 saying to run parley ui", resp.StatusCode, body)
		}
		checkHeaders(t, resp)
	})
	t.Run("index", func(t *testing.T) {
		resp, body := get(t, "/", session, nil)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "<!doctype html>") {
			t.Fatalf("got %d %.80q, want the page", resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type: got %q", ct)
		}
		checkHeaders(t, resp)
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		again, _ := get(t, "/", session, map[string]string{"If-None-Match": etag})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("revalidation: got %d, want 304", again.StatusCode)
		}
	})
	t.Run("gzip", func(t *testing.T) {
		plain, want := get(t, "/js/main.js", session, nil)
		if ct := plain.Header.Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
			t.Errorf("Content-Type: got %q", ct)
		}
		resp, body := get(t, "/js/main.js", session, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding: got %q, want gzip", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(zr)
		if string(got) != string(want) {
			t.Error("the gzipped file differs from the plain one")
		}
		if refused, _ := get(t, "/js/main.js", session, map[string]string{"Accept-Encoding": "gzip;q=0"}); refused.Header.Get("Content-Encoding") != "" {
			t.Error("gzip sent to a client that refused it")
		}
	})
	t.Run("css", func(t *testing.T) {
		resp, _ := get(t, "/css/app.css", session, nil)
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/css; charset=utf-8" {
			t.Errorf("got %d %q", resp.StatusCode, ct)
		}
	})
	t.Run("unknown file", func(t *testing.T) {
		resp, _ := get(t, "/js/nope.js", session, nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("got %d, want 404", resp.StatusCode)
		}
		checkHeaders(t, resp)
	})
	t.Run("the login link leaves the token", func(t *testing.T) {
		u, _ := url.Parse(base + uiLoginPath + "?token=" + s.info.Token)
		resp, err := noRedirect.Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); strings.Contains(loc, s.info.Token) {
			t.Errorf("redirect %q carries the token", loc)
		}
		if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("login answer headers: %v", resp.Header)
		}
	})
}
