package relay

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/parleynet/parley/internal/ratelimit"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/relay/pb"
	"github.com/parleynet/parley/rendezvous/cert"
)

type testPeer struct {
	id   peer.ID
	cert []byte
}

func newTestAdmission(t testing.TB, now *time.Time) (*admission, *cert.Issuer) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := cert.NewIssuer(key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cert.NewVerifier(iss.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	a := newAdmission(v, DefaultLimits(), nil)
	a.now = func() time.Time { return *now }
	return a, iss
}

func certified(t testing.TB, iss *cert.Issuer, now time.Time, lifetime time.Duration) testPeer {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Issue(id, "u", now, lifetime)
	if err != nil {
		t.Fatal(err)
	}
	return testPeer{id: id, cert: c.Raw}
}

func request(t testing.TB, c []byte) *bytes.Buffer {
	t.Helper()
	var b bytes.Buffer
	if err := wire.Write(&b, &pb.AuthRequest{Certificate: c}, maxAuthFrame); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestAdmissionLifecycle follows an admission from presentation to
// expiry, renewal and the supernode leaving.
func TestAdmissionLifecycle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, iss := newTestAdmission(t, &now)
	alice := certified(t, iss, now, time.Hour)
	bob := certified(t, iss, now, 10*time.Minute)

	if a.AllowReserve(alice.id, nil) || a.AllowConnect(alice.id, nil, bob.id) {
		t.Fatal("a peer that presented nothing was allowed")
	}
	for _, p := range []testPeer{alice, bob} {
		if resp := a.authenticate(request(t, p.cert), p.id, "192.0.2.1"); resp.GetStatus() != pb.AuthResponse_STATUS_OK {
			t.Fatalf("valid certificate refused: %v %s", resp.GetStatus(), resp.GetMessage())
		}
	}
	if !a.AllowReserve(alice.id, nil) || !a.AllowReserve(bob.id, nil) || !a.AllowConnect(alice.id, nil, bob.id) {
		t.Fatal("admitted peers were refused")
	}
	// bob's certificate runs out; only his admission lapses, and as he
	// holds a reservation he is to be cut off.
	now = now.Add(11 * time.Minute)
	if a.AllowConnect(bob.id, nil, alice.id) {
		t.Error("a peer whose certificate expired may open circuits")
	}
	if got := a.expire(); len(got) != 1 || got[0] != bob.id {
		t.Errorf("expire() = %v, want [bob]", got)
	}
	if !a.AllowConnect(alice.id, nil, bob.id) {
		t.Error("alice lost her admission with bob's")
	}
	// A renewed certificate extends the admission; an older one presented
	// later does not shorten it.
	renewed, err := iss.Issue(alice.id, "u", now, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if resp := a.authenticate(request(t, renewed.Raw), alice.id, "192.0.2.1"); resp.GetStatus() != pb.AuthResponse_STATUS_OK {
		t.Fatalf("renewed certificate refused: %v", resp.GetStatus())
	}
	if resp := a.authenticate(request(t, alice.cert), alice.id, "192.0.2.1"); resp.GetStatus() != pb.AuthResponse_STATUS_OK {
		t.Fatalf("older certificate refused: %v", resp.GetStatus())
	}
	now = now.Add(90 * time.Minute) // past the first certificate, within the renewed one
	if !a.AllowReserve(alice.id, nil) {
		t.Error("the renewed admission was shortened by an older certificate")
	}
	// Leaving: nothing new is admitted or reserved; the holders are listed.
	holders := a.leave()
	if len(holders) != 1 || holders[0] != alice.id {
		t.Errorf("leave() = %v, want [alice]", holders)
	}
	if a.AllowReserve(alice.id, nil) || a.AllowConnect(alice.id, nil, bob.id) {
		t.Error("a leaving supernode still grants reservations or circuits")
	}
	carol := certified(t, iss, now, time.Hour)
	if resp := a.authenticate(request(t, carol.cert), carol.id, "192.0.2.1"); resp.GetStatus() != pb.AuthResponse_STATUS_UNAVAILABLE {
		t.Errorf("admission while leaving: got %v, want UNAVAILABLE", resp.GetStatus())
	}
}

// FuzzAdmissionNoPanic feeds arbitrary bytes to the auth handler: every
// input gets an answer with a status and a message, and only a valid
// certificate for the presenting peer is admitted.
func FuzzAdmissionNoPanic(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	a, iss := newTestAdmission(f, &now)
	p := certified(f, iss, now, time.Hour)
	valid := request(f, p.cert).Bytes()
	f.Add(valid)
	f.Add([]byte{})
	f.Add([]byte{0x00})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(protowire.AppendVarint(nil, 5))
	// No rate limits while fuzzing.
	a.perPeer, a.perIP = ratelimit.New(ratelimit.Rate{}), ratelimit.New(ratelimit.Rate{})
	f.Fuzz(func(t *testing.T, in []byte) {
		resp := a.authenticate(bytes.NewReader(in), p.id, "192.0.2.1")
		if resp.GetStatus() == pb.AuthResponse_STATUS_UNSPECIFIED {
			t.Fatalf("no status for input %x", in)
		}
		if resp.GetStatus() != pb.AuthResponse_STATUS_OK && resp.GetMessage() == "" {
			t.Fatalf("refusal %v without a message", resp.GetStatus())
		}
		if resp.GetStatus() == pb.AuthResponse_STATUS_OK {
			req := new(pb.AuthRequest)
			if err := wire.NewReader(bytes.NewReader(in), maxAuthFrame).Read(req); err != nil || !bytes.Equal(req.GetCertificate(), p.cert) {
				t.Fatalf("admitted input %x that does not carry the peer's certificate", in)
			}
		}
	})
}
