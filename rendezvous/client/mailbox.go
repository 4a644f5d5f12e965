package client

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// The offline mailbox. A device publishes its mailbox key once per login
// (PublishDeviceKey). A sender that reaches none of a contact's devices
// seals the message to each of the contact's device keys and deposits it
// (SendMail does both). A device fetches its mail after login
// (Session.PendingMail says whether any waits), opens each message
// (OpenMail), stores it, and only then acknowledges it (AckMail).

// PublishDeviceKey publishes this device's mailbox key, signed by this
// device (seal.SignDeviceKey); it replaces the device's previous key.
func (c *Client) PublishDeviceKey(ctx context.Context, key seal.DeviceKey) error {
	if key.Peer != c.host.ID() {
		return fmt.Errorf("publish device key: the key is %s's, this device is %s", key.Peer, c.host.ID())
	}
	req := &pb.Request{Body: &pb.Request_PublishDeviceKey{PublishDeviceKey: &pb.PublishDeviceKeyRequest{DeviceKey: key.Raw}}}
	if _, err := c.roundTrip(ctx, req); err != nil {
		return fmt.Errorf("publish device key: %w", err)
	}
	return nil
}

// DeviceKeys returns the mailbox keys of username's active devices (the
// user must be this account or an accepted contact). Each key's
// signature by its device is checked: a key the server altered is an
// error.
func (c *Client) DeviceKeys(ctx context.Context, username string) ([]seal.DeviceKey, error) {
	req := &pb.Request{Body: &pb.Request_DeviceKeys{DeviceKeys: &pb.DeviceKeysRequest{Username: username}}}
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("device keys of %s: %w", username, err)
	}
	var keys []seal.DeviceKey
	for _, k := range resp.GetDeviceKeys().GetKeys() {
		id, err := peer.IDFromBytes(k.GetPeerId())
		if err != nil {
			return nil, fmt.Errorf("device keys of %s: bad peer ID from server: %w", username, err)
		}
		key, err := seal.ParseDeviceKey(k.GetDeviceKey(), id)
		if err != nil {
			return nil, fmt.Errorf("device keys of %s: %w", username, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// Envelope is a message sealed to one device.
type Envelope struct {
	Device     peer.ID
	Ciphertext []byte
}

// Deposited is the server's answer to a deposit.
type Deposited struct {
	ID        uint64
	Duplicate bool // deposited before; nothing changed
}

// Deposit leaves a message for user `to` in its mailbox: one envelope per
// device key DeviceKeys returned, except the devices in has, which have
// the message already (no envelope for this device when `to` is this
// account). rendezvous.ErrDeviceKeysChanged means the devices changed
// since: fetch the keys and seal again. rendezvous.ErrMailboxFull means
// the message must wait on this device and be retried later.
func (c *Client) Deposit(ctx context.Context, to, msgID string, envs []Envelope, has ...peer.ID) (Deposited, error) {
	d := &pb.DepositRequest{To: to, MessageId: msgID}
	for _, e := range envs {
		d.Envelopes = append(d.Envelopes, &pb.MailEnvelope{PeerId: []byte(e.Device), Ciphertext: e.Ciphertext})
	}
	for _, p := range has {
		d.Has = append(d.Has, []byte(p))
	}
	resp, err := c.roundTrip(ctx, &pb.Request{Body: &pb.Request_Deposit{Deposit: d}})
	if err != nil {
		return Deposited{}, fmt.Errorf("deposit %s for %s: %w", msgID, to, err)
	}
	r := resp.GetDeposit()
	return Deposited{ID: r.GetId(), Duplicate: r.GetDuplicate()}, nil
}

// ErrNoOtherDevice means a message needs no deposit: every device of the
// user that has a mailbox key has it already (SendMail's has, or this
// device).
var ErrNoOtherDevice = errors.New("no other device needs the message")

// SendMail seals body from this device (user `from`) to every device of
// `to` except those in has (and this device, when `to` is `from`: a copy
// for the user's other devices) and deposits it, fetching the keys again
// once if they changed meanwhile. A user without device keys cannot
// receive mail (rendezvous.ErrNotFound); when every device with a key is
// in has, nothing is deposited and the error is ErrNoOtherDevice.
func (c *Client) SendMail(ctx context.Context, from, to, msgID string, body []byte, has ...peer.ID) (Deposited, error) {
	identity := c.host.Peerstore().PrivKey(c.host.ID())
	if identity == nil {
		return Deposited{}, errors.New("send mail: this host has no private key")
	}
	if to == from {
		has = append(has, c.host.ID())
	}
	for attempt := 0; ; attempt++ {
		keys, err := c.DeviceKeys(ctx, to)
		if err != nil {
			return Deposited{}, fmt.Errorf("send mail: %w", err)
		}
		if len(keys) == 0 && to != from {
			return Deposited{}, fmt.Errorf("send mail: %w: %s has no device with a mailbox key", rendezvous.ErrNotFound, to)
		}
		envs := make([]Envelope, 0, len(keys))
		for _, k := range keys {
			if slices.Contains(has, k.Peer) {
				continue
			}
			ct, err := seal.Seal(identity, from, k, msgID, body)
			if err != nil {
				return Deposited{}, fmt.Errorf("send mail: %w", err)
			}
			envs = append(envs, Envelope{Device: k.Peer, Ciphertext: ct})
		}
		if len(envs) == 0 {
			return Deposited{}, ErrNoOtherDevice
		}
		d, err := c.Deposit(ctx, to, msgID, envs, has...)
		if errors.Is(err, rendezvous.ErrDeviceKeysChanged) && attempt == 0 {
			continue
		}
		return d, err
	}
}

// Mail is a message waiting for this device. Sender and SenderDevice are
// what the server authenticated when it was deposited.
type Mail struct {
	ID           uint64
	Sender       string
	SenderDevice peer.ID
	MessageID    string
	Deposited    time.Time
	Ciphertext   []byte
}

// FetchMail returns up to max messages waiting for this device, oldest
// first (0 means the server's default); more says that more wait behind
// them: acknowledge these and fetch again.
func (c *Client) FetchMail(ctx context.Context, max int) (mail []Mail, more bool, err error) {
	req := &pb.Request{Body: &pb.Request_FetchMail{FetchMail: &pb.FetchMailRequest{Max: uint32(max)}}}
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return nil, false, fmt.Errorf("fetch mail: %w", err)
	}
	l := resp.GetMail()
	for _, m := range l.GetMail() {
		dev, err := peer.IDFromBytes(m.GetSenderPeerId())
		if err != nil {
			return nil, false, fmt.Errorf("fetch mail: bad peer ID from server: %w", err)
		}
		mail = append(mail, Mail{
			ID:           m.GetId(),
			Sender:       m.GetSender(),
			SenderDevice: dev,
			MessageID:    m.GetMessageId(),
			Deposited:    time.UnixMilli(m.GetDepositedUnixMs()),
			Ciphertext:   m.GetCiphertext(),
		})
	}
	return mail, l.GetMore(), nil
}

// AckMail tells the server this device has the given messages (ids from
// FetchMail); it deletes this device's copies. It returns how many it
// deleted.
func (c *Client) AckMail(ctx context.Context, ids []uint64) (int, error) {
	deleted := 0
	for len(ids) > 0 {
		n := min(len(ids), rendezvous.MaxAckMail)
		req := &pb.Request{Body: &pb.Request_AckMail{AckMail: &pb.AckMailRequest{Ids: ids[:n]}}}
		resp, err := c.roundTrip(ctx, req)
		if err != nil {
			return deleted, fmt.Errorf("acknowledge mail: %w", err)
		}
		deleted += int(resp.GetAckMail().GetDeleted())
		ids = ids[n:]
	}
	return deleted, nil
}

// OpenMail opens a fetched message with this device's mailbox key (see
// seal.Open) and checks that the signed sender is the one the server
// authenticated at deposit. senderOK confirms that a peer is a device of
// the user (for instance, one of the user's DeviceKeys). A message that
// does not open should still be acknowledged: it never will.
func (c *Client) OpenMail(box *ecdh.PrivateKey, m Mail, senderOK seal.SenderCheck) (*seal.Message, error) {
	msg, err := seal.Open(box, c.host.ID(), m.Ciphertext, senderOK)
	if err != nil {
		return nil, fmt.Errorf("open mail %d from %s: %w", m.ID, m.Sender, err)
	}
	if msg.SenderUser != m.Sender || msg.SenderPeer != m.SenderDevice || msg.ID != m.MessageID {
		return nil, fmt.Errorf("open mail %d: %w: signed by %s (%s) as %q, deposited by %s (%s) as %q",
			m.ID, seal.ErrUnknownSender, msg.SenderUser, msg.SenderPeer, msg.ID, m.Sender, m.SenderDevice, m.MessageID)
	}
	return msg, nil
}

// ReceiveMail fetches all mail waiting for this device, opens each message
// with box (see OpenMail) and hands it to deliver, then acknowledges what
// deliver took and what can never open. Call it after login and whenever
// the session pushes Update.Mail.
//
// deliver must store the message durably before it returns nil (and drop
// a message ID it already has: replays); an error from deliver leaves
// the message on the server and ends ReceiveMail with that error, to be
// retried later. A message that does not open (forged, altered, sealed
// to an old key, from an unknown sender) is reported to rejected, which
// may be nil, and acknowledged. It returns how many messages deliver
// took.
func (c *Client) ReceiveMail(ctx context.Context, box *ecdh.PrivateKey, senderOK seal.SenderCheck,
	deliver func(*seal.Message) error, rejected func(Mail, error)) (int, error) {
	delivered := 0
	for {
		mail, more, err := c.FetchMail(ctx, 0)
		if err != nil {
			return delivered, err
		}
		var done []uint64
		var deliverErr error
		for _, m := range mail {
			msg, err := c.OpenMail(box, m, senderOK)
			if err != nil {
				if rejected != nil {
					rejected(m, err)
				}
				done = append(done, m.ID)
				continue
			}
			if deliverErr = deliver(msg); deliverErr != nil {
				break
			}
			delivered++
			done = append(done, m.ID)
		}
		if len(done) > 0 {
			if _, err := c.AckMail(ctx, done); err != nil {
				return delivered, err
			}
		}
		if deliverErr != nil {
			return delivered, fmt.Errorf("receive mail: %w", deliverErr)
		}
		if !more || len(mail) == 0 {
			return delivered, nil
		}
	}
}
