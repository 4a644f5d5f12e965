// Package app is what a Parley user does: it runs the client engine that
// ties together the device's node, relay reservations, the rendezvous login
// session with contacts' presence, and chat (package app/chat).
package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

var log = logging.Logger("parley/app")

// Config configures an Engine. DataDir and Rendezvous are required; the
// zero value of every other field is valid.
type Config struct {
	// DataDir holds the device key (identity.key, 0600) and the chat
	// history (history.db).
	DataDir string
	// Rendezvous is the server the user logs in to.
	Rendezvous peer.AddrInfo
	// ListenAddrs are the node's listen addresses; nil means
	// node.DefaultListenAddrs.
	ListenAddrs []string
	// Reachability overrides AutoNAT. A client that is not declared public
	// keeps relay reservations on supernodes.
	Reachability node.Reachability
	// NATImitation makes the client refuse unsolicited inbound connections,
	// as if behind a NAT (the loopback testnet uses it).
	NATImitation bool
	// ReserveInterval is how often relay reservations are checked. Zero
	// means 30s.
	ReserveInterval time.Duration
	// RetryInterval is the wait before logging in again after the session
	// is lost. Zero means 5s.
	RetryInterval time.Duration
}

// Engine is a running Parley client for one device.
type Engine struct {
	cfg      Config
	node     *node.Node
	rdv      *client.Client
	reserver *relay.Reserver // nil when publicly reachable
	history  *chat.History
	chat     *chat.Service
	kick     chan struct{} // asks the session loop to log in now
	flush    chan struct{} // asks the outbox loop to deliver now
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex // guards the following
	session  *client.Session
	username string
	loggedIn chan struct{} // closed while a session is up; replaced on logout
	contacts map[string]client.Presence
	subs     map[chan Event]struct{}
}

// Start runs the engine. It logs in at once if this device is enrolled;
// otherwise call Register or Enrol.
func Start(cfg Config) (_ *Engine, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("engine: no data directory")
	}
	if cfg.Rendezvous.ID == "" {
		return nil, errors.New("engine: no rendezvous server")
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 5 * time.Second
	}
	e := &Engine{
		cfg:      cfg,
		kick:     make(chan struct{}, 1),
		flush:    make(chan struct{}, 1),
		loggedIn: make(chan struct{}),
		contacts: make(map[string]client.Presence),
		subs:     make(map[chan Event]struct{}),
	}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	opts := []node.Option{node.WithIdentity(filepath.Join(cfg.DataDir, "identity.key")), node.WithReachability(cfg.Reachability)}
	if cfg.ListenAddrs != nil {
		opts = append(opts, node.WithListenAddrs(cfg.ListenAddrs...))
	}
	if cfg.NATImitation {
		opts = append(opts, node.WithNATImitation())
	}
	if e.node, err = node.New(opts...); err != nil {
		return nil, err
	}
	if e.history, err = chat.OpenHistory(filepath.Join(cfg.DataDir, "history.db")); err != nil {
		return nil, err
	}
	e.rdv = client.New(e.node, cfg.Rendezvous)
	e.chat = chat.NewService(e.node, e.history, contactBook{e}, e.Username)
	e.chat.OnMessage(func(m chat.Message) { e.emit(Event{Kind: EventMessage, Message: &m}) })
	if cfg.Reachability != node.ReachabilityPublic {
		source := func(ctx context.Context) ([]peer.AddrInfo, error) { return e.rdv.Supernodes(ctx, 0) }
		e.reserver = relay.StartReserver(e.node, source, relay.ReserverConfig{
			Interval: cfg.ReserveInterval,
			OnChange: e.circuitsChanged,
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	e.wg.Add(2)
	go e.sessionLoop(ctx)
	go e.outboxLoop(ctx)
	return e, nil
}

// Close logs out and stops everything the engine started.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		if e.cancel != nil {
			e.cancel()
		}
		e.mu.Lock()
		sess := e.session
		e.mu.Unlock()
		if sess != nil {
			sess.Close()
		}
		e.wg.Wait()
		var errs []error
		if e.reserver != nil {
			errs = append(errs, e.reserver.Close())
		}
		if e.chat != nil {
			errs = append(errs, e.chat.Close())
		}
		if e.node != nil {
			errs = append(errs, e.node.Close())
		}
		if e.history != nil {
			errs = append(errs, e.history.Close())
		}
		e.closeErr = errors.Join(errs...)
	})
	return e.closeErr
}

// Node is the engine's libp2p node.
func (e *Engine) Node() *node.Node { return e.node }

// Username is the logged-in user, or "" when logged out.
func (e *Engine) Username() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.username
}

// Register creates an account with this device and waits until it is
// logged in.
func (e *Engine) Register(ctx context.Context, username, password string) error {
	if _, err := e.rdv.Register(ctx, username, password); err != nil {
		return err
	}
	return e.AwaitLogin(ctx)
}

// Enrol adds this device to an existing account and waits until it is
// logged in.
func (e *Engine) Enrol(ctx context.Context, username, password string) error {
	if _, err := e.rdv.Enrol(ctx, username, password); err != nil {
		return err
	}
	return e.AwaitLogin(ctx)
}

// AwaitLogin asks for a login now and waits until a session is up.
func (e *Engine) AwaitLogin(ctx context.Context) error {
	select {
	case e.kick <- struct{}{}:
	default:
	}
	e.mu.Lock()
	ch := e.loggedIn
	e.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for login: %w", ctx.Err())
	}
}

// AddContact asks for username as a contact. It reports whether the two
// are now contacts (the other side had asked too).
func (e *Engine) AddContact(ctx context.Context, username string) (bool, error) {
	return e.rdv.AddContact(ctx, username)
}

// Send sends a chat message to a contact. A contact who is offline or
// unreachable gets it later: the message comes back in state chat.Queued
// and the engine delivers it when the contact is online.
func (e *Engine) Send(ctx context.Context, to, body string) (chat.Message, error) {
	to, err := rendezvous.CanonicalUsername(to)
	if err != nil {
		return chat.Message{}, err
	}
	return e.chat.Send(ctx, to, body)
}

// History returns the last limit messages with a contact, oldest first.
func (e *Engine) History(ctx context.Context, contact string, limit int) ([]chat.Message, error) {
	contact, err := rendezvous.CanonicalUsername(contact)
	if err != nil {
		return nil, err
	}
	return e.history.With(ctx, contact, limit)
}

// advertisedAddrs are the device's direct addresses and its circuit
// addresses through supernodes.
func (e *Engine) advertisedAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range e.node.Addrs() {
		if !node.IsCircuit(a) {
			out = append(out, a)
		}
	}
	if e.reserver != nil {
		out = append(out, e.reserver.CircuitAddrs()...)
	}
	return out
}

func (e *Engine) circuitsChanged([]ma.Multiaddr) {
	e.emit(Event{Kind: EventSupernodes, Supernodes: e.Supernodes()})
	e.mu.Lock()
	sess := e.session
	e.mu.Unlock()
	if sess == nil {
		return
	}
	if err := sess.UpdateAddrs(e.advertisedAddrs()); err != nil {
		log.Warnw("update presence addresses", "err", err)
	}
}

// Supernodes returns the supernodes this device holds relay slots on.
func (e *Engine) Supernodes() []peer.ID {
	if e.reserver == nil {
		return nil
	}
	return e.reserver.Supernodes()
}

func (e *Engine) sessionLoop(ctx context.Context) {
	defer e.wg.Done()
	for {
		sess, err := e.rdv.Login(ctx, e.advertisedAddrs())
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, rendezvous.ErrDeviceNotEnrolled):
			log.Infow("device not enrolled; waiting for register or enrol", "peer", e.node.ID())
			select {
			case <-ctx.Done():
				return
			case <-e.kick:
			}
			continue
		case err != nil:
			log.Warnw("login failed; retrying", "err", err, "in", e.cfg.RetryInterval)
		default:
			e.serveSession(ctx, sess)
			if ctx.Err() != nil {
				return
			}
			log.Warnw("rendezvous session lost; logging in again", "err", sess.Err(), "in", e.cfg.RetryInterval)
		}
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		case <-time.After(e.cfg.RetryInterval):
		}
	}
}

func (e *Engine) serveSession(ctx context.Context, sess *client.Session) {
	e.mu.Lock()
	e.session = sess
	e.username = sess.Username
	for _, p := range sess.Contacts {
		e.setPresenceLocked(p)
	}
	close(e.loggedIn)
	e.mu.Unlock()
	log.Infow("logged in", "user", sess.Username, "peer", e.node.ID())
	e.emit(Event{Kind: EventLogin, Username: sess.Username})
	e.flushSoon()
	for _, p := range sess.Contacts {
		e.emit(Event{Kind: EventPresence, Contact: ptr(e.contactStatus(p))})
	}
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	for p := range sess.Updates() {
		e.mu.Lock()
		e.setPresenceLocked(p)
		e.mu.Unlock()
		e.emit(Event{Kind: EventPresence, Contact: ptr(e.contactStatus(p))})
		if p.Online {
			e.flushSoon()
		}
	}
	// Without a session nobody tells us about contacts: show them offline
	// (not last seen) until the next login's snapshot.
	e.mu.Lock()
	e.session = nil
	e.loggedIn = make(chan struct{})
	for name, p := range e.contacts {
		p.Online = false
		e.contacts[name] = p
	}
	e.mu.Unlock()
	e.emit(Event{Kind: EventLogout})
}

// flushSoon asks the outbox loop to deliver queued messages now.
func (e *Engine) flushSoon() {
	select {
	case e.flush <- struct{}{}:
	default:
	}
}

// outboxLoop delivers queued messages to contacts who are online: when
// asked (login, a contact comes online) and every RetryInterval.
func (e *Engine) outboxLoop(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-e.flush:
		case <-t.C:
		}
		contacts, err := e.history.OutboxContacts(ctx)
		if err != nil {
			log.Errorw("read outbox", "err", err)
			continue
		}
		for _, c := range contacts {
			settled, err := e.chat.Flush(ctx, c)
			for _, m := range settled {
				e.emit(Event{Kind: EventDelivered, Message: &m})
			}
			if err != nil && !errors.Is(err, chat.ErrOffline) && ctx.Err() == nil {
				log.Debugw("outbox not delivered yet", "to", c, "err", err)
			}
		}
	}
}

// setPresenceLocked records a contact's presence and teaches the peerstore
// where the contact's device is. Call with e.mu held.
func (e *Engine) setPresenceLocked(p client.Presence) {
	if old, ok := e.contacts[p.Username]; ok && old.Peer != "" && old.Peer != p.Peer {
		e.node.Peerstore().ClearAddrs(old.Peer)
	}
	e.contacts[p.Username] = p
	if p.Online && p.Peer != "" {
		e.node.Peerstore().ClearAddrs(p.Peer)
		e.node.Peerstore().AddAddrs(p.Peer, p.Addrs, peerstore.AddressTTL)
	}
}

// contactBook is the chat service's view of the contacts.
type contactBook struct{ e *Engine }

func (b contactBook) Lookup(username string) (peer.ID, bool) {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	p, ok := b.e.contacts[username]
	if !ok || !p.Online {
		return "", ok
	}
	return p.Peer, true
}

func (b contactBook) UsernameOf(id peer.ID) (string, bool) {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	for name, p := range b.e.contacts {
		if p.Online && p.Peer == id {
			return name, true
		}
	}
	return "", false
}

func ptr[T any](v T) *T { return &v }

// sortedContacts returns the contacts sorted by username.
func (e *Engine) sortedContacts() []client.Presence {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]client.Presence, 0, len(e.contacts))
	for _, p := range e.contacts {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b client.Presence) int {
		if a.Username < b.Username {
			return -1
		}
		if a.Username > b.Username {
			return 1
		}
		return 0
	})
	return out
}
