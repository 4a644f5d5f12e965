// Package app is what a Parley user does: it runs the client engine
// (Engine, the in-process home of apitype.Client). The engine wires parts
// that each do one job, and keeps no rules of its own:
//
//   - login and session (login.go, sessionKeeper): logs in to the
//     rendezvous server, keeps the session and the login state the API
//     shows, and logs in again when the reason allows;
//   - the contact book (book.go, contactSync): the account's book as pure
//     state (package app/contacts), kept current from the session and the
//     server's listings, and applied to the node's peerstore; it is chat's
//     view of who a device is;
//   - chat (package app/chat), with the outbox (outbox.go) that delivers
//     queued messages, and the offline mailbox (mailbox.go) that deposits
//     them, sealed, for offline contacts and fetches this device's mail;
//   - reachability (reach.go): supernode lists for the relay reserver, and
//     reaching a contact's device;
//   - DHT glue (dht.go): joining the DHT, and contactLocator, which finds
//     contacts' devices there while the server is down;
//   - publishing and downloads (transfers.go, package app/xfer): the
//     file server, the published list and the transfers;
//   - offers (offers.go, package app/offers): files shared with one
//     contact, offered to them, accepted or declined;
//   - account (account.go): devices, password, deletion;
//   - events (events.go, the numbered event log) and path events
//     (paths.go, pathWatcher);
//   - the saved session (sessioncache.go) and Status (status.go).
//
// Components with state and goroutines have their own type and Close;
// Engine.Close closes the session first (its hooks use the others).
package app

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	logging "github.com/ipfs/go-log/v2"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/app/offers"
	"github.com/parleynet/parley/app/probe"
	"github.com/parleynet/parley/app/xfer"
	"github.com/parleynet/parley/dht"
	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/relay"
	"github.com/parleynet/parley/relay/splice"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/client"
)

var log = logging.Logger("parley/app")

// IdentityFile is the device key's file name in the data directory.
const IdentityFile = datadir.IdentityFile

// Config configures an Engine. DataDir and Rendezvous are required; the
// zero value of every other field is valid.
type Config struct {
	// DataDir holds the device key (identity.key, 0600), the chat
	// history (history.db), what the last session said (session.json),
	// the last supernodes known (supernodes.json) and the sequence number
	// of the device's DHT records (dht.seq), the share index (files.db),
	// the published content and downloads (transfers.json), the offers
	// (offers.json), the mailbox key (mailbox-x25519.key, 0600) and,
	// unless a
	// Get names another folder, the downloads (downloads/).
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
	// PortMapping asks the home router to forward the listen ports (UPnP
	// IGD, NAT-PMP), so that peers reach the device directly; the mappings
	// are renewed while it runs and removed when it stops. Status shows
	// them. Volunteer supernodes keep it too: a mapped port makes them
	// reachable. It cannot be combined with NATImitation.
	PortMapping bool
	// ReserveInterval is how often relay reservations are checked. Zero
	// means 30s.
	ReserveInterval time.Duration
	// RetryInterval is the wait before logging in again after the session
	// is lost. Zero means 5s.
	RetryInterval time.Duration
	// Supernode says whether this device may serve others as a supernode
	// (relay.ModeAuto: when AutoNAT v2 confirms a public address, after
	// SupernodeMinUptime, with resource headroom; relay.ModeAlways;
	// relay.ModeNever). The zero value is relay.ModeAuto.
	Supernode relay.Mode
	// SupernodeMinUptime is how long the device must be up before it
	// volunteers as a supernode. Zero means 10 minutes; negative means no
	// wait.
	SupernodeMinUptime time.Duration
	// SupernodeMaxLoad is the machine's load average per core above which
	// the device does not volunteer. Zero means 1.5.
	SupernodeMaxLoad float64
	// DHTBootstrap are DHT peers to join through, besides the rendezvous
	// server and the supernodes its directory lists.
	DHTBootstrap []peer.AddrInfo
	// UploadLimit caps the bytes a second the device sends to those
	// fetching its files, all together; zero means no limit.
	UploadLimit int64
}

// Engine is a running Parley client for one device. It wires parts that
// each do one job (the fields say which) and keeps no rules of its own.
type Engine struct {
	cfg       Config
	node      *node.Node
	rdv       *client.Client
	sess      *sessionKeeper // login and session
	contacts  *contactSync   // the contact book, applied to the node
	chat      *chat.Service
	history   *chat.History
	outbox    *outbox  // delivers queued messages
	mailbox   *mailbox // deposits them for offline contacts, copies and receipts for other devices; fetches ours
	unread    *unreadNotifier
	prober    *probe.Service
	paths     *pathWatcher    // path events
	reserver  *relay.Reserver // relay slots; nil when declared publicly reachable
	passport  *relay.Passport
	splicer   *splice.Client // asks supernodes to splice circuits (the relay fast path)
	volunteer *relay.Volunteer
	dht       *dht.DHT
	locator   *contactLocator // contacts' devices in the DHT
	xfer      *xfer.Manager   // published content and downloads
	offers    *offers.Service // files offered to contacts and by them
	// offersReady is offers once it runs: the file server reports
	// uploads (sharedSent) from the start of the transfer manager, which
	// starts first.
	offersReady atomic.Pointer[offers.Service]
	events      *eventLog

	closeOnce sync.Once
	closeErr  error
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
	e := &Engine{cfg: cfg, events: newEventLog()}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	opts := []node.Option{node.WithIdentity(filepath.Join(cfg.DataDir, IdentityFile)), node.WithReachability(cfg.Reachability)}
	if cfg.ListenAddrs != nil {
		opts = append(opts, node.WithListenAddrs(cfg.ListenAddrs...))
	}
	if cfg.NATImitation {
		opts = append(opts, node.WithNATImitation())
	}
	if cfg.PortMapping {
		opts = append(opts, node.WithPortMapping())
	}
	// Contacts' devices are where chat and transfers go: dialled on TCP
	// first, a connection moves bulk data at twice QUIC's speed for half
	// the CPU (node.WithPreferTCP).
	var contacts atomic.Pointer[contactSync]
	opts = append(opts, node.WithPreferTCP(func(p peer.ID) bool {
		c := contacts.Load()
		if c == nil {
			return false
		}
		_, ok := c.UsernameOf(p)
		return ok
	}))
	if e.node, err = node.New(opts...); err != nil {
		return nil, err
	}
	// The rendezvous server and the supernodes this device holds slots on
	// are the network's own: where they see the device is where it is.
	e.node.TrustObservers(func(p peer.ID) bool {
		if p == cfg.Rendezvous.ID {
			return true
		}
		for _, a := range e.node.CircuitAddrs() {
			if via, ok := node.RelayOf(a); ok && via == p {
				return true
			}
		}
		return false
	})
	if e.history, err = chat.OpenHistory(filepath.Join(cfg.DataDir, datadir.HistoryFile)); err != nil {
		return nil, err
	}
	e.rdv = client.New(e.node, cfg.Rendezvous)
	e.sess = newSessionKeeper(e.rdv, e.node.ID(), cfg.RetryInterval, filepath.Join(cfg.DataDir, IdentityFile))
	e.contacts = newContactSync(e.node, e.rdv.Contacts)
	contacts.Store(e.contacts)
	if err := e.restoreSession(); err != nil {
		log.Warnw("the saved session cannot be read; starting without it", "err", err)
	}
	e.passport = relay.NewPassport(e.node, e.Certificate)
	e.splicer = splice.StartClient(e.node)
	e.unread = startUnread(e.history, e.emit)
	box, err := seal.LoadOrCreateKey(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	e.mailbox = startMailbox(&mailbox{
		rdv: e.rdv, history: e.history, contacts: e.contacts, self: e.Username,
		loggedIn: func() bool { return e.sess.current() != nil },
		identity: e.node.Peerstore().PrivKey(e.node.ID()), box: box, emit: e.emit, unread: e.unread.changed, retry: cfg.RetryInterval,
	})
	e.chat = chat.NewService(e.node, e.history, e.contacts, e.Username, e.reach)
	e.chat.OnMessage(func(m chat.Message) {
		e.emit(apitype.Event{Kind: apitype.EventMessage, Message: ptr(messageOf(m))})
		e.unread.changed(m.From)
		e.mailbox.syncSoon() // a delivery receipt may be owed to the sender's other devices
	})
	e.prober = probe.NewService(e.node, e.contacts)
	if e.paths, err = startPathWatcher(e.node, e.contacts.deviceContact, e.emit); err != nil {
		return nil, err
	}
	if err := e.startDHT(); err != nil {
		return nil, err
	}
	if err := e.startTransfers(); err != nil {
		return nil, err
	}
	if err := e.startOffers(); err != nil {
		return nil, err
	}
	e.locator = newContactLocator(e.dht, e.node, func() bool { return e.sess.current() != nil })
	if cfg.Reachability != node.ReachabilityPublic {
		e.reserver = relay.StartReserver(e.node, e.supernodes, e.passport, relay.ReserverConfig{
			Interval: cfg.ReserveInterval,
			// A device AutoNAT v2 found publicly reachable needs no relay.
			Needed:   func() bool { return len(e.node.PublicAddrs()) == 0 },
			OnChange: e.circuitsChanged,
		})
	}
	e.volunteer = relay.StartVolunteer(e.node, relay.VolunteerConfig{
		Mode:      cfg.Supernode,
		MinUptime: cfg.SupernodeMinUptime,
		MaxLoad:   cfg.SupernodeMaxLoad,
		Verifier:  e.certVerifier,
		Directory: e.rdv,
		Ready:     func() bool { return e.Username() != "" },
		Announcer: e.dht,
	})
	e.contacts.start(e.emit)
	e.outbox = startOutbox(e.chat, e.history, cfg.RetryInterval, e.emit, e.mailbox.depositFor)
	e.sess.start(e.advertisedAddrs, e.emit, e.sessionHooks())
	return e, nil
}

// Close logs out and stops everything the engine started.
func (e *Engine) Close() error {
	e.closeOnce.Do(func() {
		var errs []error
		// The session first: its hooks use the other parts.
		if e.sess != nil {
			errs = append(errs, e.sess.Close())
		}
		if e.outbox != nil {
			errs = append(errs, e.outbox.Close())
		}
		if e.mailbox != nil {
			errs = append(errs, e.mailbox.Close())
		}
		if e.offers != nil {
			errs = append(errs, e.offers.Close()) // before xfer: accepting starts downloads
		}
		if e.contacts != nil {
			errs = append(errs, e.contacts.Close())
		}
		if e.paths != nil {
			errs = append(errs, e.paths.Close())
		}
		if e.xfer != nil {
			errs = append(errs, e.xfer.Close())
		}
		if e.events != nil {
			e.events.close()
		}
		if e.volunteer != nil {
			errs = append(errs, e.volunteer.Close())
		}
		if e.reserver != nil {
			errs = append(errs, e.reserver.Close())
		}
		if e.chat != nil {
			errs = append(errs, e.chat.Close())
		}
		if e.unread != nil {
			errs = append(errs, e.unread.Close())
		}
		if e.prober != nil {
			errs = append(errs, e.prober.Close())
		}
		if e.passport != nil {
			errs = append(errs, e.passport.Close())
		}
		if e.splicer != nil {
			errs = append(errs, e.splicer.Close())
		}
		if e.dht != nil {
			errs = append(errs, e.dht.Close())
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

// Certificate is the device's membership certificate from the rendezvous
// server (see package rendezvous/cert): the current one while a session
// lives (the server renews it), afterwards the last one, which stays valid
// until it expires. It is nil before the first login and after the device
// was revoked or its account deleted.
func (e *Engine) Certificate() []byte { return e.sess.Certificate() }

// Username is the logged-in user, or "" when logged out.
func (e *Engine) Username() string { return e.sess.Username() }

// LoginProblem is why the device is not logged in, or nil while it is
// (and before the first login attempt has ended).
func (e *Engine) LoginProblem() *LoginProblem { return e.sess.Problem() }

// AwaitLogin asks for a login now and waits until a session is up. It
// fails early when a login attempt made after the call stops the engine
// (the device is revoked, say).
func (e *Engine) AwaitLogin(ctx context.Context) error { return e.sess.awaitLogin(ctx) }

// sessionHooks wire the session to the other parts.
func (e *Engine) sessionHooks() sessionHooks {
	return sessionHooks{
		up: e.contacts.login,
		loggedIn: func() {
			e.mailbox.loginSoon() // publish the mailbox key, fetch the mail
			e.outbox.flushSoon()
			e.offers.FlushSoon()
			e.contacts.refreshSoon() // the login snapshot lacks outgoing requests and blocks
			if e.reserver != nil {
				e.reserver.Refresh() // the certificate supernodes admit us with is here
			}
			e.volunteer.Recheck() // it waits for a login
		},
		update: func(u client.Update) {
			if u.Mail {
				e.mailbox.fetchSoon()
			}
			if u.KeysChanged != "" {
				e.mailbox.keysChanged(u.KeysChanged)
			}
			evs := e.contacts.pushed(u)
			e.emitAll(evs)
			for _, ev := range evs {
				switch {
				case ev.Kind == apitype.EventPresence && ev.Contact.Online:
					e.clearDialBackoff(*ev.Contact)
					e.outbox.flushSoon()
					e.offers.FlushSoon()
					e.resumeOffersFrom(ev.Contact.Username)
				case ev.Kind == apitype.EventContact:
					e.contacts.refreshSoon()
				}
			}
		},
		down: func() {
			// Without a session nobody tells us about contacts: show them
			// offline (not last seen) until the next login's snapshot.
			e.contacts.logout()
			e.saveSession()
		},
		stopped: func() {
			e.contacts.forget()
			e.forgetSession()
		},
	}
}

// Register creates an account with this device and waits until it is
// logged in.
func (e *Engine) Register(ctx context.Context, username, password string) (apitype.Account, error) {
	if _, err := e.rdv.Register(ctx, username, password); err != nil {
		return apitype.Account{}, e.accountError(err)
	}
	return e.awaitAccount(ctx)
}

// Enrol adds this device to an existing account and waits until it is
// logged in.
func (e *Engine) Enrol(ctx context.Context, username, password string) (apitype.Account, error) {
	if _, err := e.rdv.Enrol(ctx, username, password); err != nil {
		return apitype.Account{}, e.accountError(err)
	}
	return e.awaitAccount(ctx)
}

// awaitAccount waits for the login that follows a registration or an
// enrolment and returns the account logged in to.
func (e *Engine) awaitAccount(ctx context.Context) (apitype.Account, error) {
	if err := e.AwaitLogin(ctx); err != nil {
		return apitype.Account{}, err
	}
	return apitype.Account{Username: e.Username()}, nil
}

// accountError explains a refused register or enrol of a revoked device
// (the server calls it taken, to a register).
func (e *Engine) accountError(err error) error {
	p := e.LoginProblem()
	revoked := p != nil && p.Reason == apitype.LoginRevoked
	if errors.Is(err, rendezvous.ErrDeviceRevoked) || (revoked && errors.Is(err, rendezvous.ErrDeviceTaken)) {
		return &userError{msg: "this device was revoked and can never log in again; " + e.sess.revokedHint(), err: err}
	}
	return serverError(err)
}

// Send sends a chat message to a contact. A contact who is offline or
// unreachable gets it later: the message comes back in state chat.Queued
// and the engine delivers it when the contact is online. To a contact who
// is offline the engine also deposits it, sealed, in their mailbox on the
// rendezvous server (the message turns on_server), where their devices
// fetch it at their next login.
func (e *Engine) Send(ctx context.Context, to, body string) (apitype.Message, error) {
	to, err := rendezvous.CanonicalUsername(to)
	if err != nil {
		return apitype.Message{}, err
	}
	m, err := e.chat.Send(ctx, to, body)
	if err != nil {
		return apitype.Message{}, err
	}
	if m.State == chat.Queued {
		e.mailbox.depositFor(to) // if they are offline
	}
	e.mailbox.syncSoon() // copies for the other devices
	return messageOf(m), nil
}

// Probe streams size bytes to the device a contact is online on and
// reports the throughput, the path and whether every byte arrived intact.
func (e *Engine) Probe(ctx context.Context, contact string, size int64) (apitype.ProbeResult, error) {
	contact, err := rendezvous.CanonicalUsername(contact)
	if err != nil {
		return apitype.ProbeResult{}, err
	}
	switch {
	case size == 0:
		size = apitype.DefaultProbeSize
	case size < 0 || size > probe.MaxSize:
		return apitype.ProbeResult{}, fmt.Errorf("%w: a probe sends 1 byte to %d bytes", ErrInvalidArgument, int64(probe.MaxSize))
	}
	p, ok := e.contacts.Lookup(contact)
	switch {
	case !ok:
		return apitype.ProbeResult{}, fmt.Errorf("probe %s: %w", contact, chat.ErrNotAContact)
	case p == "":
		return apitype.ProbeResult{}, fmt.Errorf("probe %s: %w", contact, chat.ErrOffline)
	}
	if err := e.reach(ctx, p); err != nil {
		return apitype.ProbeResult{}, fmt.Errorf("probe %s: %w", contact, err)
	}
	r, err := probe.Run(ctx, e.node, p, size)
	if err != nil {
		return apitype.ProbeResult{}, err
	}
	return apitype.ProbeResult{Device: r.Device, Bytes: r.Bytes, Duration: r.Duration, MBPerSecond: r.MBps, Path: r.Path, Transport: r.Transport, Intact: r.Intact}, nil
}

// History returns the last limit messages with a contact, oldest first.
func (e *Engine) History(ctx context.Context, q apitype.HistoryQuery) ([]apitype.Message, error) {
	contact, err := rendezvous.CanonicalUsername(q.Contact)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	switch {
	case limit == 0:
		limit = apitype.DefaultHistoryLimit
	case limit < 0 || limit > apitype.MaxHistoryLimit:
		return nil, fmt.Errorf("%w: limit must be from 1 to %d", ErrInvalidArgument, apitype.MaxHistoryLimit)
	}
	if q.Before != "" {
		if err := chat.CheckID(q.Before); err != nil {
			return nil, fmt.Errorf("%w: before: %v", ErrInvalidArgument, err)
		}
	}
	msgs, err := e.history.With(ctx, contact, limit, q.Before)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, messageOf(m))
	}
	return out, nil
}

// advertisedAddrs are the device's direct addresses (loopback ones only
// on a loopback network) and its circuit addresses through supernodes.
func (e *Engine) advertisedAddrs() []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range node.Shareable(e.node.Addrs()) {
		if !node.IsCircuit(a) {
			out = append(out, a)
		}
	}
	// The reserver's circuits, as it gave them to the node.
	return append(out, e.node.CircuitAddrs()...)
}

func (e *Engine) circuitsChanged([]ma.Multiaddr) {
	e.emit(apitype.Event{Kind: apitype.EventSupernodes, Supernodes: idStrings(e.Supernodes())})
	e.dht.AddrsChanged()
	sess := e.sess.current()
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

func ptr[T any](v T) *T { return &v }

// The engine is the in-process home of the client API.
var _ apitype.Client = (*Engine)(nil)
