package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

func contactResponse(accepted bool) *pb.Response {
	resp := okResponse()
	resp.Body = &pb.Response_Contact{Contact: &pb.ContactResponse{Accepted: accepted}}
	return resp
}

// notFound is a NOT_FOUND answer with a message for the user.
func notFound(format string, args ...any) error {
	return &rendezvous.StatusError{Status: pb.Status_STATUS_NOT_FOUND, Message: fmt.Sprintf(format, args...)}
}

// other resolves the user a contact operation names. A missing user is
// ErrNotFound; callers that must not reveal that handle it.
func (s *Server) other(ctx context.Context, me User, username string) (User, error) {
	name, err := rendezvous.CanonicalUsername(username)
	if err != nil {
		return User{}, err
	}
	if name == me.Name {
		return User{}, fmt.Errorf("%w: that is your own username", rendezvous.ErrBadRequest)
	}
	u, err := s.store.UserByName(ctx, name)
	if err != nil {
		return User{}, fmt.Errorf("look up %s: %w", name, err)
	}
	return u, nil
}

// requestContact asks another user to become a contact. The answer is the
// same whether the user exists, has blocked the caller, or was asked
// already: only a mutual request reveals anything (accepted = true).
func (s *Server) requestContact(ctx context.Context, c caller, req *pb.ContactRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	if err := allow("contact request", s.limits.contactAccount, me.Name, s.limits.contactSource, c.source); err != nil {
		return nil, err
	}
	other, err := s.other(ctx, me, req.GetUsername())
	if errors.Is(err, rendezvous.ErrNotFound) {
		log.Debugw("contact request to unknown user", "from", me.Name)
		return contactResponse(false), nil
	}
	if err != nil {
		return nil, err
	}
	res, err := s.store.RequestContact(ctx, me.ID, other.ID)
	if err != nil {
		return nil, fmt.Errorf("request contact: %w", err)
	}
	switch res {
	case Accepted:
		log.Infow("contacts accepted", "a", me.Name, "b", other.Name)
		s.contactsAccepted(ctx, me, other)
		return contactResponse(true), nil
	case Requested:
		s.publish(ctx, Event{Kind: EventContact, UserID: other.ID, Other: me.Name, Change: ContactRequested})
	}
	return contactResponse(false), nil
}

// contactsAccepted tells both users and shows each the other's presence.
func (s *Server) contactsAccepted(ctx context.Context, a, b User) {
	s.publish(ctx, Event{Kind: EventContact, UserID: a.ID, Other: b.Name, Change: ContactAccepted})
	s.publish(ctx, Event{Kind: EventContact, UserID: b.ID, Other: a.Name, Change: ContactAccepted})
	s.publish(ctx, Event{Kind: EventPresence, UserID: a.ID})
	s.publish(ctx, Event{Kind: EventPresence, UserID: b.ID})
}

// contactOp runs a contact operation that needs the other user to exist.
func (s *Server) contactOp(ctx context.Context, c caller, username string, op func(me, other User) error) error {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return err
	}
	other, err := s.other(ctx, me, username)
	if errors.Is(err, rendezvous.ErrNotFound) {
		return notFound("no user %q in your contact book", username)
	}
	if err != nil {
		return err
	}
	return op(me, other)
}

func (s *Server) acceptContact(ctx context.Context, c caller, req *pb.ContactRequest) (*pb.Response, error) {
	err := s.contactOp(ctx, c, req.GetUsername(), func(me, other User) error {
		if err := s.store.AcceptContact(ctx, me.ID, other.ID); err != nil {
			if errors.Is(err, rendezvous.ErrNotFound) {
				return notFound("%s has not asked to be your contact", other.Name)
			}
			return fmt.Errorf("accept contact: %w", err)
		}
		log.Infow("contacts accepted", "a", me.Name, "b", other.Name)
		s.contactsAccepted(ctx, me, other)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return contactResponse(true), nil
}

// declineContact drops a pending request. The requester is not told.
func (s *Server) declineContact(ctx context.Context, c caller, req *pb.ContactRequest) (*pb.Response, error) {
	err := s.contactOp(ctx, c, req.GetUsername(), func(me, other User) error {
		if err := s.store.DeclineContact(ctx, me.ID, other.ID); err != nil {
			if errors.Is(err, rendezvous.ErrNotFound) {
				return notFound("%s has not asked to be your contact", other.Name)
			}
			return fmt.Errorf("decline contact: %w", err)
		}
		// The caller's other devices drop the request too.
		s.publish(ctx, Event{Kind: EventContact, UserID: me.ID, Other: other.Name, Change: ContactRemoved})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return contactResponse(false), nil
}

// removeContact ends a contact, or withdraws the caller's own request.
func (s *Server) removeContact(ctx context.Context, c caller, req *pb.ContactRequest) (*pb.Response, error) {
	err := s.contactOp(ctx, c, req.GetUsername(), func(me, other User) error {
		if err := s.store.RemoveContact(ctx, me.ID, other.ID); err != nil {
			if errors.Is(err, rendezvous.ErrNotFound) {
				return notFound("%s is not your contact", other.Name)
			}
			return fmt.Errorf("remove contact: %w", err)
		}
		log.Infow("contact removed", "by", me.Name, "other", other.Name)
		s.publish(ctx, Event{Kind: EventContact, UserID: other.ID, Other: me.Name, Change: ContactRemoved})
		s.publish(ctx, Event{Kind: EventContact, UserID: me.ID, Other: other.Name, Change: ContactRemoved})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return contactResponse(false), nil
}

// block removes any contact or request between the two users and stops
// the other's requests. The blocked user is told only what a removal
// would tell them: a contact disappears, a request is never answered.
func (s *Server) block(ctx context.Context, c caller, req *pb.ContactRequest) (*pb.Response, error) {
	err := s.contactOp(ctx, c, req.GetUsername(), func(me, other User) error {
		book, err := s.store.ContactLists(ctx, me.ID)
		if err != nil {
			return fmt.Errorf("list contacts: %w", err)
		}
		if err := s.store.Block(ctx, me.ID, other.ID); err != nil {
			return fmt.Errorf("block: %w", err)
		}
		log.Infow("user blocked", "by", me.Name, "other", other.Name)
		if containsUser(book.Accepted, other.ID) || containsUser(book.Outgoing, other.ID) {
			s.publish(ctx, Event{Kind: EventContact, UserID: other.ID, Other: me.Name, Change: ContactRemoved})
		}
		s.publish(ctx, Event{Kind: EventContact, UserID: me.ID, Other: other.Name, Change: ContactRemoved})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return contactResponse(false), nil
}

func (s *Server) unblock(ctx context.Context, c caller, req *pb.ContactRequest) (*pb.Response, error) {
	err := s.contactOp(ctx, c, req.GetUsername(), func(me, other User) error {
		if err := s.store.Unblock(ctx, me.ID, other.ID); err != nil {
			if errors.Is(err, rendezvous.ErrNotFound) {
				return notFound("%s is not blocked", other.Name)
			}
			return fmt.Errorf("unblock: %w", err)
		}
		log.Infow("user unblocked", "by", me.Name, "other", other.Name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return contactResponse(false), nil
}

func (s *Server) listContacts(ctx context.Context, c caller) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	book, err := s.store.ContactLists(ctx, me.ID)
	if err != nil {
		return nil, fmt.Errorf("list contacts of %s: %w", me.Name, err)
	}
	accepted, err := s.presenceOfAll(ctx, book.Accepted)
	if err != nil {
		return nil, err
	}
	resp := okResponse()
	resp.Body = &pb.Response_Contacts{Contacts: &pb.ContactList{
		Accepted: accepted,
		Incoming: names(book.Incoming),
		Outgoing: names(book.Outgoing),
		Blocked:  names(book.Blocked),
	}}
	return resp, nil
}

func containsUser(us []User, id int64) bool {
	for _, u := range us {
		if u.ID == id {
			return true
		}
	}
	return false
}

func names(us []User) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.Name)
	}
	return out
}
