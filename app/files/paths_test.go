package files

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidatePath(t *testing.T) {
	ok := []string{"a", "a/b/c.txt", "Photos 2024/IMG_0001.JPG", "naïve/日本語.txt", ".hidden", "a..b", "con-fig", "COM10", "nul_", "x/.y"}
	for _, p := range ok {
		if err := ValidatePath(p); err != nil {
			t.Errorf("ValidatePath(%q) = %v, want nil", p, err)
		}
	}
	bad := map[string]string{
		"empty":           "",
		"dotdot":          "..",
		"dotdot inside":   "a/../../etc/passwd",
		"dot":             "./a",
		"absolute":        "/etc/passwd",
		"double slash":    "a//b",
		"trailing slash":  "a/",
		"backslash":       `a\..\b`,
		"drive":           "C:/x",
		"NUL byte":        "a\x00b",
		"newline":         "a\nb",
		"escape":          "a\x1b[31m",
		"C1 control":      "a\u0085b",
		"DEL":             "a\x7f",
		"CON":             "CON",
		"con.txt":         "dir/con.txt",
		"nul ext":         "NUL.tar.gz",
		"COM1":            "com1",
		"LPT9":            "x/LPT9.log",
		"COM superscript": "COM¹",
		"trailing dot":    "a.",
		"trailing space":  "a /b",
		"star":            "a*",
		"question":        "a?",
		"pipe":            "a|b",
		"lt":              "<a>",
		"quote":           `a"b`,
		"too long name":   strings.Repeat("x", MaxNameLen+1),
		"too long path":   strings.Repeat("abcdefg/", MaxPathLen/8) + "x",
		"too deep":        strings.Repeat("a/", MaxDepth) + "a",
		"invalid utf8":    "a\xffb",
		"partial dir":     ".Parley-Partial/x",
	}
	for name, p := range bad {
		t.Run(name, func(t *testing.T) {
			if err := ValidatePath(p); !errors.Is(err, ErrUnsafePath) {
				t.Fatalf("ValidatePath(%q) = %v, want ErrUnsafePath", p, err)
			}
		})
	}
}

func TestCheckTarget(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	must(t, os.Symlink(outside, filepath.Join(dir, "link")))
	must(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o600))
	must(t, os.Mkdir(filepath.Join(dir, "sub"), 0o700))
	root, err := os.OpenRoot(dir)
	must(t, err)
	defer root.Close()
	for p, wantErr := range map[string]bool{
		"new":     false,
		"sub/new": false,
		"new/a/b": false,
		"link/x":  true,
		"link":    true,
		"file":    true,
		"file/x":  true,
		"sub":     true,
	} {
		if err := checkTarget(root, p); (err != nil) != wantErr {
			t.Errorf("checkTarget(%q) = %v, want error %v", p, err, wantErr)
		}
	}
}

func FuzzValidatePath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "CON", "a\x00", "日本/語", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePath(p) != nil {
			return
		}
		// Whatever is accepted stays inside a directory on every platform.
		if filepath.IsAbs(p) || strings.ContainsAny(p, "\\:\x00") {
			t.Fatalf("accepted %q", p)
		}
		for _, name := range strings.Split(p, "/") {
			if name == "" || name == "." || name == ".." {
				t.Fatalf("accepted %q", p)
			}
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) {
			t.Fatalf("accepted non-local %q", p)
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
