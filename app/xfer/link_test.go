package xfer

import (
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/files"
)

const testPeer = "12D3KooWGzBsmq5YqWo2UL8RF9JQXiCaCQV6VYTtaaC7S8CoGhHL"

func testCID(t testing.TB) string {
	t.Helper()
	return files.CIDOf([]byte{0x08, 0x01}).String()
}

func TestParseLink(t *testing.T) {
	c := testCID(t)
	for name, tt := range map[string]struct {
		in      string
		wantErr bool
	}{
		"bare":          {in: "parley://" + c},
		"full":          {in: "parley://" + c + "?name=a%20b.txt&size=12&from=" + testPeer},
		"unknown param": {in: "parley://" + c + "?x=1"},
		"scheme":        {in: "https://" + c, wantErr: true},
		"no cid":        {in: "parley://", wantErr: true},
		"bad cid":       {in: "parley://bafkqaaa", wantErr: true},
		"path":          {in: "parley://" + c + "/x", wantErr: true},
		"name slash":    {in: "parley://" + c + "?name=a%2Fb", wantErr: true},
		"name dotdot":   {in: "parley://" + c + "?name=..", wantErr: true},
		"size":          {in: "parley://" + c + "?size=-1", wantErr: true},
		"twice":         {in: "parley://" + c + "?size=1&size=2", wantErr: true},
		"from":          {in: "parley://" + c + "?from=nope", wantErr: true},
		"long":          {in: "parley://" + c + "?x=" + strings.Repeat("a", MaxLinkLen), wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			l, err := ParseLink(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidLink) {
					t.Fatalf("got %v, want ErrInvalidLink", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.CID.String() != c {
				t.Errorf("got CID %s, want %s", l.CID, c)
			}
		})
	}
}

func TestLinkRoundTrip(t *testing.T) {
	c, _ := files.ParseCID(testCID(t))
	p, _ := peer.Decode(testPeer)
	in := Link{CID: c, Name: "holiday photos & notes", Size: 5 << 20, From: p}
	got, err := ParseLink(in.String())
	if err != nil {
		t.Fatal(err)
	}
	if got != in {
		t.Errorf("got %+v, want %+v", got, in)
	}
}

func FuzzParseLink(f *testing.F) {
	c := testCID(f)
	f.Add("parley://" + c + "?name=a.txt&size=3&from=" + testPeer)
	f.Add("parley://" + c)
	f.Add("parley://x?name=%ZZ")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLink(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidLink) {
				t.Fatalf("error %v does not wrap ErrInvalidLink", err)
			}
			return
		}
		// A valid link prints to a link that parses to the same.
		again, err := ParseLink(l.String())
		if err != nil {
			t.Fatalf("String of a parsed link does not parse: %v", err)
		}
		if again != l {
			t.Fatalf("round trip: got %+v, want %+v", again, l)
		}
	})
}
