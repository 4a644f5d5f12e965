package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/app/chat"
	chatpb "github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// Every device of a user. A message reaches one device of its recipient
// directly (the chat stream, acknowledged); the other devices of both
// users get sealed copies through the offline mailbox, deposited once the
// first delivery attempt is over: the recipient's other devices a copy
// (marked so, it needs no receipt), the sender's other devices a sent
// copy (with the recipient, whether it was delivered, and its path). A
// device that is offline fetches its copies at its next login; a revoked
// device has no mailbox key, so it gets none.
//
// Receipts travel the same way: a device that stored a message (not a
// copy) tells the sender's devices it was delivered (all but the device
// it came from directly, which has the acknowledgement), and a device
// where the user read messages tells the sender's devices and the user's
// own other devices, in one receipt. Both sides store receipts
// idempotently (chat.History.ApplyReceipt), so a receipt deposited twice
// is applied once.

// syncBatch is how many owed copies or receipts one round deposits.
const syncBatch = 64

// keysTTL is how long a contact's device keys are trusted without asking
// again; a device the contact's presence shows and the cache lacks makes
// it ask at once. ownKeysTTL is the same for this user's own devices,
// which no presence shows: a device enrolled since may miss copies for
// that long.
const (
	keysTTL    = 10 * time.Second
	ownKeysTTL = time.Second
)

// syncEvery is the least time between two rounds of sync: a burst of
// messages is one round (each round reads what is owed, so one a message
// would cost a burst dearly), and a copy or receipt waits at most this
// long for its round.
const syncEvery = 10 * time.Millisecond

// syncLoop runs sync when asked (syncSoon), and every m.retry for what
// failed, until ctx ends.
func (m *mailbox) syncLoop(ctx context.Context) {
	t := time.NewTicker(m.retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.syncWake:
		case <-t.C:
		}
		m.mu.Lock()
		unpublished := m.publish
		m.mu.Unlock()
		// The recipient checks the sending device by its published key:
		// deposit once it is published (the run loop asks again then).
		if m.loggedIn() && !unpublished {
			m.sync(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(syncEvery):
		}
	}
}

// sync deposits the copies and receipts this device owes. What fails
// stays owed for the next round.
func (m *mailbox) sync(ctx context.Context) {
	me := m.self()
	if me == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, mailboxTimeout)
	defer cancel()
	if err := m.sendCopies(ctx, me); err != nil && ctx.Err() == nil {
		log.Warnw("deposit copies for other devices; retrying", "err", err, "in", m.retry)
	}
	if err := m.sendReceipts(ctx, me); err != nil && ctx.Err() == nil {
		log.Warnw("deposit receipts; retrying", "err", err, "in", m.retry)
	}
}

// sendCopies deposits the copies owed for messages this device sent,
// and records what it deposited in one statement a batch.
func (m *mailbox) sendCopies(ctx context.Context, me string) error {
	return drain(ctx, m.history.OwedCopies,
		func(msg chat.Message) (string, error) { return msg.ID, m.sendCopy(ctx, me, msg) },
		m.history.CopiesSent)
}

// drain works off what is owed, a batch at a time (read), until none is
// left or one fails: send deposits an item and names it, done records a
// batch's deposited items in one statement.
func drain[T, K any](ctx context.Context, read func(context.Context, int) ([]T, error), send func(T) (K, error), done func(context.Context, ...K) error) error {
	for {
		owed, err := read(ctx, syncBatch)
		if err != nil || len(owed) == 0 {
			return err
		}
		sent := make([]K, 0, len(owed))
		for _, item := range owed {
			var key K
			if key, err = send(item); err != nil {
				break
			}
			sent = append(sent, key)
		}
		if derr := done(ctx, sent...); derr != nil || err != nil {
			return errors.Join(err, derr)
		}
		if len(owed) < syncBatch {
			return nil
		}
	}
}

// sendCopy deposits msg for the recipient's devices it did not reach
// directly (unless it waits in their mailbox already) and for this
// user's other devices.
func (m *mailbox) sendCopy(ctx context.Context, me string, msg chat.Message) error {
	delivered := msg.State == chat.Delivered || msg.State == chat.Read
	if delivered && msg.DeliveredTo != "" {
		has, err := peer.Decode(msg.DeliveredTo)
		if err != nil {
			return fmt.Errorf("copy of %s: device %q: %w", msg.ID, msg.DeliveredTo, err)
		}
		pm := &chatpb.Message{Id: msg.ID, Sender: me, SentUnixMs: msg.Sent.UnixMilli(), Body: msg.Body, Copy: true}
		if err := m.depositItem(ctx, me, msg.To, msg.ID, pm, has); err != nil {
			return err
		}
	}
	pm := &chatpb.Message{Id: msg.ID, Sender: me, SentUnixMs: msg.Sent.UnixMilli(), Body: msg.Body,
		Recipient: msg.To, Delivered: delivered, Path: msg.Path}
	return m.depositItem(ctx, me, me, msg.ID, pm)
}

// sendReceipts deposits the receipts this device owes, and forgets
// those deposited in one statement a batch.
func (m *mailbox) sendReceipts(ctx context.Context, me string) error {
	return drain(ctx, m.history.OwedReceipts,
		func(r chat.OwedReceipt) (int64, error) { return r.Seq, m.sendReceipt(ctx, me, r) },
		m.history.ReceiptsSent)
}

// sendReceipt deposits one owed receipt: for the contact's devices (but
// the one the messages came from directly) and, if it says read, for
// this user's other devices.
func (m *mailbox) sendReceipt(ctx context.Context, me string, r chat.OwedReceipt) error {
	id := m.receiptID(r.Seq)
	rc := &chatpb.Receipt{Kind: chatpb.Receipt_Kind(r.Kind), Ids: r.IDs}
	var has []peer.ID
	if r.Skip != "" {
		if p, err := peer.Decode(r.Skip); err == nil {
			has = append(has, p)
		}
	}
	if err := m.depositItem(ctx, me, r.Contact, id, rc, has...); err != nil {
		return err
	}
	if r.Kind == chat.ReceiptRead {
		return m.depositItem(ctx, me, me, id, rc)
	}
	return nil
}

// receiptID is the mailbox id of the receipt this device owes as seq:
// the same on every try (the server drops a deposit it has), and unique
// among the user's devices.
func (m *mailbox) receiptID(seq int64) string {
	h := sha256.Sum256([]byte("parley receipt\x00" + m.identityID.String() + "\x00" + strconv.FormatInt(seq, 10)))
	return "r" + hex.EncodeToString(h[:15])
}

// depositItem seals item (a *chatpb.Message or *chatpb.Receipt) to the
// devices of `to` except has (and this device) and deposits it. Nothing
// to deposit, or a deposit that can never be made (to is no longer a
// contact, or has no device with a mailbox key), is not an error: the
// item is dropped.
func (m *mailbox) depositItem(ctx context.Context, me, to, id string, item proto.Message, has ...peer.ID) error {
	keys, err := m.keys.keys(ctx, to)
	if err != nil {
		return m.dropIfFinal(to, id, err)
	}
	if !othersNeed(keys, append(has, m.identityID)) {
		return nil
	}
	body, err := mailItem(item)
	if err != nil {
		return err
	}
	_, err = m.rdv.SealAndDeposit(ctx, me, to, id, body, keys, has...)
	if errors.Is(err, rendezvous.ErrDeviceKeysChanged) {
		// Enrolled or revoked since the cache read them: read again.
		if keys, err = m.keys.fetch(ctx, to); err == nil {
			_, err = m.rdv.SealAndDeposit(ctx, me, to, id, body, keys, has...)
		}
	}
	return m.dropIfFinal(to, id, err)
}

// dropIfFinal is err, or nil when the deposit can never be made or is not
// needed (the item is dropped). A full mailbox drops the item too: the
// message itself reached its recipient, and a copy or receipt waiting
// behind a device that never empties its mailbox would hold up every
// other contact's.
func (m *mailbox) dropIfFinal(to, id string, err error) error {
	switch {
	case err == nil, errors.Is(err, client.ErrNoOtherDevice):
		return nil
	case errors.Is(err, rendezvous.ErrContactRequired), errors.Is(err, rendezvous.ErrNotFound):
		log.Infow("mailbox item dropped", "to", to, "id", id, "err", err)
		return nil
	case errors.Is(err, rendezvous.ErrMailboxFull):
		log.Warnw("mailbox full; a copy or receipt for another device is dropped", "to", to, "id", id, "err", err)
		return nil
	}
	return err
}

// mailItem encodes what a device seals into the mailbox.
func mailItem(item proto.Message) ([]byte, error) {
	var mi chatpb.MailItem
	switch it := item.(type) {
	case *chatpb.Message:
		mi.Item = &chatpb.MailItem_Message{Message: it}
	case *chatpb.Receipt:
		mi.Item = &chatpb.MailItem_Receipt{Receipt: it}
	default:
		return nil, fmt.Errorf("mailbox item: unexpected %T", item)
	}
	body, err := proto.Marshal(&mi)
	if err != nil {
		return nil, fmt.Errorf("encode mailbox item: %w", err)
	}
	return body, nil
}

// othersNeed reports whether a device with one of keys is not in has.
func othersNeed(keys []seal.DeviceKey, has []peer.ID) bool {
	for _, k := range keys {
		if !slices.Contains(has, k.Peer) {
			return true
		}
	}
	return false
}

// keyCache remembers the mailbox keys of users' devices (each checked
// against its device's signature by the client), so that a message to a
// user with one device (the usual case) costs no round trip to learn
// that nobody else needs a copy, and a copy costs no round trip to read
// the keys it is sealed to.
type keyCache struct {
	rdv      *client.Client
	contacts chat.Contacts

	mu    sync.Mutex
	users map[string]cachedKeys
}

type cachedKeys struct {
	keys []seal.DeviceKey
	at   time.Time
}

func newKeyCache(rdv *client.Client, contacts chat.Contacts) *keyCache {
	return &keyCache{rdv: rdv, contacts: contacts, users: make(map[string]cachedKeys)}
}

// keys returns user's device keys, from the cache while it is fresh and
// knows every device the user's presence shows.
func (k *keyCache) keys(ctx context.Context, user string) ([]seal.DeviceKey, error) {
	k.mu.Lock()
	c, ok := k.users[user]
	k.mu.Unlock()
	if ok && time.Since(c.at) < k.ttl(user) && !k.newDeviceOnline(user, c.keys) {
		return c.keys, nil
	}
	return k.fetch(ctx, user)
}

// hasDevice reports whether device is one of user's devices with a
// mailbox key: from the cache if it says so, else from the server (a
// device enrolled since, or one revoked, is told apart there).
func (k *keyCache) hasDevice(ctx context.Context, user string, device peer.ID) (bool, error) {
	k.mu.Lock()
	c, ok := k.users[user]
	k.mu.Unlock()
	if ok && time.Since(c.at) < k.ttl(user) && hasKeyOf(c.keys, device) {
		return true, nil
	}
	keys, err := k.fetch(ctx, user)
	if err != nil {
		return false, err
	}
	return hasKeyOf(keys, device), nil
}

// ttl is how long user's keys are trusted: a contact's presence tells of
// a new device, this user's own devices are not in any presence.
func (k *keyCache) ttl(user string) time.Duration {
	if _, isContact := k.contacts.Lookup(user); isContact {
		return keysTTL
	}
	return ownKeysTTL
}

// keysChanged says the server pushed that user's device keys changed.
func (m *mailbox) keysChanged(user string) { m.keys.forget(user) }

// forget drops what the cache holds for user (the server said its keys
// changed).
func (k *keyCache) forget(user string) {
	k.mu.Lock()
	delete(k.users, user)
	k.mu.Unlock()
}

// fetch reads user's device keys from the server and caches them.
func (k *keyCache) fetch(ctx context.Context, user string) ([]seal.DeviceKey, error) {
	keys, err := k.rdv.DeviceKeys(ctx, user)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.users[user] = cachedKeys{keys: keys, at: time.Now()}
	k.mu.Unlock()
	return keys, nil
}

// newDeviceOnline reports whether user's presence shows an online device
// the cache does not know.
func (k *keyCache) newDeviceOnline(user string, known []seal.DeviceKey) bool {
	p, ok := k.contacts.Lookup(user)
	return ok && p != "" && !hasKeyOf(known, p)
}

func hasKeyOf(keys []seal.DeviceKey, device peer.ID) bool {
	return slices.ContainsFunc(keys, func(k seal.DeviceKey) bool { return k.Peer == device })
}
