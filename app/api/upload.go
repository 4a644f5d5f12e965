package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/parleynet/parley/app/apitype"
)

// POST /api/upload?name=NAME takes a file's bytes as the raw request body
// (any Content-Type; not JSON, so not held to maxRequestBody) and streams
// them to DATA/uploads/<random>/NAME, answering apitype.Uploaded with the
// absolute path. A browser never reveals a picked file's path: the web UI
// uploads the file and then shares or publishes the copy. NAME must be one
// plain file name (no separators, NUL, "." or ".."); a body larger than
// maxUpload is refused with 413, and a full disk answers 507 no_space.

// uploadsDir is the folder under the data directory that holds uploads.
const uploadsDir = "uploads"

// maxUpload is the largest upload taken: generous, but a bound.
var maxUpload int64 = 64 << 30

func errUploadTooLarge() error {
	return fmt.Errorf("%w: an upload is at most %d bytes", errTooLarge, maxUpload)
}

// uploadName checks that name is one plain file name.
func uploadName(name string) (string, error) {
	switch {
	case name == "", name == ".", name == "..":
		return "", fmt.Errorf("%w: name %q: give the file's name", errBadBody, name)
	case strings.ContainsAny(name, "/\\\x00"):
		return "", fmt.Errorf("%w: name %q: a file name without path separators or NUL", errBadBody, name)
	case !utf8.ValidString(name) || len(name) > 255:
		return "", fmt.Errorf("%w: name %q: at most 255 bytes of valid UTF-8", errBadBody, name)
	}
	return name, nil
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	name, err := uploadName(r.URL.Query().Get("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	if r.ContentLength > maxUpload {
		writeError(w, errUploadTooLarge())
		return
	}
	res, err := s.saveUpload(name, http.MaxBytesReader(w, r.Body, maxUpload))
	writeResult(w, res, err)
}

// saveUpload streams body into a new folder under uploadsDir; on failure
// nothing of it is left.
func (s *Server) saveUpload(name string, body io.Reader) (apitype.Uploaded, error) {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	dir, err := filepath.Abs(filepath.Join(s.dataDir, uploadsDir, hex.EncodeToString(b)))
	if err != nil {
		return apitype.Uploaded{}, fmt.Errorf("upload folder: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return apitype.Uploaded{}, fmt.Errorf("create upload folder: %w", err)
	}
	path := filepath.Join(dir, name)
	n, err := writeNew(path, body)
	if err != nil {
		_ = os.RemoveAll(dir)
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return apitype.Uploaded{}, errUploadTooLarge()
		}
		return apitype.Uploaded{}, fmt.Errorf("save upload %s: %w", name, err)
	}
	return apitype.Uploaded{Path: path, Size: n}, nil
}

// writeNew creates path (which must not exist) and copies r into it.
func writeNew(path string, r io.Reader) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}
