// Package cert issues and verifies Parley membership certificates.
//
// A certificate says "device P belongs to user U until T". The rendezvous
// server signs one at every login with its certificate key (an Ed25519 key
// kept in its data directory, separate from its libp2p identity so that
// replicas can share it) and renews it while the session lives. Supernodes
// and peers verify certificates offline: they need only the issuer's public
// key, which the server prints at start and hands to clients at login.
//
// Verify checks the signature, the issuer and the validity window; the
// caller must still check that the certificate's Peer is the peer it talks
// to (the libp2p secure channel authenticates that PeerID).
package cert

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/rendezvous/cert/pb"
)

// MaxSize bounds an encoded certificate. Verify refuses larger input
// before decoding it.
const MaxSize = 1024

// MaxSkew is the clock difference between issuer and verifier that
// Verify tolerates at both ends of the validity window.
const MaxSkew = 2 * time.Minute

const domain = "parley/membership-cert/v1\x00"

// Errors from Verify. Every failure wraps exactly one of them.
var (
	ErrMalformed     = errors.New("malformed certificate")
	ErrUnknownIssuer = errors.New("certificate from an unknown issuer")
	ErrBadSignature  = errors.New("certificate signature does not verify")
	ErrExpired       = errors.New("certificate expired")
	ErrNotYetValid   = errors.New("certificate not yet valid")
	ErrWrongPeer     = errors.New("certificate issued to another peer")
)

// Certificate is a verified (or freshly issued) certificate.
type Certificate struct {
	Peer     peer.ID
	Username string
	Issued   time.Time
	Expires  time.Time
	// Raw is the encoded, signed certificate, as sent on the wire.
	Raw []byte
}

// KeyID names a public key: the first 8 bytes of the SHA-256 of its
// libp2p encoding.
func KeyID(pub crypto.PubKey) ([]byte, error) {
	raw, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(raw)
	return sum[:8], nil
}

// Issuer signs certificates.
type Issuer struct {
	key   crypto.PrivKey
	keyID []byte
}

// NewIssuer returns an issuer signing with key, which must be Ed25519.
func NewIssuer(key crypto.PrivKey) (*Issuer, error) {
	if key.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("certificate key must be Ed25519, not %s", key.Type())
	}
	id, err := KeyID(key.GetPublic())
	if err != nil {
		return nil, err
	}
	return &Issuer{key: key, keyID: id}, nil
}

// PublicKey is the key that verifies this issuer's certificates.
func (i *Issuer) PublicKey() crypto.PubKey { return i.key.GetPublic() }

// Issue signs a certificate for device p of user username, valid from now
// for lifetime. It refuses to issue a certificate that Verify would reject
// whatever the time: an invalid peer ID, an empty username, a lifetime
// under a millisecond, or one too large to encode in MaxSize bytes.
func (i *Issuer) Issue(p peer.ID, username string, now time.Time, lifetime time.Duration) (Certificate, error) {
	if _, err := peer.IDFromBytes([]byte(p)); err != nil {
		return Certificate{}, fmt.Errorf("issue certificate: peer ID: %w", err)
	}
	if username == "" {
		return Certificate{}, errors.New("issue certificate: no username")
	}
	issued, expires := now.UnixMilli(), now.Add(lifetime).UnixMilli()
	if expires <= issued {
		return Certificate{}, fmt.Errorf("issue certificate: lifetime %s is under 1ms", lifetime)
	}
	body, err := proto.Marshal(&pb.Body{
		PeerId:        []byte(p),
		Username:      username,
		IssuedUnixMs:  issued,
		ExpiresUnixMs: expires,
		IssuerKeyId:   i.keyID,
	})
	if err != nil {
		return Certificate{}, fmt.Errorf("encode certificate: %w", err)
	}
	sig, err := i.key.Sign(append([]byte(domain), body...))
	if err != nil {
		return Certificate{}, fmt.Errorf("sign certificate: %w", err)
	}
	raw := encode(body, sig)
	if len(raw) > MaxSize {
		return Certificate{}, fmt.Errorf("issue certificate: %d bytes, limit %d", len(raw), MaxSize)
	}
	return Certificate{
		Peer:     p,
		Username: username,
		Issued:   time.UnixMilli(issued),
		Expires:  time.UnixMilli(expires),
		Raw:      raw,
	}, nil
}

// encode is the one encoding of a pb.Certificate that Verify accepts: the
// proto3 encoding of its fields in order, empty ones left out.
func encode(body, sig []byte) []byte {
	var b []byte
	if len(body) > 0 {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, body)
	}
	if len(sig) > 0 {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, sig)
	}
	return b
}

// Verifier checks certificates against a set of trusted issuer keys (more
// than one while a key is being rotated).
type Verifier struct {
	keys map[string]crypto.PubKey // by string(KeyID)
}

// NewVerifier trusts the given issuer keys.
func NewVerifier(keys ...crypto.PubKey) (*Verifier, error) {
	v := &Verifier{keys: make(map[string]crypto.PubKey, len(keys))}
	for _, k := range keys {
		if k.Type() != crypto.Ed25519 {
			return nil, fmt.Errorf("certificate key must be Ed25519, not %s", k.Type())
		}
		id, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		v.keys[string(id)] = k
	}
	if len(v.keys) == 0 {
		return nil, errors.New("a certificate verifier needs at least one issuer key")
	}
	return v, nil
}

// Verify decodes raw and checks it at time now. It does not check that
// the certificate's Peer is the remote peer; the caller must.
func (v *Verifier) Verify(raw []byte, now time.Time) (Certificate, error) {
	if len(raw) > MaxSize {
		return Certificate{}, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(raw), MaxSize)
	}
	var c pb.Certificate
	if err := proto.Unmarshal(raw, &c); err != nil {
		return Certificate{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	// The signature covers the body only, so any other encoding of the
	// same fields (unknown fields, repeated or reordered fields, padded
	// varints) would verify too. Accept only the one Issue produces, so
	// that a certificate has a single Raw form.
	if !bytes.Equal(raw, encode(c.GetBody(), c.GetSignature())) {
		return Certificate{}, fmt.Errorf("%w: not in canonical encoding", ErrMalformed)
	}
	var b pb.Body
	if err := proto.Unmarshal(c.GetBody(), &b); err != nil {
		return Certificate{}, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	key, ok := v.keys[string(b.GetIssuerKeyId())]
	if !ok {
		return Certificate{}, ErrUnknownIssuer
	}
	okSig, err := key.Verify(append([]byte(domain), c.GetBody()...), c.GetSignature())
	if err != nil || !okSig {
		return Certificate{}, ErrBadSignature
	}
	p, err := peer.IDFromBytes(b.GetPeerId())
	if err != nil {
		return Certificate{}, fmt.Errorf("%w: peer ID: %v", ErrMalformed, err)
	}
	if b.GetUsername() == "" {
		return Certificate{}, fmt.Errorf("%w: no username", ErrMalformed)
	}
	out := Certificate{
		Peer:     p,
		Username: b.GetUsername(),
		Issued:   time.UnixMilli(b.GetIssuedUnixMs()),
		Expires:  time.UnixMilli(b.GetExpiresUnixMs()),
		Raw:      bytes.Clone(raw),
	}
	if !out.Expires.After(out.Issued) {
		return Certificate{}, fmt.Errorf("%w: expires before it is issued", ErrMalformed)
	}
	if now.After(out.Expires.Add(MaxSkew)) {
		return Certificate{}, fmt.Errorf("%w at %s", ErrExpired, out.Expires.UTC().Format(time.RFC3339))
	}
	if now.Add(MaxSkew).Before(out.Issued) {
		return Certificate{}, fmt.Errorf("%w until %s", ErrNotYetValid, out.Issued.UTC().Format(time.RFC3339))
	}
	return out, nil
}

// VerifyFor verifies raw and checks that it was issued to remote.
func (v *Verifier) VerifyFor(raw []byte, remote peer.ID, now time.Time) (Certificate, error) {
	c, err := v.Verify(raw, now)
	if err != nil {
		return Certificate{}, err
	}
	if c.Peer != remote {
		return Certificate{}, fmt.Errorf("%w: issued to %s, presented by %s", ErrWrongPeer, c.Peer, remote)
	}
	return c, nil
}

// EncodePublicKey is the text form of an issuer key that the server prints
// and operators pass to supernodes: unpadded URL-safe base64 of the libp2p
// encoding.
func EncodePublicKey(pub crypto.PubKey) (string, error) {
	raw, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// ParsePublicKey reads the text form from EncodePublicKey.
func ParsePublicKey(s string) (crypto.PubKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("certificate key %q: not base64url: %w", s, err)
	}
	pub, err := crypto.UnmarshalPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("certificate key %q: %w", s, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("certificate key %q: must be Ed25519, not %s", s, pub.Type())
	}
	return pub, nil
}
