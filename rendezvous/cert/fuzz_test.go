package cert

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/rendezvous/cert/pb"
)

// FuzzVerifyNoPanic feeds Verify arbitrary bytes and times. Verify must not
// panic, every failure must wrap exactly one sentinel, and anything it
// accepts must be, byte for byte, a certificate the trusted issuers made,
// read back with the fields they issued, at a time inside its window.
func FuzzVerifyNoPanic(f *testing.F) {
	issuers := []*Issuer{newIssuer(f, "issuer"), newIssuer(f, "rotated")}
	trusted := edKey(f, "issuer")
	v := newVerifier(f, issuers[0].PublicKey(), issuers[1].PublicKey())
	mallory, err := NewIssuer(edKey(f, "mallory"))
	if err != nil {
		f.Fatal(err)
	}

	// valid are the certificates the trusted issuers made, by Raw and by
	// body.
	valid := make(map[string]Certificate)
	validBodies := make(map[string]Certificate)
	var seeds [][]byte
	for i, iss := range issuers {
		for _, name := range []string{"alice", "bob", "ǅemal"} {
			c := issue(f, iss, peerID(f, name), name)
			if i == 1 {
				// A short-lived one, so the fuzzer meets both ends of
				// a window.
				c, err = iss.Issue(peerID(f, name), name, t0, 5*time.Millisecond)
				if err != nil {
					f.Fatal(err)
				}
			}
			valid[string(c.Raw)] = c
			body, _ := split(f, c.Raw)
			validBodies[string(body)] = c
			seeds = append(seeds, c.Raw)
		}
	}

	good := seeds[0]
	body, sig := split(f, good)
	otherBody, otherSig := split(f, seeds[1])
	seeds = append(seeds,
		nil,
		[]byte{0x0a},
		[]byte{0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
		good[:len(good)-1],
		good[:len(good)/2],
		encode(body, otherSig),
		encode(otherBody, sig),
		encode(body, nil),
		encode(nil, sig),
		append(encode(otherBody, nil), good...),
		protowire.AppendBytes(protowire.AppendTag(bytes.Clone(good), 3, protowire.BytesType), []byte("x")),
		issue(f, mallory, peerID(f, "alice"), "alice").Raw,
		// Signed by the trusted key but not valid.
		sign(f, trusted, marshal(f, &pb.Body{
			PeerId: []byte(peerID(f, "alice")), Username: "alice",
			IssuedUnixMs: t0.UnixMilli(), ExpiresUnixMs: t0.UnixMilli(),
			IssuerKeyId: keyID(f, issuers[0].PublicKey()),
		})),
		sign(f, trusted, marshal(f, &pb.Body{
			PeerId:       []byte(peerID(f, "alice")),
			IssuedUnixMs: t0.UnixMilli(), ExpiresUnixMs: t0.Add(time.Hour).UnixMilli(),
			IssuerKeyId: keyID(f, issuers[0].PublicKey()),
		})),
	)
	for _, i := range []int{0, 3, len(good) / 2, len(good) - 3, len(good) - 1} {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		seeds = append(seeds, b)
	}
	for _, s := range seeds {
		for _, at := range []time.Time{t0, t0.Add(-MaxSkew), t0.Add(time.Hour + MaxSkew), t0.Add(10 * time.Hour)} {
			f.Add(s, at.UnixMilli())
		}
	}

	f.Fuzz(func(t *testing.T, data []byte, nowMs int64) {
		now := time.UnixMilli(nowMs)
		c, err := v.Verify(data, now)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("error %v wraps %d sentinels, want 1", err, n)
			}
			if diff := sameCert(c, Certificate{}); diff != nil {
				t.Fatalf("Verify failed (%v) but returned a certificate: %v", err, diff)
			}
			return
		}

		// Accepted: the body must be one the trusted issuers signed...
		var outer pb.Certificate
		if err := proto.Unmarshal(data, &outer); err != nil {
			t.Fatalf("Verify accepted %x, which does not decode: %v", data, err)
		}
		want, ok := validBodies[string(outer.GetBody())]
		if !ok {
			t.Fatalf("Verify accepted %x, whose body no trusted issuer signed", data)
		}
		// ... read back as issued...
		if err := sameCert(c, Certificate{want.Peer, want.Username, want.Issued, want.Expires, data}); err != nil {
			t.Fatalf("Verify(%x) returned other fields than were issued: %v", data, err)
		}
		// ... in the one encoding Issue produces...
		if _, ok := valid[string(data)]; !ok {
			t.Fatalf("Verify accepted %x, a re-encoding of a certificate issued as %x", data, want.Raw)
		}
		// ... within its window, and stable on a second pass.
		if now.Before(c.Issued.Add(-MaxSkew)) || now.After(c.Expires.Add(MaxSkew)) {
			t.Fatalf("Verify accepted a certificate for %s..%s at %s", c.Issued, c.Expires, now)
		}
		again, err := v.VerifyFor(c.Raw, c.Peer, now)
		if err != nil {
			t.Fatalf("VerifyFor(Verify(x).Raw): %v", err)
		}
		if err := sameCert(again, c); err != nil {
			t.Fatalf("second Verify differs: %v", err)
		}
	})
}
