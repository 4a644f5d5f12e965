package cert

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/rendezvous/cert/pb"
)

// t0 is when test certificates are issued. It has a sub-millisecond part,
// which certificates drop.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)

const lifetime = time.Hour

// seeded is a deterministic entropy source: seed repeated.
func seeded(seed string) *bytes.Reader {
	sum := sha256.Sum256([]byte(seed))
	return bytes.NewReader(bytes.Repeat(sum[:], 4))
}

// edKey is a deterministic Ed25519 key named by seed.
func edKey(t testing.TB, seed string) crypto.PrivKey {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(seeded(seed))
	if err != nil {
		t.Fatalf("generate key %q: %v", seed, err)
	}
	return priv
}

// peerID is a deterministic peer ID named by seed.
func peerID(t testing.TB, seed string) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(edKey(t, "peer "+seed))
	if err != nil {
		t.Fatalf("peer ID %q: %v", seed, err)
	}
	return id
}

func newIssuer(t testing.TB, seed string) *Issuer {
	t.Helper()
	iss, err := NewIssuer(edKey(t, seed))
	if err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	return iss
}

func newVerifier(t testing.TB, keys ...crypto.PubKey) *Verifier {
	t.Helper()
	v, err := NewVerifier(keys...)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func issue(t testing.TB, iss *Issuer, p peer.ID, username string) Certificate {
	t.Helper()
	c, err := iss.Issue(p, username, t0, lifetime)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return c
}

// keyID is KeyID that cannot fail.
func keyID(t testing.TB, pub crypto.PubKey) []byte {
	t.Helper()
	id, err := KeyID(pub)
	if err != nil {
		t.Fatalf("KeyID: %v", err)
	}
	return id
}

// sign signs body with key exactly as Issue does, whatever body says: a
// way to get the trusted key's signature on bodies Issue would not make.
func sign(t testing.TB, key crypto.PrivKey, body []byte) []byte {
	t.Helper()
	sig, err := key.Sign(append([]byte(domain), body...))
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return encode(body, sig)
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// split decodes a certificate into its body and signature.
func split(t testing.TB, raw []byte) (body, sig []byte) {
	t.Helper()
	var c pb.Certificate
	if err := proto.Unmarshal(raw, &c); err != nil {
		t.Fatalf("unmarshal certificate: %v", err)
	}
	return c.GetBody(), c.GetSignature()
}

// validBody is the body Issue would make for alice at t0.
func validBody(t testing.TB, iss *Issuer, p peer.ID) *pb.Body {
	return &pb.Body{
		PeerId:        []byte(p),
		Username:      "alice",
		IssuedUnixMs:  t0.UnixMilli(),
		ExpiresUnixMs: t0.Add(lifetime).UnixMilli(),
		IssuerKeyId:   keyID(t, iss.PublicKey()),
	}
}

var sentinels = []error{ErrMalformed, ErrUnknownIssuer, ErrBadSignature, ErrExpired, ErrNotYetValid, ErrWrongPeer}

// checkErr fails unless err wraps want and no other sentinel.
func checkErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
	for _, s := range sentinels {
		if s != want && errors.Is(err, s) {
			t.Fatalf("error %v wraps both %v and %v", err, want, s)
		}
	}
}

func sameCert(a, b Certificate) error {
	switch {
	case a.Peer != b.Peer:
		return fmt.Errorf("Peer %s != %s", a.Peer, b.Peer)
	case a.Username != b.Username:
		return fmt.Errorf("Username %q != %q", a.Username, b.Username)
	case !a.Issued.Equal(b.Issued):
		return fmt.Errorf("Issued %s != %s", a.Issued, b.Issued)
	case !a.Expires.Equal(b.Expires):
		return fmt.Errorf("Expires %s != %s", a.Expires, b.Expires)
	case !bytes.Equal(a.Raw, b.Raw):
		return fmt.Errorf("Raw %x != %x", a.Raw, b.Raw)
	}
	return nil
}

func TestIssueVerifyRoundTrip(t *testing.T) {
	iss := newIssuer(t, "issuer")
	v := newVerifier(t, iss.PublicKey())
	p := peerID(t, "alice's laptop")

	got := issue(t, iss, p, "alice")
	if got.Peer != p || got.Username != "alice" {
		t.Errorf("Issue: Peer, Username = %s, %q; want %s, alice", got.Peer, got.Username, p)
	}
	if want := t0.Truncate(time.Millisecond); !got.Issued.Equal(want) {
		t.Errorf("Issue: Issued = %s, want %s", got.Issued, want)
	}
	if want := t0.Add(lifetime).Truncate(time.Millisecond); !got.Expires.Equal(want) {
		t.Errorf("Issue: Expires = %s, want %s", got.Expires, want)
	}
	if len(got.Raw) == 0 || len(got.Raw) > MaxSize {
		t.Errorf("Issue: len(Raw) = %d, want 1..%d", len(got.Raw), MaxSize)
	}

	raw := bytes.Clone(got.Raw)
	verified, err := v.Verify(raw, t0)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := sameCert(verified, got); err != nil {
		t.Errorf("Verify(Issue()) differs from Issue(): %v", err)
	}
	// Raw is the caller's to keep: not an alias of the input.
	raw[0] ^= 0xff
	if !bytes.Equal(verified.Raw, got.Raw) {
		t.Errorf("Verify's Raw aliases its input")
	}

	for _, remote := range []peer.ID{p, peerID(t, "mallory")} {
		c, err := v.VerifyFor(got.Raw, remote, t0)
		if remote == p {
			if err != nil {
				t.Fatalf("VerifyFor(holder): %v", err)
			}
			if err := sameCert(c, got); err != nil {
				t.Errorf("VerifyFor(holder) differs from Issue(): %v", err)
			}
			continue
		}
		checkErr(t, err, ErrWrongPeer)
		if err := sameCert(c, Certificate{}); err != nil {
			t.Errorf("VerifyFor(other peer) returned a certificate: %v", err)
		}
	}

	// The issuer's key ID is the one in the body.
	body, _ := split(t, got.Raw)
	var b pb.Body
	if err := proto.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	if want := keyID(t, iss.PublicKey()); !bytes.Equal(b.GetIssuerKeyId(), want) {
		t.Errorf("body names key %x, want %x", b.GetIssuerKeyId(), want)
	}
}

func TestVerifyValidityWindow(t *testing.T) {
	iss := newIssuer(t, "issuer")
	v := newVerifier(t, iss.PublicKey())
	c := issue(t, iss, peerID(t, "a"), "alice")
	issued, expires := c.Issued, c.Expires

	tests := []struct {
		name string
		now  time.Time
		want error
	}{
		{"long before", issued.Add(-24 * time.Hour), ErrNotYetValid},
		{"just beyond skew before", issued.Add(-MaxSkew - time.Millisecond), ErrNotYetValid},
		{"skew before", issued.Add(-MaxSkew), nil},
		{"within skew before", issued.Add(-time.Second), nil},
		{"at issue", issued, nil},
		{"midway", issued.Add(lifetime / 2), nil},
		{"at expiry", expires, nil},
		{"within skew after", expires.Add(time.Second), nil},
		{"skew after", expires.Add(MaxSkew), nil},
		{"just beyond skew after", expires.Add(MaxSkew + time.Nanosecond), ErrExpired},
		{"long after", expires.Add(365 * 24 * time.Hour), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(c.Raw, tt.now)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Verify at %s: %v, want success", tt.now, err)
				}
				return
			}
			checkErr(t, err, tt.want)
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	iss := newIssuer(t, "issuer")
	trusted := edKey(t, "issuer")
	v := newVerifier(t, iss.PublicKey())
	p := peerID(t, "a")
	good := issue(t, iss, p, "alice")
	body, sig := split(t, good.Raw)
	other := issue(t, iss, peerID(t, "b"), "bob")
	otherBody, otherSig := split(t, other.Raw)
	mallory := edKey(t, "mallory")
	malloryIss, err := NewIssuer(mallory)
	if err != nil {
		t.Fatal(err)
	}

	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x01
		return b
	}
	// bodyWith is validBody changed by f and signed by key.
	bodyWith := func(key crypto.PrivKey, f func(*pb.Body)) []byte {
		b := validBody(t, iss, p)
		f(b)
		return sign(t, key, marshal(t, b))
	}
	usernameAt := bytes.Index(body, []byte("alice"))
	if usernameAt < 0 {
		t.Fatal("username not found in body")
	}
	// invalidUTF8 is a body with a username that is not UTF-8, which
	// proto.Marshal refuses to produce.
	invalidUTF8 := func() []byte {
		b := validBody(t, iss, p)
		b.Username = ""
		enc := marshal(t, b)
		enc = protowire.AppendTag(enc, 2, protowire.BytesType)
		return protowire.AppendBytes(enc, []byte("al\xffce"))
	}()

	tests := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrUnknownIssuer},
		{"garbage", []byte("not a certificate"), ErrMalformed},
		{"unknown issuer", issue(t, malloryIss, p, "alice").Raw, ErrUnknownIssuer},
		{"body bit flip in username", encode(flip(body, usernameAt), sig), ErrBadSignature},
		{"body bit flip in key ID", encode(flip(body, len(body)-1), sig), ErrUnknownIssuer},
		{"signature bit flip", encode(body, flip(sig, 10)), ErrBadSignature},
		{"signature last bit flip", encode(body, flip(sig, len(sig)-1)), ErrBadSignature},
		{"no signature", encode(body, nil), ErrBadSignature},
		{"signature truncated", encode(body, sig[:len(sig)-1]), ErrBadSignature},
		{"signature extended", encode(body, append(bytes.Clone(sig), 0)), ErrBadSignature},
		{"signed by another key claiming the trusted key", bodyWith(mallory, func(*pb.Body) {}), ErrBadSignature},
		{"another certificate's signature", encode(body, otherSig), ErrBadSignature},
		{"another certificate's body", encode(otherBody, sig), ErrBadSignature},
		{"signature without domain", func() []byte {
			s, err := trusted.Sign(body)
			if err != nil {
				t.Fatal(err)
			}
			return encode(body, s)
		}(), ErrBadSignature},
		{"truncated by one byte", good.Raw[:len(good.Raw)-1], ErrMalformed},
		{"truncated to half", good.Raw[:len(good.Raw)/2], ErrMalformed},
		{"oversized", append(bytes.Clone(good.Raw), make([]byte, MaxSize)...), ErrMalformed},
		{"unknown field appended", protowire.AppendBytes(protowire.AppendTag(bytes.Clone(good.Raw), 3, protowire.BytesType), []byte("x")), ErrMalformed},
		{"fields reordered", append(bytes.Clone(good.Raw[len(good.Raw)-66:]), good.Raw[:len(good.Raw)-66]...), ErrMalformed},
		{"body repeated", append(encode(otherBody, nil), good.Raw...), ErrMalformed},
		{"expires at issue", bodyWith(trusted, func(b *pb.Body) { b.ExpiresUnixMs = b.IssuedUnixMs }), ErrMalformed},
		{"expires before issue", bodyWith(trusted, func(b *pb.Body) { b.ExpiresUnixMs = b.IssuedUnixMs - 1 }), ErrMalformed},
		{"no validity", bodyWith(trusted, func(b *pb.Body) { b.IssuedUnixMs, b.ExpiresUnixMs = 0, 0 }), ErrMalformed},
		{"empty username", bodyWith(trusted, func(b *pb.Body) { b.Username = "" }), ErrMalformed},
		{"username not UTF-8", sign(t, trusted, invalidUTF8), ErrMalformed},
		{"no peer ID", bodyWith(trusted, func(b *pb.Body) { b.PeerId = nil }), ErrMalformed},
		{"bad peer ID", bodyWith(trusted, func(b *pb.Body) { b.PeerId = []byte("not a multihash") }), ErrMalformed},
		{"no key ID", bodyWith(trusted, func(b *pb.Body) { b.IssuerKeyId = nil }), ErrUnknownIssuer},
		{"body not a body", sign(t, trusted, []byte{0xff}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.raw, t0)
			checkErr(t, err, tt.want)
			if err := sameCert(c, Certificate{}); err != nil {
				t.Errorf("Verify failed but returned a certificate: %v", err)
			}
		})
	}
}

func TestVerifyRejectsEveryBitFlip(t *testing.T) {
	iss := newIssuer(t, "issuer")
	v := newVerifier(t, iss.PublicKey())
	good := issue(t, iss, peerID(t, "a"), "alice")
	for i := range len(good.Raw) * 8 {
		raw := bytes.Clone(good.Raw)
		raw[i/8] ^= 1 << (i % 8)
		if c, err := v.Verify(raw, t0); err == nil {
			t.Fatalf("bit %d flipped: Verify accepted %+v", i, c)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	iss := newIssuer(t, "issuer")
	v := newVerifier(t, iss.PublicKey())
	p := peerID(t, "a")
	// Find the username length that makes a certificate exactly MaxSize.
	base := issue(t, iss, p, "a")
	n := 1 + MaxSize - len(base.Raw)
	for ; n > 0; n-- {
		c, err := iss.Issue(p, strings.Repeat("a", n), t0, lifetime)
		if err == nil && len(c.Raw) <= MaxSize {
			break
		}
	}
	c := issue(t, iss, p, strings.Repeat("a", n))
	if len(c.Raw) != MaxSize {
		t.Fatalf("cannot make a certificate of exactly %d bytes (got %d)", MaxSize, len(c.Raw))
	}
	if _, err := v.Verify(c.Raw, t0); err != nil {
		t.Errorf("Verify(%d bytes): %v", MaxSize, err)
	}
	// One byte more: Issue refuses, and the trusted key's signature on it
	// does not make Verify accept it.
	long := strings.Repeat("a", n+1)
	if c, err := iss.Issue(p, long, t0, lifetime); err == nil {
		t.Errorf("Issue made a certificate of %d bytes, over MaxSize", len(c.Raw))
	}
	b := validBody(t, iss, p)
	b.Username = long
	raw := sign(t, edKey(t, "issuer"), marshal(t, b))
	if len(raw) != MaxSize+1 {
		t.Fatalf("oversized certificate is %d bytes, want %d", len(raw), MaxSize+1)
	}
	_, err := v.Verify(raw, t0)
	checkErr(t, err, ErrMalformed)
}

func TestIssueRefusesUnverifiable(t *testing.T) {
	iss := newIssuer(t, "issuer")
	p := peerID(t, "a")
	tests := []struct {
		name     string
		peer     peer.ID
		username string
		lifetime time.Duration
	}{
		{"empty peer ID", "", "alice", lifetime},
		{"bad peer ID", peer.ID("not a multihash"), "alice", lifetime},
		{"empty username", p, "", lifetime},
		{"zero lifetime", p, "alice", 0},
		{"negative lifetime", p, "alice", -time.Hour},
		{"lifetime under 1ms", p, "alice", time.Microsecond},
		{"too large", p, strings.Repeat("a", MaxSize), lifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := iss.Issue(tt.peer, tt.username, t0, tt.lifetime); err == nil {
				t.Errorf("Issue = %+v, want an error", c)
			}
		})
	}
	// At the low end, 1ms is enough.
	if _, err := iss.Issue(p, "alice", time.UnixMilli(1e12), time.Millisecond); err != nil {
		t.Errorf("Issue with 1ms lifetime: %v", err)
	}
}

// otherKeys are one key of each non-Ed25519 type libp2p has that is
// quick to generate.
func otherKeys(t *testing.T) map[string]crypto.PrivKey {
	t.Helper()
	secp, _, err := crypto.GenerateSecp256k1Key(seeded("secp256k1"))
	if err != nil {
		t.Fatal(err)
	}
	ecdsa, _, err := crypto.GenerateECDSAKeyPair(seeded("ecdsa"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.PrivKey{"secp256k1": secp, "ecdsa": ecdsa}
}

func TestRefuseNonEd25519(t *testing.T) {
	good := edKey(t, "issuer")
	for name, key := range otherKeys(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := NewIssuer(key); err == nil {
				t.Error("NewIssuer accepted the key")
			}
			if _, err := NewVerifier(key.GetPublic()); err == nil {
				t.Error("NewVerifier accepted the key")
			}
			if _, err := NewVerifier(good.GetPublic(), key.GetPublic()); err == nil {
				t.Error("NewVerifier accepted the key alongside an Ed25519 key")
			}
			raw, err := crypto.MarshalPublicKey(key.GetPublic())
			if err != nil {
				t.Fatal(err)
			}
			s, err := EncodePublicKey(key.GetPublic())
			if err != nil {
				t.Fatalf("EncodePublicKey: %v", err)
			}
			if pub, err := ParsePublicKey(s); err == nil {
				t.Errorf("ParsePublicKey(%x) = %v, want an error", raw, pub)
			}
		})
	}
	if _, err := NewVerifier(); err == nil {
		t.Error("NewVerifier() with no keys succeeded")
	}
}

func TestKeyRotation(t *testing.T) {
	oldIss := newIssuer(t, "old")
	newIss := newIssuer(t, "new")
	p := peerID(t, "a")
	oldCert := issue(t, oldIss, p, "alice")
	newCert := issue(t, newIss, p, "alice")

	both := newVerifier(t, oldIss.PublicKey(), newIss.PublicKey())
	for name, c := range map[string]Certificate{"old": oldCert, "new": newCert} {
		got, err := both.VerifyFor(c.Raw, p, t0)
		if err != nil {
			t.Errorf("verifier trusting both: %s key's certificate: %v", name, err)
			continue
		}
		if err := sameCert(got, c); err != nil {
			t.Errorf("verifier trusting both: %s key's certificate: %v", name, err)
		}
	}

	// Once the old key is retired, its certificates are refused.
	newOnly := newVerifier(t, newIss.PublicKey())
	if _, err := newOnly.Verify(newCert.Raw, t0); err != nil {
		t.Errorf("new key's certificate: %v", err)
	}
	_, err := newOnly.Verify(oldCert.Raw, t0)
	checkErr(t, err, ErrUnknownIssuer)

	// Trusting a key twice is harmless.
	if _, err := newVerifier(t, newIss.PublicKey(), newIss.PublicKey()).Verify(newCert.Raw, t0); err != nil {
		t.Errorf("verifier trusting one key twice: %v", err)
	}
}

func TestKeyID(t *testing.T) {
	a, b := edKey(t, "a").GetPublic(), edKey(t, "b").GetPublic()
	idA := keyID(t, a)
	if len(idA) != 8 {
		t.Errorf("len(KeyID) = %d, want 8", len(idA))
	}
	if again := keyID(t, a); !bytes.Equal(again, idA) {
		t.Errorf("KeyID not deterministic: %x, %x", idA, again)
	}
	if idB := keyID(t, b); bytes.Equal(idA, idB) {
		t.Errorf("two keys share KeyID %x", idA)
	}
}

func TestPublicKeyText(t *testing.T) {
	pub := edKey(t, "issuer").GetPublic()
	s, err := EncodePublicKey(pub)
	if err != nil {
		t.Fatalf("EncodePublicKey: %v", err)
	}
	if strings.ContainsAny(s, "+/= \n") {
		t.Errorf("EncodePublicKey = %q, want unpadded base64url", s)
	}
	got, err := ParsePublicKey(s)
	if err != nil {
		t.Fatalf("ParsePublicKey(%q): %v", s, err)
	}
	if !got.Equals(pub) {
		t.Errorf("ParsePublicKey(EncodePublicKey(k)) != k")
	}
	// A certificate issued with the key verifies with the parsed key.
	iss := newIssuer(t, "issuer")
	p := peerID(t, "a")
	if _, err := newVerifier(t, got).VerifyFor(issue(t, iss, p, "alice").Raw, p, t0); err != nil {
		t.Errorf("verify with parsed key: %v", err)
	}

	raw, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name, s string
	}{
		{"empty", ""},
		{"not base64", "not base64!"},
		{"padded", s + "="},
		{"whitespace", " " + s},
		{"truncated", s[:len(s)-4]},
		{"extended", s + "AAAA"},
		{"garbage bytes", "AAAAAAAAAAAA"},
		{"raw key without libp2p framing", encodeText(raw[4:])},
		{"key type unknown", encodeText(append([]byte{0x08, 0x7f}, raw[2:]...))},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if k, err := ParsePublicKey(tt.s); err == nil {
				t.Errorf("ParsePublicKey(%q) = %v, want an error", tt.s, k)
			}
		})
	}
}

func encodeText(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func BenchmarkVerify(b *testing.B) {
	iss := newIssuer(b, "issuer")
	v := newVerifier(b, iss.PublicKey())
	p := peerID(b, "a")
	c := issue(b, iss, p, "alice")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyFor(c.Raw, p, t0); err != nil {
			b.Fatal(err)
		}
	}
}
