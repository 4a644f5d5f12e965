package records

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/dht/pb"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newKey(t testing.TB) (crypto.PrivKey, peer.ID) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

func addrs(t testing.TB, ss ...string) []ma.Multiaddr {
	t.Helper()
	var out []ma.Multiaddr
	for _, s := range ss {
		out = append(out, ma.StringCast(s))
	}
	return out
}

// body is a valid record body for id, to be altered by a test case.
func body(id peer.ID, k Kind) *pb.RecordBody {
	return &pb.RecordBody{
		Kind:          pb.Kind(k),
		PeerId:        []byte(id),
		Seq:           7,
		Addrs:         [][]byte{ma.StringCast("/ip4/192.0.2.1/tcp/4001").Bytes()},
		IssuedUnixMs:  t0.UnixMilli(),
		ExpiresUnixMs: t0.Add(time.Hour).UnixMilli(),
	}
}

// signBody signs b as it is, with key and the domain of kind k: it can
// produce records Sign refuses to make.
func signBody(t testing.TB, key crypto.PrivKey, k Kind, b *pb.RecordBody) []byte {
	t.Helper()
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := key.Sign(append(domain(k), raw...))
	if err != nil {
		t.Fatal(err)
	}
	return encode(raw, sig)
}

func TestSignVerify(t *testing.T) {
	key, id := newKey(t)
	as := addrs(t, "/ip4/192.0.2.1/tcp/4001", "/ip4/198.51.100.9/udp/4001/quic-v1/p2p/"+id.String()+"/p2p-circuit")
	for _, k := range Kinds {
		t.Run(k.String(), func(t *testing.T) {
			r, err := Sign(key, k, 42, as, t0, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Verify(Key(k, id), r.Raw, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			if got.Kind != k || got.Peer != id || got.Seq != 42 || !got.Issued.Equal(t0) || !got.Expires.Equal(t0.Add(time.Hour)) {
				t.Errorf("got %+v", got)
			}
			if len(got.Addrs) != len(as) {
				t.Fatalf("got %d addrs, want %d", len(got.Addrs), len(as))
			}
			for i := range as {
				if !got.Addrs[i].Equal(as[i]) {
					t.Errorf("addr %d: got %s, want %s", i, got.Addrs[i], as[i])
				}
			}
			if got.Key() != Key(k, id) || got.AddrInfo().ID != id {
				t.Errorf("Key/AddrInfo disagree with the record: %q %v", got.Key(), got.AddrInfo())
			}
		})
	}
}

func TestSignRefuses(t *testing.T) {
	key, _ := newKey(t)
	rsa, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	one := addrs(t, "/ip4/192.0.2.1/tcp/4001")
	many := make([]ma.Multiaddr, MaxAddrs+1)
	for i := range many {
		many[i] = one[0]
	}
	long := ma.StringCast("/dns4/" + strings.Repeat("a", 260) + "/tcp/1")
	tests := []struct {
		name     string
		key      crypto.PrivKey
		kind     Kind
		addrs    []ma.Multiaddr
		lifetime time.Duration
	}{
		{"unknown kind", key, 9, one, time.Hour},
		{"key not embedded in its peer ID", rsa, KindAddr, one, time.Hour},
		{"no addresses", key, KindAddr, nil, time.Hour},
		{"too many addresses", key, KindAddr, many, time.Hour},
		{"address too long", key, KindAddr, []ma.Multiaddr{long}, time.Hour},
		{"zero lifetime", key, KindAddr, one, 0},
		{"lifetime too long", key, KindAddr, one, MaxLifetime + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := Sign(tt.key, tt.kind, 1, tt.addrs, t0, tt.lifetime); err == nil {
				t.Fatalf("Sign made %+v, want an error", r)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	key, id := newKey(t)
	other, otherID := newKey(t)
	valid := signBody(t, key, KindAddr, body(id, KindAddr))
	now := t0.Add(time.Minute)
	with := func(f func(b *pb.RecordBody)) []byte {
		b := body(id, KindAddr)
		f(b)
		return signBody(t, key, KindAddr, b)
	}
	tests := []struct {
		name  string
		key   string
		value []byte
		now   time.Time
		want  error
	}{
		{"forged: signed by another key", Key(KindAddr, id), signBody(t, other, KindAddr, body(id, KindAddr)), now, ErrBadSignature},
		{"forged: signature altered", Key(KindAddr, id), func() []byte {
			v := bytes.Clone(valid)
			v[len(v)-1] ^= 1
			return v
		}(), now, ErrBadSignature},
		{"forged: body altered", Key(KindAddr, id), func() []byte {
			var env pb.SignedRecord
			if err := proto.Unmarshal(valid, &env); err != nil {
				t.Fatal(err)
			}
			var b pb.RecordBody
			if err := proto.Unmarshal(env.Body, &b); err != nil {
				t.Fatal(err)
			}
			b.Seq++
			nb, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&b)
			return encode(nb, env.Signature)
		}(), now, ErrBadSignature},
		{"signed for the other kind", Key(KindAddr, id), signBody(t, key, KindSupernode, body(id, KindAddr)), now, ErrBadSignature},
		{"another peer's record under my key", Key(KindAddr, id), signBody(t, other, KindAddr, body(otherID, KindAddr)), now, ErrWrongPeer},
		{"addr record under a supernode key", Key(KindSupernode, id), valid, now, ErrWrongKind},
		{"expired", Key(KindAddr, id), valid, t0.Add(time.Hour + MaxSkew + time.Second), ErrExpired},
		{"issued in the future", Key(KindAddr, id), valid, t0.Add(-MaxSkew - time.Second), ErrNotYetValid},
		{"too large", Key(KindAddr, id), make([]byte, MaxSize+1), now, ErrTooLarge},
		{"garbage", Key(KindAddr, id), []byte("\xff\xff\xff"), now, ErrMalformed},
		{"empty", Key(KindAddr, id), nil, now, ErrMalformed},
		{"envelope with an unknown field", Key(KindAddr, id), protowire.AppendVarint(protowire.AppendTag(bytes.Clone(valid), 9, protowire.VarintType), 1), now, ErrMalformed},
		{"envelope fields reordered", Key(KindAddr, id), func() []byte {
			var env pb.SignedRecord
			if err := proto.Unmarshal(valid, &env); err != nil {
				t.Fatal(err)
			}
			var b []byte
			b = protowire.AppendTag(b, 2, protowire.BytesType)
			b = protowire.AppendBytes(b, env.Signature)
			b = protowire.AppendTag(b, 1, protowire.BytesType)
			return protowire.AppendBytes(b, env.Body)
		}(), now, ErrMalformed},
		{"body with an unknown field", Key(KindAddr, id), func() []byte {
			raw, _ := proto.MarshalOptions{Deterministic: true}.Marshal(body(id, KindAddr))
			raw = protowire.AppendVarint(protowire.AppendTag(raw, 15, protowire.VarintType), 1)
			sig, _ := key.Sign(append(domain(KindAddr), raw...))
			return encode(raw, sig)
		}(), now, ErrMalformed},
		{"unknown kind", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.Kind = 7 }), now, ErrMalformed},
		{"no peer ID", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.PeerId = nil }), now, ErrMalformed},
		{"no addresses", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.Addrs = nil }), now, ErrMalformed},
		{"too many addresses", Key(KindAddr, id), with(func(b *pb.RecordBody) {
			for len(b.Addrs) <= MaxAddrs {
				b.Addrs = append(b.Addrs, b.Addrs[0])
			}
		}), now, ErrMalformed},
		{"address not a multiaddr", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.Addrs = [][]byte{{0xff, 0xff}} }), now, ErrMalformed},
		{"address too long", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.Addrs = [][]byte{make([]byte, MaxAddrLen+1)} }), now, ErrMalformed},
		{"expires before issued", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.ExpiresUnixMs = b.IssuedUnixMs }), now, ErrMalformed},
		{"lifetime too long", Key(KindAddr, id), with(func(b *pb.RecordBody) { b.ExpiresUnixMs = b.IssuedUnixMs + MaxLifetime.Milliseconds() + 1 }), now, ErrMalformed},
		{"key without namespace", "/" + string(id), valid, now, ErrBadKey},
		{"key in an unknown namespace", "/pk/" + string(id), valid, now, ErrBadKey},
		{"key with a bad peer ID", "/addr/xyz", valid, now, ErrBadKey},
		{"key without leading slash", "addr/" + string(id), valid, now, ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.key, tt.value, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			// The DHT's validator refuses it too, whichever namespace it
			// is filed under.
			if err := NamespacedValidator(func() time.Time { return tt.now }).Validate(tt.key, tt.value); err == nil {
				t.Fatal("the DHT validator accepts it")
			}
		})
	}
	// Within the skew at both ends it is still valid.
	for _, at := range []time.Time{t0.Add(-MaxSkew + time.Second), t0.Add(time.Hour + MaxSkew - time.Second)} {
		if _, err := Verify(Key(KindAddr, id), valid, at); err != nil {
			t.Errorf("at %s: %v", at, err)
		}
	}
}

func TestValidatorRefusesOtherNamespace(t *testing.T) {
	key, id := newKey(t)
	r, err := Sign(key, KindSupernode, 1, addrs(t, "/ip4/192.0.2.1/tcp/1"), t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	v := Validator{Kind: KindAddr, Now: func() time.Time { return t0 }}
	if err := v.Validate(Key(KindSupernode, id), r.Raw); !errors.Is(err, ErrWrongKind) {
		t.Fatalf("got %v, want %v", err, ErrWrongKind)
	}
}

func TestSelect(t *testing.T) {
	key, id := newKey(t)
	other, _ := newKey(t)
	mk := func(seq uint64, lifetime time.Duration) []byte {
		r, err := Sign(key, KindAddr, seq, addrs(t, "/ip4/192.0.2.1/tcp/4001"), t0, lifetime)
		if err != nil {
			t.Fatal(err)
		}
		return r.Raw
	}
	forgedHigh := signBody(t, other, KindAddr, func() *pb.RecordBody { b := body(id, KindAddr); b.Seq = 1000; return b }())
	v := Validator{Kind: KindAddr, Now: func() time.Time { return t0.Add(time.Minute) }}
	tests := []struct {
		name   string
		values [][]byte
		want   int
	}{
		{"higher sequence first", [][]byte{mk(5, time.Hour), mk(4, 2*time.Hour)}, 0},
		{"higher sequence last (a replay of 4 loses)", [][]byte{mk(4, 2*time.Hour), mk(5, time.Hour)}, 1},
		{"same sequence: later expiry", [][]byte{mk(5, time.Hour), mk(5, 2*time.Hour)}, 1},
		{"forged higher sequence never wins", [][]byte{forgedHigh, mk(3, time.Hour)}, 1},
		{"garbage never wins", [][]byte{[]byte("junk"), mk(1, time.Hour), nil}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Select(Key(KindAddr, id), tt.values)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := v.Select(Key(KindAddr, id), [][]byte{forgedHigh, []byte("junk")}); err == nil {
		t.Fatal("Select chose among invalid values only")
	}
	// Same record twice: either, and stable.
	a := mk(9, time.Hour)
	if got, _ := v.Select(Key(KindAddr, id), [][]byte{a, a}); got != 0 {
		t.Fatalf("got %d for two equal values, want 0", got)
	}
}

func TestKeys(t *testing.T) {
	_, id := newKey(t)
	for _, k := range Kinds {
		key := Key(k, id)
		gk, gp, err := ParseKey(key)
		if err != nil || gk != k || gp != id {
			t.Errorf("ParseKey(%q) = %v, %v, %v", key, gk, gp, err)
		}
		s := KeyString(k, id)
		if !strings.HasPrefix(s, "/"+k.Namespace()+"/12D3KooW") {
			t.Errorf("KeyString = %q", s)
		}
		dk, sk, sp, err := ParseKeyString(s)
		if err != nil || dk != key || sk != k || sp != id {
			t.Errorf("ParseKeyString(%q) = %q, %v, %v, %v", s, dk, sk, sp, err)
		}
	}
	for _, bad := range []string{"", "addr", "/addr", "/addr/", "/pk/" + id.String(), "/addr/not-a-peer", "addr/" + id.String()} {
		if _, _, _, err := ParseKeyString(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseKeyString(%q): got %v, want %v", bad, err, ErrBadKey)
		}
	}
	if Kind(0).Namespace() != "" || Kind(0).String() != "Kind(0)" {
		t.Errorf("unknown kind: %q %q", Kind(0).Namespace(), Kind(0).String())
	}
}
