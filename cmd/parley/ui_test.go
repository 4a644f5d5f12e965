package main

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
)

// TestUILink: parley ui --print-only prints a link that signs a browser in
// (a session cookie, then the UI without the token in the URL).
func TestUILink(t *testing.T) {
	_, s, dir := startFake(t)
	t.Setenv("DISPLAY", "") // no desktop: never start a browser here
	t.Setenv("WAYLAND_DISPLAY", "")
	for _, args := range [][]string{{"ui", "--print-only"}, {"ui"}} {
		out := mustParley(t, context.Background(), "", append([]string{"--data", dir}, args...)...)
		link := strings.TrimSpace(out)
		if want := "http://" + s.Addr() + "/ui/login?token="; !strings.HasPrefix(link, want) || strings.Contains(link, "\n") {
			t.Fatalf("%v printed %q, want one line starting %s", args, out, want)
		}
		jar, _ := cookiejar.New(nil)
		resp, err := (&http.Client{Jar: jar}).Get(link) // follows the redirect with the cookie
		if err == nil {
			resp.Body.Close()
		}
		if err != nil || resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "" {
			t.Errorf("opening the link: got %v %v at %v, want the UI without the token", resp.StatusCode, err, resp.Request.URL)
		}
	}
}
