package app

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/chat"
	"github.com/parleynet/parley/app/datadir"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/app/offers"
	"github.com/parleynet/parley/app/xfer"
	"github.com/parleynet/parley/rendezvous"
)

// startOffers starts the offer service: offers made to contacts and
// received from them (package app/offers), delivered when the other side
// is online.
func (e *Engine) startOffers() (err error) {
	e.offers, err = offers.New(offers.Config{
		Host:          e.node,
		File:          filepath.Join(e.cfg.DataDir, datadir.OffersFile),
		Contacts:      e.contacts,
		Self:          e.Username,
		Reach:         e.reach,
		RetryInterval: e.cfg.RetryInterval,
		OnChange: func(o apitype.Offer) {
			o = e.withSent(o)
			e.emit(apitype.Event{Kind: apitype.EventOffer, Offer: &o})
		},
		OnClosed: func(o apitype.Offer) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.withdrawShare(ctx, o); err != nil {
				log.Warnw("stop serving a declined offer", "offer", o.ID, "err", err)
			}
		},
	})
	if err == nil {
		e.offersReady.Store(e.offers)
	}
	return err
}

// withSent sets o.BytesSent for an outgoing offer, from the transfer
// manager's count of what it sent the recipient's devices.
func (e *Engine) withSent(o apitype.Offer) apitype.Offer {
	if o.Direction == "out" {
		o.BytesSent = e.xfer.SentTo(o.CID, o.To)
	}
	return o
}

// sharedSent reports the accepted offers of content shared with user to,
// whose upload went on (xfer.Config.SharedSent).
func (e *Engine) sharedSent(cid, to string) {
	svc := e.offersReady.Load()
	if svc == nil {
		return
	}
	for _, o := range svc.List() {
		if o.Direction == "out" && o.CID == cid && o.To == to && o.State == apitype.OfferAccepted {
			o = e.withSent(o)
			e.emit(apitype.Event{Kind: apitype.EventOffer, Offer: &o})
		}
	}
}

// withdrawShare stops serving an outgoing offer's content to its
// recipient, unless another offer of it to them is pending or accepted.
func (e *Engine) withdrawShare(ctx context.Context, o apitype.Offer) error {
	for _, x := range e.offers.List() {
		live := x.State == apitype.OfferPending || x.State == apitype.OfferAccepted
		if x.ID != o.ID && x.Direction == "out" && x.CID == o.CID && x.To == o.To && live {
			return nil
		}
	}
	c, err := files.ParseCID(o.CID)
	if err != nil {
		return err
	}
	return e.xfer.Unshare(ctx, c, o.To)
}

// Share shares the file or folder at req.Path with the contact req.To
// only and offers it to them (see apitype.Client.Share).
func (e *Engine) Share(ctx context.Context, req apitype.ShareRequest) (apitype.Offer, error) {
	to, err := rendezvous.CanonicalUsername(req.To)
	if err != nil {
		return apitype.Offer{}, err
	}
	if !filepath.IsAbs(req.Path) {
		return apitype.Offer{}, fmt.Errorf("%w: share needs an absolute path, not %q", ErrInvalidArgument, req.Path)
	}
	me := e.Username()
	switch _, ok := e.contacts.Lookup(to); {
	case me == "":
		return apitype.Offer{}, fmt.Errorf("share: %w", chat.ErrNotLoggedIn)
	case to == me:
		return apitype.Offer{}, fmt.Errorf("%w: you cannot share with yourself; to reach your other devices, publish it", ErrInvalidArgument)
	case !ok:
		return apitype.Offer{}, fmt.Errorf("share with %s: %w", to, chat.ErrNotAContact)
	}
	sh, err := e.xfer.Share(ctx, req.Path, to)
	if err != nil {
		return apitype.Offer{}, err
	}
	c, err := files.ParseCID(sh.CID)
	if err != nil {
		return apitype.Offer{}, err
	}
	o, err := e.offers.Offer(ctx, to, offers.Content{CID: c, Name: sh.Name, Size: sh.Size, Files: sh.Files, Path: sh.Path})
	if err != nil {
		if uerr := e.withdrawShare(context.WithoutCancel(ctx), apitype.Offer{CID: sh.CID, To: to}); uerr != nil {
			log.Warnw("withdraw a share that was not offered", "cid", c, "err", uerr)
		}
		return apitype.Offer{}, err
	}
	return o, nil
}

// Offers lists the offers made and received.
func (e *Engine) Offers(context.Context) ([]apitype.Offer, error) {
	list := e.offers.List()
	for i, o := range list {
		list[i] = e.withSent(o)
	}
	return list, nil
}

// AcceptOffer starts downloading an incoming offer's content from the
// device that offered it, without seeding, and tells the sender.
func (e *Engine) AcceptOffer(_ context.Context, req apitype.AcceptOfferRequest) (apitype.Transfer, error) {
	if req.Dir != "" && !filepath.IsAbs(req.Dir) {
		return apitype.Transfer{}, fmt.Errorf("%w: the download folder must be an absolute path, not %q", ErrInvalidArgument, req.Dir)
	}
	o, err := e.offers.Accept(req.ID, func(o apitype.Offer, from peer.ID) (string, error) {
		c, err := files.ParseCID(o.CID)
		if err != nil {
			return "", err
		}
		t, err := e.xfer.GetOffered(xfer.Link{CID: c, Name: o.Name, Size: o.Size, From: from}, req.Dir)
		return t.ID, err
	})
	if err != nil {
		return apitype.Transfer{}, err
	}
	for _, t := range e.xfer.Transfers() {
		if t.ID == o.TransferID {
			return t, nil
		}
	}
	return apitype.Transfer{}, fmt.Errorf("offer %s was accepted, but its transfer %s is gone", o.ID, o.TransferID)
}

// DeclineOffer declines an incoming offer and tells the sender.
func (e *Engine) DeclineOffer(_ context.Context, id string) error {
	return e.offers.Decline(id)
}

// CancelOffer withdraws an outgoing offer: its content is no longer
// served to the recipient (unless another offer of it to them stands).
func (e *Engine) CancelOffer(ctx context.Context, id string) error {
	o, err := e.offers.Cancel(id)
	if err != nil {
		return err
	}
	return e.withdrawShare(ctx, o)
}

// resumeOffersFrom resumes the failed downloads of offers accepted from
// user, who just came online: they failed while the offering device was
// away (accepting does not wait for it).
func (e *Engine) resumeOffersFrom(user string) {
	failed := map[string]bool{}
	for _, t := range e.xfer.Transfers() {
		if t.State == apitype.TransferFailed {
			failed[t.ID] = true
		}
	}
	for _, o := range e.offers.List() {
		if o.Direction == "in" && o.From == user && o.State == apitype.OfferAccepted && failed[o.TransferID] {
			if err := e.xfer.Resume(o.TransferID); err != nil {
				log.Warnw("resume the download of an offer", "offer", o.ID, "err", err)
			}
		}
	}
}

// clearDialBackoff forgets the dials to a contact's devices that failed
// while they were away, so that what waits for them (offers, their
// replies, resumed downloads) is not held back once they are online.
func (e *Engine) clearDialBackoff(c apitype.ContactStatus) {
	for _, d := range append([]string{c.Peer}, c.Devices...) {
		if p, err := peer.Decode(d); err == nil {
			e.node.ClearBackoff(p)
		}
	}
}
