package app

import (
	"context"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/contacts"
	"github.com/parleynet/parley/node"
	"github.com/parleynet/parley/rendezvous/client"
)

// contactSync keeps the account's contact book (a contacts.Book) current
// and applies what it says: the session's snapshot and pushes go in, and
// so do the listings it reads from the server when asked; the node's
// peerstore learns where the contacts' devices are, relayed connections a
// device left are closed, and the book's events come out with their
// connection paths. It is also the chat and probe services' view of the
// contacts (chat.Contacts).
//
// Its goroutine reads listings when asked (refreshSoon), until Close.
type contactSync struct {
	node *node.Node
	// list reads the book from the server (nil in tests without one).
	list      func(context.Context) (client.ContactBook, error)
	refresh   chan struct{}   // asks the goroutine to read the book
	ctx       context.Context // ends at Close; bounds the direct dials
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	// refreshMu serialises listings, so that an older one is never
	// applied after a newer one. Lock order: refreshMu, then mu.
	refreshMu sync.Mutex

	dialing sync.Map // peer.ID → struct{}: a direct dial under way

	// published: the addresses each online device of a contact
	// published, for the node's path labels (node.AdvertisedAddrs). Its
	// own lock: the node asks while s.mu may be held.
	publishedMu sync.Mutex
	published   map[peer.ID][]ma.Multiaddr

	mu   sync.Mutex // guards the following (and s.ctx's end: see Close)
	book *contacts.Book
}

// newContactSync returns a contact book kept for n; start runs its
// goroutine.
func newContactSync(n *node.Node, list func(context.Context) (client.ContactBook, error)) *contactSync {
	ctx, cancel := context.WithCancel(context.Background())
	s := &contactSync{node: n, list: list, refresh: make(chan struct{}, 1), book: contacts.New(), ctx: ctx, cancel: cancel,
		published: make(map[peer.ID][]ma.Multiaddr)}
	if n != nil {
		n.AdvertisedAddrs(s.publishedAddrs)
	}
	return s
}

// start runs the goroutine that reads listings when asked; emit gets the
// events of each listing applied, from that goroutine, never with a lock
// of s held.
func (s *contactSync) start(emit func(apitype.Event)) {
	ctx := s.ctx
	s.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-s.refresh:
			}
			evs, err := s.read(ctx)
			if err != nil && ctx.Err() == nil {
				log.Debugw("read contact book", "err", err)
			}
			for _, ev := range evs {
				emit(ev)
			}
		}
	})
}

// Close stops the goroutine and waits for it.
func (s *contactSync) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock() // no dialDirect starts a goroutine after this
		s.cancel()
		s.mu.Unlock()
		s.wg.Wait()
	})
	return nil
}

// refreshSoon asks the goroutine to read the contact book from the server.
func (s *contactSync) refreshSoon() {
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// read reads the contact book from the server and applies it, unless the
// server pushed a change meanwhile; then it reads it again (a few times
// at most: the pushes keep the book current anyway). It returns the
// events to emit.
func (s *contactSync) read(ctx context.Context) ([]apitype.Event, error) {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	for range 3 {
		s.mu.Lock()
		gen := s.book.Gen()
		s.mu.Unlock()
		l, err := s.list(ctx)
		if err != nil {
			return nil, serverError(err)
		}
		var fresh bool
		evs := s.apply(func(b *contacts.Book) contacts.Update {
			u, ok := b.ApplyListing(l, gen)
			fresh = ok
			return u
		})
		if fresh {
			return evs, nil
		}
	}
	return nil, nil
}

// apply runs an input on the book, applies the address changes it
// returns, and returns its events with their connection paths.
func (s *contactSync) apply(input func(*contacts.Book) contacts.Update) []apitype.Event {
	s.mu.Lock()
	u := input(s.book)
	// Under the lock: address changes apply in the order the book made
	// them.
	s.applyAddrs(u.Addrs)
	s.mu.Unlock()
	for i, ev := range u.Events {
		if ev.Contact != nil {
			u.Events[i].Contact = ptr(withPath(s.node, *ev.Contact))
		}
	}
	return u.Events
}

// applyAddrs teaches the peerstore where each online device of a contact
// is and makes it forget the others, and closes relayed connections
// through supernodes a device left.
func (s *contactSync) applyAddrs(changes []contacts.AddrChange) {
	ps := s.node.Peerstore()
	for _, c := range changes {
		ps.ClearAddrs(c.Device)
		s.publishedMu.Lock()
		if c.Gone {
			delete(s.published, c.Device)
		} else {
			s.published[c.Device] = c.Addrs
		}
		s.publishedMu.Unlock()
		if c.Gone {
			continue
		}
		ps.AddAddrs(c.Device, c.Addrs, peerstore.AddressTTL)
		s.closeAbandonedCircuits(c.Device, c.Relays)
		s.dialDirect(c.Device, c.Addrs)
	}
}

// publishedAddrs are the addresses device d last published.
func (s *contactSync) publishedAddrs(d peer.ID) []ma.Multiaddr {
	s.publishedMu.Lock()
	defer s.publishedMu.Unlock()
	return s.published[d]
}

// reachableDirect: a direct address that may answer from another network
// (not a circuit, not loopback, not a private range).
func reachableDirect(a ma.Multiaddr) bool {
	_, relayed := node.RelayOf(a)
	return !relayed && !manet.IsIPLoopback(a) && !manet.IsPrivateAddr(a)
}

// dialDirectTimeout bounds one attempt at a direct connection to a device
// reached through a supernode.
const dialDirectTimeout = 15 * time.Second

// dialDirect tries a direct connection to a contact's device that is
// connected through a supernode only, when its addresses include direct
// ones: it became reachable (its router mapped a port, it moved to a
// public address) while the relayed connection stood. Nothing else would
// try: libp2p dials only when there is no connection, and hole punching
// needs both sides behind a NAT that keeps its mappings. When the dial
// works, new streams take the direct connection. Called with s.mu held.
func (s *contactSync) dialDirect(d peer.ID, addrs []ma.Multiaddr) {
	if s.ctx.Err() != nil || !slices.ContainsFunc(addrs, reachableDirect) {
		return
	}
	conns := s.node.Network().ConnsToPeer(d)
	if len(conns) == 0 || slices.ContainsFunc(conns, func(c network.Conn) bool { return s.node.ConnPath(c).Kind != node.Relayed }) {
		return // no connection to upgrade, or a direct one already
	}
	if _, busy := s.dialing.LoadOrStore(d, struct{}{}); busy {
		return
	}
	s.wg.Go(func() {
		defer s.dialing.Delete(d)
		ctx, cancel := context.WithTimeout(network.WithForceDirectDial(s.ctx, "contact has direct addresses"), dialDirectTimeout)
		defer cancel()
		// libp2p takes a spliced connection for a direct one and dials
		// nothing while it stands: close it, but only once one of the
		// direct addresses answers, so that stale ones never cost the
		// pair its splice (the splice client makes a new one if the dial
		// below fails all the same).
		if spliced := slices.DeleteFunc(slices.Clone(conns), func(c network.Conn) bool { return !node.IsSplice(c.RemoteMultiaddr()) }); len(spliced) > 0 {
			if !tcpAnswers(ctx, addrs) {
				log.Debugw("a spliced contact device's direct addresses do not answer; keeping the splice", "peer", d)
				return
			}
			for _, c := range spliced {
				c.Close()
			}
		}
		if err := s.node.Connect(ctx, peer.AddrInfo{ID: d}); err != nil {
			log.Debugw("direct dial to a relayed contact device failed", "peer", d, "err", err)
			return
		}
		log.Infow("reached a relayed contact device directly", "peer", d)
	})
}

// tcpAnswers reports whether one of addrs that is a reachable direct TCP
// address accepts a TCP connection (closed at once) within 5 s.
func tcpAnswers(ctx context.Context, addrs []ma.Multiaddr) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var d net.Dialer
	for _, a := range addrs {
		if !reachableDirect(a) || node.TransportOf(a) != node.TransportTCP {
			continue
		}
		if tpt, _ := peer.SplitAddr(a); tpt != nil {
			a = tpt
		}
		na, err := manet.ToNetAddr(a)
		if err != nil {
			continue
		}
		if c, err := d.DialContext(ctx, "tcp", na.String()); err == nil {
			c.Close()
			return true
		}
	}
	return false
}

// closeAbandonedCircuits closes relayed connections to a contact's device
// through supernodes other than relays: it moved off them (they failed or
// left), so those connections are dead or about to be, and new streams
// must dial its current addresses instead of waiting on them.
func (s *contactSync) closeAbandonedCircuits(d peer.ID, relays []peer.ID) {
	for _, c := range s.node.Network().ConnsToPeer(d) {
		via, ok := node.RelayOf(c.RemoteMultiaddr())
		if !ok || slices.Contains(relays, via) {
			continue
		}
		log.Infow("contact moved off a supernode; closing the connection through it", "peer", d, "supernode", via)
		go c.Close()
	}
}

// login starts the book from a session's login snapshot, and returns the
// events that show it.
func (s *contactSync) login(sess *client.Session) []apitype.Event {
	evs := s.apply(func(b *contacts.Book) contacts.Update { return b.Login(sess.Contacts, sess.Incoming) })
	return evs
}

// logout shows every contact offline until the next login.
func (s *contactSync) logout() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.book.Logout()
}

// forget empties the book: the device no longer acts for the account.
func (s *contactSync) forget() {
	s.apply((*contacts.Book).Forget)
}

// restore starts the book from a saved session.
func (s *contactSync) restore(ps []client.Presence) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.book.Restore(ps)
}

// pushed applies an update the session pushed, and returns the events to
// emit.
func (s *contactSync) pushed(u client.Update) []apitype.Event {
	switch {
	case u.Presence != nil:
		evs := s.apply(func(b *contacts.Book) contacts.Update { return b.Presence(*u.Presence) })
		if len(evs) == 0 {
			log.Debugw("ignoring presence of a removed contact", "contact", u.Presence.Username)
		}
		return evs
	case u.Contact != nil:
		evs := s.apply(func(b *contacts.Book) contacts.Update { return b.ContactEvent(*u.Contact) })
		if len(evs) == 0 {
			log.Debugw("contact event changes nothing", "change", u.Contact.Change, "contact", u.Contact.Username)
			return nil
		}
		log.Infow("contact book changed", "contact", u.Contact.Username, "change", u.Contact.Change)
		return evs
	}
	return nil
}

// listing is the book as the API shows it, with connection paths.
func (s *contactSync) listing() apitype.ContactBook {
	s.mu.Lock()
	out := s.book.Listing()
	s.mu.Unlock()
	for i, c := range out.Contacts {
		out.Contacts[i] = withPath(s.node, c)
	}
	return out
}

// known are the accepted contacts with the devices they had, for the
// saved session.
func (s *contactSync) known() []client.Presence {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.book.Contacts()
}

// deviceContact is the status of the contact whose device id is (see
// pathWatcher), with Peer set to id; last names the contact to show when
// id belongs to no contact any more ("" for none).
func (s *contactSync) deviceContact(id peer.ID, last string) (apitype.ContactStatus, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, ok := s.book.UsernameOf(id)
	if !ok {
		name = last
	}
	if name == "" {
		return apitype.ContactStatus{}, false
	}
	c := apitype.ContactStatus{Username: name}
	if p, ok := s.book.Contact(name); ok {
		c = contacts.Status(p)
	}
	c.Peer = id.String()
	return c, true
}

// Lookup and UsernameOf are the chat and probe services' view of the
// contacts (see contacts.Book.Lookup): messages come from any online
// device of a contact, and go to the one that logged in last. While this
// device has no session (the rendezvous server is down) nobody can say
// who is online: messages go to the device that was seen last, found
// through its DHT address record (see Engine.reach), and come from any
// device the contact had then.
func (s *contactSync) Lookup(username string) (peer.ID, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.book.Lookup(username)
}

func (s *contactSync) UsernameOf(id peer.ID) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.book.UsernameOf(id)
}
