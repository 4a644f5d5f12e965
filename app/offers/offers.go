package offers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
)

var (
	// ErrNoSuchOffer means no offer has the ID given.
	ErrNoSuchOffer = errors.New("no such offer (see parley offers)")
	// ErrNotPending means the offer cannot be answered: it was already
	// declined or cancelled, refused, or it is one this device made.
	ErrNotPending = errors.New("the offer is not waiting for an answer")
	// ErrNotLoggedIn means there is no user to offer as.
	ErrNotLoggedIn = errors.New("not logged in; register or enrol this device first")
)

// Contacts maps between usernames and the devices they are online on
// (the client engine's contact book; chat uses the same).
type Contacts interface {
	// Lookup reports whether username is an accepted contact and, if it is
	// online, its device ("" when offline).
	Lookup(username string) (device peer.ID, isContact bool)
	// UsernameOf returns the contact one of whose online devices is p.
	UsernameOf(p peer.ID) (string, bool)
}

// Config configures a Service. Host, File, Contacts and Self are
// required.
type Config struct {
	Host host.Host
	// File is where the list is kept (JSON, 0600).
	File     string
	Contacts Contacts
	// Self returns the logged-in username, "" if none.
	Self func() string
	// Reach, if not nil, prepares a connection to a contact's device
	// before a stream is opened to it.
	Reach func(ctx context.Context, p peer.ID) error
	// OnChange, if not nil, is called with each offer that arrived or
	// changed. It is called with the service's lock held (so the changes
	// of one offer come in order), never concurrently; it must not block
	// nor call the service.
	OnChange func(apitype.Offer)
	// OnClosed, if not nil, is called with each outgoing offer that the
	// recipient declined or their device refused: its content need not
	// be served to them any more. It is called without the service's
	// lock held, from the goroutine that learnt it; it may call the
	// service.
	OnClosed func(apitype.Offer)
	// RetryInterval is how often undelivered offers and replies are
	// tried again; zero means 30s.
	RetryInterval time.Duration
}

// MaxPendingPerContact bounds the unanswered offers a device keeps from
// one contact; more are refused until some are answered.
const MaxPendingPerContact = 100

var errTooMany = errors.New("too many offers")

// Service makes, receives and answers offers for one device. Its methods
// are safe for concurrent use.
type Service struct {
	cfg    Config
	flush  chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once

	sendMu sync.Mutex // one delivery round at a time

	mu     sync.Mutex // guards offers and closed
	offers []*record
	closed bool // no new stream is handled
}

// record is one offer as stored.
type record struct {
	apitype.Offer
	// Peer is, for an incoming offer, the device it came from: it
	// serves the content and gets the reply.
	Peer string `json:"peer,omitempty"`
	// ReplyPending: an incoming offer's answer is not delivered yet.
	ReplyPending bool `json:"reply_pending,omitempty"`
}

// New loads the list, starts handling ProtocolID on cfg.Host and starts
// the goroutine that delivers what is waiting.
func New(cfg Config) (*Service, error) {
	if cfg.Host == nil || cfg.File == "" || cfg.Contacts == nil || cfg.Self == nil {
		return nil, errors.New("offers: incomplete config")
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = 30 * time.Second
	}
	list, err := load(cfg.File)
	if err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, offers: list, flush: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	cfg.Host.SetStreamHandler(ProtocolID, s.handle)
	s.wg.Go(func() { s.run(ctx) })
	return s, nil
}

// Close stops handling the protocol and waits for the delivery goroutine
// and the streams being handled.
func (s *Service) Close() error {
	s.closeOnce.Do(func() {
		s.cfg.Host.RemoveStreamHandler(ProtocolID)
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

// enter counts a stream handler in, unless the service is closed; the
// handler calls s.wg.Done when it returns.
func (s *Service) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// Content is what an offer names.
type Content struct {
	CID   cid.Cid
	Name  string
	Size  int64
	Files int
	// Path is where the content is on this device (kept for the list).
	Path string
}

// Offer makes an offer of c to the contact to (the caller checked that
// to is one), stores it and delivers it if to is online; otherwise it is
// delivered later. The offer returned says whether it was delivered.
func (s *Service) Offer(ctx context.Context, to string, c Content) (apitype.Offer, error) {
	me := s.cfg.Self()
	if me == "" {
		return apitype.Offer{}, fmt.Errorf("offer: %w", ErrNotLoggedIn)
	}
	if err := CheckName(c.Name); err != nil {
		return apitype.Offer{}, fmt.Errorf("offer %q: %w; rename it and share it again", c.Name, err)
	}
	if err := checkCounts(c.Size, int64(c.Files)); err != nil {
		return apitype.Offer{}, fmt.Errorf("offer %q: %w", c.Name, err)
	}
	r := &record{Offer: apitype.Offer{
		ID: newID(), Direction: "out", From: me, To: to,
		Name: c.Name, Size: c.Size, Files: c.Files, CID: c.CID.String(), Path: c.Path,
		State: apitype.OfferPending, Created: time.UnixMilli(time.Now().UnixMilli()),
	}}
	s.mu.Lock()
	s.offers = append(s.offers, r)
	err := s.saveLocked()
	s.changedLocked(r)
	s.mu.Unlock()
	if err != nil {
		return apitype.Offer{}, err
	}
	s.deliverOne(ctx, r.ID)
	return s.Get(r.ID)
}

// deliverOne delivers the offer or reply id now if it waits and its
// device is online. Without the delivery round's lock: a round under way
// may send it too, which the other side takes as a retry.
func (s *Service) deliverOne(ctx context.Context, id string) {
	for _, d := range s.waiting() {
		if d.id == id {
			s.delivered(d, s.exchange(ctx, d.to, d.req))
		}
	}
}

// List is every offer, oldest first.
func (s *Service) List() []apitype.Offer {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]apitype.Offer, 0, len(s.offers))
	for _, r := range s.offers {
		out = append(out, r.Offer)
	}
	return out
}

// Get is the offer id.
func (s *Service) Get(id string) (apitype.Offer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(id)
	if err != nil {
		return apitype.Offer{}, err
	}
	return r.Offer, nil
}

// Source is the device an incoming offer came from: it serves the content.
func (s *Service) Source(id string) (peer.ID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(id)
	if err != nil {
		return "", err
	}
	return peer.Decode(r.Peer)
}

func (s *Service) lookupLocked(id string) (*record, error) {
	for _, r := range s.offers {
		if r.ID == id {
			return r, nil
		}
	}
	return nil, fmt.Errorf("offer %q: %w", id, ErrNoSuchOffer)
}

// Accept accepts the incoming offer id. start begins the download and
// returns its transfer ID; it is called with the service's lock held
// (so an offer is never accepted twice) and must not call the service.
// An offer accepted already is returned as it is, without calling start.
// The reply is delivered in the background.
func (s *Service) Accept(id string, start func(o apitype.Offer, from peer.ID) (transferID string, err error)) (apitype.Offer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(id)
	if err != nil {
		return apitype.Offer{}, err
	}
	if r.Direction == "in" && r.State == apitype.OfferAccepted {
		return r.Offer, nil
	}
	if r.Direction != "in" || r.State != apitype.OfferPending {
		return apitype.Offer{}, fmt.Errorf("accept offer %s (%s, %s): %w", id, r.Direction, r.State, ErrNotPending)
	}
	from, err := peer.Decode(r.Peer)
	if err != nil {
		return apitype.Offer{}, fmt.Errorf("accept offer %s: the sending device is unknown: %w", id, err)
	}
	tid, err := start(r.Offer, from)
	if err != nil {
		return apitype.Offer{}, err
	}
	r.State, r.TransferID, r.ReplyPending = apitype.OfferAccepted, tid, true
	return r.Offer, s.settledLocked(r)
}

// Decline declines the incoming offer id; the reply is delivered in the
// background. Declining a declined offer does nothing.
func (s *Service) Decline(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(id)
	if err != nil {
		return err
	}
	if r.Direction == "in" && r.State == apitype.OfferDeclined {
		return nil
	}
	if r.Direction != "in" || r.State != apitype.OfferPending {
		return fmt.Errorf("decline offer %s (%s, %s): %w", id, r.Direction, r.State, ErrNotPending)
	}
	r.State, r.ReplyPending = apitype.OfferDeclined, true
	return s.settledLocked(r)
}

// Cancel withdraws the outgoing offer id and returns it; the caller stops
// serving its content. Cancelling a cancelled offer does nothing. The
// recipient is not told: the content is simply no longer served to them.
func (s *Service) Cancel(id string) (apitype.Offer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(id)
	if err != nil {
		return apitype.Offer{}, err
	}
	if r.Direction != "out" {
		return apitype.Offer{}, fmt.Errorf("cancel offer %s: it was made to this device; decline it instead: %w", id, ErrNotPending)
	}
	if r.State != apitype.OfferCancelled {
		r.State = apitype.OfferCancelled
		if err := s.saveLocked(); err != nil {
			return apitype.Offer{}, err
		}
		s.changedLocked(r)
	}
	return r.Offer, nil
}

// settledLocked saves an answered offer, reports it and asks for the reply
// to be delivered.
func (s *Service) settledLocked(r *record) error {
	err := s.saveLocked()
	s.changedLocked(r)
	s.FlushSoon()
	return err
}

func (s *Service) changedLocked(r *record) {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(r.Offer)
	}
}

func (s *Service) saveLocked() error {
	return save(s.cfg.File, s.offers)
}

// FlushSoon asks the goroutine to deliver what is waiting now.
func (s *Service) FlushSoon() {
	select {
	case s.flush <- struct{}{}:
	default:
	}
}

func (s *Service) run(ctx context.Context) {
	t := time.NewTicker(s.cfg.RetryInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.flush:
		case <-t.C:
		}
		s.deliverAll(ctx)
	}
}

// delivery is one offer or reply waiting to be delivered.
type delivery struct {
	id  string
	to  peer.ID
	req *requestFrame
}

// deliverAll delivers the offers and replies that wait for a device that
// is online now.
func (s *Service) deliverAll(ctx context.Context) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	for _, d := range s.waiting() {
		if ctx.Err() != nil {
			return
		}
		err := s.exchange(ctx, d.to, d.req)
		s.delivered(d, err)
	}
}

// waiting lists what can be delivered now.
func (s *Service) waiting() []delivery {
	me := s.cfg.Self()
	if me == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []delivery
	for _, r := range s.offers {
		switch {
		case r.Direction == "out" && !r.Delivered && r.State == apitype.OfferPending:
			p, ok := s.cfg.Contacts.Lookup(r.To)
			if ok && p != "" {
				out = append(out, delivery{id: r.ID, to: p, req: offerFrame(me, r.Offer)})
			}
		case r.Direction == "in" && r.ReplyPending:
			// Only the device that made the offer knows it.
			p, err := peer.Decode(r.Peer)
			if err != nil {
				continue
			}
			if name, ok := s.cfg.Contacts.UsernameOf(p); ok && name == r.From {
				out = append(out, delivery{id: r.ID, to: p, req: replyFrame(me, r.ID, r.State == apitype.OfferAccepted)})
			}
		}
	}
	return out
}

// delivered records the outcome of one delivery.
func (s *Service) delivered(d delivery, err error) {
	if refused := s.deliveredLocked(d, err); refused != nil && s.cfg.OnClosed != nil {
		s.cfg.OnClosed(*refused)
	}
}

// deliveredLocked records the outcome of one delivery and returns the
// offer if the recipient refused it.
func (s *Service) deliveredLocked(d delivery, err error) *apitype.Offer {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, lerr := s.lookupLocked(d.id)
	if lerr != nil {
		return nil
	}
	switch {
	case err == nil:
		log.Infow("delivered", "offer", r.ID, "direction", r.Direction, "to", d.to)
	case errors.Is(err, errRejected) && r.Direction == "out":
		log.Infow("offer refused by the recipient", "offer", r.ID, "err", err)
		if r.State == apitype.OfferPending { // not cancelled meanwhile
			r.State, r.Error = apitype.OfferRefused, err.Error()
		}
	case errors.Is(err, errRejected):
		// The sender does not know the offer (any more): nothing to retry.
		log.Infow("reply refused by the sender", "offer", r.ID, "err", err)
	default:
		log.Debugw("not delivered yet", "offer", r.ID, "to", d.to, "err", err)
		return nil
	}
	if r.Direction == "out" {
		r.Delivered = err == nil
	} else {
		r.ReplyPending = false
	}
	if serr := s.saveLocked(); serr != nil {
		log.Warnw("save offers", "err", serr)
	}
	if r.Direction != "out" {
		return nil
	}
	s.changedLocked(r)
	if r.State == apitype.OfferRefused {
		o := r.Offer
		return &o
	}
	return nil
}

// received stores an incoming offer from sender's device p. It reports
// whether it is new; an id already received from sender is not new, one
// used by anything else is an error.
func (s *Service) received(sender string, p peer.ID, o apitype.Offer) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.offers, func(r *record) bool { return r.ID == o.ID }); i >= 0 {
		if r := s.offers[i]; r.Direction == "in" && r.From == sender {
			return false, nil
		}
		return false, errors.New("offer id already in use")
	}
	pending := 0
	for _, r := range s.offers {
		if r.Direction == "in" && r.From == sender && r.State == apitype.OfferPending {
			pending++
		}
	}
	if pending >= MaxPendingPerContact {
		return false, fmt.Errorf("%w: %d of your offers wait for an answer already", errTooMany, pending)
	}
	r := &record{Offer: o, Peer: p.String()}
	s.offers = append(s.offers, r)
	if err := s.saveLocked(); err != nil {
		s.offers = s.offers[:len(s.offers)-1]
		return false, err
	}
	s.changedLocked(r)
	return true, nil
}

// answered applies sender's reply to an outgoing offer.
func (s *Service) answered(sender, id string, accepted bool) error {
	closed, err := s.answeredLocked(sender, id, accepted)
	if closed == nil {
		return err
	}
	// The content stops being served before anyone is told of the
	// decline.
	if s.cfg.OnClosed != nil {
		s.cfg.OnClosed(*closed)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, err := s.lookupLocked(id); err == nil {
		s.changedLocked(r)
	}
	return err
}

// answeredLocked applies a reply and returns the offer if it was
// declined (then the caller reports the change).
func (s *Service) answeredLocked(sender, id string, accepted bool) (*apitype.Offer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookupLocked(id)
	if err != nil || r.Direction != "out" || r.To != sender {
		return nil, errors.New("no such offer was made to you")
	}
	state := apitype.OfferDeclined
	if accepted {
		state = apitype.OfferAccepted
	}
	if r.State != apitype.OfferPending {
		return nil, nil // a retry, or cancelled meanwhile: the cancel stands
	}
	r.State, r.Delivered = state, true
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	if state == apitype.OfferDeclined {
		o := r.Offer
		return &o, nil // reported by answered
	}
	s.changedLocked(r)
	return nil, nil
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
