package app

import (
	"context"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/rendezvous"
)

// Conversations lists the conversations, the one with the newest message
// first, with their unread counts.
func (e *Engine) Conversations(ctx context.Context) ([]apitype.Conversation, error) {
	convs, err := e.history.Conversations(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Conversation, 0, len(convs))
	for _, c := range convs {
		out = append(out, apitype.Conversation{Contact: c.Contact, Unread: c.Unread, Last: ptr(messageOf(*c.Last))})
	}
	return out, nil
}

// MarkRead marks every message from contact read. The user's other
// devices and contact's devices learn it from one read receipt, which the
// mailbox deposits.
func (e *Engine) MarkRead(ctx context.Context, contact string) (apitype.ReadResult, error) {
	contact, err := rendezvous.CanonicalUsername(contact)
	if err != nil {
		return apitype.ReadResult{}, err
	}
	ids, err := e.history.MarkRead(ctx, contact)
	if err != nil {
		return apitype.ReadResult{}, err
	}
	if len(ids) > 0 {
		e.unread.changed(contact)
		e.mailbox.syncSoon()
	}
	return apitype.ReadResult{Marked: len(ids)}, nil
}
