package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	chatpb "github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

// receive fetches the mail waiting for this device, stores each item
// (a contact's message, a copy from this user's other devices, a receipt)
// in the history and acknowledges it. An item that can never be stored
// (it does not open, is not from a contact's or this user's device, or
// breaks the chat rules) is acknowledged and dropped. An error (the
// server, the history) leaves the rest on the server for the next try.
func (m *mailbox) receive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, mailboxTimeout)
	defer cancel()
	r := &mailRound{m: m, delivered: make(map[string][]string), unread: make(map[string]bool)}
	defer r.finish()
	for {
		mail, more, err := m.rdv.FetchMail(ctx, 0)
		if err != nil {
			return err
		}
		var done []uint64
		var stopErr error
		for _, ml := range mail {
			if err := r.receiveOne(ctx, ml); err != nil {
				var drop *dropError
				if !errors.As(err, &drop) {
					stopErr = err
					break
				}
				log.Warnw("mail dropped", "id", ml.ID, "from", ml.Sender, "err", err)
			}
			done = append(done, ml.ID)
		}
		// The receipts owed for what was stored are recorded before the
		// mail is acknowledged: a crash between the two owes them still.
		if err := r.oweDelivered(ctx); err != nil {
			return err
		}
		if len(done) > 0 {
			if _, err := m.rdv.AckMail(ctx, done); err != nil {
				return err
			}
		}
		if stopErr != nil {
			return stopErr
		}
		if !more || len(mail) == 0 {
			return nil
		}
	}
}

// mailRound is one receive and what it owes.
type mailRound struct {
	m *mailbox
	// delivered are the messages from each contact that came through the
	// mailbox (not copies): their senders get a delivery receipt.
	delivered map[string][]string
	unread    map[string]bool // contacts whose unread count changed
}

// finish tells about changed unread counts and asks for the owed receipts
// to be deposited.
func (r *mailRound) finish() {
	for c := range r.unread {
		r.m.unread(c)
	}
	r.m.syncSoon()
}

func (r *mailRound) oweDelivered(ctx context.Context) error {
	for contact, ids := range r.delivered {
		if err := r.m.history.OweDelivered(ctx, contact, ids); err != nil {
			return err
		}
		delete(r.delivered, contact)
	}
	return nil
}

// dropError is a message that can never be stored: acknowledge it.
type dropError struct{ err error }

func (e *dropError) Error() string { return e.err.Error() }
func (e *dropError) Unwrap() error { return e.err }

// receiveOne opens one item and stores it.
func (r *mailRound) receiveOne(ctx context.Context, ml client.Mail) error {
	m := r.m
	me := m.self()
	if me == "" {
		return errors.New("receive mail: not logged in")
	}
	if _, ok := m.contacts.Lookup(ml.Sender); !ok && ml.Sender != me {
		return &dropError{fmt.Errorf("receive mail from %s: %w", ml.Sender, chat.ErrNotAContact)}
	}
	known, err := m.keys.hasDevice(ctx, ml.Sender, ml.SenderDevice)
	if errors.Is(err, rendezvous.ErrContactRequired) {
		return &dropError{err}
	}
	if err != nil {
		return err // try again later
	}
	senderOK := func(user string, p peer.ID) bool { return known && user == ml.Sender && p == ml.SenderDevice }
	opened, err := m.rdv.OpenMail(m.box, ml, senderOK)
	if err != nil {
		return &dropError{err}
	}
	item, err := decodeMailItem(opened)
	if err != nil {
		return &dropError{err}
	}
	if rc := item.GetReceipt(); rc != nil {
		return r.receipt(ctx, me, opened.SenderUser, rc)
	}
	msg, err := mailMessage(opened, item.GetMessage(), me, m.contacts)
	if err != nil {
		return &dropError{err}
	}
	fresh, err := m.history.Add(ctx, msg)
	if err != nil {
		return err
	}
	if !fresh {
		return nil
	}
	log.Debugw("message received from the mailbox", "from", msg.From, "to", msg.To, "id", msg.ID)
	m.emit(apitype.Event{Kind: apitype.EventMessage, Message: ptr(messageOf(msg))})
	if msg.Incoming {
		r.unread[msg.From] = true
		if !msg.Copy {
			r.delivered[msg.From] = append(r.delivered[msg.From], msg.ID)
		}
	}
	return nil
}

// receipt applies a receipt from user author.
func (r *mailRound) receipt(ctx context.Context, me, author string, rc *chatpb.Receipt) error {
	kind := chat.ReceiptKind(rc.GetKind())
	ids := rc.GetIds()
	switch {
	case kind != chat.ReceiptDelivered && kind != chat.ReceiptRead:
		return &dropError{fmt.Errorf("receipt from %s: unknown kind %d", author, rc.GetKind())}
	case len(ids) == 0 || len(ids) > chat.MaxReceiptIDs:
		return &dropError{fmt.Errorf("receipt from %s: %d messages, want 1 to %d", author, len(ids), chat.MaxReceiptIDs)}
	}
	for _, id := range ids {
		if err := chat.CheckID(id); err != nil {
			return &dropError{fmt.Errorf("receipt from %s: %w", author, err)}
		}
	}
	changed, err := r.m.history.ApplyReceipt(ctx, me, author, kind, ids)
	if err != nil {
		return err
	}
	for _, msg := range changed {
		r.m.emit(apitype.Event{Kind: apitype.EventMessageState, Message: ptr(messageOf(msg))})
		if msg.Incoming {
			r.unread[msg.From] = true
		}
	}
	return nil
}

// decodeMailItem reads what a device sealed: a MailItem, or a bare chat
// message (from the previous release).
func decodeMailItem(opened *seal.Message) (*chatpb.MailItem, error) {
	var item chatpb.MailItem
	if err := proto.Unmarshal(opened.Body, &item); err != nil {
		return nil, fmt.Errorf("mail %s from %s: not a mailbox item: %w", opened.ID, opened.SenderUser, err)
	}
	if item.GetItem() != nil {
		return &item, nil
	}
	var pm chatpb.Message
	if err := proto.Unmarshal(opened.Body, &pm); err != nil {
		return nil, fmt.Errorf("mail %s from %s: not a chat message: %w", opened.ID, opened.SenderUser, err)
	}
	return &chatpb.MailItem{Item: &chatpb.MailItem_Message{Message: &pm}}, nil
}

// mailMessage is an opened mailbox message as the history keeps it,
// checked as chat checks a message that comes over a stream: a
// contact's message to this user, or a sent copy from another device of
// this user (me) of a message to a contact.
func mailMessage(opened *seal.Message, pm *chatpb.Message, me string, contacts chat.Contacts) (chat.Message, error) {
	if pm.GetId() != opened.ID || pm.GetSender() != opened.SenderUser {
		return chat.Message{}, fmt.Errorf("mail %s from %s: the chat message inside is %s from %s", opened.ID, opened.SenderUser, pm.GetId(), pm.GetSender())
	}
	if err := chat.CheckIncoming(opened.ID, pm.GetBody()); err != nil {
		return chat.Message{}, fmt.Errorf("mail %s from %s: %w", opened.ID, opened.SenderUser, err)
	}
	msg := chat.Message{
		ID: pm.GetId(), From: opened.SenderUser, To: me, Sent: time.UnixMilli(pm.GetSentUnixMs()),
		Body: pm.GetBody(), Incoming: true, State: chat.Received, Path: MailboxPath, Copy: pm.GetCopy(),
	}
	if opened.SenderUser != me {
		if to := pm.GetRecipient(); to != "" && to != me {
			return chat.Message{}, fmt.Errorf("mail %s from %s: addressed to %s", opened.ID, opened.SenderUser, to)
		}
		return msg, nil
	}
	// A sent copy: what another device of this user sent to a contact.
	to := pm.GetRecipient()
	if _, ok := contacts.Lookup(to); !ok {
		return chat.Message{}, fmt.Errorf("sent copy %s: %q is not a contact", opened.ID, to)
	}
	msg.To, msg.Incoming, msg.State, msg.Path, msg.Copy = to, false, chat.Sent, "", true
	if pm.GetDelivered() {
		msg.State, msg.Path = chat.Delivered, chat.SafePath(pm.GetPath())
	}
	return msg, nil
}
