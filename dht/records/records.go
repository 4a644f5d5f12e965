package records

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/dht/pb"
)

// Size limits. Sign refuses to produce, and Decode refuses to accept,
// anything beyond them.
const (
	// MaxSize bounds an encoded record (the DHT value).
	MaxSize = 4096
	// MaxAddrs bounds the addresses in one record.
	MaxAddrs = 24
	// MaxAddrLen bounds one binary multiaddr. A circuit address through a
	// relay with an IPv6 address and two peer IDs takes about 110 bytes.
	MaxAddrLen = 256
	// MaxLifetime bounds the time from a record's issue to its expiry, so
	// that a record published once cannot linger for long.
	MaxLifetime = 24 * time.Hour
	// MaxSkew is the clock difference between signer and verifier that
	// validation tolerates at both ends of the validity window.
	MaxSkew = 2 * time.Minute
)

// Errors from Decode, Verify and Validate. Every failure wraps exactly one.
var (
	ErrTooLarge     = errors.New("record too large")
	ErrMalformed    = errors.New("malformed record")
	ErrBadKey       = errors.New("not a Parley record key")
	ErrWrongKind    = errors.New("record kind does not match its key")
	ErrWrongPeer    = errors.New("record signed by another peer than its key names")
	ErrBadSignature = errors.New("record signature does not verify")
	ErrExpired      = errors.New("record expired")
	ErrNotYetValid  = errors.New("record not yet valid")
)

// Kind says what a record announces; it is also its key's namespace.
type Kind int32

const (
	// KindAddr is a device's address record, under /addr/<device>.
	KindAddr = Kind(pb.Kind_KIND_ADDR)
	// KindSupernode is a supernode announcement, under /supernode/<peer>.
	KindSupernode = Kind(pb.Kind_KIND_SUPERNODE)
)

// Namespace is the key namespace of records of kind k ("addr",
// "supernode"), or "" for an unknown kind.
func (k Kind) Namespace() string {
	switch k {
	case KindAddr:
		return "addr"
	case KindSupernode:
		return "supernode"
	default:
		return ""
	}
}

func (k Kind) String() string {
	if ns := k.Namespace(); ns != "" {
		return ns
	}
	return fmt.Sprintf("Kind(%d)", int32(k))
}

// Kinds lists every record kind.
var Kinds = []Kind{KindAddr, KindSupernode}

// KindOf returns the kind whose namespace is ns.
func KindOf(ns string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Namespace() == ns {
			return k, true
		}
	}
	return 0, false
}

// Key is the DHT key of p's record of kind k.
func Key(k Kind, p peer.ID) string {
	return "/" + k.Namespace() + "/" + string(p)
}

// ParseKey splits a DHT key into its kind and peer.
func ParseKey(key string) (Kind, peer.ID, error) {
	rest, ok := strings.CutPrefix(key, "/")
	if !ok {
		return 0, "", fmt.Errorf("%w: no leading slash", ErrBadKey)
	}
	ns, id, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, "", fmt.Errorf("%w: no namespace", ErrBadKey)
	}
	k, ok := KindOf(ns)
	if !ok {
		return 0, "", fmt.Errorf("%w: unknown namespace %q", ErrBadKey, ns)
	}
	p, err := peer.IDFromBytes([]byte(id))
	if err != nil {
		return 0, "", fmt.Errorf("%w: peer ID: %v", ErrBadKey, err)
	}
	return k, p, nil
}

// KeyString is the text form of a key: /addr/12D3KooW….
func KeyString(k Kind, p peer.ID) string {
	return "/" + k.Namespace() + "/" + p.String()
}

// ParseKeyString reads the text form of a key and returns the DHT key with
// its kind and peer.
func ParseKeyString(s string) (key string, k Kind, p peer.ID, err error) {
	rest, ok := strings.CutPrefix(s, "/")
	ns, id, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		return "", 0, "", fmt.Errorf("%w: %q: want /addr/<peer ID> or /supernode/<peer ID>", ErrBadKey, s)
	}
	k, ok = KindOf(ns)
	if !ok {
		return "", 0, "", fmt.Errorf("%w: %q: unknown namespace %q (want addr or supernode)", ErrBadKey, s, ns)
	}
	p, err = peer.Decode(id)
	if err != nil {
		return "", 0, "", fmt.Errorf("%w: %q: peer ID: %v", ErrBadKey, s, err)
	}
	return Key(k, p), k, p, nil
}

// Record is a decoded, signature-checked record.
type Record struct {
	Kind    Kind
	Peer    peer.ID
	Seq     uint64
	Addrs   []ma.Multiaddr
	Issued  time.Time
	Expires time.Time
	// Raw is the encoded, signed record: the DHT value.
	Raw []byte
}

// Key is the DHT key the record is stored under.
func (r Record) Key() string { return Key(r.Kind, r.Peer) }

// AddrInfo is the record's peer with its addresses.
func (r Record) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: r.Peer, Addrs: r.Addrs}
}

func domain(k Kind) []byte {
	return []byte("parley/dht-record/v1\x00" + k.Namespace() + "\x00")
}

// Sign makes a record of kind k for the peer of key: sequence number seq,
// addresses addrs, valid from issued for lifetime. It refuses what Verify
// would reject whatever the time: an unknown kind, a key that its peer ID
// does not embed, no addresses or too many or too long, a lifetime under a
// millisecond or over MaxLifetime, or an encoding over MaxSize.
func Sign(key crypto.PrivKey, k Kind, seq uint64, addrs []ma.Multiaddr, issued time.Time, lifetime time.Duration) (Record, error) {
	if k.Namespace() == "" {
		return Record{}, fmt.Errorf("sign record: unknown kind %d", k)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return Record{}, fmt.Errorf("sign record: peer ID: %w", err)
	}
	if _, err := id.ExtractPublicKey(); err != nil {
		return Record{}, fmt.Errorf("sign record: a %s key is not embedded in its peer ID, so it cannot sign records", key.Type())
	}
	if len(addrs) == 0 || len(addrs) > MaxAddrs {
		return Record{}, fmt.Errorf("sign record: %d addresses, want 1 to %d", len(addrs), MaxAddrs)
	}
	if lifetime > MaxLifetime {
		return Record{}, fmt.Errorf("sign record: lifetime %s exceeds %s", lifetime, MaxLifetime)
	}
	iss, exp := issued.UnixMilli(), issued.Add(lifetime).UnixMilli()
	if exp <= iss {
		return Record{}, fmt.Errorf("sign record: lifetime %s is under 1ms", lifetime)
	}
	body := &pb.RecordBody{
		Kind:          pb.Kind(k),
		PeerId:        []byte(id),
		Seq:           seq,
		IssuedUnixMs:  iss,
		ExpiresUnixMs: exp,
	}
	for _, a := range addrs {
		b := a.Bytes()
		if len(b) == 0 || len(b) > MaxAddrLen {
			return Record{}, fmt.Errorf("sign record: address %s is %d bytes, want 1 to %d", a, len(b), MaxAddrLen)
		}
		body.Addrs = append(body.Addrs, b)
	}
	rawBody, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return Record{}, fmt.Errorf("encode record: %w", err)
	}
	sig, err := key.Sign(append(domain(k), rawBody...))
	if err != nil {
		return Record{}, fmt.Errorf("sign record: %w", err)
	}
	raw := encode(rawBody, sig)
	if len(raw) > MaxSize {
		return Record{}, fmt.Errorf("sign record: %d bytes, limit %d", len(raw), MaxSize)
	}
	// Decode what we made, so that Sign and Decode cannot disagree.
	return Decode(raw)
}

// encode is the one encoding of a SignedRecord that Decode accepts: the
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

// Decode decodes raw and checks its form and signature, but not its key or
// the time: see Verify.
func Decode(raw []byte) (Record, error) {
	if len(raw) > MaxSize {
		return Record{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), MaxSize)
	}
	var env pb.SignedRecord
	if err := proto.Unmarshal(raw, &env); err != nil {
		return Record{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !bytes.Equal(raw, encode(env.GetBody(), env.GetSignature())) {
		return Record{}, fmt.Errorf("%w: envelope not in canonical encoding", ErrMalformed)
	}
	var body pb.RecordBody
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(env.GetBody(), &body); err != nil {
		return Record{}, fmt.Errorf("%w: body: %v", ErrMalformed, err)
	}
	canon, err := proto.MarshalOptions{Deterministic: true}.Marshal(&body)
	if err != nil || !bytes.Equal(canon, env.GetBody()) {
		return Record{}, fmt.Errorf("%w: body not in canonical encoding", ErrMalformed)
	}
	k := Kind(body.GetKind())
	if k.Namespace() == "" {
		return Record{}, fmt.Errorf("%w: unknown kind %d", ErrMalformed, body.GetKind())
	}
	p, err := peer.IDFromBytes(body.GetPeerId())
	if err != nil {
		return Record{}, fmt.Errorf("%w: peer ID: %v", ErrMalformed, err)
	}
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return Record{}, fmt.Errorf("%w: peer ID %s does not embed its public key", ErrMalformed, p)
	}
	ok, err := pub.Verify(append(domain(k), env.GetBody()...), env.GetSignature())
	if err != nil || !ok {
		return Record{}, ErrBadSignature
	}
	n := len(body.GetAddrs())
	if n == 0 || n > MaxAddrs {
		return Record{}, fmt.Errorf("%w: %d addresses, want 1 to %d", ErrMalformed, n, MaxAddrs)
	}
	r := Record{
		Kind:    k,
		Peer:    p,
		Seq:     body.GetSeq(),
		Addrs:   make([]ma.Multiaddr, 0, n),
		Issued:  time.UnixMilli(body.GetIssuedUnixMs()),
		Expires: time.UnixMilli(body.GetExpiresUnixMs()),
		Raw:     bytes.Clone(raw),
	}
	for _, b := range body.GetAddrs() {
		if len(b) > MaxAddrLen {
			return Record{}, fmt.Errorf("%w: address of %d bytes, limit %d", ErrMalformed, len(b), MaxAddrLen)
		}
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return Record{}, fmt.Errorf("%w: address: %v", ErrMalformed, err)
		}
		r.Addrs = append(r.Addrs, a)
	}
	iss, exp := body.GetIssuedUnixMs(), body.GetExpiresUnixMs()
	if exp <= iss {
		return Record{}, fmt.Errorf("%w: expires before it is issued", ErrMalformed)
	}
	if exp-iss > MaxLifetime.Milliseconds() {
		return Record{}, fmt.Errorf("%w: lifetime over %s", ErrMalformed, MaxLifetime)
	}
	return r, nil
}

// Verify decodes the value stored under key and checks it at time now:
// form, signature, that the key names the record's kind and signer, and
// the validity window.
func Verify(key string, raw []byte, now time.Time) (Record, error) {
	k, p, err := ParseKey(key)
	if err != nil {
		return Record{}, err
	}
	r, err := Decode(raw)
	if err != nil {
		return Record{}, err
	}
	if r.Kind != k {
		return Record{}, fmt.Errorf("%w: a %s record under a /%s/ key", ErrWrongKind, r.Kind, k.Namespace())
	}
	if r.Peer != p {
		return Record{}, fmt.Errorf("%w: key names %s, record is %s's", ErrWrongPeer, p, r.Peer)
	}
	if now.After(r.Expires.Add(MaxSkew)) {
		return Record{}, fmt.Errorf("%w at %s", ErrExpired, r.Expires.UTC().Format(time.RFC3339))
	}
	if now.Add(MaxSkew).Before(r.Issued) {
		return Record{}, fmt.Errorf("%w until %s", ErrNotYetValid, r.Issued.UTC().Format(time.RFC3339))
	}
	return r, nil
}

// Better reports whether a should replace b under the same key: a higher
// sequence number, then a later expiry, then the larger encoding.
func Better(a, b Record) bool {
	if a.Seq != b.Seq {
		return a.Seq > b.Seq
	}
	if !a.Expires.Equal(b.Expires) {
		return a.Expires.After(b.Expires)
	}
	return bytes.Compare(a.Raw, b.Raw) > 0
}
