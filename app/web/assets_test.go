package web

import (
	"io/fs"
	"path"
	"regexp"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	a, err := Load(Files())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/index.html", "/js/main.js", "/css/app.css"} {
		if _, ok := a.files[p]; !ok {
			t.Errorf("%s is not served", p)
		}
	}
	if a.GzipSize() <= 0 {
		t.Error("no weight")
	}
	t.Logf("the UI weighs %d bytes gzipped in %d files", a.GzipSize(), len(a.files))
}

// TestFilesServed keeps every file in static/ one the server serves with a
// known content type.
func TestFilesServed(t *testing.T) {
	err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, ok := contentTypes[path.Ext(p)]; !ok {
				t.Errorf("%s has no content type: it would not be served", p)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

var (
	importRe = regexp.MustCompile(`(?m)^import .* from "([^"]+)";`)
	srcRe    = regexp.MustCompile(`(?:src|href)="(/[^"]*)"`)
)

// TestReferencesResolve checks that every module import and every file
// index.html names exists, since nothing else would notice before a
// browser does.
func TestReferencesResolve(t *testing.T) {
	files := Files()
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := fs.ReadFile(files, p)
		var refs []string
		switch path.Ext(p) {
		case ".js":
			for _, m := range importRe.FindAllStringSubmatch(string(data), -1) {
				refs = append(refs, path.Join(path.Dir(p), m[1]))
			}
		case ".html":
			for _, m := range srcRe.FindAllStringSubmatch(string(data), -1) {
				refs = append(refs, strings.TrimPrefix(m[1], "/"))
			}
		}
		for _, r := range refs {
			if _, err := fs.Stat(files, r); err != nil {
				t.Errorf("%s refers to %s, which does not exist", p, r)
			}
		}
		return nil
	})
}

// TestNoUnsafeSinks keeps network text out of HTML parsing and the page
// within its Content-Security-Policy: no innerHTML and friends, no eval,
// no inline scripts, styles or event handlers.
func TestNoUnsafeSinks(t *testing.T) {
	banned := map[string][]string{
		".js":   {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "setTimeout(\"", ".style."},
		".html": {"<script>", "<style", " style=", " onclick=", " onload=", "javascript:"},
	}
	files := Files()
	_ = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, _ := fs.ReadFile(files, p)
		for _, b := range banned[path.Ext(p)] {
			if strings.Contains(string(data), b) {
				t.Errorf("%s contains %q", p, b)
			}
		}
		return nil
	})
}
