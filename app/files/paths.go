package files

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"unicode/utf8"
)

// ErrUnsafePath means a path from a manifest could write outside the
// download directory, or cannot be a file name on some platform Parley runs
// on, or is blocked by something already on disk; the error says which.
var ErrUnsafePath = errors.New("unsafe path")

// partialDirName is where transfers keep their partial files, inside the
// download directory. No entry may be named like it.
const partialDirName = ".parley-partial"

// ValidatePath checks a manifest path against the rules of every platform
// Parley runs on (a manifest made on Linux must be safe on Windows and
// macOS): relative, '/'-separated, at most MaxPathLen bytes and MaxDepth
// components; each component non-empty, not "." or "..", at most
// MaxNameLen bytes of UTF-8 with no control characters and none of
// <>:"\|?*, not ending in a dot or a space, and not a name Windows
// reserves (CON, PRN, AUX, NUL, COM0-9, LPT0-9, with or without an
// extension).
func ValidatePath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty path", ErrUnsafePath)
	case len(p) > MaxPathLen:
		return fmt.Errorf("%w: path is %d bytes, limit %d", ErrUnsafePath, len(p), MaxPathLen)
	case !utf8.ValidString(p):
		return fmt.Errorf("%w: path is not UTF-8", ErrUnsafePath)
	case p[0] == '/':
		return fmt.Errorf("%w: %q is absolute", ErrUnsafePath, p)
	}
	depth := 0
	for name := range strings.SplitSeq(p, "/") {
		depth++
		if depth > MaxDepth {
			return fmt.Errorf("%w: %q is deeper than %d", ErrUnsafePath, p, MaxDepth)
		}
		if err := validateName(name); err != nil {
			return fmt.Errorf("%w: %q: %s", ErrUnsafePath, p, err)
		}
	}
	if strings.EqualFold(strings.SplitN(p, "/", 2)[0], partialDirName) {
		return fmt.Errorf("%w: %q is reserved for partial downloads", ErrUnsafePath, p)
	}
	return nil
}

func validateName(name string) error {
	switch {
	case name == "":
		return errors.New("empty component")
	case name == "." || name == "..":
		return fmt.Errorf("component %q", name)
	case len(name) > MaxNameLen:
		return fmt.Errorf("component of %d bytes, limit %d", len(name), MaxNameLen)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("control character %U", r)
		}
		if strings.ContainsRune(`<>:"\|?*`, r) {
			return fmt.Errorf("character %q is not allowed in file names on Windows", r)
		}
	}
	if last := name[len(name)-1]; last == '.' || last == ' ' {
		return errors.New("component ends in a dot or a space")
	}
	if isReservedName(name) {
		return fmt.Errorf("%q is a reserved device name on Windows", name)
	}
	return nil
}

// isReservedName reports Windows device names, which Windows treats as
// devices even with an extension ("nul.txt") or trailing spaces.
func isReservedName(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) >= 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		switch base[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return true
		}
	}
	return false
}

// checkTarget refuses to place p (a validated manifest path) under root
// when something on disk is in the way: a symbolic link or a non-directory
// where a parent folder should be, or anything at all at p itself (a
// download never overwrites). Writes go through os.Root as well, which
// refuses to follow a link out of the download directory even if one
// appears after this check.
func checkTarget(root *os.Root, p string) error {
	names := strings.Split(p, "/")
	for i := range names {
		sub := strings.Join(names[:i+1], "/")
		fi, err := root.Lstat(sub)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrUnsafePath, sub, err)
		}
		last := i == len(names)-1
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("%w: %s is a symbolic link", ErrUnsafePath, sub)
		case last:
			return fmt.Errorf("%w: %s already exists", ErrUnsafePath, sub)
		case !fi.IsDir():
			return fmt.Errorf("%w: %s is in the way of a folder", ErrUnsafePath, sub)
		}
	}
	return nil
}
