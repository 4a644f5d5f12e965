package records

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// fuzzSeed is a fixed key, so the corpus stays meaningful across runs.
func fuzzSeed(f *testing.F) (crypto.PrivKey, peer.ID) {
	seed := bytes.Repeat([]byte{7}, 32)
	k, _, err := crypto.GenerateEd25519Key(bytes.NewReader(seed))
	if err != nil {
		f.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return k, id
}

// FuzzDecode: Decode never panics, and whatever it accepts is exactly its
// input and verifies under its own key while valid.
func FuzzDecode(f *testing.F) {
	key, _ := fuzzSeed(f)
	for _, k := range Kinds {
		r, err := Sign(key, k, 3, []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/1")}, t0, time.Hour)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Raw)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := Decode(raw)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Raw, raw) {
			t.Fatal("Decode accepted a value but Raw differs from it")
		}
		if _, err := Verify(r.Key(), raw, r.Issued); err != nil {
			t.Fatalf("Decode accepts, Verify at the issue time refuses: %v", err)
		}
	})
}

// FuzzValidate: the DHT validator never panics on any key and value, and
// Select agrees with it.
func FuzzValidate(f *testing.F) {
	key, id := fuzzSeed(f)
	r, err := Sign(key, KindAddr, 3, []ma.Multiaddr{ma.StringCast("/ip4/192.0.2.1/tcp/1")}, time.Now(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(Key(KindAddr, id), r.Raw)
	f.Add(Key(KindSupernode, id), r.Raw)
	f.Add("/addr/", []byte{})
	f.Add("/", []byte{1})
	v := NamespacedValidator(nil)
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		err := v.Validate(key, value)
		_, _, kerr := ParseKey(key)
		if kerr != nil {
			return // NamespacedValidator refuses it or routes it elsewhere
		}
		i, serr := v.Select(key, [][]byte{value})
		if (err == nil) != (serr == nil) || (serr == nil && i != 0) {
			t.Fatalf("Validate says %v, Select says %d, %v", err, i, serr)
		}
	})
}

// FuzzParseKey: keys round-trip.
func FuzzParseKey(f *testing.F) {
	k, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(k)
	f.Add(Key(KindAddr, id))
	f.Add(Key(KindSupernode, id))
	f.Add("/addr/" + id.String())
	f.Fuzz(func(t *testing.T, key string) {
		k, p, err := ParseKey(key)
		if err == nil && Key(k, p) != key {
			t.Fatalf("ParseKey(%q) = %v %v, which is %q", key, k, p, Key(k, p))
		}
		dk, k2, p2, err := ParseKeyString(key)
		if err == nil {
			if Key(k2, p2) != dk {
				t.Fatalf("ParseKeyString(%q): key %q for %v %v", key, dk, k2, p2)
			}
		}
	})
}
