package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleynet/parley/app/apitype"
)

// postUpload sends body to /api/upload?name= with the bearer token (or
// none) and returns the status and the decoded answer.
func postUpload(t *testing.T, s *Server, name string, body io.Reader, token bool) (int, apitype.Uploaded, apitype.ErrorResponse) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+s.Addr()+"/api/upload?name="+url.QueryEscape(name), body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if token {
		req.Header.Set("Authorization", "Bearer "+s.info.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var ok apitype.Uploaded
	var bad apitype.ErrorResponse
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal(data, &ok)
	} else {
		err = json.Unmarshal(data, &bad)
	}
	if err != nil {
		t.Fatalf("answer %q: %v", data, err)
	}
	return resp.StatusCode, ok, bad
}

func TestUploadRefusesHostileNames(t *testing.T) {
	s, dir := startDaemon(t)
	for _, name := range []string{"", ".", "..", "../../x", "a/b", `a\b`, "x\x00y", "/etc/passwd", strings.Repeat("n", 256), "\xff"} {
		code, _, e := postUpload(t, s, name, strings.NewReader("data"), true)
		if code != http.StatusBadRequest || e.Code != "bad_request" || !strings.Contains(e.Error, "name") {
			t.Errorf("name %q: got %d %+v, want 400 bad_request about the name", name, code, e)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, uploadsDir)); !os.IsNotExist(err) {
		t.Errorf("refused uploads left %s behind (stat: %v)", uploadsDir, err)
	}
}

func TestUploadUnauthorized(t *testing.T) {
	s, dir := startDaemon(t)
	code, _, e := postUpload(t, s, "a.txt", strings.NewReader("data"), false)
	if code != http.StatusUnauthorized || e.Code != "unauthorized" {
		t.Errorf("without the token: got %d %+v, want 401", code, e)
	}
	// The session cookie without an Origin header is refused too.
	req, _ := http.NewRequest("POST", "http://"+s.Addr()+"/api/upload?name=a.txt", strings.NewReader("data"))
	req.AddCookie(uiLogin(t, s))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cookie without Origin: got %d, want 403", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(dir, uploadsDir)); !os.IsNotExist(err) {
		t.Errorf("refused uploads left %s behind (stat: %v)", uploadsDir, err)
	}
}

// patternReader yields n bytes of a repeating pattern without holding them.
type patternReader struct{ left int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	for i := range b {
		b[i] = byte(p.left - int64(i))
	}
	p.left -= int64(len(b))
	return len(b), nil
}

func TestUploadStreamsLargeBody(t *testing.T) {
	s, dir := startDaemon(t)
	const size = 200 << 20 // far beyond the JSON body limit
	want := sha256.New()
	_, _ = io.Copy(want, &patternReader{left: size})
	code, up, e := postUpload(t, s, "big file.bin", &patternReader{left: size}, true)
	if code != http.StatusOK {
		t.Fatalf("upload: got %d %+v", code, e)
	}
	if up.Size != size || filepath.Base(up.Path) != "big file.bin" || !filepath.IsAbs(up.Path) {
		t.Errorf("answer %+v: want %d bytes at an absolute path ending in the name", up, size)
	}
	if rel, err := filepath.Rel(filepath.Join(dir, uploadsDir), up.Path); err != nil || strings.HasPrefix(rel, "..") {
		t.Errorf("saved at %s, want under %s", up.Path, filepath.Join(dir, uploadsDir))
	}
	f, err := os.Open(up.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := sha256.New()
	_, _ = io.Copy(got, f)
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Error("the saved file differs from the bytes sent")
	}
	// The same name again gets a folder of its own.
	code, up2, _ := postUpload(t, s, "big file.bin", strings.NewReader("x"), true)
	if code != http.StatusOK || up2.Path == up.Path {
		t.Errorf("second upload: got %d at %s, want 200 at a new path", code, up2.Path)
	}
}

func TestUploadTooLarge(t *testing.T) {
	old := maxUpload
	maxUpload = 10
	t.Cleanup(func() { maxUpload = old })
	s, dir := startDaemon(t)
	// Without a Content-Length, the limit is found while streaming.
	code, _, e := postUpload(t, s, "a", io.MultiReader(strings.NewReader("0123456789"), strings.NewReader("x")), true)
	if code != http.StatusRequestEntityTooLarge || e.Code != "request_too_large" {
		t.Errorf("got %d %+v, want 413 request_too_large", code, e)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, uploadsDir))
	if len(entries) != 0 {
		t.Errorf("a refused upload left %d folders behind", len(entries))
	}
}
