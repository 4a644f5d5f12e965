package xfer

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/files"
)

// ErrInvalidLink means a string is not a Parley link; the error says what
// is wrong with it.
var ErrInvalidLink = errors.New("invalid link")

// MaxLinkLen bounds a link's text.
const MaxLinkLen = 4096

// LinkScheme is the scheme of Parley links.
const LinkScheme = "parley"

// Link names published content: parley://<cid>?name=<name>&size=<n>&from=<peer>.
// Only the CID is needed; name and size are what the UI shows before the
// manifest is fetched, from is a provider to ask besides those the DHT
// knows.
type Link struct {
	CID  cid.Cid
	Name string  // "" when the link has none
	Size int64   // 0 when the link has none
	From peer.ID // "" when the link has none
}

// String is the link's text, which ParseLink reads back.
func (l Link) String() string {
	q := url.Values{}
	if l.Name != "" {
		q.Set("name", l.Name)
	}
	if l.Size > 0 {
		q.Set("size", strconv.FormatInt(l.Size, 10))
	}
	if l.From != "" {
		q.Set("from", l.From.String())
	}
	s := LinkScheme + "://" + l.CID.String()
	if len(q) > 0 {
		s += "?" + q.Encode()
	}
	return s
}

// ParseLink parses and checks a link: the scheme, a CID of the form
// package files makes, and, when present, a name that is a valid single
// path component, a non-negative size and a valid peer ID. Unknown
// parameters are ignored (later versions may add some); a parameter given
// twice is refused.
func ParseLink(s string) (Link, error) {
	bad := func(format string, a ...any) (Link, error) {
		return Link{}, fmt.Errorf("%w: %s", ErrInvalidLink, fmt.Sprintf(format, a...))
	}
	if len(s) > MaxLinkLen {
		return bad("longer than %d bytes", MaxLinkLen)
	}
	if !utf8.ValidString(s) {
		return bad("not valid UTF-8")
	}
	rest, ok := strings.CutPrefix(s, LinkScheme+"://")
	if !ok {
		return bad("does not start with %s://", LinkScheme)
	}
	rawCID, rawQuery, _ := strings.Cut(rest, "?")
	if strings.ContainsAny(rawCID, "/#") {
		return bad("a path or fragment after the CID")
	}
	var l Link
	c, err := files.ParseCID(rawCID)
	if err != nil {
		return bad("content ID: %v", err)
	}
	l.CID = c
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return bad("parameters: %v", err)
	}
	for k, v := range q {
		if len(v) > 1 {
			return bad("parameter %q given %d times", k, len(v))
		}
	}
	if name := q.Get("name"); name != "" {
		if strings.Contains(name, "/") {
			return bad("name %q: contains /", name)
		}
		if err := files.ValidatePath(name); err != nil {
			return bad("name: %v", err)
		}
		l.Name = name
	}
	if size := q.Get("size"); size != "" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return bad("size %q: not a number of bytes", size)
		}
		l.Size = n
	}
	if from := q.Get("from"); from != "" {
		p, err := peer.Decode(from)
		if err != nil {
			return bad("from: not a peer ID: %v", err)
		}
		l.From = p
	}
	return l, nil
}
