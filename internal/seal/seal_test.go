package seal

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/seal/pb"
)

// device is a test device: identity, peer ID, mailbox key and its signed
// public key.
type device struct {
	identity crypto.PrivKey
	id       peer.ID
	box      *ecdh.PrivateKey
	key      DeviceKey
}

func newDevice(t testing.TB) device {
	t.Helper()
	identity, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(identity)
	if err != nil {
		t.Fatal(err)
	}
	box, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := SignDeviceKey(identity, box.PublicKey(), time.Now())
	if err != nil {
		t.Fatalf("SignDeviceKey: %v", err)
	}
	return device{identity: identity, id: id, box: box, key: key}
}

// senderIs accepts exactly one (user, device).
func senderIs(user string, p peer.ID) SenderCheck {
	return func(u string, q peer.ID) bool { return u == user && q == p }
}

func TestSealOpen(t *testing.T) {
	alice, bob := newDevice(t), newDevice(t)
	body := []byte("meet at the bridge at noon")
	ct, err := Seal(alice.identity, "alice", bob.key, "m1", body)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Contains(ct, body) {
		t.Fatal("the ciphertext contains the plaintext")
	}
	m, err := Open(bob.box, bob.id, ct, senderIs("alice", alice.id))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if m.SenderUser != "alice" || m.SenderPeer != alice.id || m.Recipient != bob.id || m.ID != "m1" || !bytes.Equal(m.Body, body) {
		t.Errorf("Open: got %+v", m)
	}
	if time.Since(m.Sent) > time.Minute {
		t.Errorf("Open: sent %v, want about now", m.Sent)
	}
}

func TestParseDeviceKey(t *testing.T) {
	d, other := newDevice(t), newDevice(t)
	k, err := ParseDeviceKey(d.key.Raw, d.id)
	if err != nil {
		t.Fatalf("ParseDeviceKey: %v", err)
	}
	if k.Peer != d.id || !k.Public.Equal(d.box.PublicKey()) || !k.Created.Equal(d.key.Created) {
		t.Errorf("ParseDeviceKey: got %+v, want %+v", k, d.key)
	}
	if _, err := ParseDeviceKey(d.key.Raw, other.id); !errors.Is(err, ErrBadSignature) {
		t.Errorf("ParseDeviceKey for another peer: got %v, want ErrBadSignature", err)
	}

	// Another device signs a key info that names d: refused.
	info, _ := proto.Marshal(&pb.DeviceKeyInfo{PeerId: []byte(d.id), X25519: other.box.PublicKey().Bytes()})
	sig, _ := other.identity.Sign(append([]byte(deviceKeyDomain), info...))
	forged, _ := proto.Marshal(&pb.DeviceKey{Info: info, Signature: sig})
	if _, err := ParseDeviceKey(forged, d.id); !errors.Is(err, ErrBadSignature) {
		t.Errorf("ParseDeviceKey(forged): got %v, want ErrBadSignature", err)
	}
	// A signature over another domain (an envelope) does not count.
	sig, _ = d.identity.Sign(append([]byte(envelopeDomain), info...))
	cross, _ := proto.Marshal(&pb.DeviceKey{Info: info, Signature: sig})
	if _, err := ParseDeviceKey(cross, d.id); !errors.Is(err, ErrBadSignature) {
		t.Errorf("ParseDeviceKey(other domain): got %v, want ErrBadSignature", err)
	}
	if _, err := ParseDeviceKey([]byte{0xff, 0xff}, d.id); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParseDeviceKey(junk): got %v, want ErrMalformed", err)
	}
	if _, err := ParseDeviceKey(make([]byte, MaxDeviceKey+1), d.id); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ParseDeviceKey(huge): got %v, want ErrTooLarge", err)
	}
}

// sealRaw seals a signed envelope as given, for forgeries.
func sealRaw(t *testing.T, to DeviceKey, env *pb.Envelope, signer crypto.PrivKey) []byte {
	t.Helper()
	b, err := proto.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign(append([]byte(envelopeDomain), b...))
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := proto.Marshal(&pb.SignedEnvelope{Envelope: b, Signature: sig})
	pk, err := hpke.NewDHKEMPublicKey(to.Public)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := hpke.Seal(pk, kdf, aead, hpkeInfo(to.Peer), signed)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func TestOpenRefuses(t *testing.T) {
	alice, bob, bob2, mallory := newDevice(t), newDevice(t), newDevice(t), newDevice(t)
	now := time.Now()
	fromAlice := senderIs("alice", alice.id)
	good, err := Seal(alice.identity, "alice", bob.key, "m1", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(good)
	tampered[len(tampered)-1] ^= 1

	// Mallory, a contact of alice, re-seals what alice sent her to bob.
	toMallory, err := Seal(alice.identity, "alice", mallory.key, "m2", []byte("for mallory"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Open(mallory.box, mallory.id, toMallory, fromAlice)
	if err != nil {
		t.Fatal(err)
	}
	resealed := sealRaw(t, bob.key, &pb.Envelope{SenderUser: "alice", SenderPeerId: []byte(alice.id),
		RecipientPeerId: []byte(got.Recipient), MessageId: got.ID, SentUnixMs: got.Sent.UnixMilli(), Body: got.Body}, alice.identity)
	// She cannot sign it anew as alice: her own signature does not verify.
	forged := sealRaw(t, bob.key, &pb.Envelope{SenderUser: "alice", SenderPeerId: []byte(alice.id),
		RecipientPeerId: []byte(bob.id), MessageId: "m3", SentUnixMs: now.UnixMilli(), Body: []byte("send money")}, mallory.identity)
	// Signed by mallory as mallory, claiming to be user alice.
	impostor, err := Seal(mallory.identity, "alice", bob.key, "m4", []byte("it is me, alice"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := SealAt(alice.identity, "alice", bob.key, "m5", []byte("old"), now.Add(-MaxAge-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	future, err := SealAt(alice.identity, "alice", bob.key, "m6", []byte("future"), now.Add(MaxSkew+time.Minute))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		self   device
		ct     []byte
		wantIs error
	}{
		{"tampered", bob, tampered, ErrDecrypt},
		{"other device of the recipient", bob2, good, ErrDecrypt},
		{"re-sealed to a wrong recipient", bob, resealed, ErrWrongRecipient},
		{"forged signature", bob, forged, ErrBadSignature},
		{"sender is not the user's device", bob, impostor, ErrUnknownSender},
		{"too old", bob, old, ErrStale},
		{"from the future", bob, future, ErrStale},
		{"junk", bob, []byte("junk"), ErrDecrypt},
		{"too large", bob, make([]byte, MaxSealed+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := OpenAt(tt.self.box, tt.self.id, tt.ct, fromAlice, now)
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("Open: got %+v, %v, want %v", m, err, tt.wantIs)
			}
		})
	}
}

// TestHPKEInfoBindsRecipient: a ciphertext sealed to bob's key but for
// another peer ID (the info) does not open as bob's.
func TestHPKEInfoBindsRecipient(t *testing.T) {
	alice, bob, carol := newDevice(t), newDevice(t), newDevice(t)
	key := bob.key
	key.Peer = carol.id // a server lying about whose key this is
	ct, err := Seal(alice.identity, "alice", key, "m1", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(bob.box, bob.id, ct, senderIs("alice", alice.id)); !errors.Is(err, ErrDecrypt) {
		t.Errorf("Open: got %v, want ErrDecrypt", err)
	}
}

func TestSealLimits(t *testing.T) {
	alice, bob := newDevice(t), newDevice(t)
	body := bytes.Repeat([]byte{'x'}, MaxBody)
	ct, err := Seal(alice.identity, "a-user-name-of-thirty-two-chars", bob.key, string(bytes.Repeat([]byte{'i'}, MaxMessageID)), body)
	if err != nil {
		t.Fatalf("Seal(largest message): %v", err)
	}
	if len(ct) > MaxSealed {
		t.Errorf("largest message sealed to %d bytes, over MaxSealed %d", len(ct), MaxSealed)
	}
	if _, err := Seal(alice.identity, "alice", bob.key, "m", append(body, 'x')); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Seal(body over MaxBody): got %v, want ErrTooLarge", err)
	}
}

func TestReplayFilter(t *testing.T) {
	alice, bob := newDevice(t), newDevice(t)
	ct, err := Seal(alice.identity, "alice", bob.key, "m1", []byte("hi"))
	if err != nil {
		t.Fatal(err)
	}
	f := NewReplayFilter()
	now := time.Now()
	for i, want := range []error{nil, ErrReplayed} {
		m, err := Open(bob.box, bob.id, ct, senderIs("alice", alice.id))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Check(m, now); !errors.Is(err, want) {
			t.Errorf("delivery %d: got %v, want %v", i+1, err, want)
		}
	}
	// Forgotten after the window, when Open refuses it anyway.
	m, _ := Open(bob.box, bob.id, ct, senderIs("alice", alice.id))
	if err := f.Check(m, now.Add(MaxAge+MaxSkew+2*time.Hour)); err != nil {
		t.Errorf("after the window: got %v, want nil", err)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateKey: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatalf("LoadOrCreateKey again: %v", err)
	}
	if !k1.Equal(k2) {
		t.Error("the key changed on reload")
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(dir); err == nil {
		t.Error("LoadOrCreateKey(corrupt file): got nil error")
	}
}

// hpkeOpenForTest undoes only the HPKE layer.
func hpkeOpenForTest(box *ecdh.PrivateKey, self peer.ID, ct []byte) ([]byte, error) {
	sk, err := hpke.NewDHKEMPrivateKey(box)
	if err != nil {
		return nil, err
	}
	return hpke.Open(sk, kdf, aead, hpkeInfo(self), ct)
}

// BenchmarkSeal and BenchmarkOpen measure one message of a typical chat
// size (256 bytes) to one device.
func BenchmarkSeal(b *testing.B) {
	alice, bob := newDevice(b), newDevice(b)
	body := bytes.Repeat([]byte{'x'}, 256)
	for b.Loop() {
		if _, err := Seal(alice.identity, "alice", bob.key, "m1", body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}

func BenchmarkOpen(b *testing.B) {
	alice, bob := newDevice(b), newDevice(b)
	ct, err := Seal(alice.identity, "alice", bob.key, "m1", bytes.Repeat([]byte{'x'}, 256))
	if err != nil {
		b.Fatal(err)
	}
	ok := senderIs("alice", alice.id)
	for b.Loop() {
		if _, err := Open(bob.box, bob.id, ct, ok); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
}
