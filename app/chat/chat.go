package chat

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/node"
)

// ProtocolID is the chat protocol: one long-lived stream per
// conversation direction, messages pipelined, one ack per message.
const ProtocolID = "/parley/chat/2.0.0"

// ProtocolV1 is the protocol of the previous release (one stream per
// message). Its streams are a special case of ProtocolID's (a stream of
// one message), so the same handler answers them, for one release.
const ProtocolV1 = "/parley/chat/1.0.0"

// Limits and timings of the protocol.
const (
	MaxBodySize  = 16 << 10 // bytes of UTF-8 in one message
	MaxFrameSize = 20 << 10 // one Message or Ack frame
	maxIDLen     = 64
	// Window is how many messages a sender has on a stream without their
	// acks.
	Window = 256
	// MaxInflightBytes bounds the bytes of messages without their acks,
	// so that a slow path (a busy relay) still acks within AckTimeout:
	// a path slower than MaxInflightBytes per AckTimeout counts as dead.
	MaxInflightBytes = 128 << 10
	// maxBatch is how many frames are taken together: the recipient
	// stores that many messages in one transaction.
	maxBatch = Window
	// readBuffer is the recipient's stream buffer: what one read takes
	// from the stream, so about what can be a batch (a window of short
	// messages). It is most of a conversation's memory.
	readBuffer = 16 << 10
	// AckTimeout is how long a sender waits for the next ack while
	// messages are outstanding (and for a stream to open on a connection
	// that stands). Past it the connection counts as dead: it is closed
	// and the messages go again on a new stream, through a supernode if
	// the dead path was direct.
	AckTimeout = 2 * time.Second
	// RedialTimeout bounds the dial after a path was given up: with the
	// ack deadline, a message sent on a dead path is through a supernode,
	// or back queued, within AckTimeout + RedialTimeout.
	RedialTimeout = 2500 * time.Millisecond
	// DirectRetryAfter is how long a peer whose direct path died is
	// dialled through relays only.
	DirectRetryAfter = 30 * time.Second
	// IdleTimeout is how long a sender keeps a stream with nothing to
	// send; RecvIdleTimeout is how long a recipient waits for the next
	// message.
	IdleTimeout     = 30 * time.Second
	RecvIdleTimeout = IdleTimeout + 30*time.Second
	// ExchangeTimeout bounds preparing a connection (reach, dial) and
	// storing a batch.
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

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // conversations, ack readers, stream handlers

	mu        sync.Mutex // guards the following
	onMessage func(Message)
	convs     map[string]*conv // by contact, while its goroutine runs
	inbound   map[network.Stream]struct{}
	closed    bool
}

// NewService starts handling ProtocolID (and ProtocolV1) on n. self
// returns the current username; reach (may be nil) is called before a
// stream is opened to a contact's device.
func NewService(n *node.Node, history *History, contacts Contacts, self func() string, reach Reach) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		node: n, history: history, contacts: contacts, self: self, reach: reach,
		ctx: ctx, cancel: cancel,
		convs: make(map[string]*conv), inbound: make(map[network.Stream]struct{}),
	}
	n.SetStreamHandler(ProtocolID, s.handle)
	n.SetStreamHandler(ProtocolV1, s.handle)
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

// ErrClosed means the service was closed.
var ErrClosed = errors.New("chat service closed")

// Close stops handling the protocol, ends every stream and waits for the
// service's goroutines. Messages not acknowledged yet stay queued.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	streams := make([]network.Stream, 0, len(s.inbound))
	for st := range s.inbound {
		streams = append(streams, st)
	}
	s.mu.Unlock()
	s.node.RemoveStreamHandler(ProtocolID)
	s.node.RemoveStreamHandler(ProtocolV1)
	s.cancel()
	for _, st := range streams {
		_ = st.Reset()
	}
	s.wg.Wait()
	return nil
}

// post hands a new message or a flush to the conversation with a
// contact, starting its goroutine if it is not running.
func (s *Service) post(to string, o *outgoing, f *flushReq) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	c, ok := s.convs[to]
	if !ok {
		c = newConv(s, to)
		s.convs[to] = c
		s.wg.Go(func() { c.run(s.ctx) })
	}
	c.post(o, f)
	return nil
}

// retire ends c's turn if nothing was posted to it meanwhile: the next
// post starts a new conversation.
func (s *Service) retire(c *conv) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.in) > 0 || len(c.flushes) > 0 {
		return false
	}
	delete(s.convs, c.to)
	return true
}

// Send stores a message to a contact in the outbox and delivers the
// contact's outbox in order, over the conversation's stream. It returns
// the message in its resulting state: Delivered with the path it took,
// or Queued when the contact is offline or unreachable (Flush delivers it
// later). A message the recipient refuses for good is returned as Failed
// together with an ErrRejected error. Sends may run concurrently: they are
// pipelined on one stream, in the order they were called.
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
	o := &outgoing{m: m, reply: make(chan sendResult, 1)}
	if err := s.post(to, o, nil); err != nil {
		return Message{}, fmt.Errorf("send to %s: %w", to, err)
	}
	select {
	case r := <-o.reply:
		switch {
		case r.err != nil:
			return Message{}, fmt.Errorf("send to %s: %w", to, r.err)
		case r.m.State == Failed:
			return r.m, fmt.Errorf("send to %s: %w: %s", to, ErrRejected, r.m.Error)
		}
		return r.m, nil
	case <-ctx.Done():
		// It may be stored and delivered yet; the history will say.
		return Message{}, fmt.Errorf("send to %s: %w", to, ctx.Err())
	}
}

// Flush delivers the messages queued for a contact, oldest first, and
// returns those it settled (Delivered or Failed). It stops at the first
// message that cannot be delivered now, so order is kept; that message and
// the ones after it stay queued and the error says why.
func (s *Service) Flush(ctx context.Context, to string) ([]Message, error) {
	p, ok := s.contacts.Lookup(to)
	if !ok {
		return nil, ErrNotAContact
	}
	if p == "" {
		return nil, ErrOffline
	}
	f := &flushReq{reply: make(chan flushResult, 1)}
	if err := s.post(to, nil, f); err != nil {
		return nil, err
	}
	select {
	case r := <-f.reply:
		return r.settled, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CheckIncoming applies the rules an incoming message's id and body
// must meet, whichever way it came (a stream, the mailbox).
func CheckIncoming(id, body string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	return checkBody(body)
}

// CheckID applies the rule a message id must meet.
func CheckID(id string) error {
	if id == "" || len(id) > maxIDLen {
		return fmt.Errorf("%w: message id missing or too long", ErrInvalidMessage)
	}
	return nil
}

// maxPathLen bounds a path label another device reports (a sent copy's).
const maxPathLen = 200

// SafePath is a path label another device of the user reported, or ""
// if it is not one: longer than maxPathLen or not UTF-8.
func SafePath(p string) string {
	if len(p) > maxPathLen || !utf8.ValidString(p) {
		return ""
	}
	return p
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

// lastIDTime is the time part of the last id newID made.
var lastIDTime atomic.Int64

// newID makes a message id: 8 bytes of time (microseconds, made to
// increase on this device) then 8 random bytes, in hex. Messages a device
// sends in the same millisecond are ordered by their ids, so every device
// shows them in the order they were sent.
func newID() string {
	now := time.Now().UnixMicro()
	for {
		last := lastIDTime.Load()
		if now <= last {
			now = last + 1
		}
		if lastIDTime.CompareAndSwap(last, now) {
			break
		}
	}
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(now))
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b)
}
