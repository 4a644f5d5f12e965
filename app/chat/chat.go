package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/chat/pb"
	"github.com/parleynet/parley/internal/wire"
	"github.com/parleynet/parley/node"
)

// ProtocolID is the chat protocol.
const ProtocolID = "/parley/chat/1.0.0"

// Limits of the protocol.
const (
	MaxBodySize     = 16 << 10 // bytes of UTF-8 in one message
	MaxFrameSize    = 20 << 10 // one Message or Ack frame
	maxIDLen        = 64
	ExchangeTimeout = 30 * time.Second
)

var (
	// ErrNotLoggedIn means there is no user to send as.
	ErrNotLoggedIn = errors.New("not logged in; register or enrol this device first")
	// ErrNotAContact means the username is not an accepted contact.
	ErrNotAContact = errors.New("not a contact; both of you must add each other first")
	// ErrOffline means the contact has no device online.
	ErrOffline = errors.New("contact is offline")
	// ErrRejected means the recipient refused the message for good; the
	// error carries its reason.
	ErrRejected = errors.New("message rejected by recipient")
	// ErrInvalidMessage means a message body breaks the rules (empty,
	// longer than MaxBodySize, not UTF-8); the error says which.
	ErrInvalidMessage = errors.New("invalid message")
	// errTryLater means the recipient cannot take the message now, for
	// example because its view of presence lags; the message stays queued.
	errTryLater = errors.New("recipient asks to try later")
)

// Contacts maps between usernames and the devices they are online on. The
// client engine implements it from presence.
type Contacts interface {
	// Lookup reports whether username is an accepted contact and, if it is
	// online, its device ("" when offline).
	Lookup(username string) (device peer.ID, isContact bool)
	// UsernameOf returns the contact whose online device is p.
	UsernameOf(p peer.ID) (string, bool)
}

// Reach prepares a connection to a contact's device before a stream is
// opened to it (the client engine presents its certificate to the
// supernodes the device is reached through). It may be nil.
type Reach func(ctx context.Context, p peer.ID) error

// Service sends and receives chat messages for one logged-in user.
type Service struct {
	node     *node.Node
	history  *History
	contacts Contacts
	self     func() string // the logged-in username, "" if none
	reach    Reach

	flushMu sync.Mutex // one outbox flush at a time, so messages keep their order

	mu        sync.Mutex // guards the following
	onMessage func(Message)
}

// NewService starts handling ProtocolID on n. self returns the current
// username; reach (may be nil) is called before each delivery.
func NewService(n *node.Node, history *History, contacts Contacts, self func() string, reach Reach) *Service {
	s := &Service{node: n, history: history, contacts: contacts, self: self, reach: reach}
	n.SetStreamHandler(ProtocolID, s.handle)
	return s
}

// OnMessage sets the function called for each new incoming message (not
// for duplicates). It is called from stream handler goroutines, possibly
// concurrently, after the message is stored and before it is acknowledged.
func (s *Service) OnMessage(f func(Message)) {
	s.mu.Lock()
	s.onMessage = f
	s.mu.Unlock()
}

// Close stops handling the protocol.
func (s *Service) Close() error {
	s.node.RemoveStreamHandler(ProtocolID)
	return nil
}

// Send stores a message to a contact in the outbox and delivers the
// contact's outbox in order. It returns the message in its resulting
// state: Delivered, or Queued when the contact is offline or unreachable
// (Flush delivers it later). A message the recipient refuses for good is
// returned as Failed together with an ErrRejected error.
func (s *Service) Send(ctx context.Context, to, body string) (Message, error) {
	if err := checkBody(body); err != nil {
		return Message{}, fmt.Errorf("send: %w", err)
	}
	me := s.self()
	if me == "" {
		return Message{}, fmt.Errorf("send: %w", ErrNotLoggedIn)
	}
	if _, ok := s.contacts.Lookup(to); !ok {
		return Message{}, fmt.Errorf("send to %s: %w", to, ErrNotAContact)
	}
	// Sent in milliseconds, as the history and the wire keep it: a queued
	// message returned now says what the history will say.
	m := Message{ID: newID(), From: me, To: to, Sent: time.UnixMilli(time.Now().UnixMilli()), Body: body, State: Queued}
	if _, err := s.history.Add(ctx, m); err != nil {
		return Message{}, err
	}
	settled, err := s.Flush(ctx, to)
	for _, d := range settled {
		if d.ID == m.ID {
			if d.State == Failed {
				return d, fmt.Errorf("send to %s: %w: %s", to, ErrRejected, d.Error)
			}
			return d, nil
		}
	}
	log.Infow("message queued", "to", to, "id", m.ID, "reason", err)
	return m, nil
}

// Flush delivers the messages queued for a contact, oldest first, and
// returns those it settled (Delivered or Failed). It stops at the first
// message that cannot be delivered now, so order is kept; that message and
// the ones after it stay queued and the error says why.
func (s *Service) Flush(ctx context.Context, to string) ([]Message, error) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	p, ok := s.contacts.Lookup(to)
	if !ok {
		return nil, ErrNotAContact
	}
	if p == "" {
		return nil, ErrOffline
	}
	queued, err := s.history.Outbox(ctx, to)
	if err != nil {
		return nil, err
	}
	var settled []Message
	for _, m := range queued {
		err := s.exchange(ctx, p, m)
		switch {
		case err == nil:
			m.State, m.Path = Delivered, s.node.PathTo(p).String()
			log.Infow("message delivered", "to", to, "id", m.ID, "path", m.Path)
		case errors.Is(err, ErrRejected):
			m.State, m.Error = Failed, err.Error()
			log.Infow("message rejected", "to", to, "id", m.ID, "reason", err)
		default:
			return settled, err
		}
		if err := s.history.settle(ctx, m.ID, m.State, m.Path, m.Error); err != nil {
			return settled, err
		}
		settled = append(settled, m)
	}
	return settled, nil
}

func (s *Service) exchange(ctx context.Context, p peer.ID, m Message) error {
	ctx, cancel := context.WithTimeout(ctx, ExchangeTimeout)
	defer cancel()
	// A relayed connection is fine for chat; without this, NewStream on a
	// limited connection waits for a direct one.
	ctx = network.WithAllowLimitedConn(ctx, "chat")
	if s.reach != nil {
		if err := s.reach(ctx, p); err != nil {
			return fmt.Errorf("reach %s: %w", p, err)
		}
	}
	st, err := s.node.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return fmt.Errorf("open chat stream: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	msg := &pb.Message{Id: m.ID, Sender: m.From, SentUnixMs: m.Sent.UnixMilli(), Body: m.Body}
	if err := wire.Write(st, msg, MaxFrameSize); err != nil {
		st.Reset()
		return err
	}
	_ = st.CloseWrite()
	ack := new(pb.Ack)
	if err := wire.NewReader(st, MaxFrameSize).Read(ack); err != nil {
		st.Reset()
		return fmt.Errorf("read acknowledgement: %w", err)
	}
	switch {
	case ack.GetId() != m.ID:
		return fmt.Errorf("acknowledgement for another message (%q)", ack.GetId())
	case ack.GetStatus() == pb.Status_STATUS_DELIVERED:
		return nil
	case ack.GetStatus() == pb.Status_STATUS_TRY_LATER:
		return fmt.Errorf("%w: %s", errTryLater, ack.GetError())
	default:
		return fmt.Errorf("%w: %s", ErrRejected, ack.GetError())
	}
}

func (s *Service) handle(st network.Stream) {
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(ExchangeTimeout))
	remote := st.Conn().RemotePeer()
	msg := new(pb.Message)
	if err := wire.NewReader(st, MaxFrameSize).Read(msg); err != nil {
		log.Debugw("bad chat frame", "peer", remote, "err", err)
		st.Reset()
		return
	}
	ack := &pb.Ack{Id: msg.GetId(), Status: pb.Status_STATUS_DELIVERED}
	if status, err := s.accept(remote, msg); err != nil {
		log.Infow("chat message not accepted", "peer", remote, "reason", err)
		ack.Status, ack.Error = status, err.Error()
	}
	if err := wire.Write(st, ack, MaxFrameSize); err != nil {
		log.Debugw("write chat ack", "peer", remote, "err", err)
		st.Reset()
	}
}

// accept validates and stores an incoming message. Its error is sent to
// the sender, so it says nothing the sender should not know.
func (s *Service) accept(remote peer.ID, msg *pb.Message) (pb.Status, error) {
	me := s.self()
	if me == "" {
		return pb.Status_STATUS_TRY_LATER, errors.New("recipient is not logged in")
	}
	if id := msg.GetId(); id == "" || len(id) > maxIDLen {
		return pb.Status_STATUS_REJECTED, errors.New("message id missing or too long")
	}
	if err := checkBody(msg.GetBody()); err != nil {
		return pb.Status_STATUS_REJECTED, err
	}
	sender, ok := s.contacts.UsernameOf(remote)
	if !ok {
		return pb.Status_STATUS_TRY_LATER, errors.New("you are not a contact of the recipient")
	}
	if sender != msg.GetSender() {
		return pb.Status_STATUS_REJECTED, fmt.Errorf("sender %q does not match the sending device", msg.GetSender())
	}
	m := Message{
		ID: msg.GetId(), From: sender, To: me, Sent: time.UnixMilli(msg.GetSentUnixMs()),
		Body: msg.GetBody(), Incoming: true, State: Received, Path: s.node.PathTo(remote).String(),
	}
	ctx, cancel := context.WithTimeout(context.Background(), ExchangeTimeout)
	defer cancel()
	fresh, err := s.history.Add(ctx, m)
	if err != nil {
		log.Errorw("store incoming message", "err", err)
		return pb.Status_STATUS_TRY_LATER, errors.New("recipient could not store the message; try again")
	}
	if !fresh {
		return pb.Status_STATUS_DELIVERED, nil // a retry of a message we already have
	}
	log.Infow("message received", "from", sender, "id", m.ID, "path", m.Path)
	s.mu.Lock()
	f := s.onMessage
	s.mu.Unlock()
	if f != nil {
		f(m)
	}
	return pb.Status_STATUS_DELIVERED, nil
}

func checkBody(body string) error {
	switch {
	case body == "":
		return fmt.Errorf("%w: the message is empty", ErrInvalidMessage)
	case len(body) > MaxBodySize:
		return fmt.Errorf("%w: the message is longer than %d bytes", ErrInvalidMessage, MaxBodySize)
	case !utf8.ValidString(body):
		return fmt.Errorf("%w: the message is not valid UTF-8", ErrInvalidMessage)
	}
	return nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
