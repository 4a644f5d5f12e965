package app

import (
	"context"
	"crypto/ecdh"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	chatpb "github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// MailboxPath is the Path of a message that went through the offline
// mailbox (see chat.MailboxPath).
const MailboxPath = chat.MailboxPath

// mailboxTimeout bounds one round of publishing, depositing or fetching.
const mailboxTimeout = 30 * time.Second

// mailboxBackoff is how long deposits to a contact wait after the server
// said their mailbox is full or they have no mailbox key.
const mailboxBackoff = time.Minute

// mailbox is the client side of the offline mailbox (see
// rendezvous/client/mailbox.go). After each login it publishes this
// device's mailbox key and fetches the mail waiting for it, and fetches
// again when the server pushes mail_waiting; each message is stored in
// the chat history (once: the history drops a message id it has) before
// it is acknowledged. It deposits, sealed to each of the contact's
// devices, the queued messages to a contact who is offline (the outbox
// asks, through depositFor), and marks them on_server. Its goroutine
// runs until Close.
type mailbox struct {
	rdv      *client.Client
	history  *chat.History
	contacts chat.Contacts
	self     func() string // the logged-in user, "" if none
	loggedIn func() bool
	identity crypto.PrivKey
	// identityID is this device.
	identityID peer.ID
	box        *ecdh.PrivateKey
	emit       func(apitype.Event)
	unread     func(contact string) // the unread count of contact may have changed
	retry      time.Duration
	keys       *keyCache

	wake      chan struct{}
	syncWake  chan struct{} // asks syncLoop to deposit copies and receipts
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu        sync.Mutex // guards the following
	publish   bool       // the key is to be published (a new login)
	fetch     bool       // mail may wait
	deposit   map[string]bool
	backoffTo map[string]time.Time // contact → no deposits before
}

func startMailbox(m *mailbox) *mailbox {
	m.wake = make(chan struct{}, 1)
	m.deposit = make(map[string]bool)
	m.backoffTo = make(map[string]time.Time)
	m.keys = newKeyCache(m.rdv, m.contacts)
	m.identityID, _ = peer.IDFromPrivateKey(m.identity)
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	m.syncWake = make(chan struct{}, 1)
	m.wg.Go(func() { m.run(ctx) })
	m.wg.Go(func() { m.syncLoop(ctx) })
	return m
}

// Close stops the goroutine and waits for it.
func (m *mailbox) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		m.wg.Wait()
	})
	return nil
}

func (m *mailbox) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// loginSoon asks for the key to be published and the mail fetched (after
// a login).
func (m *mailbox) loginSoon() {
	m.mu.Lock()
	m.publish, m.fetch = true, true
	m.mu.Unlock()
	m.poke()
}

// fetchSoon asks for the mail to be fetched (the server pushed
// mail_waiting).
func (m *mailbox) fetchSoon() {
	m.mu.Lock()
	m.fetch = true
	m.mu.Unlock()
	m.poke()
}

// syncSoon asks for the copies and receipts owed to be deposited.
func (m *mailbox) syncSoon() {
	select {
	case m.syncWake <- struct{}{}:
	default:
	}
}

// depositFor asks for contact's queued messages to be deposited in their
// mailbox if contact is offline.
func (m *mailbox) depositFor(contact string) {
	m.mu.Lock()
	m.deposit[contact] = true
	m.mu.Unlock()
	m.poke()
}

func (m *mailbox) run(ctx context.Context) {
	t := time.NewTicker(m.retry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-t.C:
		}
		if !m.loggedIn() {
			continue // the next login asks again
		}
		m.mu.Lock()
		publish, fetch := m.publish, m.fetch
		m.publish, m.fetch = false, false
		var contacts []string
		for c := range m.deposit {
			contacts = append(contacts, c)
		}
		clear(m.deposit)
		m.mu.Unlock()
		slices.Sort(contacts)

		if publish {
			if err := m.publishKey(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warnw("publish mailbox key; retrying", "err", err, "in", m.retry)
				m.mu.Lock()
				m.publish = true
				m.mu.Unlock()
			}
		}
		if fetch {
			if err := m.receive(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				log.Warnw("fetch mail; retrying", "err", err, "in", m.retry)
				m.mu.Lock()
				m.fetch = true
				m.mu.Unlock()
			}
		}
		m.mu.Lock()
		unpublished := m.publish
		if unpublished {
			// The recipient checks the sending device by its published
			// key: deposit once it is published.
			for _, c := range contacts {
				m.deposit[c] = true
			}
		}
		m.mu.Unlock()
		if unpublished {
			continue
		}
		for _, c := range contacts {
			if ctx.Err() != nil {
				return
			}
			m.depositTo(ctx, c)
		}
		m.syncSoon() // copies of what was deposited
	}
}

// publishKey publishes this device's mailbox key.
func (m *mailbox) publishKey(ctx context.Context) error {
	key, err := seal.SignDeviceKey(m.identity, m.box.PublicKey(), time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, mailboxTimeout)
	defer cancel()
	return m.rdv.PublishDeviceKey(ctx, key)
}

// depositTo deposits the messages queued for contact that are not in its
// mailbox yet, oldest first, if contact is offline. It stops at the first
// that fails; the outbox asks again at its next round.
func (m *mailbox) depositTo(ctx context.Context, contact string) {
	device, isContact := m.contacts.Lookup(contact)
	me := m.self()
	if !isContact || device != "" || me == "" {
		return // online contacts get their messages directly
	}
	m.mu.Lock()
	wait := time.Now().Before(m.backoffTo[contact])
	m.mu.Unlock()
	if wait {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, mailboxTimeout)
	defer cancel()
	queued, err := m.history.Undeposited(ctx, contact)
	if err != nil {
		log.Errorw("read outbox for the mailbox", "to", contact, "err", err)
		return
	}
	for _, msg := range queued {
		body, err := mailItem(&chatpb.Message{Id: msg.ID, Sender: msg.From, SentUnixMs: msg.Sent.UnixMilli(), Body: msg.Body})
		if err != nil {
			log.Errorw("encode message for the mailbox", "id", msg.ID, "err", err)
			return
		}
		_, err = m.rdv.SendMail(ctx, me, contact, msg.ID, body)
		switch {
		case err == nil:
		case errors.Is(err, rendezvous.ErrContactRequired):
			// Not a contact any more: it can never be delivered.
			m.settled(ctx, msg, func() (bool, error) { return m.history.FailQueued(ctx, msg.ID, err.Error()) }, chat.Failed, err.Error())
			continue
		case errors.Is(err, rendezvous.ErrMailboxFull), errors.Is(err, rendezvous.ErrNotFound):
			// Full, or no device of theirs has a mailbox key: it stays
			// queued on this device.
			log.Infow("mailbox deposit refused; the message stays queued", "to", contact, "id", msg.ID, "err", err, "retry in", mailboxBackoff)
			m.mu.Lock()
			m.backoffTo[contact] = time.Now().Add(mailboxBackoff)
			m.mu.Unlock()
			return
		default:
			if ctx.Err() == nil {
				log.Warnw("mailbox deposit failed; the message stays queued", "to", contact, "id", msg.ID, "err", err)
			}
			return
		}
		m.settled(ctx, msg, func() (bool, error) { return m.history.MarkOnServer(ctx, msg.ID) }, chat.Sent, "")
	}
}

// settled records a new state of a queued message and, if it changed,
// emits it.
func (m *mailbox) settled(ctx context.Context, msg chat.Message, record func() (bool, error), state chat.State, reason string) {
	changed, err := record()
	if err != nil {
		log.Errorw("record message state", "id", msg.ID, "state", state, "err", err)
		return
	}
	if !changed {
		return // delivered directly meanwhile
	}
	msg.State, msg.Error = state, reason
	log.Infow("queued message", "to", msg.To, "id", msg.ID, "state", state, "reason", reason)
	m.emit(apitype.Event{Kind: apitype.EventMessageState, Message: ptr(messageOf(msg))})
}
