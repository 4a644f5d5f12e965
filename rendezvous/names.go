package rendezvous

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MinPasswordLen and MaxPasswordLen bound passwords in bytes.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{2,31}$`)

// CanonicalUsername lower-cases a username and checks it: 3 to 32
// characters, letters, digits, '_', '.' and '-', starting with a letter or
// digit. Usernames are unique regardless of case.
func CanonicalUsername(name string) (string, error) {
	c := strings.ToLower(name)
	if !usernameRE.MatchString(c) {
		return "", fmt.Errorf("%w: a username has 3 to 32 letters, digits, '_', '.' or '-', and starts with a letter or digit", ErrBadRequest)
	}
	return c, nil
}

// CheckPassword applies the password policy: MinPasswordLen to
// MaxPasswordLen bytes of valid UTF-8. Hashing is the server's business.
func CheckPassword(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen || !utf8.ValidString(pw) {
		return fmt.Errorf("%w: a password has %d to %d bytes of valid UTF-8", ErrBadRequest, MinPasswordLen, MaxPasswordLen)
	}
	return nil
}
