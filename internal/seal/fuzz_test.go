package seal

import (
	"crypto/ecdh"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// fuzzDevice is a fixed device, so that the fuzzer's corpus stays valid.
func fuzzDevice(f *testing.F) (crypto.PrivKey, peer.ID, *ecdh.PrivateKey) {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	identity, _, err := crypto.GenerateEd25519Key(newSeedReader(seed))
	if err != nil {
		f.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(identity)
	if err != nil {
		f.Fatal(err)
	}
	box, err := ecdh.X25519().NewPrivateKey(seed)
	if err != nil {
		f.Fatal(err)
	}
	return identity, id, box
}

type seedReader struct{ b []byte }

func newSeedReader(b []byte) *seedReader { return &seedReader{b} }

func (r *seedReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

func FuzzParseDeviceKey(f *testing.F) {
	identity, id, box := fuzzDevice(f)
	k, err := SignDeviceKey(identity, box.PublicKey(), time.UnixMilli(1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.Raw)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseDeviceKey(raw, id)
		if err != nil {
			return
		}
		if got.Peer != id || got.Public == nil {
			t.Fatalf("accepted a key that is not the device's: %+v", got)
		}
	})
}

// FuzzDecodeEnvelope fuzzes the decoder of the plaintext inside the HPKE
// layer: a contact's device can seal anything.
func FuzzDecodeEnvelope(f *testing.F) {
	identity, _, box := fuzzDevice(f)
	self, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	selfID, _ := peer.IDFromPrivateKey(self)
	k, _ := SignDeviceKey(self, box.PublicKey(), time.Now())
	ct, err := Seal(identity, "alice", k, "m1", []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	sk, _ := hpkeOpenForTest(box, selfID, ct)
	f.Add(sk)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, plain []byte) {
		m, err := decodeSigned(plain)
		if err != nil {
			return
		}
		if len(m.Body) > MaxBody || m.ID == "" || m.SenderUser == "" {
			t.Fatalf("accepted an envelope out of bounds: %+v", m)
		}
	})
}

// FuzzOpen fuzzes the whole of Open on this device's key.
func FuzzOpen(f *testing.F) {
	identity, id, box := fuzzDevice(f)
	k, err := SignDeviceKey(identity, box.PublicKey(), time.Now())
	if err != nil {
		f.Fatal(err)
	}
	ct, err := Seal(identity, "alice", k, "m1", []byte("hello"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ct)
	f.Add(make([]byte, 48))
	f.Fuzz(func(t *testing.T, sealed []byte) {
		m, err := Open(box, id, sealed, func(string, peer.ID) bool { return true })
		if err != nil {
			return
		}
		if m.Recipient != id {
			t.Fatalf("opened a message for %s", m.Recipient)
		}
	})
}
