package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/parleynet/parley/internal/seal"
	"github.com/parleynet/parley/rendezvous"
	"github.com/parleynet/parley/rendezvous/pb"
)

// MailboxConfig configures the offline mailbox. Zero fields take their
// DefaultMailbox value.
type MailboxConfig struct {
	// TTL is how long a message is kept, delivered to every device or not.
	// Default 30 days.
	TTL time.Duration
	// SweepEvery is how often expired messages are deleted. They are never
	// delivered once expired, swept or not. Default 10 minutes.
	SweepEvery time.Duration
	// MaxMessages and MaxBytes are the quota of each user's mailbox:
	// messages, and bytes of ciphertext (all copies). Defaults 10,000 and
	// 64 MiB.
	MaxMessages int
	MaxBytes    int64
	// FetchDefault is how many messages a FetchMail without max returns.
	// Default 64.
	FetchDefault int
}

// DefaultMailbox is the mailbox of a production server.
var DefaultMailbox = MailboxConfig{
	TTL:          30 * 24 * time.Hour,
	SweepEvery:   10 * time.Minute,
	MaxMessages:  10_000,
	MaxBytes:     64 << 20,
	FetchDefault: 64,
}

func (c MailboxConfig) withDefaults() MailboxConfig {
	d := DefaultMailbox
	if c.TTL <= 0 {
		c.TTL = d.TTL
	}
	if c.SweepEvery <= 0 {
		c.SweepEvery = d.SweepEvery
	}
	if c.MaxMessages <= 0 {
		c.MaxMessages = d.MaxMessages
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	if c.FetchDefault <= 0 {
		c.FetchDefault = d.FetchDefault
	}
	c.FetchDefault = min(c.FetchDefault, rendezvous.MaxFetchMail)
	return c
}

func (c MailboxConfig) quota() MailQuota {
	return MailQuota{Messages: c.MaxMessages, Bytes: c.MaxBytes}
}

// CheckCopies is the rule of Store.Deposit, for Store implementations:
// one copy for each device with a key, except the devices the deposit
// says have the message (has), and none twice or for another device;
// else ErrDeviceKeysChanged.
func CheckCopies(keys []DeviceKey, copies []MailCopy, has []peer.ID) error {
	want := make(map[peer.ID]bool, len(keys))
	for _, k := range keys {
		want[k.Device] = true
	}
	seen := make(map[peer.ID]bool, len(copies))
	for _, c := range copies {
		if !want[c.Device] || seen[c.Device] {
			return fmt.Errorf("%w: no active device %s with a key, or two envelopes for it", rendezvous.ErrDeviceKeysChanged, c.Device)
		}
		seen[c.Device] = true
	}
	for _, d := range has {
		seen[d] = true
	}
	for d := range want {
		if !seen[d] {
			return fmt.Errorf("%w: no envelope for device %s", rendezvous.ErrDeviceKeysChanged, d)
		}
	}
	return nil
}

// sweepMail deletes expired mail every SweepEvery until the server stops.
func (s *Server) sweepMail() {
	t := time.NewTicker(s.cfg.Mailbox.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.sweepOnce(s.ctx)
		}
	}
}

// sweepOnce deletes the mail expired now.
func (s *Server) sweepOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, rendezvous.RequestTimeout)
	defer cancel()
	n, err := s.store.ExpireMail(ctx, time.Now())
	if err != nil {
		if ctx.Err() == nil {
			log.Errorw("delete expired mail", "err", err)
		}
		return
	}
	if n > 0 {
		log.Infow("deleted expired mail", "messages", n)
	}
}

// publishDeviceKey stores the calling device's mailbox key after checking
// that the device signed it.
func (s *Server) publishDeviceKey(ctx context.Context, c caller, req *pb.PublishDeviceKeyRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	raw := req.GetDeviceKey()
	if len(raw) > rendezvous.MaxDeviceKey {
		return nil, fmt.Errorf("%w: a device key has at most %d bytes", rendezvous.ErrBadRequest, rendezvous.MaxDeviceKey)
	}
	if _, err := seal.ParseDeviceKey(raw, c.device); err != nil {
		return nil, fmt.Errorf("%w: the device key is not this device's, signed by it: %v", rendezvous.ErrBadRequest, err)
	}
	if err := s.store.PutDeviceKey(ctx, me.ID, c.device, raw, time.Now()); err != nil {
		return nil, fmt.Errorf("store device key of %s: %w", me.Name, err)
	}
	log.Debugw("device key published", "user", me.Name, "device", c.device)
	return okResponse(), nil
}

// contactOrSelf resolves username for a mailbox request: the caller
// itself or one of its accepted contacts. Anyone else, existing or not,
// is ErrContactRequired, so the answer reveals nothing.
func (s *Server) contactOrSelf(ctx context.Context, me User, username string) (User, error) {
	name, err := rendezvous.CanonicalUsername(username)
	if err != nil {
		return User{}, err
	}
	if name == me.Name {
		return me, nil
	}
	u, err := s.store.UserByName(ctx, name)
	if errors.Is(err, rendezvous.ErrNotFound) {
		return User{}, rendezvous.ErrContactRequired
	}
	if err != nil {
		return User{}, fmt.Errorf("look up %s: %w", name, err)
	}
	ok, err := s.store.AreContacts(ctx, me.ID, u.ID)
	if err != nil {
		return User{}, fmt.Errorf("check contact %s of %s: %w", u.Name, me.Name, err)
	}
	if !ok {
		return User{}, rendezvous.ErrContactRequired
	}
	return u, nil
}

// deviceKeys answers with the mailbox keys of the user's active devices.
func (s *Server) deviceKeys(ctx context.Context, c caller, req *pb.DeviceKeysRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	u, err := s.contactOrSelf(ctx, me, req.GetUsername())
	if err != nil {
		return nil, err
	}
	keys, err := s.store.DeviceKeys(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("device keys of %s: %w", u.Name, err)
	}
	list := &pb.DeviceKeyList{Username: u.Name}
	for _, k := range keys {
		list.Keys = append(list.Keys, &pb.DeviceKey{PeerId: []byte(k.Device), DeviceKey: k.Key})
	}
	resp := okResponse()
	resp.Body = &pb.Response_DeviceKeys{DeviceKeys: list}
	return resp, nil
}

// deposit leaves a sealed message in a contact's mailbox.
func (s *Server) deposit(ctx context.Context, c caller, req *pb.DepositRequest) (*pb.Response, error) {
	me, err := s.owner(ctx, c.device)
	if err != nil {
		return nil, err
	}
	if err := allow("mailbox deposit", s.limits.depositAccount, me.Name, s.limits.depositSource, c.source); err != nil {
		return nil, err
	}
	to, err := s.contactOrSelf(ctx, me, req.GetTo())
	if err != nil {
		return nil, err
	}
	copies, has, err := checkDeposit(req)
	if err != nil {
		return nil, err
	}
	if to.ID == me.ID {
		// A copy for the user's other devices: the depositing device has
		// the message.
		has = append(has, c.device)
	}
	now := time.Now()
	d := Deposit{
		Recipient:    to.ID,
		Sender:       me.ID,
		SenderDevice: c.device,
		MessageID:    req.GetMessageId(),
		Copies:       copies,
		Has:          has,
		At:           now,
		Expires:      now.Add(s.cfg.Mailbox.TTL),
	}
	res, err := s.store.Deposit(ctx, d, s.cfg.Mailbox.quota())
	switch {
	case errors.Is(err, rendezvous.ErrMailboxFull):
		return nil, &rendezvous.StatusError{
			Status:  pb.Status_STATUS_RESOURCE_EXHAUSTED,
			Code:    rendezvous.CodeOf(rendezvous.ErrMailboxFull).Code,
			Message: fmt.Sprintf("%s's mailbox is full; the message stays queued on your device and is retried", to.Name),
		}
	case err != nil:
		return nil, fmt.Errorf("deposit from %s to %s: %w", me.Name, to.Name, err)
	}

	if !res.Duplicate {
		// Devices online on some replica (but unreachable by their
		// contacts) fetch now rather than at their next login.
		for _, c := range copies {
			s.publish(ctx, Event{Kind: EventMail, UserID: to.ID, Device: c.Device})
		}
	}
	resp := okResponse()
	resp.Body = &pb.Response_Deposit{Deposit: &pb.DepositResponse{Id: uint64(res.ID), Duplicate: res.Duplicate}}
	return resp, nil
}

// checkDeposit checks a deposit's fields and returns its copies and the
// devices that need none.
func checkDeposit(req *pb.DepositRequest) ([]MailCopy, []peer.ID, error) {
	id := req.GetMessageId()
	if id == "" || len(id) > rendezvous.MaxMessageID {
		return nil, nil, fmt.Errorf("%w: a message ID has 1 to %d bytes", rendezvous.ErrBadRequest, rendezvous.MaxMessageID)
	}
	envs := req.GetEnvelopes()
	if len(envs) == 0 || len(envs) > rendezvous.MaxMailDevices {
		return nil, nil, fmt.Errorf("%w: a deposit has 1 to %d envelopes", rendezvous.ErrBadRequest, rendezvous.MaxMailDevices)
	}
	copies := make([]MailCopy, 0, len(envs))
	for _, e := range envs {
		dev, err := peer.IDFromBytes(e.GetPeerId())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: invalid peer ID: %v", rendezvous.ErrBadRequest, err)
		}
		ct := e.GetCiphertext()
		if len(ct) == 0 || len(ct) > rendezvous.MaxMailCiphertext {
			return nil, nil, fmt.Errorf("%w: a ciphertext has 1 to %d bytes", rendezvous.ErrBadRequest, rendezvous.MaxMailCiphertext)
		}
		copies = append(copies, MailCopy{Device: dev, Ciphertext: ct})
	}
	if len(req.GetHas()) > rendezvous.MaxMailDevices {
		return nil, nil, fmt.Errorf("%w: at most %d devices have the message", rendezvous.ErrBadRequest, rendezvous.MaxMailDevices)
	}
	has := make([]peer.ID, 0, len(req.GetHas()))
	for _, raw := range req.GetHas() {
		dev, err := peer.IDFromBytes(raw)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: invalid peer ID: %v", rendezvous.ErrBadRequest, err)
		}
		has = append(has, dev)
	}
	return copies, has, nil
}

// fetchMail answers with the calling device's pending mail, as much as
// fits in a response.
func (s *Server) fetchMail(ctx context.Context, c caller, req *pb.FetchMailRequest) (*pb.Response, error) {
	if _, err := s.owner(ctx, c.device); err != nil {
		return nil, err
	}
	limit := s.cfg.Mailbox.FetchDefault
	if m := int(req.GetMax()); m > 0 {
		limit = min(m, rendezvous.MaxFetchMail)
	}
	// One more than asked tells whether more waits.
	mail, err := s.store.FetchMail(ctx, c.device, time.Now(), limit+1)
	if err != nil {
		return nil, fmt.Errorf("fetch mail of %s: %w", c.device, err)
	}
	list := &pb.MailList{}
	resp := okResponse()
	resp.Body = &pb.Response_Mail{Mail: list}
	// Room for the status, the flag and framing.
	budget := rendezvous.MaxResponseSize - 256
	for i, m := range mail {
		if i == limit {
			list.More = true
			break
		}
		pm := &pb.Mail{
			Id:              uint64(m.ID),
			Sender:          m.Sender,
			SenderPeerId:    []byte(m.SenderDevice),
			MessageId:       m.MessageID,
			DepositedUnixMs: m.Deposited.UnixMilli(),
			Ciphertext:      m.Ciphertext,
		}
		// Each entry costs its size plus a tag and a length prefix.
		if budget -= proto.Size(pm) + 8; budget < 0 {
			list.More = true
			break
		}
		list.Mail = append(list.Mail, pm)
	}

	return resp, nil
}

// ackMail deletes the calling device's copies of the given mail.
func (s *Server) ackMail(ctx context.Context, c caller, req *pb.AckMailRequest) (*pb.Response, error) {
	if _, err := s.owner(ctx, c.device); err != nil {
		return nil, err
	}
	raw := req.GetIds()
	if len(raw) > rendezvous.MaxAckMail {
		return nil, fmt.Errorf("%w: at most %d ids", rendezvous.ErrBadRequest, rendezvous.MaxAckMail)
	}
	ids := make([]int64, 0, len(raw))
	for _, id := range raw {
		if id > 1<<62 {
			continue // no such mail
		}
		ids = append(ids, int64(id))
	}
	n, err := s.store.AckMail(ctx, c.device, ids)
	if err != nil {
		return nil, fmt.Errorf("acknowledge mail of %s: %w", c.device, err)
	}

	resp := okResponse()
	resp.Body = &pb.Response_AckMail{AckMail: &pb.AckMailResponse{Deleted: uint32(n)}}
	return resp, nil
}

// pendingMail counts the mail waiting for a device logging in. A failure
// is logged and counts as none: the device fetches anyway when told.
func (s *Server) pendingMail(ctx context.Context, device peer.ID) uint32 {
	n, err := s.store.CountMail(ctx, device, time.Now())
	if err != nil {
		log.Errorw("count mail", "device", device, "err", err)
		return 0
	}
	return uint32(n)
}
