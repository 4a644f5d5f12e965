package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parleynet/parley/app/web"
)

// The web UI (package app/web) is served on the API's listener:
//
//	GET  /ui/login?token=<api.json's token>  sets the session cookie, 303 to /
//	POST /api/logout                         ends this browser's session
//	GET  /, /js/…, /css/…                    the UI's files
//
// The login link is what `parley ui` prints and opens. A correct token
// sets an HttpOnly, SameSite=Strict cookie holding a session secret of
// its own (random, not the token; one per sign-in, so that each browser
// can sign out alone) and redirects to /, so the token does not
// stay in the address bar or the history's current entry. From then on a
// request is authorized by the bearer token or by that cookie. The cookie's
// name carries the port, since browsers share cookies between the ports of
// one host and two daemons may run side by side. A request authorized by
// the cookie that changes anything (not GET or HEAD) must carry a
// same-origin Origin header, and one the browser marks as coming from
// another site (Sec-Fetch-Site) is refused, whatever its method: the
// cookie is for this UI's own pages only. The Host and Origin checks of
// guard apply to the UI as to the API. Logging out forgets the cookie's
// secret on the server (a copy of the cookie kept elsewhere is worthless
// from then on) and clears the cookie; signing in again needs the link.

// uiLoginPath is the login link's path.
const uiLoginPath = "/ui/login"

// assets are the UI's files, read and compressed once per process.
var assets = sync.OnceValues(func() (*web.Assets, error) { return web.Load(web.Files()) })

// maxUISessions bounds the sign-ins remembered: past it the oldest is
// forgotten (its browser must open the link again).
const maxUISessions = 64

// uiSessions are the browsers signed in with the login link.
type uiSessions struct {
	cookie string // the cookie's name

	mu      sync.Mutex             // guards the following
	secrets map[[32]byte]time.Time // SHA-256 of a session secret → sign-in time
}

func newUISessions(addr string) *uiSessions {
	_, port, _ := net.SplitHostPort(addr)
	return &uiSessions{cookie: "parley_session_" + port, secrets: make(map[[32]byte]time.Time)}
}

// create returns a new session secret.
func (u *uiSessions) create() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret := hex.EncodeToString(b)
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.secrets) >= maxUISessions {
		var oldest [32]byte
		var at time.Time
		for k, t := range u.secrets {
			if at.IsZero() || t.Before(at) {
				oldest, at = k, t
			}
		}
		delete(u.secrets, oldest)
	}
	u.secrets[sha256.Sum256([]byte(secret))] = time.Now()
	return secret
}

// valid reports whether secret is a live session's. The map is keyed by
// the secret's hash, so the lookup's timing tells nothing of the secrets.
func (u *uiSessions) valid(secret string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.secrets[sha256.Sum256([]byte(secret))]
	return ok
}

// sessionCookie is the UI's session cookie holding secret (HttpOnly,
// SameSite=Strict, for the whole site); maxAge as http.Cookie's (-1
// deletes it, 0 lasts the browser session).
func (u *uiSessions) sessionCookie(secret string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: u.cookie, Value: secret, Path: "/", MaxAge: maxAge, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

// end forgets secret.
func (u *uiSessions) end(secret string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.secrets, sha256.Sum256([]byte(secret)))
}

// uiRoutes adds the login link and the UI's files to mux. The files are
// embedded in the binary: failing to read them is a build fault, and
// panics like template.Must (TestUIFiles keeps it from happening).
func (s *Server) uiRoutes(mux *http.ServeMux) {
	a, err := assets()
	if err != nil {
		panic(fmt.Sprintf("web UI: %v", err))
	}
	mux.HandleFunc("GET "+uiLoginPath, s.uiLogin)
	mux.HandleFunc("POST /api/logout", s.uiLogout)
	mux.Handle("/", a)
}

// uiLogout ends the session of the cookie the request carries (a request
// with the bearer token and no cookie ends nothing) and clears the cookie.
func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(s.ui.cookie); err == nil {
		s.ui.end(c.Value)
	}
	http.SetCookie(w, s.ui.sessionCookie("", -1))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct{}{})
}

// uiLogin checks the token in constant time, sets the session cookie and
// sends the browser to the UI.
func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	web.SetSecurityHeaders(w.Header())
	w.Header().Set("Cache-Control", "no-store")
	tok := r.URL.Query().Get("token")
	if subtle.ConstantTimeCompare([]byte(tok), []byte(s.info.Token)) != 1 {
		signInPage(w, http.StatusUnauthorized, "This link's key is not this daemon's (was the daemon restarted?).")
		return
	}
	http.SetCookie(w, s.ui.sessionCookie(s.ui.create(), 0))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// authorize reports whether r may go on, having answered it when not: a
// request carries the bearer token, or the session cookie under the rules
// above; the login link checks its token itself.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == uiLoginPath {
		return true
	}
	want := "Bearer " + s.info.Token
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte(want)) == 1 {
		return true
	}
	c, err := r.Cookie(s.ui.cookie)
	if err != nil || !s.ui.valid(c.Value) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			writeError(w, errUnauthorized)
		} else {
			signInPage(w, http.StatusUnauthorized, "")
		}
		return false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		writeError(w, fmt.Errorf("%w: the session cookie is for this UI's own pages (Sec-Fetch-Site: %s)", errForbidden, site))
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("Origin") == "" {
		writeError(w, fmt.Errorf("%w: a request authorized by the session cookie must carry an Origin header", errForbidden))
		return false
	}
	return true
}

// signInPage answers a browser without a session: how to get one.
func signInPage(w http.ResponseWriter, status int, why string) {
	web.SetSecurityHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley: sign in</title></head>
<body><main><h1>Parley</h1><p>%s</p>
<p>To open the UI, run <code>parley ui</code> in a terminal: it opens this daemon's sign-in link (or prints it to paste here).</p></main></body></html>
`, why)
}

// UILoginURL is the link that opens the daemon's web UI in a browser and
// signs it in: http://ADDR/ui/login?token=TOKEN.
func (c *Client) UILoginURL() string {
	return "http://" + c.info.Addr + uiLoginPath + "?token=" + c.info.Token
}
