// Package seal is the cryptography of Parley's offline mailbox: device
// mailbox keys and messages sealed to them, end to end, so that the
// rendezvous server that keeps the mail sees ciphertext only.
//
// # Device keys
//
// Every device has an X25519 key pair for its mailbox (LoadOrCreateKey
// keeps the private half in a 0600 file). The public half is published
// with the device as a DeviceKey: the key, the device's peer ID and a
// creation time, signed by the device's libp2p identity key (Ed25519)
// over "parley device key v1\x00" and the encoded key info.
// ParseDeviceKey checks that signature against the peer ID, so a server
// cannot substitute a key of its own without the device's identity key.
//
// # Sealed messages
//
// Seal signs an Envelope (sender user and device, recipient device,
// message ID, sent time, body) with the sender device's identity key,
// over "parley mailbox envelope v1\x00" and the encoded envelope, and
// encrypts the signed envelope with HPKE (RFC 9180, base mode,
// DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) to one
// device key, with info "parley mailbox v1\x00" and the recipient
// device's peer ID. A message to a user is sealed once per device.
//
// Open refuses a ciphertext that does not decrypt (not for this key, or
// altered), a signature that does not verify (forged), an envelope
// addressed to another device (a contact re-sealing what it received to
// someone else), a sender the caller does not recognise as the named
// user's device, and an envelope sent more than MaxAge ago or more than
// MaxSkew ahead.
//
// # Replays
//
// A replayed ciphertext opens fine: it is the same message again. The
// recipient drops it by message ID. Chat does so through its history
// (one entry per message ID); ReplayFilter does it in memory for callers
// that have no such store. Because Open refuses envelopes older than
// MaxAge, message IDs need to be remembered for MaxAge+MaxSkew only.
package seal

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/atomicfile"
	"github.com/parleynet/parley/internal/seal/pb"
)

// Limits. A sealed message is at most MaxSealed bytes; a body larger than
// MaxBody, a message ID longer than MaxMessageID or a user name longer
// than MaxUser cannot be sealed and is refused when opened.
const (
	MaxBody      = 32 << 10
	MaxMessageID = 128
	MaxUser      = 64
	// MaxSealed bounds a sealed message: the body with the envelope,
	// signature and HPKE overhead (32-byte encapsulated key, 16-byte tag).
	MaxSealed = MaxBody + 1024
	// MaxDeviceKey bounds an encoded DeviceKey.
	MaxDeviceKey = 512
	// MaxAge is how old an envelope Open accepts: the server keeps mail
	// 30 days, plus a day of slack.
	MaxAge = 31 * 24 * time.Hour
	// MaxSkew is how far in the future an envelope's sent time may be.
	MaxSkew = 10 * time.Minute
)

// Errors of Open and ParseDeviceKey. Each error returned wraps one.
var (
	ErrMalformed      = errors.New("seal: malformed")
	ErrDecrypt        = errors.New("seal: cannot decrypt: not sealed to this key, or altered")
	ErrBadSignature   = errors.New("seal: bad signature")
	ErrWrongRecipient = errors.New("seal: addressed to another device")
	ErrUnknownSender  = errors.New("seal: the sender is not a device of the user it names")
	ErrStale          = errors.New("seal: sent too long ago or too far in the future")
	ErrReplayed       = errors.New("seal: message already received")
	ErrTooLarge       = errors.New("seal: too large")
)

const (
	deviceKeyDomain = "parley device key v1\x00"
	envelopeDomain  = "parley mailbox envelope v1\x00"
	hpkeInfoDomain  = "parley mailbox v1\x00"
)

// The HPKE suite.
var (
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

// KeyFile is the file LoadOrCreateKey keeps the private key in.
const KeyFile = "mailbox-x25519.key"

// LoadOrCreateKey returns the device's X25519 mailbox key from KeyFile in
// dir, creating the key and the file (mode 0600) if it does not exist.
func LoadOrCreateKey(dir string) (*ecdh.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		k, err := ecdh.X25519().NewPrivateKey(raw)
		if err != nil {
			return nil, fmt.Errorf("mailbox key %s: %w", path, err)
		}
		return k, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("read mailbox key: %w", err)
	}
	k, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate mailbox key: %w", err)
	}
	if err := atomicfile.Write(path, k.Bytes()); err != nil {
		return nil, fmt.Errorf("write mailbox key: %w", err)
	}
	return k, nil
}

// DeviceKey is a device's public mailbox key, signed by the device.
type DeviceKey struct {
	Peer    peer.ID
	Public  *ecdh.PublicKey
	Created time.Time
	// Raw is the signed encoding, as published and parsed.
	Raw []byte
}

// SignDeviceKey makes the DeviceKey of pub for the device whose identity
// key is identity.
func SignDeviceKey(identity crypto.PrivKey, pub *ecdh.PublicKey, created time.Time) (DeviceKey, error) {
	id, err := peer.IDFromPrivateKey(identity)
	if err != nil {
		return DeviceKey{}, fmt.Errorf("device key: peer ID: %w", err)
	}
	if pub.Curve() != ecdh.X25519() {
		return DeviceKey{}, errors.New("device key: not an X25519 key")
	}
	info, err := proto.Marshal(&pb.DeviceKeyInfo{PeerId: []byte(id), X25519: pub.Bytes(), CreatedUnixMs: created.UnixMilli()})
	if err != nil {
		return DeviceKey{}, fmt.Errorf("device key: encode: %w", err)
	}
	sig, err := identity.Sign(append([]byte(deviceKeyDomain), info...))
	if err != nil {
		return DeviceKey{}, fmt.Errorf("device key: sign: %w", err)
	}
	raw, err := proto.Marshal(&pb.DeviceKey{Info: info, Signature: sig})
	if err != nil {
		return DeviceKey{}, fmt.Errorf("device key: encode: %w", err)
	}
	return DeviceKey{Peer: id, Public: pub, Created: time.UnixMilli(created.UnixMilli()), Raw: raw}, nil
}

// ParseDeviceKey decodes a signed device key and checks that it is
// device's, signed by device's identity key.
func ParseDeviceKey(raw []byte, device peer.ID) (DeviceKey, error) {
	if len(raw) > MaxDeviceKey {
		return DeviceKey{}, fmt.Errorf("%w: device key of %d bytes", ErrTooLarge, len(raw))
	}
	var signed pb.DeviceKey
	if err := proto.Unmarshal(raw, &signed); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: device key: %v", ErrMalformed, err)
	}
	var info pb.DeviceKeyInfo
	if err := proto.Unmarshal(signed.GetInfo(), &info); err != nil {
		return DeviceKey{}, fmt.Errorf("%w: device key info: %v", ErrMalformed, err)
	}
	id, err := peer.IDFromBytes(info.GetPeerId())
	if err != nil {
		return DeviceKey{}, fmt.Errorf("%w: device key peer ID: %v", ErrMalformed, err)
	}
	if id != device {
		return DeviceKey{}, fmt.Errorf("%w: the key is %s's, not %s's", ErrBadSignature, id, device)
	}
	if err := verify(id, deviceKeyDomain, signed.GetInfo(), signed.GetSignature()); err != nil {
		return DeviceKey{}, fmt.Errorf("device key of %s: %w", id, err)
	}
	pub, err := ecdh.X25519().NewPublicKey(info.GetX25519())
	if err != nil {
		return DeviceKey{}, fmt.Errorf("%w: device key: %v", ErrMalformed, err)
	}
	return DeviceKey{Peer: id, Public: pub, Created: time.UnixMilli(info.GetCreatedUnixMs()), Raw: raw}, nil
}

// verify checks sig by the key embedded in id over domain || msg.
func verify(id peer.ID, domain string, msg, sig []byte) error {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: no public key in peer ID %s: %v", ErrBadSignature, id, err)
	}
	ok, err := pub.Verify(append([]byte(domain), msg...), sig)
	if err != nil || !ok {
		return ErrBadSignature
	}
	return nil
}

// hpkeInfo binds a ciphertext to the recipient device.
func hpkeInfo(recipient peer.ID) []byte {
	return append([]byte(hpkeInfoDomain), recipient...)
}

// Message is an opened mailbox message.
type Message struct {
	SenderUser string
	SenderPeer peer.ID // the sending device; it signed the message
	Recipient  peer.ID // this device
	ID         string  // chosen by the sender; unique per sender
	Sent       time.Time
	Body       []byte
}

// Seal signs a message from senderUser's device (identity key sender) and
// seals it to one device key of the recipient, sent now.
func Seal(sender crypto.PrivKey, senderUser string, to DeviceKey, msgID string, body []byte) ([]byte, error) {
	return SealAt(sender, senderUser, to, msgID, body, time.Now())
}

// SealAt is Seal with the sent time given.
func SealAt(sender crypto.PrivKey, senderUser string, to DeviceKey, msgID string, body []byte, sent time.Time) ([]byte, error) {
	if len(body) > MaxBody || len(msgID) > MaxMessageID || len(senderUser) > MaxUser {
		return nil, fmt.Errorf("%w: body %d (max %d), message ID %d (max %d), user %d (max %d) bytes",
			ErrTooLarge, len(body), MaxBody, len(msgID), MaxMessageID, len(senderUser), MaxUser)
	}
	if msgID == "" || senderUser == "" || to.Public == nil || to.Peer == "" {
		return nil, errors.New("seal: a message needs an ID, a sender user and a device key")
	}
	from, err := peer.IDFromPrivateKey(sender)
	if err != nil {
		return nil, fmt.Errorf("seal: sender peer ID: %w", err)
	}
	env, err := proto.Marshal(&pb.Envelope{
		SenderUser:      senderUser,
		SenderPeerId:    []byte(from),
		RecipientPeerId: []byte(to.Peer),
		MessageId:       msgID,
		SentUnixMs:      sent.UnixMilli(),
		Body:            body,
	})
	if err != nil {
		return nil, fmt.Errorf("seal: encode envelope: %w", err)
	}
	sig, err := sender.Sign(append([]byte(envelopeDomain), env...))
	if err != nil {
		return nil, fmt.Errorf("seal: sign envelope: %w", err)
	}
	signed, err := proto.Marshal(&pb.SignedEnvelope{Envelope: env, Signature: sig})
	if err != nil {
		return nil, fmt.Errorf("seal: encode signed envelope: %w", err)
	}
	pk, err := hpke.NewDHKEMPublicKey(to.Public)
	if err != nil {
		return nil, fmt.Errorf("seal: recipient key: %w", err)
	}
	ct, err := hpke.Seal(pk, kdf, aead, hpkeInfo(to.Peer), signed)
	if err != nil {
		return nil, fmt.Errorf("seal: encrypt: %w", err)
	}
	if len(ct) > MaxSealed {
		return nil, fmt.Errorf("%w: sealed message of %d bytes (max %d)", ErrTooLarge, len(ct), MaxSealed)
	}
	return ct, nil
}

// SenderCheck reports whether p is a device of user, as the recipient
// knows it (the user's published device keys, say). Open refuses a
// message whose sender it does not confirm.
type SenderCheck func(user string, p peer.ID) bool

// Open decrypts a message sealed to this device (key priv, peer ID self)
// and checks it; see the package doc for what it refuses.
func Open(priv *ecdh.PrivateKey, self peer.ID, sealed []byte, senderOK SenderCheck) (*Message, error) {
	return OpenAt(priv, self, sealed, senderOK, time.Now())
}

// OpenAt is Open at the time now.
func OpenAt(priv *ecdh.PrivateKey, self peer.ID, sealed []byte, senderOK SenderCheck, now time.Time) (*Message, error) {
	if len(sealed) > MaxSealed {
		return nil, fmt.Errorf("%w: sealed message of %d bytes", ErrTooLarge, len(sealed))
	}
	sk, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("seal: own key: %w", err)
	}
	plain, err := hpke.Open(sk, kdf, aead, hpkeInfo(self), sealed)
	if err != nil {
		return nil, ErrDecrypt
	}
	m, err := decodeSigned(plain)
	if err != nil {
		return nil, err
	}
	if m.Recipient != self {
		return nil, fmt.Errorf("%w: %s, this device is %s", ErrWrongRecipient, m.Recipient, self)
	}
	if m.Sent.Before(now.Add(-MaxAge)) || m.Sent.After(now.Add(MaxSkew)) {
		return nil, fmt.Errorf("%w: sent %s", ErrStale, m.Sent.UTC().Format(time.RFC3339))
	}
	if senderOK == nil || !senderOK(m.SenderUser, m.SenderPeer) {
		return nil, fmt.Errorf("%w: %s from %s", ErrUnknownSender, m.SenderUser, m.SenderPeer)
	}
	return m, nil
}

// decodeSigned decodes a signed envelope and checks its signature by the
// sender device it names.
func decodeSigned(plain []byte) (*Message, error) {
	var signed pb.SignedEnvelope
	if err := proto.Unmarshal(plain, &signed); err != nil {
		return nil, fmt.Errorf("%w: signed envelope: %v", ErrMalformed, err)
	}
	var env pb.Envelope
	if err := proto.Unmarshal(signed.GetEnvelope(), &env); err != nil {
		return nil, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	m := &Message{SenderUser: env.GetSenderUser(), ID: env.GetMessageId(), Sent: time.UnixMilli(env.GetSentUnixMs()), Body: env.GetBody()}
	if m.SenderUser == "" || len(m.SenderUser) > MaxUser || m.ID == "" || len(m.ID) > MaxMessageID || len(m.Body) > MaxBody {
		return nil, fmt.Errorf("%w: envelope fields out of bounds", ErrMalformed)
	}
	var err error
	if m.SenderPeer, err = peer.IDFromBytes(env.GetSenderPeerId()); err != nil {
		return nil, fmt.Errorf("%w: sender peer ID: %v", ErrMalformed, err)
	}
	if m.Recipient, err = peer.IDFromBytes(env.GetRecipientPeerId()); err != nil {
		return nil, fmt.Errorf("%w: recipient peer ID: %v", ErrMalformed, err)
	}
	if err := verify(m.SenderPeer, envelopeDomain, signed.GetEnvelope(), signed.GetSignature()); err != nil {
		return nil, fmt.Errorf("envelope from %s: %w", m.SenderPeer, err)
	}
	return m, nil
}

// ReplayFilter remembers the messages a device received, by sender user
// and message ID, for MaxAge+MaxSkew (older envelopes Open refuses
// anyway). It is in memory: chat's history, which keeps one entry per
// message ID, is what survives a restart. It is safe for concurrent use.
type ReplayFilter struct {
	mu     sync.Mutex
	seen   map[replayKey]time.Time // when each message was first seen
	pruned time.Time               // when seen was last pruned
}

type replayKey struct{ user, id string }

// NewReplayFilter returns an empty filter.
func NewReplayFilter() *ReplayFilter {
	return &ReplayFilter{seen: make(map[replayKey]time.Time)}
}

// Check records m as received at now and returns ErrReplayed if it was
// received before. It forgets messages seen more than MaxAge+MaxSkew ago.
func (f *ReplayFilter) Check(m *Message, now time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.pruned) > time.Hour {
		f.pruned = now
		for k, at := range f.seen {
			if now.Sub(at) > MaxAge+MaxSkew {
				delete(f.seen, k)
			}
		}
	}
	k := replayKey{m.SenderUser, m.ID}
	if _, ok := f.seen[k]; ok {
		return fmt.Errorf("%w: %s from %s", ErrReplayed, m.ID, m.SenderUser)
	}
	f.seen[k] = now
	return nil
}
