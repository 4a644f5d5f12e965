package offers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/parleynet/parley/app/apitype"
	"github.com/parleynet/parley/app/files"
	"github.com/parleynet/parley/app/offers/pb"
	"github.com/parleynet/parley/internal/wire"
)

// ProtocolID is the offer protocol.
const ProtocolID = "/parley/offer/1.0.0"

// Limits of the protocol.
const (
	MaxFrameSize    = 4 << 10 // one Request or Ack frame
	MaxNameLen      = files.MaxNameLen
	ExchangeTimeout = 10 * time.Second
	idLen           = 32 // hex digits
	maxErrorLen     = 200
)

type requestFrame = pb.Request

// errRejected means the other side refused the frame for good; the error
// carries its reason.
var errRejected = errors.New("refused")

// errTryLater means the other side cannot take the frame now.
var errTryLater = errors.New("the other side asks to try later")

func offerFrame(me string, o apitype.Offer) *pb.Request {
	return &pb.Request{Sender: me, Body: &pb.Request_Offer{Offer: &pb.Offer{
		Id: o.ID, Cid: o.CID, Name: o.Name, Size: o.Size, Files: int64(o.Files), SentUnixMs: o.Created.UnixMilli(),
	}}}
}

func replyFrame(me, id string, accepted bool) *pb.Request {
	return &pb.Request{Sender: me, Body: &pb.Request_Reply{Reply: &pb.Reply{Id: id, Accepted: accepted}}}
}

// idOf is the offer id a request is about.
func idOf(req *pb.Request) string {
	if o := req.GetOffer(); o != nil {
		return o.GetId()
	}
	return req.GetReply().GetId()
}

// exchange sends one request to p and reads the answer.
func (s *Service) exchange(ctx context.Context, p peer.ID, req *pb.Request) error {
	ctx, cancel := context.WithTimeout(ctx, ExchangeTimeout)
	defer cancel()
	// An offer is small: a relayed connection is fine.
	ctx = network.WithAllowLimitedConn(ctx, "offer")
	if s.cfg.Reach != nil {
		if err := s.cfg.Reach(ctx, p); err != nil {
			return fmt.Errorf("reach %s: %w", p, err)
		}
	}
	st, err := s.cfg.Host.NewStream(ctx, p, ProtocolID)
	if err != nil {
		return fmt.Errorf("open offer stream: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	if err := wire.Write(st, req, MaxFrameSize); err != nil {
		st.Reset()
		return fmt.Errorf("write offer frame: %w", err)
	}
	_ = st.CloseWrite()
	ack := new(pb.Ack)
	if err := wire.NewReader(st, MaxFrameSize).Read(ack); err != nil {
		st.Reset()
		return fmt.Errorf("read acknowledgement: %w", err)
	}
	switch {
	case ack.GetId() != idOf(req):
		return fmt.Errorf("acknowledgement for another offer (%q)", ack.GetId())
	case ack.GetStatus() == pb.Status_STATUS_OK:
		return nil
	case ack.GetStatus() == pb.Status_STATUS_TRY_LATER:
		return fmt.Errorf("%w: %s", errTryLater, clip(ack.GetError()))
	default:
		return fmt.Errorf("%w: %s", errRejected, clip(ack.GetError()))
	}
}

// clip bounds a text from the network kept in the list.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > maxErrorLen {
		s = strings.ToValidUTF8(s[:maxErrorLen], "") + "…"
	}
	return s
}

func (s *Service) handle(st network.Stream) {
	if !s.enter() {
		st.Reset()
		return
	}
	defer s.wg.Done()
	defer st.Close()
	_ = st.SetDeadline(time.Now().Add(ExchangeTimeout))
	remote := st.Conn().RemotePeer()
	req := new(pb.Request)
	if err := wire.NewReader(st, MaxFrameSize).Read(req); err != nil {
		log.Debugw("bad offer frame", "peer", remote, "err", err)
		st.Reset()
		return
	}
	ack := &pb.Ack{Id: idOf(req), Status: pb.Status_STATUS_OK}
	if status, err := s.accept(remote, req); err != nil {
		log.Infow("offer frame not accepted", "peer", remote, "reason", err)
		ack.Status, ack.Error = status, err.Error()
	}
	if err := wire.Write(st, ack, MaxFrameSize); err != nil {
		log.Debugw("write offer ack", "peer", remote, "err", err)
		st.Reset()
	}
}

// accept authenticates and applies one request. Its error is sent to
// the other side, so it says nothing they should not know.
func (s *Service) accept(remote peer.ID, req *pb.Request) (pb.Status, error) {
	if s.cfg.Self() == "" {
		return pb.Status_STATUS_TRY_LATER, errors.New("the recipient is not logged in")
	}
	sender, ok := s.cfg.Contacts.UsernameOf(remote)
	if !ok {
		return pb.Status_STATUS_TRY_LATER, errors.New("you are not a contact of the recipient")
	}
	if sender != req.GetSender() {
		return pb.Status_STATUS_REJECTED, fmt.Errorf("sender %q does not match the sending device", clip(req.GetSender()))
	}
	switch {
	case req.GetOffer() != nil:
		o, err := checkOffer(req.GetOffer())
		if err != nil {
			return pb.Status_STATUS_REJECTED, err
		}
		o.From, o.To = sender, s.cfg.Self()
		fresh, err := s.received(sender, remote, o)
		if err != nil {
			if errors.Is(err, errStore) {
				log.Errorw("store incoming offer", "err", err)
				return pb.Status_STATUS_TRY_LATER, errors.New("the recipient could not store the offer; try again")
			}
			if errors.Is(err, errTooMany) {
				return pb.Status_STATUS_TRY_LATER, err
			}
			return pb.Status_STATUS_REJECTED, err
		}
		if fresh {
			log.Infow("offer received", "from", sender, "offer", o.ID, "cid", o.CID)
		}
		return pb.Status_STATUS_OK, nil
	case req.GetReply() != nil:
		if err := s.answered(sender, req.GetReply().GetId(), req.GetReply().GetAccepted()); err != nil {
			if errors.Is(err, errStore) {
				log.Errorw("store reply", "err", err)
				return pb.Status_STATUS_TRY_LATER, errors.New("the sender could not store the reply; try again")
			}
			return pb.Status_STATUS_REJECTED, err
		}
		return pb.Status_STATUS_OK, nil
	default:
		return pb.Status_STATUS_REJECTED, errors.New("neither an offer nor a reply")
	}
}

// checkOffer validates an offer from the network and returns it as an
// incoming pending offer (without From and To).
func checkOffer(m *pb.Offer) (apitype.Offer, error) {
	if !validID(m.GetId()) {
		return apitype.Offer{}, fmt.Errorf("offer id must be %d lowercase hex digits", idLen)
	}
	c, err := files.ParseCID(m.GetCid())
	if err != nil {
		return apitype.Offer{}, errors.New("the CID is not one Parley makes")
	}
	if err := CheckName(m.GetName()); err != nil {
		return apitype.Offer{}, fmt.Errorf("the name is refused: %w", err)
	}
	if err := checkCounts(m.GetSize(), m.GetFiles()); err != nil {
		return apitype.Offer{}, err
	}
	return apitype.Offer{
		ID: m.GetId(), Direction: "in", Name: m.GetName(), Size: m.GetSize(), Files: int(m.GetFiles()),
		CID: c.String(), State: apitype.OfferPending, Delivered: true,
		Created: time.UnixMilli(time.Now().UnixMilli()),
	}, nil
}

func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for _, r := range id {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// CheckName checks an offer's display name: one file or folder name
// that files.ValidatePath allows (so no '/', no "..", no control
// characters, at most MaxNameLen bytes), and no bidirectional controls
// or line separators, which could make it read as something else.
// Offers with other names are refused rather than shown altered. The
// error wraps files.ErrUnsafePath.
func CheckName(name string) error {
	if strings.Contains(name, "/") {
		return fmt.Errorf("%w: a name, not a path, is expected", files.ErrUnsafePath)
	}
	if err := files.ValidatePath(name); err != nil {
		return err
	}
	for _, r := range name {
		if unicode.Is(unicode.Bidi_Control, r) || r == '\u2028' || r == '\u2029' || unicode.IsControl(r) {
			return fmt.Errorf("%w: the name holds the control character %U", files.ErrUnsafePath, r)
		}
	}
	return nil
}

// checkCounts checks an offer's size and number of files against what a
// manifest may hold.
func checkCounts(size, n int64) error {
	switch {
	case size < 0 || size > files.MaxChunks*files.ChunkSize:
		return fmt.Errorf("size %d is out of range", size)
	case n < 0 || n > files.MaxEntries:
		return fmt.Errorf("%d files is out of range (0 to %d)", n, files.MaxEntries)
	}
	return nil
}
